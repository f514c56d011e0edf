"""`POST /v3/{project_id}/volumes/{id}/action`: extend, bootable, read-only, retype, image metadata, the admin
actions (reset status, force delete, force detach) and the legacy attach/detach actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    authorize,
    bool_param,
    check_metadata,
    enforce,
    int_param,
    isotime,
    state,
    version,
)
from pocketstack.volume.api.volumes import _start_delete
from pocketstack.volume.store import volumes as store
from pocketstack.volume.store.lookups import is_multiattach
from pocketstack.volume.store.volumes import VolumeEdit

Handler = Callable[[Request, str, Any], Awaitable[Response]]


def _args(args: Any, name: str) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input received: the body of {name} must be an object.")
    return args


async def _change(request: Request, volume_id: str, action: str, change: Callable[[VolumeEdit], Any],
                  *, write: bool = True) -> Any:
    """Run `change` on the caller's volume (in a write transaction unless `write` is off) after the policy check
    on its project."""
    ctx = enforce(request, action)
    return await store.change_volume(state(request).db, state(request).settings, ctx, authorize(request, action),
                                     volume_id, change, write=write)


async def _extend(request: Request, volume_id: str, args: Any) -> Response:
    args = _args(args, "os-extend")
    if "new_size" not in args:
        raise BadRequest("Invalid input received: 'new_size' is required.")
    raw = args["new_size"]
    new_size = int_param(int(raw) if isinstance(raw, str) and raw.isdigit() else raw, "new_size", 1)
    attached_ok = version(request) >= "3.42"  # in-use volumes may be extended from 3.42, as Cinder's

    def change(edit: VolumeEdit) -> str:
        vol = edit.vol
        if vol.status == st.IN_USE:
            if not attached_ok:
                raise BadRequest(f"Invalid volume: Volume {vol.id} status must be available to extend, but "
                                 f"current status is: in-use (extending attached volumes needs 3.42).")
        st.require("extend", "volume", vol.id, vol.status, (st.AVAILABLE, st.IN_USE))
        if new_size <= vol.size:
            raise BadRequest(f"Invalid input received: New size for extend must be greater than current size. "
                             f"(current: {vol.size}, extended: {new_size}).")
        edit.check_quota(gigabytes=new_size - vol.size, volume_size=new_size)
        pool = edit.pool()
        if pool is None or pool.free_gb < new_size - vol.size:
            free = max(pool.free_gb, 0) if pool else 0
            raise BadRequest(f"Invalid input received: the backend of volume {vol.id} has {free:g} GB free, not "
                             f"the {new_size - vol.size} GB the extension needs.")
        vol.previous_status, vol.status = vol.status, st.EXTENDING
        return vol.host

    host = await _change(request, volume_id, "volume:extend", change)
    await state(request).manager.extend_volume(host, volume_id, new_size)
    return Response(status_code=202)


async def _set_bootable(request: Request, volume_id: str, args: Any) -> Response:
    args = _args(args, "os-set_bootable")
    if "bootable" not in args:
        raise BadRequest("Invalid input received: 'bootable' is required.")
    bootable = bool_param(args["bootable"], "bootable")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        if vol.status in (st.CREATING, st.DELETING):
            raise BadRequest(f"Invalid volume: Volume {vol.id} is {vol.status}.")
        vol.bootable = bootable

    await _change(request, volume_id, "volume:update", change)
    return Response(status_code=200)


async def _update_readonly(request: Request, volume_id: str, args: Any) -> Response:
    args = _args(args, "os-update_readonly_flag")
    if "readonly" not in args:
        raise BadRequest("Invalid input received: 'readonly' is required.")
    readonly = bool_param(args["readonly"], "readonly")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        st.require("update the readonly flag", "volume", vol.id, vol.status, (st.AVAILABLE,))
        vol.admin_metadata = {**(vol.admin_metadata or {}), "readonly": str(readonly)}

    await _change(request, volume_id, "volume:update_readonly_flag", change)
    return Response(status_code=202)


async def _retype(request: Request, volume_id: str, args: Any) -> Response:
    args = _args(args, "os-retype")
    if not isinstance(args.get("new_type"), str):
        raise BadRequest("Invalid input received: 'new_type' is required.")
    policy = args.get("migration_policy") or "never"
    if policy not in ("never", "on-demand"):
        raise BadRequest(f"Invalid input received: migration_policy {policy!r} is not never or on-demand.")
    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        st.require("retype", "volume", vol.id, vol.status, (st.AVAILABLE, st.IN_USE))
        new_type = edit.volume_type(args["new_type"])
        if new_type.id == vol.volume_type_id:
            raise BadRequest(f"Invalid input received: volume {vol.id} already has type {new_type.name}.")
        multiattach = is_multiattach(new_type)
        if vol.status == st.IN_USE and multiattach != vol.multiattach:
            raise BadRequest("Invalid volume: an in-use volume cannot change to or from a multiattach type.")
        vol.volume_type_id, vol.multiattach = new_type.id, multiattach

    await _change(request, volume_id, "volume:retype", change)
    return Response(status_code=202)


async def _set_image_metadata(request: Request, volume_id: str, args: Any) -> Response:
    metadata = check_metadata(_args(args, "os-set_image_metadata").get("metadata"))

    def change(edit: VolumeEdit) -> dict[str, str]:
        vol = edit.vol
        vol.image_metadata = {**(vol.image_metadata or {}), **metadata}
        return vol.image_metadata

    result = await _change(request, volume_id, "volume_extension:volume_image_metadata:set", change)
    return json_response({"metadata": result})


async def _unset_image_metadata(request: Request, volume_id: str, args: Any) -> Response:
    key = _args(args, "os-unset_image_metadata").get("key")
    if not isinstance(key, str):
        raise BadRequest("Invalid input received: 'key' is required.")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        if key not in (vol.image_metadata or {}):
            raise NotFound(f"Glance metadata for volume {vol.id} with key {key} could not be found.")
        vol.image_metadata = {k: v for k, v in vol.image_metadata.items() if k != key}

    await _change(request, volume_id, "volume_extension:volume_image_metadata:remove", change)
    return Response(status_code=200)


async def _show_image_metadata(request: Request, volume_id: str, args: Any) -> Response:
    result = await _change(request, volume_id, "volume_extension:volume_image_metadata:show",
                           lambda edit: dict(edit.vol.image_metadata or {}), write=False)
    return json_response({"metadata": result})


async def _reset_status(request: Request, volume_id: str, args: Any) -> Response:
    args = _args(args, "os-reset_status")
    status, attach_status, migration = args.get("status"), args.get("attach_status"), args.get("migration_status")
    if status is None and attach_status is None and migration is None:
        raise BadRequest("Must specify 'status', 'attach_status' or 'migration_status' for update.")
    if status is not None and status not in st.VOLUME_STATUSES:
        raise BadRequest(f"Must specify a valid status: {status!r} is not one of {', '.join(st.VOLUME_STATUSES)}.")
    if attach_status is not None and attach_status not in st.ATTACH_STATUSES:
        raise BadRequest(f"Must specify a valid attach status: {attach_status!r} is not one of "
                         f"{', '.join(st.ATTACH_STATUSES)}.")
    if migration is not None and migration not in ("migrating", "error", "success", "completing", "none",
                                                   "starting"):
        raise BadRequest(f"Must specify a valid migration status: {migration!r}.")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        if status is not None:
            vol.previous_status, vol.status = vol.status, status
        if attach_status is not None:
            vol.attach_status = attach_status
        if migration is not None:
            vol.migration_status = None if migration == "none" else migration

    await _change(request, volume_id, "volume_extension:volume_admin_actions:reset_status", change)
    return Response(status_code=202)


async def _revert(request: Request, volume_id: str, args: Any) -> Response:
    """Revert the volume to its latest snapshot (3.40)."""
    if version(request) < "3.40":
        raise BadRequest("There is no such action: revert (it needs microversion 3.40 or later)")
    snapshot_id = _args(args, "revert").get("snapshot_id")
    if not isinstance(snapshot_id, str):
        raise BadRequest("Invalid input received: 'snapshot_id' is required.")
    def change(edit: VolumeEdit) -> str:
        vol = edit.vol
        st.require("revert", "volume", vol.id, vol.status, (st.AVAILABLE,))
        snap = edit.snapshot(snapshot_id)
        if snap.volume_id != vol.id:
            raise BadRequest(f"Invalid snapshot: snapshot {snap.id} is not a snapshot of volume {vol.id}.")
        st.require("revert to it", "snapshot", snap.id, snap.status, (st.AVAILABLE,))
        latest = edit.latest_snapshot()
        if latest is None or latest.id != snap.id:
            raise BadRequest(f"Volume {vol.id} revert to snapshot {snap.id} failed: it is not the latest snapshot "
                             "of the volume.")
        if vol.size != snap.volume_size:
            raise BadRequest(f"Volume {vol.id} revert to snapshot {snap.id} failed: the volume was extended after "
                             "the snapshot.")
        vol.status, snap.status = st.REVERTING, st.RESTORING
        return vol.host

    host = await _change(request, volume_id, "volume:revert_to_snapshot", change)
    await state(request).manager.revert_to_snapshot(host, volume_id, snapshot_id)
    return Response(status_code=202)


# image properties a volume passes to images made of it: not what describes the volume's own source image
_NOT_INHERITED = {"image_id", "image_name", "checksum", "size", "disk_format", "container_format", "os_hash_algo",
                  "os_hash_value", "owner_specified.openstack.md5", "owner_specified.openstack.sha256",
                  "owner_specified.openstack.object"}
UPLOAD_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")


async def _upload_to_image(request: Request, volume_id: str, args: Any) -> Response:
    """`os-volume_upload_image`: a new image holding the volume's data (created as the caller, filled by the
    volume's manager); the volume is `uploading` meanwhile."""
    args = _args(args, "os-volume_upload_image")
    name = args.get("image_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Invalid input received: 'image_name' must be a non-empty string of at most 255 "
                         "characters.")
    disk_format = args.get("disk_format") or "raw"
    container_format = args.get("container_format") or "bare"
    if disk_format not in UPLOAD_FORMATS:
        raise BadRequest(f"Invalid disk-format '{disk_format}' is specified. Allowed disk-formats are "
                         f"{', '.join(UPLOAD_FORMATS)}.")
    if container_format != "bare":
        raise BadRequest(f"Invalid container-format '{container_format}' is specified. Allowed container-formats "
                         "are bare.")
    image_attrs: dict[str, Any] = {"name": name, "disk_format": disk_format, "container_format": container_format}
    if "visibility" in args or "protected" in args:
        if version(request) < "3.1":
            raise BadRequest("Invalid input: 'visibility' and 'protected' need microversion 3.1 or later.")
        visibility = args.get("visibility") or "private"
        if visibility not in ("private", "public", "shared", "community"):
            raise BadRequest(f"Invalid input received: visibility {visibility!r} is not one of private, public, "
                             "shared, community.")
        if visibility == "public":
            enforce(request, "volume_extension:volume_actions:upload_public")
        image_attrs.update(visibility=visibility, protected=bool_param(args.get("protected", False), "protected"))
    force = bool_param(args.get("force", False), "force")

    def change(edit: VolumeEdit) -> tuple[str, dict[str, Any]]:
        vol = edit.vol
        if vol.status == st.IN_USE:
            raise BadRequest(f"Invalid volume: volume {vol.id} is in-use" + (
                "; the file backend uploads detached volumes only." if force else ": uploading it needs force."))
        st.require("upload it to an image", "volume", vol.id, vol.status, (st.AVAILABLE,))
        vol.previous_status, vol.status = vol.status, st.UPLOADING
        inherited = {k: v for k, v in (vol.image_metadata or {}).items() if k not in _NOT_INHERITED}
        summary = {"id": vol.id, "updated_at": isotime(utcnow()), "status": st.UPLOADING,
                   "display_description": vol.description, "size": vol.size,
                   "volume_type": {"id": vol.volume_type_id, "name": vol.volume_type.name}}
        return vol.host, {"inherited": inherited, "summary": summary}

    host, found = await _change(request, volume_id, "volume_extension:volume_actions:upload_image", change)
    properties = {k: v for k, v in found["inherited"].items() if k not in ("min_disk", "min_ram")}
    for key in ("min_disk", "min_ram"):
        if str(found["inherited"].get(key, "")).isdigit():
            image_attrs[key] = int(found["inherited"][key])
    try:
        image = await state(request).image.create_image(**image_attrs, **properties)
        await state(request).manager.copy_volume_to_image(host, volume_id, image["id"], disk_format)
    except Exception:
        await _change(request, volume_id, "volume_extension:volume_actions:upload_image",
                      lambda edit: setattr(edit.vol, "status", st.AVAILABLE))
        raise
    body = {**found["summary"], "image_id": image["id"], "container_format": container_format,
            "disk_format": disk_format, "image_name": name}
    if version(request) >= "3.1":
        body.update(visibility=image.get("visibility"), protected=image.get("protected"))
    return json_response({"os-volume_upload_image": body}, status=202)


