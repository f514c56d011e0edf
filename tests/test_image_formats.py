"""Unit tests of the format checks and the upload pipeline against a real filesystem store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from image_helpers import qcow2_image, vmdk_descriptor

from pocketstack.image import formats
from pocketstack.image.data import Expectations, UploadError, ingest
from pocketstack.image.stores.filesystem import FilesystemStore


def _check(fmt: str, data: bytes) -> formats.FormatInfo:
    return formats.check(fmt, data[:formats.HEAD_SIZE], data[-512:], len(data))


def test_qcow2_checks() -> None:
    assert _check("qcow2", qcow2_image(virtual_size=5 << 30)).virtual_size == 5 << 30
    assert _check("qcow2", qcow2_image(version=2)).virtual_size == 1 << 30
    with pytest.raises(formats.FormatError, match="backing file"):
        _check("qcow2", qcow2_image(backing="base.raw"))
    with pytest.raises(formats.FormatError, match="backing file"):
        _check("qcow2", qcow2_image(backing="/dev/sda", version=2))
    with pytest.raises(formats.FormatError, match="external data file"):
        _check("qcow2", qcow2_image(data_file=True))
    with pytest.raises(formats.FormatError, match="not a qcow2"):
        _check("qcow2", b"\0" * 4096)
    with pytest.raises(formats.FormatError, match="version"):
        _check("qcow2", qcow2_image(version=7))


def test_qcow2_data_file_header_extension_is_refused() -> None:
    data = bytearray(qcow2_image())
    struct.pack_into(">II", data, 104, formats.QCOW2_EXT_DATA_FILE, 8)
    data[112:120] = b"/dev/sda"
    struct.pack_into(">II", data, 120, 0, 0)
    with pytest.raises(formats.FormatError, match="external data file"):
        _check("qcow2", bytes(data))


def test_raw_must_not_hide_another_format() -> None:
    assert _check("raw", os.urandom(4096)).virtual_size == 4096
    with pytest.raises(formats.FormatError, match="declared raw"):
        _check("raw", qcow2_image())
    with pytest.raises(formats.FormatError, match="declared raw"):
        _check("raw", b"vhdxfile" + bytes(4096))


def test_vmdk_iso_vhd_vdi_signatures() -> None:
    _check("vmdk", vmdk_descriptor("monolithicSparse", 'RW 2048 SPARSE "disk.vmdk"'))
    with pytest.raises(formats.FormatError, match="monolithicFlat"):
        _check("vmdk", vmdk_descriptor("monolithicFlat"))
    iso = bytearray(40_000)
    iso[0x8001:0x8006] = b"CD001"
    _check("iso", bytes(iso))
    with pytest.raises(formats.FormatError, match="ISO"):
        _check("iso", bytes(40_000))
    fixed_vhd = bytes(10_000) + b"conectix" + bytes(504)
    _check("vhd", fixed_vhd)
    with pytest.raises(formats.FormatError, match="VHD"):
        _check("vhd", bytes(10_000))
    vdi = bytearray(512)
    struct.pack_into("<I", vdi, 0x40, 0xBEDA107F)
    _check("vdi", bytes(vdi))
    assert _check("ami", b"anything").virtual_size is None


async def _chunks(data: bytes, size: int = 65536, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        if fail_at is not None and i >= fail_at:
            raise ConnectionResetError("client went away")
        yield data[i:i + size]


def test_ingest_hashes_and_publishes_atomically(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    data = os.urandom(9 * 1024 * 1024 + 3)
    result = asyncio.run(ingest(_chunks(data), store.writer("img"), Expectations(
        disk_format="raw", size=len(data), md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest())))
    assert result.size == len(data) and result.virtual_size == len(data)
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.sha512 == hashlib.sha512(data).hexdigest()
    assert Path(result.location[len("file://"):]).read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["img"]


@pytest.mark.parametrize("expect, fail_at, message", [
    (Expectations(disk_format="raw"), 5 * 1024 * 1024, None),
    (Expectations(disk_format="raw", size=100), None, "larger than the declared size"),
    (Expectations(disk_format="raw", size=20 * 1024 * 1024), None, "were declared"),
    (Expectations(disk_format="raw", md5="0" * 32), None, "MD5"),
    (Expectations(disk_format="raw", sha256="0" * 64), None, "SHA-256"),
    (Expectations(disk_format="qcow2"), None, "not a qcow2"),
    (Expectations(disk_format="raw", limit=1024 * 1024), None, "larger than allowed"),
])
def test_ingest_failures_leave_nothing(tmp_path: Path, expect: Expectations, fail_at: int | None,
                                       message: str | None) -> None:
    store = FilesystemStore(tmp_path)
    data = os.urandom(9 * 1024 * 1024)
    with pytest.raises((UploadError, ConnectionResetError)) as err:
        asyncio.run(ingest(_chunks(data, fail_at=fail_at), store.writer("img"), expect))
    if message:
        assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_store_removes_partial_files_of_a_crash(tmp_path: Path) -> None:
    writer = FilesystemStore(tmp_path).writer("img")
    writer.write(b"half an image")
    assert len(list(tmp_path.iterdir())) == 1  # the process "crashes" here: no commit, no abort
    os.close(writer.fd)  # type: ignore[attr-defined]
    FilesystemStore(tmp_path)
    assert list(tmp_path.iterdir()) == []
