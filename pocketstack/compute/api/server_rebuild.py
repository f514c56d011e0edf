"""`rebuild` server action: the server's guest spawned again from an image (the same or another), keeping its
ports, addresses and volumes; a new adminPass (unless `enable_instance_password` is off), and optionally a new
name, metadata, key pair (2.54) and user data (2.57). A stopped server is rebuilt and stays stopped, as Nova's."""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.apikit import is_uuid
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.compute import states
from pocketstack.compute.api.common import state
from pocketstack.compute.api.server_meta import check_items
from pocketstack.compute.api.servers import admin_password, auto_disk_config, record_view

# What a rebuild answers before 2.75 (then the full server): Nova's server view without its extensions, plus
# what later microversions added to it.
_REBUILD_VIEW = frozenset({"id", "name", "status", "image", "flavor", "fault", "user_id", "tenant_id", "created",
                           "updated", "progress", "metadata", "links", "addresses", "hostId", "OS-DCF:diskConfig",
                           "accessIPv4", "accessIPv6"})
_REBUILD_VIEW_ADDED = (("2.9", "locked"), ("2.19", "description"), ("2.26", "tags"), ("2.54", "key_name"),
                       ("2.71", "server_groups"), ("2.73", "locked_reason"))


def _view(request: Request, body: dict[str, Any], user_data: str | None) -> dict[str, Any]:
    """The server as a rebuild answers it at the request's microversion."""
    version = apikit.version(request)
    if version >= "2.75":
        return body
    keys = _REBUILD_VIEW | {key for since, key in _REBUILD_VIEW_ADDED if version >= since}
    view = {key: value for key, value in body.items() if key in keys}
    view["addresses"] = {net: [{k: v for k, v in ip.items() if not k.startswith("OS-EXT-IPS")} for ip in ips]
                         for net, ips in (body.get("addresses") or {}).items()}
    if version >= "2.57":
        view["user_data"] = user_data
    return view


def _allowed(request: Request) -> set[str]:
    """The keys a rebuild body may hold at the request's microversion."""
    version = apikit.version(request)
    keys = {"imageRef", "name", "adminPass", "metadata", "preserve_ephemeral", "accessIPv4", "accessIPv6",
            "OS-DCF:diskConfig"}
    if version < "2.57":
        keys.add("personality")
    if version >= "2.19":
        keys.add("description")
    if version >= "2.54":
        keys.add("key_name")
    if version >= "2.57":
        keys.add("user_data")
    return keys


def _string(entity: dict[str, Any], key: str, low: int, high: int, nullable: bool = False) -> None:
    value = entity[key]
    if value is None and nullable:
        return
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. It must be a string of {low} "
                         f"to {high} characters.")