async def _force_delete(request: Request, volume_id: str, args: Any) -> Response:
    enforce(request, "volume_extension:volume_admin_actions:force_delete")
    await _start_delete(request, volume_id, cascade=False, force=True)
    return Response(status_code=202)


# ----- legacy attach / detach ----------------------------------------------------------------------------------------
def _transition(action: str, allowed: tuple[str, ...], to: str) -> Handler:
    async def handler(request: Request, volume_id: str, args: Any) -> Response:
        def change(edit: VolumeEdit) -> None:
            vol = edit.vol
            st.require(action.replace("_", " "), "volume", vol.id, vol.status, allowed)
            if to == "unreserved":
                vol.status = st.IN_USE if any(a.attach_status == st.ATTACHED for a in vol.attachments) else \
                    st.AVAILABLE
            else:
                vol.status = to

        await _change(request, volume_id, f"volume_extension:volume_actions:{action}", change)
        return Response(status_code=202)

    return handler


async def _legacy_attach(request: Request, volume_id: str, args: Any) -> Response:
    """`os-attach`: record an attachment done outside the attachments API (instance or host)."""
    args = _args(args, "os-attach")
    instance_uuid, host_name = args.get("instance_uuid"), args.get("host_name")
    if bool(instance_uuid) == bool(host_name):
        raise BadRequest("Invalid request to attach volume: give exactly one of instance_uuid and host_name.")
    if not isinstance(args.get("mountpoint"), str):
        raise BadRequest("Invalid request to attach volume: 'mountpoint' is required.")
    mode = args.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid request to attach volume: mode {mode!r} is not rw or ro.")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        allowed = (st.ATTACHING, st.RESERVED, st.AVAILABLE) + ((st.IN_USE,) if vol.multiattach else ())
        st.require("attach", "volume", vol.id, vol.status, allowed)
        pending = next((a for a in vol.attachments if a.attach_status != st.ATTACHED
                        and a.instance_uuid == instance_uuid), None)
        attachment = pending or edit.new_attachment(instance_uuid, mode)
        attachment.instance_uuid, attachment.attached_host = instance_uuid, host_name
        attachment.mountpoint, attachment.attach_mode = args["mountpoint"], mode
        now = utcnow()
        attachment.attach_status, attachment.attach_time = st.ATTACHED, now
        vol.status, vol.attach_status = st.IN_USE, st.ATTACHED

    await _change(request, volume_id, "volume_extension:volume_actions:attach", change)
    return Response(status_code=202)


