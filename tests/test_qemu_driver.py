"""The QEMU driver with real guests (TCG), driven directly, without the cloud.

The guests are the built test image on a sandbox network (pocketstack.guest.sandbox: a bridge, DHCP with option
121 and a metadata server in a namespace), reached over SSH from the host. Two guests in all: one boots from an
image and gets its key from the metadata service, then goes through volume hot-plug, re-adoption by a new driver,
power actions, suspend and delete; the other boots from a volume with a config drive and waits for its port's
network-vif-plugged event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from qemu_helpers import Loop, guest_image, require, teardown_on_sigterm

from pocketstack.compute import states
from pocketstack.compute.virt.driver import DriverError
from pocketstack.compute.virt.qemu import QemuDriver, tap_name
from pocketstack.compute.virt.virtapi import VirtAPI
from pocketstack.guest.build import GuestImage
from pocketstack.guest.sandbox import GuestNetwork, make_key, random_mac, ssh, wait_ssh
from pocketstack.settings import Settings

BOOT_WITHIN = 180.0  # seconds to SSH under TCG on a loaded 2-core host


@pytest.fixture(scope="module")
def image() -> GuestImage:
    require("qemu-system-x86_64", "dnsmasq", "ssh", "ip", root=True)
    return guest_image()


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    runner = Loop()
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def net(image: GuestImage) -> Iterator[GuestNetwork]:
    with GuestNetwork() as network:
        yield network


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_key(tmp_path_factory.mktemp("ssh"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("qemu"), compute={
        "driver": "qemu", "accel": "tcg", "vif_plugging_timeout": 0, "shutdown_timeout": 60})


def new_driver(loop: Loop, settings: Settings) -> QemuDriver:
    drv = QemuDriver("qemu-test-host", settings)
    loop(drv.init_host())
    return drv


@pytest.fixture(scope="module")
def driver(loop: Loop, settings: Settings, image: GuestImage) -> Iterator[QemuDriver]:
    drv = new_driver(loop, settings)
    with teardown_on_sigterm():
        try:
            yield drv
        finally:
            for uid in loop(drv.list_instances()):  # whatever a failed test left: no process, tap or disk stays
                loop(drv.destroy({"uuid": uid}, []))


@dataclass
class Server:
    instance: dict[str, Any]
    vif: dict[str, Any]
    ip: str

    @property
    def uuid(self) -> str:
        return self.instance["uuid"]


def make_server(net: GuestNetwork, name: str, key: Path, *, metadata: bool, **extra: Any) -> Server:
    uid, port, mac = str(uuid.uuid4()), str(uuid.uuid4()), random_mac()
    public_key = key.with_suffix(".pub").read_text()
    meta = {"uuid": uid, "name": name, "hostname": name, "public_keys": {"test": public_key}}
    ip = net.add_guest(mac, meta if metadata else None)
    instance = {"uuid": uid, "display_name": name, "hostname": name, "vcpus": 1, "memory_mb": 256, "root_gb": 1,
                "key_name": "test", "key_data": public_key, "user_data": None, "config_drive": False,
                "availability_zone": "nova", "project_id": "p", **extra}
    vif = {"id": port, "mac_address": mac, "network_id": str(uuid.uuid4()), "vif_type": "bridge",
           "vif_details": {"bridge_name": net.bridge}, "fixed_ips": [{"ip_address": ip}]}
    return Server(instance, vif, ip)


def guest(server: Server, key: Path, command: str) -> str:
    result = ssh(server.ip, key, command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def power(loop: Loop, drv: QemuDriver, server: Server) -> int:
    return loop(drv.get_info(server.instance)).power_state


def wait_for(predicate: Any, within: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within:g} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(loop: Loop, driver: QemuDriver, net: GuestNetwork, key: Path, image: GuestImage) -> Server:
    """A guest booted from an image (seeded in the driver's cache) with its key from the metadata service."""
    image_id = str(uuid.uuid4())
    driver.base_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "--reflink=auto", str(image.raw), str(driver.base_dir / image_id)], check=True)
    srv = make_server(net, "qemu-test-a", key, metadata=True)
    loop(driver.spawn(srv.instance, {"id": image_id, "name": "pocketstack-guest"}, [srv.vif]))
    wait_ssh(srv.ip, key, BOOT_WITHIN)
    return srv


