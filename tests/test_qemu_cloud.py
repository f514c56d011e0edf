"""The qemu driver inside the all-in-one cloud, through the `openstack` CLI: the registered guest image is fetched
from the image service into the host cache (qcow2 -> raw, once), the server boots, its console log shows the boot,
stop/start go through ACPI, and delete leaves nothing. No network here (`--nic none`): networking, DHCP and the
metadata path are the network agent's part and covered with it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cloud
from qemu_helpers import guest_image, qemu_cloud

from pocketstack.guest.build import IMAGE_NAME
from pocketstack.guest.register import register_guest_image


def instances_path(cloud: Cloud) -> Path:
    return cloud.settings.data_dir / "instances"


@pytest.fixture(scope="module")
def qcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    yield from qemu_cloud(tmp_path_factory.mktemp("qemu-cloud"))


def wait_console(cloud: Cloud, server: str, text: str, within: float = 180.0) -> str:
    deadline = time.monotonic() + within
    while True:
        console = cloud.cli("console", "log", "show", server, cloud="pocketstack-demo")
        if text in console:
            return console
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the console within {within:g} s:\n{console[-2000:]}")
        time.sleep(1)


def show(cloud: Cloud, server: str) -> dict[str, Any]:
    return cloud.cli("server", "show", server, "-f", "json", cloud="pocketstack-demo")


def test_registration_is_idempotent(qcloud: Cloud) -> None:
    images = qcloud.cli("image", "list", "--public", "--name", IMAGE_NAME, "-f", "json")
    assert len(images) == 1 and images[0]["Status"] == "active"
    again = qcloud.thread.call(lambda: register_guest_image(qcloud.settings, guest_image()), timeout=60)
    assert again["id"] == images[0]["ID"]  # type: ignore[index]


def test_server_boots_from_the_registered_image(qcloud: Cloud) -> None:
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "qemu-cloud-vm", cloud="pocketstack-demo")
    uid = server["id"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:power_state"] in (1, "Running")
    console = wait_console(qcloud, uid, "pocketstack guest ready")
    assert "SYSLINUX" in console and "no network interface" in console
    image_id = qcloud.cli("image", "show", IMAGE_NAME, "-f", "json")["id"]
    base = instances_path(qcloud) / "_base" / image_id
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(base)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "raw"  # uploaded as qcow2, converted once into the host's cache
    overlay = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json",
                                         str(instances_path(qcloud) / uid / "disk")], check=True,
                                        capture_output=True, text=True).stdout)
    assert overlay["backing-filename"] == str(base) and overlay["virtual-size"] == 1 << 30  # m1.tiny: 1 GB

    qcloud.cli("server", "stop", uid, cloud="pocketstack-demo")
    deadline = time.monotonic() + 120
    while show(qcloud, uid)["status"] != "SHUTOFF":
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(1)
    assert "ACPI power button pressed" in qcloud.cli("console", "log", "show", uid, cloud="pocketstack-demo")
    pid_file = instances_path(qcloud) / uid / "qemu.pid"
    qcloud.cli("server", "start", uid, cloud="pocketstack-demo")
    deadline = time.monotonic() + 120
    while show(qcloud, uid)["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(1)
    pid = int(pid_file.read_text())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().count(uid.encode()) >= 1

    qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")
    assert not (instances_path(qcloud) / uid).exists()
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    assert base.exists()  # the cache outlives the server


def test_snapshot_through_the_cli_and_a_server_from_it(qcloud: Cloud) -> None:
    """`openstack server image create --wait` of a running guest: the snapshot (qcow2) holds what the guest wrote
    on its disk, here the SSH host key its first boot kept there, which the server booted from it finds."""
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "qemu-snap-vm", cloud="pocketstack-demo")
    wait_console(qcloud, server["id"], "pocketstack guest ready")
    image = qcloud.cli("server", "image", "create", "--name", "qemu-snap", "--wait", server["id"], "-f", "json",
                       cloud="pocketstack-demo")
    shown = qcloud.cli("image", "show", image["id"], "-f", "json", cloud="pocketstack-demo")
    assert shown["status"] == "active" and shown["disk_format"] == "qcow2"
    assert shown["properties"]["image_type"] == "snapshot"
    assert show(qcloud, server["id"])["status"] == "ACTIVE"
    assert "kept from an earlier boot" not in qcloud.cli("console", "log", "show", server["id"],
                                                         cloud="pocketstack-demo")
    clone = qcloud.cli("server", "create", "--image", image["id"], "--flavor", "m1.tiny", "--nic", "none",
                       "--wait", "-f", "json", "qemu-snap-clone", cloud="pocketstack-demo")
    try:
        console = wait_console(qcloud, clone["id"], "pocketstack guest ready")
        assert "SSH host key kept from an earlier boot" in console
    finally:
        for uid in (clone["id"], server["id"]):
            qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")
        qcloud.cli("image", "delete", image["id"], cloud="pocketstack-demo")


def test_shelve_offload_and_unshelve_through_the_cli(qcloud: Cloud) -> None:
    """`openstack server shelve` offloads the guest (its disk and process leave the host) and `unshelve` boots it
    from the shelve image with what it wrote on its disk: the SSH host key of its first boot."""
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "qemu-shelve-vm", cloud="pocketstack-demo")
    uid = server["id"]
    try:
        wait_console(qcloud, uid, "pocketstack guest ready")
        pid = int((instances_path(qcloud) / uid / "qemu.pid").read_text().strip())
        qcloud.cli("server", "shelve", "--wait", uid, cloud="pocketstack-demo")
        deadline = time.monotonic() + 120
        while show(qcloud, uid)["status"] != "SHELVED_OFFLOADED" or show(qcloud, uid)["OS-EXT-STS:task_state"]:
            assert time.monotonic() < deadline, show(qcloud, uid)
            time.sleep(1)
        assert not (instances_path(qcloud) / uid).exists()
        assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
        qcloud.cli("server", "unshelve", "--wait", uid, cloud="pocketstack-demo")
        assert show(qcloud, uid)["status"] == "ACTIVE"
        console = wait_console(qcloud, uid, "pocketstack guest ready")
        assert "SSH host key kept from an earlier boot" in console
        images = qcloud.cli("image", "list", "--name", "qemu-shelve-vm-shelved", "-f", "json",
                            cloud="pocketstack-demo")
        assert images == []  # deleted after the unshelve
    finally:
        qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")


def test_rebuild_through_the_cli_starts_from_a_fresh_disk(qcloud: Cloud) -> None:
    """`openstack server rebuild` destroys the guest and boots it again from the image: what its first boot wrote
    on its disk (the SSH host key) is gone, the server keeps its id and comes back ACTIVE."""
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "qemu-rebuild-vm", cloud="pocketstack-demo")
    uid = server["id"]
    try:
        wait_console(qcloud, uid, "pocketstack guest ready")
        pid = int((instances_path(qcloud) / uid / "qemu.pid").read_text().strip())
        qcloud.cli("server", "rebuild", "--image", IMAGE_NAME, "--wait", uid, cloud="pocketstack-demo")
        assert show(qcloud, uid)["status"] == "ACTIVE"
        assert int((instances_path(qcloud) / uid / "qemu.pid").read_text().strip()) != pid
        console = wait_console(qcloud, uid, "pocketstack guest ready")
        assert "SSH host key kept from an earlier boot" not in console
    finally:
        qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")


def test_rescue_and_unrescue_through_the_cli(qcloud: Cloud) -> None:
    """`openstack server rescue` boots the rescue image with the server's disk attached second; `unrescue` boots
    the server's own disk again, with what its first boot wrote there (the SSH host key)."""
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "qemu-rescue-vm", cloud="pocketstack-demo")
    uid = server["id"]
    try:
        wait_console(qcloud, uid, "pocketstack guest ready")
        qcloud.cli("server", "rescue", uid, cloud="pocketstack-demo")
        deadline = time.monotonic() + 120
        while show(qcloud, uid)["status"] != "RESCUE":
            assert time.monotonic() < deadline, show(qcloud, uid)
            time.sleep(1)
        domain = json.loads((instances_path(qcloud) / uid / "domain.json").read_text())
        assert [d["node"] for d in domain["disks"]][:2] == ["rescue", "root"]
        wait_console(qcloud, uid, "pocketstack guest ready")
        qcloud.cli("server", "unrescue", uid, cloud="pocketstack-demo")
        while show(qcloud, uid)["status"] != "ACTIVE":
            assert time.monotonic() < deadline, show(qcloud, uid)
            time.sleep(1)
        assert not (instances_path(qcloud) / uid / "disk.rescue").exists()
        wait_console(qcloud, uid, "SSH host key kept from an earlier boot")  # the console of this boot only
    finally:
        qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")