async def _legacy_detach(request: Request, volume_id: str, args: Any, action: str = "detach") -> Response:
    args = _args(args, f"os-{action}")
    attachment_id = args.get("attachment_id")

    def change(edit: VolumeEdit) -> None:
        vol = edit.vol
        if attachment_id:
            attachment = next((a for a in vol.attachments if a.id == attachment_id), None)
            if attachment is None:
                raise NotFound(f"Volume attachment {attachment_id} could not be found.")
        elif len(vol.attachments) == 1:
            attachment = vol.attachments[0]
        elif not vol.attachments:  # nothing attached: the volume is available again, as Cinder's manager does
            st.require("detach", "volume", vol.id, vol.status,
                       (st.AVAILABLE, st.IN_USE, st.ATTACHING, st.DETACHING, st.RESERVED, st.ERROR))
            vol.status, vol.attach_status = st.AVAILABLE, st.DETACHED
            return
        else:
            raise BadRequest(f"Invalid volume: Volume {vol.id} has {len(vol.attachments)} attachments; give the "
                             "attachment_id to detach.")
        edit.detach(attachment)

    policy = ("volume_extension:volume_admin_actions:force_detach" if action == "force_detach" else
              "volume_extension:volume_actions:detach")
    await _change(request, volume_id, policy, change)
    return Response(status_code=202)


