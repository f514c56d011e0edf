"""`block_device_mapping_v2` of a server create: validated and planned (which disks, which device names, what
the root is), with the images, snapshots and volumes checked as the caller sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pocketstack.common.apikit import is_uuid
from pocketstack.common.errors import APIError, BadRequest, NotFound
from pocketstack.compute.api.common import ComputeAPIState

ROOT_DEVICE = "/dev/vda"
BDM_KEYS = {"source_type", "destination_type", "uuid", "boot_index", "device_name", "volume_size",
            "delete_on_termination", "guest_format", "disk_bus", "device_type", "tag", "volume_type", "no_device"}
DEVICE_RE = re.compile(r"^(/dev/)?(x?vd|sd|hd)([a-z]+)$")
GiB = 1 << 30


@dataclass
class BlockDevicePlan:
    image_ref: str  # the image of a local root disk; "" when the root is a volume
    volume_root: bool = False
    root_image: dict[str, Any] | None = None  # for a volume root: the image properties the scheduler sees
    mappings: list[dict[str, Any]] = field(default_factory=list)  # BlockDeviceMapping columns, per server


def _invalid(reason: str) -> BadRequest:
    return BadRequest(f"Block Device Mapping is Invalid: {reason}")


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and
                                                                  value.lstrip("-").isdigit())):
        raise _invalid(f"{name} must be an integer, got {value!r}.")
    return int(value)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if str(value).lower() in ("true", "1", "yes", "on"):
        return True
    if str(value).lower() in ("false", "0", "no", "off"):
        return False
    raise _invalid(f"{name} must be a boolean, got {value!r}.")


def _device(name: Any) -> str | None:
    if name in (None, ""):
        return None
    match = DEVICE_RE.match(str(name))
    if not match:
        raise _invalid(f"device name {name!r} is not a disk device such as /dev/vdb.")
    return f"/dev/vd{match.group(3)}"


def next_device(used: set[str]) -> str:
    """The first free /dev/vdX after the root's /dev/vda."""
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"/dev/vd{letter}" not in used:
            return f"/dev/vd{letter}"
    raise BadRequest("No free disk device names are left on this server.")


async def _lookup(api: ComputeAPIState, kind: str, ident: str) -> dict[str, Any]:
    if not is_uuid(ident):
        raise _invalid(f"{kind} id {ident!r} is not a UUID.")
    try:
        if kind == "image":
            return await api.image.get_image(ident)
        if kind == "snapshot":
            return await api.volume.get_snapshot(ident)
        return await api.volume.get_volume(ident)
    except NotFound:
        raise BadRequest(f"{kind.capitalize()} {ident} could not be found.")
    except APIError as exc:
        raise BadRequest(f"{kind.capitalize()} {ident} could not be checked: {exc.message}")


def _kinds(bdm: Any) -> tuple[str, str, int | None]:
    """A mapping's source_type, destination_type and boot_index (None: not bootable)."""
    if not isinstance(bdm, dict):
        raise _invalid("each mapping must be an object.")
    unknown = set(bdm) - BDM_KEYS
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute block_device_mapping_v2. Additional properties are "
                         f"not allowed ({', '.join(sorted(unknown))} was unexpected)")
    source = bdm.get("source_type", "blank" if not bdm.get("uuid") else None)
    if source not in ("image", "volume", "snapshot", "blank"):
        raise _invalid(f"source_type {source!r} is not one of image, volume, snapshot, blank.")
    destination = bdm.get("destination_type") or ("local" if source in ("image", "blank") else "volume")
    if destination not in ("local", "volume"):
        raise _invalid(f"destination_type {destination!r} is not local or volume.")
    boot_index = _int(bdm.get("boot_index"), "boot_index")
    return source, destination, None if boot_index is not None and boot_index < 0 else boot_index


