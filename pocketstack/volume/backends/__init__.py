"""Volume backends (`[volume] backend`): where and how the volume manager stores volumes and snapshots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pocketstack.common.clients.image import ImageClient
from pocketstack.settings import Settings

TokenSource = Callable[[], Awaitable[str]]


class BackendError(Exception):
    """A backend operation failed; the message is what the user is told (volume status error + message)."""


@dataclass(frozen=True)
class Location:
    """Where a volume's or snapshot's data is: the file and its format (`provider_location` in the DB)."""

    path: str
    disk_format: str  # raw or qcow2


class VolumeBackend(Protocol):
    """What the volume manager asks of a backend. Sizes are in GiB."""

    storage_protocol: str

    async def init(self) -> None: ...

    async def create_empty(self, volume_id: str, size_gb: int) -> Location: ...

    async def create_from_image(self, volume_id: str, size_gb: int,
                                image_id: str) -> tuple[Location, dict[str, Any]]: ...

    async def create_from_source(self, volume_id: str, size_gb: int, source: Location) -> Location: ...

    async def extend(self, location: Location, size_gb: int, *, in_use: bool = False) -> None: ...

    async def delete(self, location: Location) -> None: ...

    async def purge(self, volume_id: str) -> None:
        """Remove whatever the backend still holds of a deleted volume (files an interrupted operation left)."""
        ...

    async def create_snapshot(self, volume_id: str, snapshot_id: str, location: Location) -> Location: ...

    async def delete_snapshot(self, snapshot: Location, chain: list[Location]) -> None: ...

    async def revert_to_snapshot(self, volume: Location, snapshot: Location) -> Location: ...

    async def export(self, location: Location, disk_format: str) -> Path:
        """A temporary file holding the volume's data in an image disk format (the caller removes it)."""
        ...

    def connection_info(self, location: Location, connector: dict[str, Any]) -> dict[str, Any]: ...

    async def stats(self) -> dict[str, Any]: ...


def make_backend(settings: Settings, image: ImageClient, token: TokenSource) -> VolumeBackend:
    if settings.volume.backend == "file":
        from pocketstack.volume.backends.file import FileBackend

        root = settings.volume.volumes_dir or settings.data_dir / "volumes"
        return FileBackend(root, volume_format=settings.volume.volume_format, image=image, token=token)
    raise ValueError(f"unknown volume backend {settings.volume.backend!r}")