def _parse(request: Request, args: Any) -> dict[str, Any]:
    """The rebuild body, checked (400 for what Nova's schema refuses)."""
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute rebuild. Value: {args}. {args!r} is not of type "
                         "'object'")
    extra = sorted(set(args) - _allowed(request))
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    if "imageRef" not in args:
        raise BadRequest("Invalid input for field/attribute imageRef: 'imageRef' is a required property")
    if "name" in args:
        _string(args, "name", 1, 255)
        if args["name"].strip() != args["name"]:
            raise BadRequest(f"Invalid input for field/attribute name. Value: {args['name']}. An invalid 'name' "
                             "value was provided. Can not start or end with whitespace.")
    if "adminPass" in args:
        _string(args, "adminPass", 0, 255)
    if "description" in args:
        _string(args, "description", 0, 255, nullable=True)
    if "key_name" in args:
        _string(args, "key_name", 1, 255, nullable=True)
    if "preserve_ephemeral" in args and not isinstance(args["preserve_ephemeral"], bool):
        raise BadRequest(f"Invalid input for field/attribute preserve_ephemeral. Value: "
                         f"{args['preserve_ephemeral']}. It is not a boolean.")
    if args.get("user_data") is not None:
        _string(args, "user_data", 0, 65535)
        try:
            base64.b64decode(args["user_data"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("User data needs to be valid base 64.")
    if "metadata" in args:
        check_items(args["metadata"], "metadata")
    if "OS-DCF:diskConfig" in args and args["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
        raise BadRequest(f"Invalid input for field/attribute OS-DCF:diskConfig. Value: {args['OS-DCF:diskConfig']}."
                         f" '{args['OS-DCF:diskConfig']}' is not one of ['AUTO', 'MANUAL']")
    return args


async def _image(request: Request, image_ref: Any, inst: Any) -> dict[str, Any]:
    """The image to rebuild from: it exists for the caller, is active and fits the server's flavor (400)."""
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1] if isinstance(image_ref, str) else ""
    if not is_uuid(image_id):
        raise BadRequest(f"Invalid input for field/attribute imageRef. Value: {image_ref}. "
                         f"'{image_ref}' is not a 'uuid'")
    try:
        image = await state(request).image.get_image(image_id)
    except NotFound:
        raise BadRequest(f"Image {image_id} could not be found.")
    if image.get("status") != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    if (image.get("min_ram") or 0) > inst.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if (image.get("min_disk") or 0) > inst.root_gb or (image.get("size") or 0) > inst.root_gb * (1 << 30):
        raise BadRequest("Flavor's disk is too small for requested image.")
    return image


async def _rebuild(request: Request, server_id: str, args: Any) -> Response:
    entity = _parse(request, args)
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)

    def check(row: Any) -> None:
        api.policy.enforce("os_compute_api:servers:rebuild", ctx, {"project_id": row.project_id,
                                                                    "user_id": row.user_id})
        if row.locked and not ctx.is_admin:
            raise Conflict(f"Instance {row.uuid} is locked")
        states.check_action("rebuild", row.uuid, row.vm_state, row.task_state)

    check(inst)  # 409 before the image is looked at
    image = await _image(request, entity["imageRef"], inst)
    volume_backed = any(b.boot_index == 0 and b.destination_type == "volume" for b in inst.block_devices)
    if volume_backed and image["id"] != inst.image_ref:
        raise BadRequest("Unable to rebuild with a different image for a volume-backed server.")
    password, sealed = admin_password(api, entity.get("adminPass"))
    spec = dict(inst.request_spec or {})
    spec.update({"image_id": image["id"],
                 "image_properties": {k: v for k, v in image.items() if isinstance(v, str | int | float | bool)}})
    changes: dict[str, Any] = {"image_ref": "" if volume_backed else image["id"], "request_spec": spec,
                               "admin_pass_sealed": sealed}
    for key, column in (("name", "display_name"), ("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6"),
                        ("description", "description"), ("user_data", "user_data")):
        if key in entity:
            changes[column] = entity[key]
    if "OS-DCF:diskConfig" in entity:  # the disk's partitioning after the rebuild, as asked (image permitting)
        changes["auto_disk_config"] = auto_disk_config(entity["OS-DCF:diskConfig"], {**image, **(
            image.get("properties") or {})})
    metadata = check_items(entity["metadata"], "metadata") if "metadata" in entity else None
    host, record = await api.servers.start_rebuild(server_id, ctx, check, changes, metadata,
                                                   key_name=entity.get("key_name"), set_key="key_name" in entity)
    if host is None:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.REBUILDING])
        raise Conflict(f"Instance {inst.uuid} is not on a host.")
    try:
        await api.agents.rebuild_instance(host, inst.uuid, image["id"],
                                          preserve_ephemeral=bool(entity.get("preserve_ephemeral", False)))
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.REBUILDING])
        raise
    body = _view(request, record_view(request, record, ctx), record.inst.user_data)
    if password is not None:
        body["adminPass"] = password
    return json_response({"server": body}, status=202)


# request body key -> handler, for server_actions
SERVER_ACTIONS = {"rebuild": _rebuild}
