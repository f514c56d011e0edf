"""Image data stores: where image bytes live. A store is a driver; `make_store` picks one from settings.

A store hands out `BlobWriter`s (written from a worker thread, published atomically by `commit`) and streams
stored data back by byte range. The upload pipeline (hashing, format inspection, limits) is store-agnostic and
lives in `pocketstack.image.data`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pocketstack.settings import Settings


class StoreError(Exception):
    """The store could not write, read or delete data (disk full, I/O error, missing data)."""


class BlobWriter(ABC):
    """One pending write. `write` is called from a worker thread; nothing is visible before `commit`."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> str:
        """Make the data durable and visible; return its location URI."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written so far (idempotent, never raises)."""


class Store(ABC):
    id: str
    description: str

    @abstractmethod
    def writer(self, key: str) -> BlobWriter:
        """Start writing the blob `key` (an image id); the blob replaces any earlier one on commit."""

    @abstractmethod
    def read(self, location: str, start: int = 0, end: int | None = None,
             chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of a stored blob (end None: to its end)."""

    @abstractmethod
    async def size(self, location: str) -> int:
        """Size in bytes of a stored blob; StoreError when it is gone."""

    @abstractmethod
    async def delete(self, location: str) -> None:
        """Remove a stored blob; no error when it is already gone."""


def _filesystem(root: Path, **kwargs: str) -> Store:
    from pocketstack.image.stores.filesystem import FilesystemStore

    return FilesystemStore(root, **kwargs)


# settings.image.store -> driver; a new store (S3, RBD, ...) adds its line here and to ImageSettings.store.
STORE_DRIVERS: dict[str, Callable[..., Store]] = {"file": _filesystem}


def _root(settings: Settings) -> Path:
    return Path(settings.image.store_dir or settings.data_dir / "images")


def make_store(settings: Settings) -> Store:
    """The configured image store."""
    return STORE_DRIVERS[settings.image.store](_root(settings))


def make_staging(settings: Settings) -> Store:
    """The local staging area of the interoperable import (`/v2/images/{id}/stage`), always on local disk."""
    return _filesystem(_root(settings) / "staging", store_id="staging",
                       description="Staging area of the image import")
