"""The filesystem store: one file per image under a directory, written via temp file + fsync + rename."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from pocketstack.image.stores import BlobWriter, Store, StoreError

TMP_PREFIX = ".partial-"
# Flush written data to disk every so often while the upload runs, so the final fsync has little left to do
# and the page cache never holds a whole image of dirty pages.
SYNC_EVERY = 64 << 20


class FileBlobWriter(BlobWriter):
    def __init__(self, root: Path, key: str) -> None:
        self.unsynced = 0
        self.final = root / key
        self.tmp = root / f"{TMP_PREFIX}{key}-{uuid.uuid4().hex}"
        try:
            self.fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot create {self.tmp.name}: {exc.strerror}") from exc

    def write(self, data: bytes) -> None:
        assert self.fd is not None, "write after commit/abort"
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            self.unsynced += len(data)
            if self.unsynced >= SYNC_EVERY:
                os.fdatasync(self.fd)
                self.unsynced = 0
        except OSError as exc:
            raise StoreError(f"writing image data failed: {exc.strerror}") from exc

    def commit(self) -> str:
        assert self.fd is not None, "commit after commit/abort"
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None
            os.rename(self.tmp, self.final)
            _fsync_dir(self.final.parent)
        except OSError as exc:
            self.abort()
            raise StoreError(f"storing image data failed: {exc.strerror}") from exc
        return self.final.as_uri()

    def abort(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(Store):
    def __init__(self, root: Path, store_id: str = "file",
                 description: str = "Filesystem store in the data directory") -> None:
        self.root = root
        self.id = store_id
        self.description = description
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Partial files of uploads cut by a crash of the whole process are never valid data."""
        for stale in self.root.glob(TMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    def writer(self, key: str) -> BlobWriter:
        if "/" in key or key.startswith("."):
            raise StoreError(f"invalid blob key {key!r}")
        return FileBlobWriter(self.root, key)

    def path(self, location: str) -> Path:
        """The file behind a location of this store (only file:// URIs inside the root are accepted)."""
        if not location.startswith("file://"):
            raise StoreError(f"not a filesystem location: {location}")
        path = Path(location[len("file://"):])
        if path.parent != self.root:
            raise StoreError(f"location outside the store: {location}")
        return path

    async def read(self, location: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self.path(location)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"image data unavailable: {exc.strerror}") from exc
        try:
            offset = start
            while end is None or offset < end:
                want = chunk_size if end is None else min(chunk_size, end - offset)
                data = await asyncio.to_thread(os.pread, fd, want, offset)
                if not data:
                    break
                offset += len(data)
                yield data
        finally:
            os.close(fd)

    async def size(self, location: str) -> int:
        try:
            return (await asyncio.to_thread(os.stat, self.path(location))).st_size
        except OSError as exc:
            raise StoreError(f"image data unavailable: {exc.strerror}") from exc

    async def delete(self, location: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, self.path(location))