def test_boot_gets_address_routes_hostname_and_key(loop: Loop, driver: QemuDriver, server: Server, key: Path,
                                                   net: GuestNetwork) -> None:
    assert guest(server, key, "hostname").strip() == "qemu-test-a"
    assert guest(server, key, "cat /root/.ssh/authorized_keys").strip() == key.with_suffix(".pub").read_text().strip()
    routes = guest(server, key, "ip route")
    assert f"169.254.169.254 via {net.server_ip}" in routes and f"default via {net.host_ip}" in routes  # option 121
    assert power(loop, driver, server) == states.RUNNING
    assert server.uuid in loop(driver.list_instances())
    console = loop(driver.get_console_output(server.instance))
    assert f"eth0 {server.ip}/24" in console and "metadata from metadata service" in console
    assert "pocketstack guest ready: qemu-test-a" in console and "qemu-test-a login:" in console
    disk = driver.instances_path / server.uuid / "disk"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(disk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30 and info["backing-filename-format"] == "raw"
    assert guest(server, key, "cat /sys/block/vda/size").strip() == str((1 << 30) // 512)
    # the tap is on the network's bridge with the port's MAC on the guest side
    tap = tap_name(server.vif["id"])
    assert Path(f"/sys/class/net/{tap}/brport").exists()
    assert Path(f"/sys/class/net/{tap}/master").resolve().name == net.bridge
    assert server.vif["mac_address"] in guest(server, key, "cat /sys/class/net/eth0/address")


def test_volume_hot_plug_and_unplug(loop: Loop, driver: QemuDriver, server: Server, key: Path,
                                    tmp_path: Path) -> None:
    volume_id = str(uuid.uuid4())
    volume = tmp_path / "volume.raw"
    volume.write_bytes(b"")
    with open(volume, "r+b") as f:
        f.truncate(64 << 20)
    info = {"driver_volume_type": "file", "serial": volume_id, "data": {"path": str(volume), "format": "raw"}}
    before = guest(server, key, "cat /proc/partitions")
    loop(driver.attach_volume(server.instance, info, "/dev/vdb"))
    wait_for(lambda: volume_id[:20] in ssh(server.ip, key, "cat /sys/block/vd*/serial").stdout, 30,
             "the volume in the guest")
    name = guest(server, key, f"grep -l {volume_id[:20]} /sys/block/vd*/serial").split("/")[3]
    assert guest(server, key, f"cat /sys/block/{name}/size").strip() == str((64 << 20) // 512)
    guest(server, key, f"echo pocketstack-volume-data | dd of=/dev/{name} bs=512 conv=sync,fsync 2>/dev/null")
    assert volume.read_bytes()[:23] == b"pocketstack-volume-data"
    with pytest.raises(DriverError, match="already in use"):
        loop(driver.attach_volume(server.instance, info, "/dev/vdb"))
    loop(driver.detach_volume(server.instance, info, "/dev/vdb"))
    assert guest(server, key, "cat /proc/partitions") == before
    domain = json.loads((driver.instances_path / server.uuid / "domain.json").read_text())
    assert [d["node"] for d in domain["disks"]] == ["root"]
    with pytest.raises(DriverError, match="no volume at /dev/vdb"):
        loop(driver.detach_volume(server.instance, info, "/dev/vdb"))


def test_a_new_driver_adopts_running_servers(loop: Loop, settings: Settings, server: Server, key: Path) -> None:
    """What a restarted compute agent sees: the process, its monitor and its console, found from the host."""
    adopter = new_driver(loop, settings)
    assert server.uuid in loop(adopter.list_instances())
    assert power(loop, adopter, server) == states.RUNNING
    assert "pocketstack guest ready" in loop(adopter.get_console_output(server.instance))
    loop(adopter.pause(server.instance))
    assert power(loop, adopter, server) == states.PAUSED_POWER
    loop(adopter.unpause(server.instance))
    assert power(loop, adopter, server) == states.RUNNING
    assert guest(server, key, "hostname").strip() == "qemu-test-a"


def test_snapshot_copies_the_disk_and_a_server_boots_from_it(loop: Loop, driver: QemuDriver, server: Server,
                                                             key: Path, net: GuestNetwork, tmp_path: Path) -> None:
    """A file written in the guest is in a server booted from the snapshot; the guest runs on, not rebooted."""
    boot_id = guest(server, key, "cat /proc/sys/kernel/random/boot_id")
    guest(server, key, "mount -t vfat /dev/vda1 /mnt/boot && echo snapshot-marker > /mnt/boot/marker.txt && "
                       "umount /mnt/boot")
    moves: list[str] = []

    async def move(task_state: str) -> None:
        moves.append(task_state)

    copy = loop(driver.snapshot(server.instance, tmp_path, move))
    assert moves == [states.IMAGE_PENDING_UPLOAD] and copy.disk_format == "qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(copy.path)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info  # flattened
    assert power(loop, driver, server) == states.RUNNING
    assert guest(server, key, "cat /proc/sys/kernel/random/boot_id") == boot_id
    loop(driver.pause(server.instance))  # a paused guest is copied as it is, and stays paused
    try:
        (tmp_path / "paused").mkdir()
        assert loop(driver.snapshot(server.instance, tmp_path / "paused", move)).path.exists()
        assert power(loop, driver, server) == states.PAUSED_POWER
    finally:
        loop(driver.unpause(server.instance))
    image_id = str(uuid.uuid4())  # in the cache as the driver keeps a fetched qcow2 image: raw
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(copy.path),
                    str(driver.base_dir / image_id)], check=True)
    clone = make_server(net, "qemu-test-snap", key, metadata=True)
    try:
        loop(driver.spawn(clone.instance, {"id": image_id, "name": "snapshot"}, [clone.vif]))
        wait_ssh(clone.ip, key, BOOT_WITHIN)
        assert guest(clone, key, "mount -t vfat /dev/vda1 /mnt/boot && cat /mnt/boot/marker.txt; "
                                 "umount /mnt/boot").strip() == "snapshot-marker"
    finally:
        loop(driver.destroy(clone.instance, [clone.vif]))
        (driver.base_dir / image_id).unlink(missing_ok=True)


def test_power_off_on_and_reboots(loop: Loop, driver: QemuDriver, server: Server, key: Path) -> None:
    pid = driver.running_pid(server.uuid)
    loop(driver.power_off(server.instance))
    assert power(loop, driver, server) == states.SHUTDOWN and driver.running_pid(server.uuid) is None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    console = loop(driver.get_console_output(server.instance))
    assert "ACPI power button pressed" in console and "shutting down" in console  # a clean poweroff
    loop(driver.power_on(server.instance))
    assert power(loop, driver, server) == states.RUNNING
    wait_ssh(server.ip, key, BOOT_WITHIN)
    boot_id = guest(server, key, "cat /proc/sys/kernel/random/boot_id")
    loop(driver.reboot(server.instance, hard=False))
    wait_ssh(server.ip, key, BOOT_WITHIN)
    second = guest(server, key, "cat /proc/sys/kernel/random/boot_id")
    assert second != boot_id
    old_pid = driver.running_pid(server.uuid)
    loop(driver.reboot(server.instance, hard=True))
    assert driver.running_pid(server.uuid) == old_pid  # a reset, not a new process
    wait_for(lambda: ssh(server.ip, key, "cat /proc/sys/kernel/random/boot_id", within=10).stdout not in
             ("", second), BOOT_WITHIN, "a new boot after the hard reboot")
    assert power(loop, driver, server) == states.RUNNING
    third = guest(server, key, "cat /proc/sys/kernel/random/boot_id")
    ssh(server.ip, key, "reboot")  # from inside: the guest resets, QEMU stays
    wait_for(lambda: ssh(server.ip, key, "cat /proc/sys/kernel/random/boot_id", within=10).stdout not in
             ("", third), BOOT_WITHIN, "a new boot after the guest's own reboot")
    assert driver.running_pid(server.uuid) == old_pid and power(loop, driver, server) == states.RUNNING


def test_suspend_and_resume_keep_the_guest_running_state(loop: Loop, driver: QemuDriver, server: Server,
                                                         key: Path) -> None:
    boot_id = guest(server, key, "cat /proc/sys/kernel/random/boot_id")
    guest(server, key, "echo kept-in-ram > /run/marker")
    loop(driver.suspend(server.instance))
    state = driver.instances_path / server.uuid / "suspend.state"
    assert state.stat().st_size > 1 << 20 and driver.running_pid(server.uuid) is None
    assert power(loop, driver, server) == states.SHUTDOWN
    loop(driver.resume(server.instance))
    assert power(loop, driver, server) == states.RUNNING and not state.exists()
    wait_ssh(server.ip, key, 60)
    assert guest(server, key, "cat /proc/sys/kernel/random/boot_id") == boot_id  # not rebooted
    assert guest(server, key, "cat /run/marker").strip() == "kept-in-ram"


def test_destroy_leaves_nothing(loop: Loop, driver: QemuDriver, server: Server) -> None:
    pid = driver.running_pid(server.uuid)
    socket_path = driver._qmp_path(server.uuid)
    assert pid is not None and socket_path.exists()
    loop(driver.destroy(server.instance, [server.vif]))
    assert driver.running_pid(server.uuid) is None
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not Path(f"/sys/class/net/{tap_name(server.vif['id'])}").exists()
    assert not (driver.instances_path / server.uuid).exists() and not socket_path.exists()
    assert server.uuid not in loop(driver.list_instances())
    assert power(loop, driver, server) == states.NOSTATE
    loop(driver.destroy(server.instance, [server.vif]))  # again: nothing to do, no error


def test_boot_from_volume_with_config_drive_after_vif_plugged(loop: Loop, settings: Settings, net: GuestNetwork,
                                                              key: Path, image: GuestImage, tmp_path: Path) -> None:
    """Paused until network-vif-plugged arrives; root disk is a volume; key, hostname, user data from config-2."""
    volume = tmp_path / "boot-volume.raw"
    subprocess.run(["cp", "--reflink=auto", str(image.raw), str(volume)], check=True)
    script = b"#!/bin/sh\necho ran-from-config-drive > /run/user-data-marker\n"
    srv = make_server(net, "qemu-test-b", key, metadata=False, config_drive=True,
                      user_data=base64.b64encode(script).decode())
    drv = QemuDriver("qemu-test-host", settings.model_copy(update={"compute": settings.compute.model_copy(
        update={"vif_plugging_timeout": 120.0})}))
    drv.virtapi = VirtAPI()
    loop(drv.init_host())
    seen: dict[str, str | None] = {}

    async def network_agent() -> None:
        """Stands in for the host network agent: sees the tap, then reports the port plugged."""
        tap = Path(f"/sys/class/net/{tap_name(srv.vif['id'])}")

        def plugged() -> bool:
            return tap.exists() and drv.running_pid(srv.uuid) is not None

        for _ in range(1200):  # the host is polled, as the network agent watches it
            if plugged():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        seen["before_event"] = (await drv._command(srv.uuid, "query-status"))["status"]
        assert drv.virtapi is not None
        drv.virtapi.dispatch(srv.uuid, "network-vif-plugged", srv.vif["id"], "completed")

    bdi = {"root_device_name": "/dev/vda", "block_device_mapping": [{
        "boot_index": 0, "mount_device": "/dev/vda", "connection_info": {
            "driver_volume_type": "file", "serial": "boot-volume-id", "data": {"path": str(volume), "format": "raw"}}}]}

    async def spawn() -> None:
        agent = asyncio.create_task(network_agent())
        await drv.spawn(srv.instance, {}, [srv.vif], bdi)
        await agent

    try:
        loop(spawn())
        assert seen["before_event"] == "prelaunch"  # QEMU waited, paused, for the event
        wait_ssh(srv.ip, key, BOOT_WITHIN)
        assert guest(srv, key, "hostname").strip() == "qemu-test-b"
        assert guest(srv, key, "cat /run/user-data-marker").strip() == "ran-from-config-drive"
        assert guest(srv, key, "cat /sys/block/vda/serial").strip() == "boot-volume-id"
        assert "metadata from config drive" in loop(drv.get_console_output(srv.instance))
    finally:
        loop(drv.destroy(srv.instance, [srv.vif]))
    assert volume.exists()  # the volume belongs to the volume service, not to the server
    assert not (drv.instances_path / srv.uuid).exists()


def test_a_port_that_never_plugs_fails_the_spawn_cleanly(loop: Loop, settings: Settings, net: GuestNetwork,
                                                         key: Path, image: GuestImage) -> None:
    drv = QemuDriver("qemu-test-host", settings.model_copy(update={"compute": settings.compute.model_copy(
        update={"vif_plugging_timeout": 1.0})}))
    drv.virtapi = VirtAPI()
    loop(drv.init_host())
    image_id = str(uuid.uuid4())
    subprocess.run(["cp", "--reflink=auto", str(image.raw), str(drv.base_dir / image_id)], check=True)
    srv = make_server(net, "qemu-test-c", key, metadata=False)
    with pytest.raises(DriverError, match=f"network-vif-plugged for {srv.vif['id']}"):
        loop(drv.spawn(srv.instance, {"id": image_id}, [srv.vif]))
    assert drv.running_pid(srv.uuid) is None and not (drv.instances_path / srv.uuid).exists()
    assert not Path(f"/sys/class/net/{tap_name(srv.vif['id'])}").exists()
    assert drv.virtapi.waiting(srv.uuid) == []



def test_remove_all_takes_every_guest_with_its_tap_and_files(loop: Loop, driver: QemuDriver, net: GuestNetwork,
                                                             key: Path, image: GuestImage) -> None:
    """What `pocketstack purge` does to a stopped all-in-one's guests."""
    image_id = str(uuid.uuid4())
    subprocess.run(["cp", "--reflink=auto", str(image.raw), str(driver.base_dir / image_id)], check=True)
    srv = make_server(net, "qemu-test-d", key, metadata=False)
    loop(driver.spawn(srv.instance, {"id": image_id}, [srv.vif]))
    assert driver.running_pid(srv.uuid) is not None
    assert srv.uuid in loop(driver.remove_all())
    assert driver.running_pid(srv.uuid) is None and loop(driver.list_instances()) == []
    assert not Path(f"/sys/class/net/{tap_name(srv.vif['id'])}").exists()
    assert not (driver.instances_path / srv.uuid).exists()
