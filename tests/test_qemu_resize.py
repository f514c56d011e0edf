"""The QEMU driver's resize and cold migration between two hosts on one machine (each its own instances path),
driven directly: the overlay handed over and grown, the destination's QEMU started with the new -smp/-m, revert
back to the source's kept disk, and a confirm that drops it. The guests are not waited for (the cloud's end-to-end
test checks what a guest sees); only their processes, disks and definitions."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu_helpers import Loop, guest_image, require, teardown_on_sigterm

from pocketstack.compute.virt.driver import DriverError
from pocketstack.compute.virt.qemu import QemuDriver
from pocketstack.settings import Settings

IMAGE_ID = "9d1f9a8e-0000-4000-8000-00000000beef"


def disk_info(path: Path) -> dict[str, Any]:
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)


def cmdline(driver: QemuDriver, uid: str) -> list[str]:
    pid = driver.running_pid(uid)
    assert pid is not None, f"no QEMU runs for {uid} on {driver.host}"
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Loop, QemuDriver, QemuDriver]]:
    require("qemu-system-x86_64", "qemu-img", root=True)
    image = guest_image()
    loop = Loop()
    drivers = []
    for name in ("src", "dst"):
        settings = Settings(data_dir=tmp_path_factory.mktemp(f"qemu-resize-{name}"), compute={
            "driver": "qemu", "accel": "tcg", "vif_plugging_timeout": 0, "shutdown_timeout": 5})
        driver = QemuDriver(f"resize-{name}", settings)
        loop(driver.init_host())
        drivers.append(driver)
    # the image in the source's cache only: the destination must flatten the overlay it gets
    (drivers[0].base_dir / IMAGE_ID).symlink_to(image.raw)
    with teardown_on_sigterm():
        try:
            yield loop, drivers[0], drivers[1]
        finally:
            for driver in drivers:
                loop(driver.remove_all())
            loop.close()


def test_migrate_revert_then_resize_and_confirm(hosts: tuple[Loop, QemuDriver, QemuDriver]) -> None:
    loop, src, dst = hosts
    uid = str(uuid.uuid4())
    small = {"uuid": uid, "display_name": "resize-vm", "hostname": "resize-vm", "vcpus": 1, "memory_mb": 256,
             "root_gb": 1, "image_ref": IMAGE_ID}
    big = {**small, "vcpus": 2, "memory_mb": 384, "root_gb": 2}
    loop(src.spawn(small, {"id": IMAGE_ID}, []))
    assert "1" == cmdline(src, uid)[cmdline(src, uid).index("-smp") + 1]

    # to the other host with a bigger flavor: the source keeps its disk aside, the destination grows its copy
    handed = loop(src.migrate_disk_and_power_off(small, dst.host, {"disk": 2}))
    assert src.running_pid(uid) is None and not (src.instances_path / uid).exists()
    assert (src.instances_path / f"{uid}_resize" / "disk").exists()
    loop(dst.finish_migration(big, handed, [], None, power_on=True))
    args = cmdline(dst, uid)
    assert args[args.index("-smp") + 1] == "2" and args[args.index("-m") + 1] == "384"
    info = disk_info(dst.instances_path / uid / "disk")
    assert info["virtual-size"] == 2 << 30 and "backing-filename" not in info  # flattened: no image in its cache
    assert json.loads((dst.instances_path / uid / "domain.json").read_text())["vcpus"] == 2

    # revert: the destination's guest goes, the source runs its kept disk again with the old flavor
    loop(dst.destroy(big, []))
    loop(src.finish_revert_migration(small, [], None, power_on=True))
    args = cmdline(src, uid)
    assert args[args.index("-smp") + 1] == "1" and args[args.index("-m") + 1] == "256"
    info = disk_info(src.instances_path / uid / "disk")
    assert info["virtual-size"] == 1 << 30 and info["backing-filename"] == str(src.base_dir / IMAGE_ID)
    assert not (src.instances_path / f"{uid}_resize").exists() and not (dst.instances_path / uid).exists()

    # a smaller root disk is refused before the guest is touched
    with pytest.raises(DriverError, match="resize disk down"):
        loop(src.migrate_disk_and_power_off(small, dst.host, {"disk": 0.5}))  # half the disk it has
    assert src.running_pid(uid) is not None

    # now with the image in the destination's cache too: the copy is rebased on it; confirm drops the kept disk
    (dst.base_dir / IMAGE_ID).symlink_to((src.base_dir / IMAGE_ID).resolve())
    handed = loop(src.migrate_disk_and_power_off(small, dst.host, {"disk": 2}))
    loop(dst.finish_migration(big, handed, [], None, power_on=False))
    assert dst.running_pid(uid) is None  # a stopped server stays stopped
    info = disk_info(dst.instances_path / uid / "disk")
    assert info["virtual-size"] == 2 << 30 and info["backing-filename"] == str(dst.base_dir / IMAGE_ID)
    loop(src.confirm_migration(small))
    assert not (src.instances_path / f"{uid}_resize").exists()
    loop(dst.power_on(big))
    assert cmdline(dst, uid)[cmdline(dst, uid).index("-smp") + 1] == "2"
    loop(dst.destroy(big, []))
    assert not (dst.instances_path / uid).exists()
