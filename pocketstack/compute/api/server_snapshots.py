"""`createImage` and `createBackup` server actions: the image is made `queued` in the image service here, with
what the server inherited from its base image, then the server's host copies its disk into it (the agent's
`snapshot_instance`). Neither checks the server's lock, as Nova's (a lock guards against changes, not copies)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.compute import states
from pocketstack.compute.api.common import state
from pocketstack.compute.api.server_meta import check_items

# What a snapshot does not inherit from its base image: Glance's own attributes (not properties), Nova's
# non-inheritable properties (signatures, its default `non_inheritable_image_properties`), the mappings of
# volume-backed snapshots, and the os_glance namespace.
IMAGE_ATTRIBUTES = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "min_disk", "min_ram", "disk_format", "container_format", "created_at",
    "updated_at", "tags", "self", "file", "schema", "direct_url", "locations", "stores"})
NOT_INHERITED = frozenset({
    "img_signature", "img_signature_hash_method", "img_signature_key_type", "img_signature_certificate_uuid",
    "cache_in_nova", "bittorrent", "mappings", "block_device_mapping", "img_mappings", "img_block_device_mapping"})
NOT_INHERITED_PREFIXES = ("os_glance",)


def _entity(args: Any, action: str) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute {action}. Value: {args}. {args!r} is not of type "
                         "'object'")
    return args


def _name(entity: dict[str, Any], allowed: set[str]) -> str:
    extra = sorted(set(entity) - allowed)
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    if "name" not in entity:
        raise BadRequest("Invalid input for field/attribute name: 'name' is a required property")
    name = entity["name"]
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise BadRequest(f"Invalid input for field/attribute name. Value: {name}. It must be a string of 1 to 255 "
                         "characters.")
    if name.strip() != name or not name.isprintable():
        raise BadRequest(f"Invalid input for field/attribute name. Value: {name}. An invalid 'name' value was "
                         "provided. The name must be: printable characters. Can not start or end with whitespace.")
    return name


def _inherited(inst: Any) -> dict[str, Any]:
    """The base image's record as the server kept it at boot (Nova's image_* system metadata)."""
    return dict((inst.request_spec or {}).get("image_properties") or {})


def image_attributes(inst: Any, ctx: RequestContext, name: str, image_type: str,
                     extra: dict[str, str]) -> dict[str, Any]:
    """The queued image of a snapshot or backup: private to the server's project, the base image's inheritable
    properties and sizes, what marks it as the server's, then the caller's `extra` properties over them. Disk and
    container formats are left to the host, which knows what it uploads."""
    base = _inherited(inst)
    props = {k: str(v) for k, v in base.items() if k not in IMAGE_ATTRIBUTES and k not in NOT_INHERITED
             and not k.startswith(NOT_INHERITED_PREFIXES)}
    props.setdefault("base_image_ref", inst.image_ref or "")
    props.update({"instance_uuid": inst.uuid, "user_id": ctx.user_id or inst.user_id, "image_type": image_type})
    props.update(extra)
    return {"name": name, "visibility": "private", "owner": inst.project_id,
            "min_ram": int(base.get("min_ram") or 0), "min_disk": max(int(base.get("min_disk") or 0), inst.root_gb),
            **props}


def _volume_backed(inst: Any) -> bool:
    return any(b.boot_index == 0 and b.destination_type == "volume" for b in inst.block_devices)


async def _start_image(request: Request, server_id: str, *, action: str, policy: str, name: str,
                      image_type: str, extra: dict[str, str], backup_type: str | None = None,
                      rotation: int | None = None) -> dict[str, Any]:
    """Check the server (404, 403, 409), make its queued image, set the task and record `action`, hand the copy
    to the server's host (CAST). Returns the image; nothing is left behind when a step fails."""
    ctx = request_context(request)
    api = state(request)

    def check(inst: Any) -> None:
        api.policy.enforce(policy, ctx, {"project_id": inst.project_id, "user_id": inst.user_id})
        if _volume_backed(inst):
            raise BadRequest(f"{'Backup' if backup_type else 'Snapshot'} is not supported for volume-backed "
                             "instances.")
        states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)
        if inst.host is None:
            raise Conflict(f"Instance {inst.uuid} is not on a host.")

    inst = await api.servers.visible(server_id, ctx)
    check(inst)  # 409 before an image exists
    image = await api.image.create_image(**image_attributes(inst, ctx, name, image_type, extra))
    try:
        host = await api.servers.start_power_action(server_id, ctx, check, action, action)  # checked again, locked
    except BaseException:
        with contextlib.suppress(Exception):
            await api.image.delete_image(image["id"])
        raise
    assert host is not None  # check() refused a server without one
    try:
        await api.agents.snapshot_instance(host, inst.uuid, image["id"], backup_type=backup_type, rotation=rotation)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.ACTIONS[action][1]])
        with contextlib.suppress(Exception):
            await api.image.delete_image(image["id"])
        raise
    return image


def _image_response(request: Request, image: dict[str, Any], location: bool = True) -> Response:
    """202 with `image_id` from 2.45, else an empty 202 with the image's Location (Nova's glance image URL)."""
    if apikit.version(request) >= "2.45":
        return json_response({"image_id": image["id"]}, status=202)
    headers = {"Location": f"{state(request).image.base_url}/images/{image['id']}"} if location else {}
    return Response(status_code=202, headers=headers)


async def _create_image(request: Request, server_id: str, args: Any) -> Response:
    """`createImage`: a snapshot of the server's disk as a new image."""
    entity = _entity(args, "createImage")
    name = _name(entity, {"name", "metadata"})
    extra = check_items(entity.get("metadata", {}), "metadata")
    image = await _start_image(request, server_id, action="createImage", policy="os_compute_api:servers:create_image",
                              name=name, image_type="snapshot", extra=extra)
    return _image_response(request, image)


async def _create_backup(request: Request, server_id: str, args: Any) -> Response:
    """`createBackup`: a snapshot of type `backup_type`; only the newest `rotation` of them are kept."""
    entity = _entity(args, "createBackup")
    name = _name(entity, {"name", "backup_type", "rotation", "metadata"})
    backup_type = entity.get("backup_type")
    if not isinstance(backup_type, str):
        raise BadRequest(f"Invalid input for field/attribute backup_type. Value: {backup_type}. "
                         f"{backup_type!r} is not of type 'string'" if "backup_type" in entity else
                         "Invalid input for field/attribute backup_type: 'backup_type' is a required property")
    raw = entity.get("rotation")
    if "rotation" not in entity:
        raise BadRequest("Invalid input for field/attribute rotation: 'rotation' is a required property")
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())) or int(raw) < 0:
        raise BadRequest(f"Invalid input for field/attribute rotation. Value: {raw}. {raw!r} is not a non-negative "
                         "integer")
    rotation = int(raw)
    extra = check_items(entity.get("metadata", {}), "metadata")
    image = await _start_image(request, server_id, action="createBackup", policy="os_compute_api:os-create-backup",
                              name=name, image_type="backup", extra={**extra, "backup_type": backup_type},
                              backup_type=backup_type, rotation=rotation)
    return _image_response(request, image, location=rotation > 0)


# request body key -> handler, for server_actions
SERVER_ACTIONS = {"createImage": _create_image, "createBackup": _create_backup}