RESIZE_CHECK = """#!/bin/sh
exec >/dev/console 2>&1
mkdir -p /mnt/data
mount -t vfat /dev/vda1 /mnt/data
if [ -s /mnt/data/resize-marker ]; then
    echo "resize-check: marker kept: $(cat /mnt/data/resize-marker)"
else
    echo "{token}" > /mnt/data/resize-marker && sync && echo "resize-check: marker written"
fi
umount /mnt/data
echo "resize-check: $(grep -c ^processor /proc/cpuinfo) vCPUs," \
     "$(awk '/^MemTotal/ {{print $2}}' /proc/meminfo) kB, disk $(cat /sys/block/vda/size) sectors"
"""


def _check_line(console: str) -> tuple[int, int, int]:
    """(vCPUs, MemTotal kB, disk sectors) the guest's user data printed last."""
    line = [x for x in console.splitlines() if "vCPUs," in x and "resize-check:" in x][-1]
    words = line.split("resize-check:")[1].replace(",", "").split()
    return int(words[0]), int(words[2]), int(words[5])


def test_resize_through_the_cli_grows_the_guest(qcloud: Cloud, tmp_path: Path, monkeypatch: Any) -> None:
    """`openstack server resize --flavor X --wait` then `resize confirm` (one host: allow_resize_to_same_host): the
    guest boots again with the new vCPUs and memory and a grown root disk, and a file it wrote on its disk before
    the resize is still there."""
    settings = next(s for s in qcloud.thread.cloud.services if s.name == "compute").state.settings
    monkeypatch.setattr(settings.compute, "allow_resize_to_same_host", True)
    token = f"token-{time.time_ns()}"
    script = tmp_path / "user-data.sh"
    script.write_text(RESIZE_CHECK.format(token=token))
    qcloud.cli("flavor", "create", "--vcpus", "2", "--ram", "640", "--disk", "2", "qemu-resize-big")
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--config-drive", "true", "--user-data", str(script), "--wait", "-f", "json",
                        "qemu-resize-vm", cloud="pocketstack-demo")
    uid = server["id"]
    try:
        wait_console(qcloud, uid, "resize-check: marker written")
        cpus, mem, sectors = _check_line(wait_console(qcloud, uid, "vCPUs,"))
        assert cpus == 1 and sectors == (1 << 30) // 512
        started = time.monotonic()
        qcloud.cli("server", "resize", "--flavor", "qemu-resize-big", "--wait", uid, cloud="pocketstack-demo")
        print(f"resize to VERIFY_RESIZE: {time.monotonic() - started:.1f} s")
        shown = show(qcloud, uid)
        assert shown["status"] == "VERIFY_RESIZE", shown
        assert (instances_path(qcloud) / f"{uid}_resize").is_dir()  # the old disk kept until confirm
        console = wait_console(qcloud, uid, f"resize-check: marker kept: {token}")
        print(f"resize to the guest's check after its boot: {time.monotonic() - started:.1f} s")
        cpus, new_mem, sectors = _check_line(wait_console(qcloud, uid, "vCPUs,"))
        assert cpus == 2 and new_mem > mem + 100 * 1024 and sectors == (2 << 30) // 512, console[-1500:]
        qcloud.cli("server", "resize", "confirm", uid, cloud="pocketstack-demo")
        deadline = time.monotonic() + 60
        while show(qcloud, uid)["status"] != "ACTIVE":
            assert time.monotonic() < deadline, show(qcloud, uid)
            time.sleep(1)
        assert not (instances_path(qcloud) / f"{uid}_resize").exists()
        flavor = show(qcloud, uid)["flavor"]
        assert flavor["original_name"] == "qemu-resize-big" and flavor["vcpus"] == 2, flavor
    finally:
        qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")
        qcloud.cli("flavor", "delete", "qemu-resize-big")
