"""The file backend: each volume is a raw or qcow2 file under the volumes directory, driven by `qemu-img`.

- A volume from an image is a qcow2 overlay on the image's raw base in `image-cache/`: the image is fetched from
  the image service and converted to raw once per image, so every later volume of it is created in the same
  (short) time whatever the image size.
- A snapshot freezes the volume's current file and puts a new qcow2 overlay on top of it as the volume's file
  (as Cinder's RemoteFS drivers do). Deleting a snapshot rebases the file above it onto the file below it, then
  removes the frozen file.
- A volume from a snapshot or another volume is a copy (`qemu-img convert`) that keeps the image base as its
  backing file when there is one, so it holds only what differs from the image.
- Connection info is `{"driver_volume_type": "file", "data": {"path", "format"}}` for the compute drivers.

Several volume managers never share a volumes directory; compute hosts reach it at the same path (the same host,
or a shared file system mounted at the same place).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from pocketstack.common.clients.image import ImageClient
from pocketstack.common.errors import APIError
from pocketstack.volume.backends import BackendError, Location, TokenSource

log = logging.getLogger("pocketstack.volume.backends.file")

GiB = 1 << 30

# Glance disk_format -> the qemu-img driver that reads it; other formats cannot become volumes.
IMAGE_FORMATS = {"raw": "raw", "iso": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc",
                 "vhdx": "vhdx"}

# Image attributes copied into a volume's `volume_image_metadata`, besides the custom properties.
_IMAGE_CORE = ("checksum", "container_format", "disk_format", "min_disk", "min_ram", "size")
_IMAGE_SKIP = {"id", "name", "status", "visibility", "protected", "os_hidden", "owner", "virtual_size", "tags",
               "created_at", "updated_at", "file", "schema", "self", "locations", "direct_url", "os_hash_algo",
               "os_hash_value", "stores"}


async def qemu_img(*args: str) -> str:
    """Run `qemu-img`; its stderr becomes the BackendError message when it fails."""
    proc = await asyncio.create_subprocess_exec("qemu-img", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await proc.communicate()
    except BaseException:  # cancelled: do not leave qemu-img running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip().replace("qemu-img: ", "")
        raise BackendError(f"qemu-img {args[0]} failed: {message}")
    return out.decode()


async def image_info(path: str, disk_format: str | None = None, *, chain: bool = False) -> Any:
    """`qemu-img info` as JSON (a list with --backing-chain). -U: the file may be open by a running guest."""
    args = ["info", "--output=json", "-U"]
    if disk_format:
        args += ["-f", disk_format]
    if chain:
        args.append("--backing-chain")
    return json.loads(await qemu_img(*args, path))


def _backing(info: dict[str, Any]) -> str | None:
    return info.get("full-backing-filename") or info.get("backing-filename")


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class FileBackend:
    storage_protocol = "file"

    def __init__(self, root: Path, *, volume_format: str, image: ImageClient, token: TokenSource) -> None:
        self.root = Path(root)
        self.cache = self.root / "image-cache"
        self.volume_format = volume_format
        self.image = image
        self.token = token
        self._image_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def init(self) -> None:
        """Create the directories; drop what an interrupted operation left half-written."""
        self.cache.mkdir(parents=True, exist_ok=True)
        for leftover in [*self.cache.glob(".*.part"), *self.cache.glob(".*.download"), *self.root.glob(".*.revert"),
                         *self.root.glob(".export-*")]:
            _discard(leftover)

    def _path(self, volume_id: str, suffix: str = "") -> Path:
        return self.root / f"volume-{volume_id}{suffix}"

    # ----- volumes -------------------------------------------------------------------------------------------
    async def create_empty(self, volume_id: str, size_gb: int) -> Location:
        path = self._path(volume_id)
        try:
            await qemu_img("create", "-q", "-f", self.volume_format, str(path), str(size_gb * GiB))
        except BaseException:
            _discard(path)
            raise
        return Location(str(path), self.volume_format)

    async def create_from_image(self, volume_id: str, size_gb: int,
                                image_id: str) -> tuple[Location, dict[str, Any]]:
        """A qcow2 overlay on the image's cached raw base; returns it and the volume's image metadata."""
        base, image = await self._cached_base(image_id)
        virtual_size = os.stat(base).st_size
        if virtual_size > size_gb * GiB:
            raise BackendError(f"Image {image_id} has a virtual size of {virtual_size / GiB:.2f} GiB and does not "
                               f"fit in a volume of {size_gb} GiB.")
        path = self._path(volume_id)
        try:
            await qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(path),
                           str(size_gb * GiB))
        except BaseException:
            _discard(path)
            raise
        return Location(str(path), "qcow2"), self._image_metadata(image)

    @staticmethod
    def _image_metadata(image: dict[str, Any]) -> dict[str, str]:
        meta = {"image_id": image["id"], "image_name": image.get("name") or ""}
        for key in _IMAGE_CORE:
            if image.get(key) is not None:
                meta[key] = str(image[key])
        for key, value in image.items():
            if key not in _IMAGE_SKIP and key not in meta and isinstance(value, str | int | float | bool):
                meta[key] = str(value)
        return meta

    async def _cached_base(self, image_id: str) -> tuple[Path, dict[str, Any]]:
        """The image's raw base in the cache, fetched and converted on first use (once per image)."""
        base = self.cache / f"{image_id}.raw"
        async with self._image_locks[image_id]:
            token = await self.token()
            try:
                image = await self.image.get_image(image_id, token=token)
            except APIError as exc:
                raise BackendError(f"Image {image_id} is not available: {exc.message}") from exc
            if base.exists():
                return base, image
            fmt = IMAGE_FORMATS.get(image.get("disk_format") or "")
            if fmt is None:
                raise BackendError(f"Image {image_id} has disk format {image.get('disk_format')!r}, which cannot "
                                   f"become a volume (supported: {', '.join(sorted(IMAGE_FORMATS))}).")
            download = self.cache / f".{image_id}.download"
            part = self.cache / f".{image_id}.raw.part"
            try:
                try:
                    await self.image.download(image_id, download, token=token)
                except APIError as exc:
                    raise BackendError(f"Fetching image {image_id} failed: {exc.message}") from exc
                await self._check_image(image_id, download, fmt)
                await qemu_img("convert", "-q", "-f", fmt, "-O", "raw", str(download), str(part))
                part.chmod(0o444)  # a base is shared by many overlays: never written again
                os.replace(part, base)
            finally:
                _discard(download)
                _discard(part)
        return base, image

    @staticmethod
    async def _check_image(image_id: str, path: Path, fmt: str) -> None:
        """Refuse data that is not what the image claims, or that points at other files (the image CVEs)."""
        info = await image_info(str(path))  # probed: a "raw" image must not look like anything else
        if info.get("format") != fmt:
            raise BackendError(f"Image {image_id} claims to be {fmt} but its data is {info.get('format')}.")
        if _backing(info):
            raise BackendError(f"Image {image_id} has a backing file; it cannot become a volume.")
        data = (info.get("format-specific") or {}).get("data") or {}
        if data.get("data-file"):
            raise BackendError(f"Image {image_id} has an external data file; it cannot become a volume.")
        for extent in data.get("extents") or []:
            if extent.get("filename") not in (None, str(path)):
                raise BackendError(f"Image {image_id} refers to another file; it cannot become a volume.")

    async def create_from_source(self, volume_id: str, size_gb: int, source: Location) -> Location:
        """A copy of a snapshot or volume; it keeps the image base as backing file when its source had one."""
        chain = await image_info(source.path, source.disk_format, chain=True)
        bottom = chain[-1]
        path = self._path(volume_id)
        args = ["convert", "-q", "-f", source.disk_format]
        if len(chain) > 1 and Path(bottom["filename"]).parent == self.cache:
            fmt = "qcow2"
            args += ["-O", fmt, "-B", bottom["filename"], "-F", "raw"]
        else:
            fmt = self.volume_format
            args += ["-O", fmt]
        try:
            await qemu_img(*args, source.path, str(path))
            if size_gb * GiB > chain[0]["virtual-size"]:
                await qemu_img("resize", "-q", "-f", fmt, str(path), str(size_gb * GiB))
        except BaseException:
            _discard(path)
            raise
        return Location(str(path), fmt)

    async def extend(self, location: Location, size_gb: int, *, in_use: bool = False) -> None:
        """Grow the volume's file. An attached one may be held open and locked by a running guest's QEMU: a raw
        file is then grown in place (truncate, never shrinking); a qcow2 one is grown by that QEMU itself when its
        compute host is told (volume-extended, QMP block_resize), as Nova's libvirt driver does for file volumes."""
        if location.disk_format != "raw" or not in_use:
            try:
                await qemu_img("resize", "-q", "-f", location.disk_format, location.path, str(size_gb * GiB))
            except BackendError as exc:
                if not (in_use and "lock" in str(exc)):
                    raise
                log.info("volume file %s is in use by its guest: its QEMU grows it", location.path)
            return

        def grow() -> None:
            if os.path.getsize(location.path) < size_gb * GiB:
                os.truncate(location.path, size_gb * GiB)

        await asyncio.to_thread(grow)

    async def delete(self, location: Location) -> None:
        _discard(Path(location.path))

    async def purge(self, volume_id: str) -> None:
        """Every file of a volume is named after it: its own, its snapshots' (volume-ID.SNAPSHOT), temporaries."""
        names = (f"volume-{volume_id}", f"volume-{volume_id}.*", f".volume-{volume_id}.*")
        for leftover in [path for name in names for path in self.root.glob(name)]:
            _discard(leftover)

    # ----- snapshots -----------------------------------------------------------------------------------------
    async def create_snapshot(self, volume_id: str, snapshot_id: str, location: Location) -> Location:
        """Freeze the volume's file as the snapshot; return the volume's new file (an overlay on it)."""
        overlay = self._path(volume_id, f".{snapshot_id}")
        try:
            await qemu_img("create", "-q", "-f", "qcow2", "-b", location.path, "-F", location.disk_format,
                           str(overlay))
        except BaseException:
            _discard(overlay)
            raise
        return Location(str(overlay), "qcow2")

    async def delete_snapshot(self, snapshot: Location, chain: list[Location]) -> None:
        """Rebase the file above the snapshot's (among `chain`, the volume's other files) onto the one below it,
        so it keeps its content without the snapshot, then remove the snapshot's file."""
        info = await image_info(snapshot.path, snapshot.disk_format)
        below, below_format = _backing(info), info.get("backing-filename-format")
        for candidate in chain:
            if _backing(await image_info(candidate.path, candidate.disk_format)) == snapshot.path:
                args = ["rebase", "-q", "-f", candidate.disk_format, "-b", below or ""]
                if below:
                    args += ["-F", below_format or "raw"]
                await qemu_img(*args, candidate.path)
                break
        _discard(Path(snapshot.path))

    async def revert_to_snapshot(self, volume: Location, snapshot: Location) -> Location:
        """Drop what was written since the latest snapshot: the volume's overlay on it starts over, empty."""
        if _backing(await image_info(volume.path, volume.disk_format)) != snapshot.path:
            raise BackendError("The volume's file is not an overlay on the snapshot's: only the latest snapshot can "
                               "be reverted to.")
        fresh = Path(volume.path).with_name(f".{Path(volume.path).name}.revert")
        try:
            await qemu_img("create", "-q", "-f", "qcow2", "-b", snapshot.path, "-F", snapshot.disk_format,
                           str(fresh))
            os.replace(fresh, volume.path)
        finally:
            _discard(fresh)
        return Location(volume.path, "qcow2")

    async def export(self, location: Location, disk_format: str) -> Path:
        """The volume flattened into one file of an image disk format (qcow2 stays small: only written data)."""
        out = self.root / f".export-{uuid.uuid4().hex}"
        try:
            await qemu_img("convert", "-q", "-f", location.disk_format, "-O", IMAGE_FORMATS[disk_format],
                           location.path, str(out))
        except BaseException:
            _discard(out)
            raise
        return out

    # ----- attach, stats -------------------------------------------------------------------------------------
    def connection_info(self, location: Location, connector: dict[str, Any]) -> dict[str, Any]:
        return {"driver_volume_type": "file", "data": {"path": location.path, "format": location.disk_format}}

    async def stats(self) -> dict[str, Any]:
        usage = await asyncio.to_thread(shutil.disk_usage, self.root)
        cached = sum(p.stat().st_blocks * 512 for p in self.cache.glob("*.raw"))
        return {"storage_protocol": self.storage_protocol, "filesystem_total_gb": round(usage.total / GiB, 2),
                "filesystem_free_gb": round(usage.free / GiB, 2), "image_cache_gb": round(cached / GiB, 2)}