async def _volume_mapping(api: ComputeAPIState, bdm: dict[str, Any], source: str, boot_index: int | None,
                          max_count: int, result: BlockDevicePlan) -> dict[str, Any]:
    """The BlockDeviceMapping columns of a volume disk, its image, snapshot or volume checked."""
    size = _int(bdm.get("volume_size"), "volume_size")
    if source in ("image", "blank") and not size:
        raise _invalid("Images with destination_type 'volume' need to have a non-zero size specified"
                       if source == "image" else "a blank volume needs a volume_size.")
    if source == "volume" and max_count > 1:
        raise _invalid("Cannot attach one or more volumes to multiple instances.")
    mapping = {"source_type": source, "destination_type": "volume", "boot_index": boot_index,
               "volume_size": size, "delete_on_termination": _bool(bdm.get("delete_on_termination"),
                                                                   "delete_on_termination"),
               "tag": bdm.get("tag"), "image_id": None, "snapshot_id": None, "volume_id": None}
    uuid = str(bdm.get("uuid") or "")
    if source == "image":
        image = await _lookup(api, "image", uuid)
        if image.get("status") != "active":
            raise BadRequest(f"Image {uuid} is not active.")
        if max(image.get("min_disk") or 0, -(-(image.get("size") or 0) // GiB)) > size:
            raise _invalid(f"volume_size {size} GB is smaller than image {uuid} needs.")
        mapping["image_id"] = uuid
        if boot_index == 0:
            result.root_image = image
    elif source == "snapshot":
        snapshot = await _lookup(api, "snapshot", uuid)
        if snapshot["status"] != "available":
            raise BadRequest(f"Invalid snapshot: snapshot {uuid} is {snapshot['status']}, not available.")
        mapping["snapshot_id"] = uuid
        mapping["volume_size"] = max(size or 0, snapshot["size"])
    elif source == "volume":
        volume = await _lookup(api, "volume", uuid)
        if volume["status"] != "available" and not (volume.get("multiattach") and volume["status"] == "in-use"):
            raise BadRequest(f"Invalid volume: volume {uuid} status must be available, but it is "
                             f"{volume['status']}.")
        mapping["volume_id"] = uuid
        mapping["volume_size"] = volume["size"]
        if boot_index == 0:
            if str(volume.get("bootable", "true")).lower() == "false":  # Cinder says "true" or "false"
                raise BadRequest(f"Block Device {uuid} is not bootable.")
            result.root_image = {"id": "", **(volume.get("volume_image_metadata") or {})}
    return mapping


def _finish(result: BlockDevicePlan, image_id: str, boot_indexes: set[int], used: set[str],
            pending: list[tuple[dict[str, Any], str | None]]) -> BlockDevicePlan:
    """The root checked, device names given to the mappings that asked for none."""
    if result.volume_root:
        if image_id:
            raise _invalid("Boot sequence for the instance and image/block device mapping combination is not valid: "
                           "imageRef with a volume as boot device.")
        result.image_ref = ""
        result.root_image = result.root_image or {"id": ""}
    if boot_indexes and 0 not in boot_indexes:
        raise _invalid("Boot sequence for the instance and image/block device mapping combination is not valid.")
    for mapping, device in pending:
        mapping["device_name"] = device or next_device(used)
        used.add(mapping["device_name"])
        result.mappings.append(mapping)
    return result


async def plan(api: ComputeAPIState, raw: list[Any], image_ref: str, max_count: int) -> BlockDevicePlan:
    """Validate the mappings against imageRef; 400 with the reason when they do not make a bootable server."""
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1] if image_ref else ""
    result = BlockDevicePlan(image_ref=image_id)
    boot_indexes: set[int] = set()
    used = {ROOT_DEVICE}
    pending: list[tuple[dict[str, Any], str | None]] = []
    for bdm in raw:
        source, destination, boot_index = _kinds(bdm)
        if boot_index is not None:
            if boot_index in boot_indexes:
                raise _invalid("Boot sequence for the instance and image/block device mapping combination is not "
                               "valid.")
            boot_indexes.add(boot_index)
        if destination == "local":
            if source == "image" and boot_index == 0:  # the image as local root disk: a plain image boot
                if image_id and image_id != bdm.get("uuid"):
                    raise _invalid("imageRef and the image block device mapping disagree.")
                result.image_ref = image_id = str(bdm.get("uuid") or "")
                continue
            raise _invalid("local disks other than the image root disk (ephemeral, swap) are not supported.")
        mapping = await _volume_mapping(api, bdm, source, boot_index, max_count, result)
        device = _device(bdm.get("device_name"))
        if boot_index == 0:
            result.volume_root = True
            device = ROOT_DEVICE
        if device is not None:
            if (device in used and device != ROOT_DEVICE) or (device == ROOT_DEVICE and boot_index != 0):
                raise _invalid(f"device name {device} is used twice.")
            used.add(device)
        pending.append((mapping, device))
    return _finish(result, image_id, boot_indexes, used, pending)