async def _force_detach(request: Request, volume_id: str, args: Any) -> Response:
    return await _legacy_detach(request, volume_id, args, action="force_detach")


async def _initialize_connection(request: Request, volume_id: str, args: Any) -> Response:
    connector = _args(args, "os-initialize_connection").get("connector")
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: 'connector' is required.")

    def check(edit: VolumeEdit) -> str:
        vol = edit.vol
        if vol.host is None or "error" in vol.status or vol.status in (st.CREATING, st.DELETING):
            raise BadRequest(f"Invalid volume: Volume {vol.id} is {vol.status}; it cannot be exported.")
        return vol.host

    host = await _change(request, volume_id, "volume_extension:volume_actions:initialize_connection", check,
                         write=False)
    info = await state(request).manager.initialize_connection(host, volume_id, connector)
    return json_response({"connection_info": info})


async def _terminate_connection(request: Request, volume_id: str, args: Any) -> Response:
    """The file backend keeps no export per host, so there is nothing to tear down beyond the checks."""
    if not isinstance(_args(args, "os-terminate_connection").get("connector"), dict):
        raise BadRequest("Invalid input received: 'connector' is required.")
    await _change(request, volume_id, "volume_extension:volume_actions:terminate_connection",
                  lambda edit: None, write=False)
    return Response(status_code=202)


ACTIONS: dict[str, Handler] = {
    "os-extend": _extend,
    "os-set_bootable": _set_bootable,
    "os-update_readonly_flag": _update_readonly,
    "os-retype": _retype,
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
    "os-reset_status": _reset_status,
    "os-force_delete": _force_delete,
    "revert": _revert,
    "os-volume_upload_image": _upload_to_image,
    "os-reserve": _transition("reserve", (st.AVAILABLE,), st.ATTACHING),
    "os-unreserve": _transition("unreserve", (st.ATTACHING,), "unreserved"),
    "os-begin_detaching": _transition("begin_detaching", (st.IN_USE,), st.DETACHING),
    "os-roll_detaching": _transition("roll_detaching", (st.DETACHING,), st.IN_USE),
    "os-attach": _legacy_attach,
    "os-detach": _legacy_detach,
    "os-force_detach": _force_detach,
    "os-initialize_connection": _initialize_connection,
    "os-terminate_connection": _terminate_connection,
}


async def volume_action(request: Request, volume_id: str) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: it must hold exactly one action.")
    (name, args), = body.items()
    handler = ACTIONS.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    return await handler(request, volume_id, args)

