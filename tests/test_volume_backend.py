"""The file backend on its own, with real qemu-img: data survives snapshots, clones and snapshot deletion."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pocketstack.volume.backends import BackendError, Location
from pocketstack.volume.backends.file import FileBackend

MiB = 1 << 20


def write(loc: Location, pattern: int, offset: int = 0, length: int = MiB) -> None:
    subprocess.run(["qemu-io", "-f", loc.disk_format, "-c", f"write -P {pattern} {offset} {length}", loc.path],
                   check=True, capture_output=True)


def holds(loc: Location, pattern: int, offset: int = 0, length: int = MiB) -> bool:
    """Whether the range reads back as `pattern` (qemu-io's read -P fails on a mismatch)."""
    proc = subprocess.run(["qemu-io", "-f", loc.disk_format, "-c", f"read -P {pattern} {offset} {length}",
                           loc.path], capture_output=True, text=True)
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout


def info(loc: Location) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", loc.disk_format, loc.path],
                                     check=True, capture_output=True, text=True).stdout)


def exists(path: str) -> bool:
    return Path(path).exists()


def allocated(path: str) -> int:
    return Path(path).stat().st_blocks * 512


async def _no_token() -> str:
    raise AssertionError("no image is fetched in these tests")


@pytest.fixture
async def backend(tmp_path: Path) -> FileBackend:
    backend = FileBackend(tmp_path / "volumes", volume_format="raw", image=None, token=_no_token)  # type: ignore[arg-type]
    await backend.init()
    return backend


async def test_empty_volume_is_a_sparse_file_of_its_size(backend: FileBackend) -> None:
    loc = await backend.create_empty("v1", 2)
    assert info(loc)["virtual-size"] == 2 << 30 and loc.disk_format == "raw"
    assert allocated(loc.path) < MiB  # nothing written, nothing allocated
    await backend.extend(loc, 3)
    assert info(loc)["virtual-size"] == 3 << 30
    await backend.delete(loc)
    assert not exists(loc.path)


async def test_snapshots_freeze_data_and_deleting_them_keeps_the_volume(backend: FileBackend) -> None:
    vol = await backend.create_empty("v1", 1)
    write(vol, 0x11)
    snap1 = vol
    vol = await backend.create_snapshot("v1", "s1", vol)  # the volume moves to an overlay on the frozen file
    write(vol, 0x22)
    snap2 = vol
    vol = await backend.create_snapshot("v1", "s2", vol)
    write(vol, 0x33, offset=MiB)
    assert holds(snap1, 0x11) and holds(snap2, 0x22) and holds(vol, 0x22) and holds(vol, 0x33, offset=MiB)
    assert not holds(vol, 0x11) and not holds(snap1, 0x22)  # the check can fail

    from_snap1 = await backend.create_from_source("c1", 1, snap1)
    assert holds(from_snap1, 0x11) and info(from_snap1).get("backing-filename") is None

    await backend.delete_snapshot(snap1, [vol, snap2])  # snap2 is rebased onto nothing: it takes snap1's data
    assert not exists(snap1.path)
    assert holds(snap2, 0x22) and holds(vol, 0x22) and holds(vol, 0x33, offset=MiB)
    assert holds(from_snap1, 0x11)  # a copy: independent of the snapshot it came from
    await backend.delete_snapshot(snap2, [vol])
    assert not exists(snap2.path) and info(vol).get("backing-filename") is None
    assert holds(vol, 0x22) and holds(vol, 0x33, offset=MiB)


async def test_clone_is_resized_to_the_new_size(backend: FileBackend) -> None:
    src = await backend.create_empty("v1", 1)
    write(src, 0x44)
    clone = await backend.create_from_source("v2", 2, src)
    assert info(clone)["virtual-size"] == 2 << 30 and holds(clone, 0x44)
    write(clone, 0x55)
    assert holds(src, 0x44)


async def test_qemu_img_errors_become_backend_errors_and_leave_no_file(backend: FileBackend) -> None:
    src = Location(str(backend.root / "missing"), "raw")
    with pytest.raises(BackendError, match="qemu-img info failed"):
        await backend.create_from_source("v3", 1, src)
    assert not (backend.root / "volume-v3").exists()


def test_connection_info_is_the_file_and_its_format(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, volume_format="qcow2", image=None, token=_no_token)  # type: ignore[arg-type]
    loc = Location(str(tmp_path / "volume-x"), "qcow2")
    assert backend.connection_info(loc, {"host": "h"}) == {
        "driver_volume_type": "file", "data": {"path": str(tmp_path / "volume-x"), "format": "qcow2"}}


async def test_revert_to_the_latest_snapshot_drops_later_writes(backend: FileBackend) -> None:
    vol = await backend.create_empty("v1", 1)
    write(vol, 0x11)
    snap1 = vol
    vol = await backend.create_snapshot("v1", "s1", vol)
    write(vol, 0x22)
    snap2 = vol
    vol = await backend.create_snapshot("v1", "s2", vol)
    write(vol, 0x33)
    with pytest.raises(BackendError, match="only the latest snapshot"):
        await backend.revert_to_snapshot(vol, snap1)
    assert holds(vol, 0x33)
    vol = await backend.revert_to_snapshot(vol, snap2)
    assert holds(vol, 0x22) and holds(snap1, 0x11)


async def test_purge_removes_every_file_of_a_volume_only(backend: FileBackend) -> None:
    vol = await backend.create_empty("v1", 1)
    await backend.create_snapshot("v1", "s1", vol)
    other = await backend.create_empty("v10", 1)
    (backend.root / ".volume-v1.revert").write_bytes(b"half")
    await backend.purge("v1")
    assert sorted(p.name for p in backend.root.iterdir()) == ["image-cache", "volume-v10"] and exists(other.path)
