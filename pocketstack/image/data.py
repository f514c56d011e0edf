"""The upload pipeline: request body -> format check -> hashes -> store, at disk speed in constant memory.

Chunks from the socket are gathered into batches; each batch is hashed (md5 + sha512, and sha256 when the
client declared one) and written by a worker thread while the event loop receives the next batch, so at most
two batches are held in memory. Nothing is written before the first `HEAD_SIZE` bytes passed the format
check; nothing is published before the size and every declared checksum match.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pocketstack.image import formats
from pocketstack.image.stores import BlobWriter

BATCH_SIZE = 4 << 20
TAIL_SIZE = 512


class UploadError(Exception):
    """The data was refused (bad format, size or checksum, over a limit); nothing was stored."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class IngestResult:
    location: str
    size: int
    md5: str
    sha512: str
    virtual_size: int | None


@dataclass
class Expectations:
    """What the client or the image record declared the data must be."""

    disk_format: str | None = None  # None: no format check (e.g. non-bare containers)
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    limit: int | None = None  # most bytes accepted (quota room or the largest image allowed)
    limit_message: str = "The image is larger than allowed."


class _Hasher:
    """Hashes and writes each batch with three threads at once (hashlib and os.write release the GIL), so a
    batch costs max(md5, sha512, write) instead of their sum; batches stay in order."""

    def __init__(self, writer: BlobWriter, sha256: bool) -> None:
        self.writer = writer
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self.sha256 = hashlib.sha256() if sha256 else None
        self.pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="image-ingest")

    async def consume(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self.pool, self.sha512.update, data),
                loop.run_in_executor(self.pool, self.md5.update, data),
                loop.run_in_executor(self.pool, self.writer.write, data)]
        if self.sha256 is not None:
            jobs.append(loop.run_in_executor(self.pool, self.sha256.update, data))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def close(self) -> None:
        self.pool.shutdown(wait=False)


async def ingest(chunks: AsyncIterator[bytes], writer: BlobWriter, expect: Expectations) -> IngestResult:
    """Stream `chunks` into `writer`; commit only when everything checks out, abort on any error."""
    hasher = _Hasher(writer, bool(expect.sha256))
    pending: asyncio.Future[None] | None = None
    batch: list[bytes] = []
    batched = 0
    size = 0
    head: bytes | None = None  # set once the format check ran
    tail = b""
    info = formats.FormatInfo(virtual_size=None)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if expect.limit is not None and size > expect.limit:
                raise UploadError(expect.limit_message, 413)
            if expect.size is not None and size > expect.size:
                raise UploadError(f"The data is larger than the declared size of {expect.size} bytes.")
            batch.append(chunk)
            batched += len(chunk)
            tail = (tail + chunk)[-TAIL_SIZE:] if len(chunk) < TAIL_SIZE else chunk[-TAIL_SIZE:]
            if head is None:
                if batched < formats.HEAD_SIZE:
                    continue
                head = b"".join(batch)[:formats.HEAD_SIZE]
                if expect.disk_format and expect.disk_format != "vhd":
                    info = _check(expect.disk_format, head, tail, None)
            if batched >= BATCH_SIZE:
                data = b"".join(batch)
                batch, batched = [], 0
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(hasher.consume(data))
        if head is None:  # the whole image is smaller than the inspected head
            head = b"".join(batch)
            if expect.disk_format and expect.disk_format != "vhd":
                info = _check(expect.disk_format, head, tail, size)
        if expect.disk_format == "vhd":
            info = _check("vhd", head, tail, size)
        elif expect.disk_format == "raw":
            info = formats.FormatInfo(virtual_size=size)
        if expect.size is not None and size != expect.size:
            raise UploadError(f"The data is {size} bytes but {expect.size} bytes were declared.")
        if pending is not None:
            await pending
            pending = None
        if batch:
            await hasher.consume(b"".join(batch))
            batch = []
        md5 = hasher.md5.hexdigest()
        if expect.md5 and expect.md5.lower() != md5:
            raise UploadError(f"The data's MD5 checksum {md5} does not match the declared {expect.md5}.")
        if hasher.sha256 is not None and expect.sha256 and expect.sha256.lower() != hasher.sha256.hexdigest():
            raise UploadError("The data's SHA-256 checksum does not match the declared one.")
        location = await asyncio.to_thread(writer.commit)
    except BaseException:
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
        await asyncio.shield(asyncio.to_thread(writer.abort))
        raise
    finally:
        hasher.close()
    return IngestResult(location=location, size=size, md5=md5, sha512=hasher.sha512.hexdigest(),
                        virtual_size=info.virtual_size)


def _check(disk_format: str, head: bytes, tail: bytes, total: int | None) -> formats.FormatInfo:
    try:
        return formats.check(disk_format, head, tail, total or 0)
    except formats.FormatError as exc:
        raise UploadError(str(exc)) from exc
