"""QEMU driver and test guest parts that need no running guest: command lines, config drives, the image cache,
event waits, the guest's JSON reader and the built image's layout."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from qemu_helpers import guest_image, require

from pocketstack.compute import states
from pocketstack.compute.virt.driver import DriverError
from pocketstack.compute.virt.qemu import QemuDriver
from pocketstack.compute.virt.qemu.console import console_socket
from pocketstack.compute.virt.qemu.domain import SLOT_CONFIG, SLOT_ROOT, UNIX_PATH_MAX, Disk, Domain, Nic
from pocketstack.compute.virt.qemu.driver import _nic, _volume_node
from pocketstack.compute.virt.qemu.host import config_drive_files, make_config_drive
from pocketstack.compute.virt.virtapi import InstanceEventFailed, InstanceEventTimeout, VirtAPI
from pocketstack.guest.build import FILES, KERNEL_CMDLINE
from pocketstack.settings import Settings


def driver(tmp_path: Path, **compute: Any) -> QemuDriver:
    settings = Settings(data_dir=tmp_path, compute={"driver": "qemu", "accel": "tcg", **compute})
    return QemuDriver("host1", settings)


def mtype(image: Path, path: str) -> bytes:
    return subprocess.run(["mtype", "-i", str(image), f"::{path}"], check=True, capture_output=True,
                          env={"MTOOLS_SKIP_CHECK": "1"}).stdout


# ----- command line --------------------------------------------------------------------------------------------
def test_command_line_places_devices_on_fixed_slots(tmp_path: Path) -> None:
    drv = driver(tmp_path)
    drv.accel = "tcg"
    uid = str(uuid.uuid4())
    domain = Domain(uid, "vm", 2, 384, "pc", disks=[
        Disk("root", "/x/disk", "qcow2", SLOT_ROOT, bootindex=1),
        Disk("vol-vdb", "/v/1", "raw", 0x0C, serial="v" * 36, mountpoint="/dev/vdb"),
        Disk("config", "/x/disk.config", "raw", SLOT_CONFIG, read_only=True)],
        nics=[Nic("0123456789abcdef", "fa:16:3e:00:00:01", "brqx", 0x04, mtu=1450)])
    args = drv.command(domain)
    assert args[args.index("-uuid") + 1] == uid
    assert args[args.index("-m") + 1] == "384" and args[args.index("-smp") + 1] == "2"
    assert args[args.index("-accel") + 1] == "tcg,thread=multi"
    assert "-S" not in args and "-incoming" not in args and "-daemonize" in args
    devices = [json.loads(a) for i, a in enumerate(args) if args[i - 1] == "-device" and a.startswith("{")]
    by_id = {d["id"]: d for d in devices}
    assert by_id["dev-root"]["addr"] == "0x3" and by_id["dev-root"]["bootindex"] == 1
    assert by_id["dev-vol-vdb"]["serial"] == "v" * 20  # virtio-blk serials hold 20 characters
    assert by_id["dev-config"]["addr"] == "0x1f"
    assert by_id["nic-tap0123456789a"] == {"driver": "virtio-net-pci", "netdev": "net-tap0123456789a",
                                           "mac": "fa:16:3e:00:00:01", "id": "nic-tap0123456789a", "addr": "0x4",
                                           "romfile": ""}
    blockdevs = [json.loads(args[i + 1]) for i, a in enumerate(args) if a == "-blockdev"]
    assert {b["node-name"]: b["read-only"] for b in blockdevs} == {"root": False, "vol-vdb": False, "config": True}
    assert "tap,id=net-tap0123456789a,ifname=tap0123456789a,script=no,downscript=no" in args
    # the consoles: the serial port on a socket that logs to console.log, a VGA card on its own slot shown by VNC
    d = drv._dir(uid)
    serial, vnc = console_socket(d, "serial"), console_socket(d, "vnc")
    assert args[args.index("-chardev") + 1] == (f"socket,id=console,path={serial},server=on,wait=off,"
                                                 f"logfile={d / 'console.log'},logappend=on")
    assert "VGA,addr=0x1e" in args and args[args.index("-vnc") + 1] == f"unix:{vnc}"
    paused = drv.command(domain, paused=True)
    assert "-S" in paused and "-incoming" not in paused
    incoming = drv.command(domain, incoming=True)
    assert "-S" in incoming and incoming[incoming.index("-incoming") + 1] == "defer"
    drv.accel = "kvm"
    kvm = drv.command(domain)
    assert kvm[kvm.index("-accel") + 1] == "kvm" and kvm[kvm.index("-cpu") + 1] == "host"


def test_vif_and_volume_names() -> None:
    vif = {"id": "abcdef01-2345", "mac_address": "fa:16:3e:aa:bb:cc", "network_id": "n" * 36,
           "vif_type": "bridge", "vif_details": {"bridge_name": "brqnet"}}
    nic = _nic(vif, 4)
    assert (nic.tap, nic.bridge, nic.mtu) == ("tapabcdef01-23", "brqnet", None)
    assert _nic({**vif, "vif_details": {}}, 4).bridge == "brq" + "n" * 11
    with pytest.raises(DriverError, match="binding failed"):
        _nic({**vif, "vif_type": "binding_failed"}, 4)
    with pytest.raises(DriverError, match="not supported"):
        _nic({**vif, "vif_type": "ovs"}, 4)
    assert _volume_node("/dev/vdb") == "vol-vdb"


def test_volume_connection_info_is_checked() -> None:
    disk = QemuDriver._volume_disk({"driver_volume_type": "file", "serial": "vol-1",
                                    "data": {"path": "/v/1", "format": "qcow2"}}, "vol-vdb", 0x0C, "/dev/vdb")
    assert (disk.format, disk.serial, disk.read_only) == ("qcow2", "vol-1", False)
    with pytest.raises(DriverError, match="iscsi"):
        QemuDriver._volume_disk({"driver_volume_type": "iscsi", "data": {}}, "vol-vdb", 0x0C, "/dev/vdb")
    with pytest.raises(DriverError, match="path/format"):
        QemuDriver._volume_disk({"driver_volume_type": "file", "data": {"format": "vmdk", "path": "/v"}},
                                "vol-vdb", 0x0C, "/dev/vdb")


# ----- config drive ----------------------------------------------------------------------------------------------
def test_config_drive_from_the_instance(tmp_path: Path) -> None:
    require("mkfs.vfat", "mcopy", "mtype", "blkid")
    instance = {"uuid": "u-1", "display_name": "My VM", "hostname": "my-vm", "key_name": "k1",
                "key_data": "ssh-ed25519 AAAA test@host\n", "user_data": "IyEvYmluL3NoCmVjaG8gaGkK",
                "availability_zone": "nova", "project_id": "p1"}
    vif = {"id": "port-1", "mac_address": "fa:16:3e:00:00:01", "network_id": "net-1"}
    files = config_drive_files(instance, [vif])
    image = tmp_path / "disk.config"
    asyncio.run(make_config_drive(image, files))
    meta = json.loads(mtype(image, "openstack/latest/meta_data.json"))
    assert meta["uuid"] == "u-1" and meta["hostname"] == "my-vm" and meta["name"] == "My VM"
    assert meta["public_keys"] == {"k1": "ssh-ed25519 AAAA test@host\n"}
    assert mtype(image, "openstack/latest/user_data") == b"#!/bin/sh\necho hi\n"
    network = json.loads(mtype(image, "openstack/latest/network_data.json"))
    assert network["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    probe = subprocess.run(["blkid", "-o", "export", str(image)], capture_output=True, text=True).stdout
    assert "LABEL=config-2" in probe and "TYPE=vfat" in probe
    with pytest.raises(DriverError, match="outside"):
        asyncio.run(make_config_drive(tmp_path / "bad", {"../escape": b"x"}))


# ----- external events ---------------------------------------------------------------------------------------
async def test_virtapi_waits_for_every_event_registered_before_the_body() -> None:
    api = VirtAPI()
    events = [("network-vif-plugged", "p1"), ("network-vif-plugged", "p2")]
    async with api.wait_for_instance_event("u1", events, 5):
        # an event that arrives while the body still runs (a fast network agent) is not lost
        assert api.dispatch("u1", "network-vif-plugged", "p1", "completed")
        asyncio.get_running_loop().call_later(0.05, api.dispatch, "u1", "network-vif-plugged", "p2", "completed")
    assert api.waiting("u1") == []
    assert not api.dispatch("u1", "network-vif-plugged", "p1", "completed")  # nobody waits any more


async def test_virtapi_timeout_and_failure() -> None:
    api = VirtAPI()
    started = time.monotonic()
    with pytest.raises(InstanceEventTimeout, match="network-vif-plugged for p2"):
        async with api.wait_for_instance_event("u1", [("network-vif-plugged", "p1"),
                                                      ("network-vif-plugged", "p2")], 0.2):
            api.dispatch("u1", "network-vif-plugged", "p1", "completed")
    assert time.monotonic() - started < 2
    assert api.waiting("u1") == []
    with pytest.raises(InstanceEventFailed, match="p1"):
        async with api.wait_for_instance_event("u1", [("network-vif-plugged", "p1")], 5):
            api.dispatch("u1", "network-vif-plugged", "p1", "failed")


# ----- image cache -------------------------------------------------------------------------------------------
class FakeImageService:
    """Serves one file as an image, counting downloads (the driver must fetch each image once)."""

    def __init__(self, source: Path, disk_format: str) -> None:
        self.source, self.disk_format, self.downloads = source, disk_format, 0

    async def download(self, image_id: str, dest: Path, *, token: str | None = None,
                       image: dict[str, Any] | None = None) -> dict[str, Any]:
        assert token == "service-token"
        self.downloads += 1
        await asyncio.sleep(0.05)
        shutil.copyfile(self.source, dest)
        return {"id": image_id, "disk_format": self.disk_format, "status": "active"}


class FakeTokens:
    async def token(self) -> str:
        return "service-token"


def test_image_cache_converts_qcow2_once(tmp_path: Path) -> None:
    require("qemu-img")
    qcow2 = tmp_path / "src.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "64M"], check=True)
    service = FakeImageService(qcow2, "qcow2")
    drv = QemuDriver("host1", Settings(data_dir=tmp_path, compute={"driver": "qemu"}), image=service,  # type: ignore[arg-type]
                     service_tokens=FakeTokens())  # type: ignore[arg-type]
    async def fetch_three_at_once() -> list[Path]:
        return await asyncio.gather(*(drv.cached_image({"id": "img-1"}) for _ in range(3)))

    paths = asyncio.run(fetch_three_at_once())
    assert len(set(paths)) == 1 and service.downloads == 1
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(paths[0])], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "raw" and info["virtual-size"] == 64 << 20
    assert [p.name for p in paths[0].parent.iterdir()] == ["img-1"]  # no temporary files left
    asyncio.run(drv.cached_image({"id": "img-1"}))
    assert service.downloads == 1


def test_image_cache_refuses_unbootable_images(tmp_path: Path) -> None:
    require("qemu-img")
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 4096)
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
                   check=True)
    settings = Settings(data_dir=tmp_path, compute={"driver": "qemu"})
    drv = QemuDriver("host1", settings, image=FakeImageService(overlay, "qcow2"),  # type: ignore[arg-type]
                     service_tokens=FakeTokens())  # type: ignore[arg-type]
    with pytest.raises(DriverError, match="backing file"):
        asyncio.run(drv.cached_image({"id": "img-2"}))
    drv = QemuDriver("host1", settings, image=FakeImageService(base, "iso"),  # type: ignore[arg-type]
                     service_tokens=FakeTokens())  # type: ignore[arg-type]
    with pytest.raises(DriverError, match="disk_format iso"):
        asyncio.run(drv.cached_image({"id": "img-3"}))
    assert list((tmp_path / "instances" / "_base").iterdir()) == []


def test_overlay_is_sized_to_the_flavor(tmp_path: Path) -> None:
    require("qemu-img")
    drv = driver(tmp_path)
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (2 << 20))
    asyncio.run(drv._create_overlay(base, tmp_path / "disk", 1))
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "disk")], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert info["backing-filename"] == str(base) and info["backing-filename-format"] == "raw"
    big = tmp_path / "big.raw"
    with open(big, "wb") as f:
        f.truncate(3 << 30)
    with pytest.raises(DriverError, match="too small"):
        asyncio.run(drv._create_overlay(big, tmp_path / "disk2", 2))


# ----- host ------------------------------------------------------------------------------------------------------
async def test_kvm_probe_answers_within_its_timeout(tmp_path: Path) -> None:
    require("qemu-system-x86_64", "syslinux", "mkfs.vfat", "mcopy")
    drv = driver(tmp_path, accel="auto", kvm_probe_timeout=2.0)
    started = time.monotonic()
    assert await drv.probe_kvm() in (True, False)
    assert time.monotonic() - started < 8
    assert await driver(tmp_path, accel="tcg").choose_accel() == "tcg"


async def test_the_kvm_probe_answer_is_kept_per_host_kernel_and_qemu(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    require("qemu-system-x86_64")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/kvm: the probe is not asked")
    cache = tmp_path / "probe.json"
    drv = driver(tmp_path, accel="auto", kvm_probe_cache=cache)
    probes: list[str] = []

    async def probe() -> bool:
        probes.append("probe")
        return False

    monkeypatch.setattr(drv, "probe_kvm", probe)
    assert await drv.choose_accel() == "tcg" and probes == ["probe"]
    assert await drv.choose_accel() == "tcg" and probes == ["probe"]  # answered from the cache
    kept = json.loads(cache.read_text())
    assert kept["key"]["kernel"].startswith(os.uname().release) and kept["accel"] == "tcg"
    kept["key"]["kernel"] = "another kernel"
    cache.write_text(json.dumps(kept))
    assert await drv.choose_accel() == "tcg" and probes == ["probe", "probe"]  # a new kernel asks again


async def test_host_resources_and_an_empty_host(tmp_path: Path) -> None:
    drv = driver(tmp_path)
    res = await drv.get_available_resource()
    assert res.vcpus >= 1 and res.memory_mb > 0 and res.local_gb >= 1
    assert res.hypervisor_type == "QEMU" and res.hypervisor_version > 1_000_000
    assert await drv.list_instances() == []
    assert (await drv.get_info({"uuid": "nope"})).power_state == states.NOSTATE
    with pytest.raises(DriverError, match="not defined"):
        await drv.power_on({"uuid": "nope"})


# ----- the guest's side -------------------------------------------------------------------------------------
def test_guest_json_reader() -> None:
    require("busybox")
    meta = {"uuid": "u-1", "hostname": "vm1", "name": "a \"quoted\" name", "public_keys": {
        "k1": "ssh-ed25519 AAAA x@y\n", "k/2": "ssh-rsa BBB z"}, "meta": {}, "keys": [], "n": 1.5,
        "nested": {"list": [{"a": True}, None]}}
    out = subprocess.run(["busybox", "awk", "-f", str(FILES / "jsonflat.awk")], input=json.dumps(meta),
                         capture_output=True, text=True, check=True).stdout
    lines = dict(line.split("\t", 1) for line in out.splitlines())
    assert lines["hostname"] == "vm1" and lines["name"] == 'a "quoted" name'
    assert lines["public_keys/k1"] == "ssh-ed25519 AAAA x@y " and lines["public_keys/k/2"] == "ssh-rsa BBB z"
    assert lines["n"] == "1.5" and lines["nested/list/0/a"] == "true" and lines["nested/list/1"] == "null"


def _cpio_entries(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive."""
    entries, pos = {}, 0
    while True:
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data[pos:pos + size])
        pos += size
        pos += -pos % 4


def test_built_guest_image_layout(tmp_path: Path) -> None:
    require("mcopy", "lz4")
    image = guest_image()
    raw = image.raw.read_bytes()
    mbr = raw[:512]
    assert mbr[510:] == b"\x55\xaa"
    boot, ptype, start, sectors = struct.unpack_from("<B3xB3xII", mbr, 446)
    assert (boot, ptype, start) == (0x80, 0x0E, 2048) and (start + sectors) * 512 == len(raw)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image.qcow2)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == len(raw)
    env = {"MTOOLS_SKIP_CHECK": "1"}
    cfg = subprocess.run(["mtype", "-i", f"{image.raw}@@1M", "::syslinux.cfg"], check=True, capture_output=True,
                         text=True, env=env).stdout
    assert f"APPEND {KERNEL_CMDLINE}" in cfg
    subprocess.run(["mcopy", "-i", f"{image.raw}@@1M", "::initrd.img", str(tmp_path / "initrd")], check=True,
                   env=env)
    cpio = subprocess.run(["lz4", "-d", "-c", str(tmp_path / "initrd")], check=True, capture_output=True).stdout
    entries = _cpio_entries(cpio)
    assert entries["init"] == (0o120777, b"/bin/busybox")
    assert entries["dev/console"][0] == 0o020600
    for path in ("usr/sbin/dropbear", "usr/bin/dropbearkey", "etc/init.d/rcS", "etc/udhcpc.script"):
        assert entries[path][0] & 0o111, path
    modules = entries["etc/modules"][1].decode().split()
    for name in ("virtio_pci.ko", "virtio_net.ko", "virtio_blk.ko", "virtio-rng.ko", "vfat.ko", "isofs.ko"):
        assert name in modules and f"lib/modules/{name}" in entries
    # dependencies load first (modules.dep order)
    assert modules.index("virtio.ko") < modules.index("virtio_pci.ko") < modules.index("virtio_net.ko")
    assert modules.index("failover.ko") < modules.index("net_failover.ko") < modules.index("virtio_net.ko")
    assert modules.index("fat.ko") < modules.index("vfat.ko")
    assert guest_image().version == image.version  # cached: the same build again


def test_external_events_wake_a_driver_waiting_in_the_agent(cloud: Any, admin: Any) -> None:
    """POST /os-server-external-events -> the host's agent -> the VirtAPI future the driver waits on."""
    image = admin.image.create_image(name="virtapi-events", disk_format="raw", container_format="bare",
                                     data=b"\0" * 512)
    server = admin.compute.create_server(name="virtapi-events", image_id=image.id, flavor_id="1", networks="none")
    server = admin.compute.wait_for_server(server, wait=30)
    try:
        compute = next(s for s in cloud.thread.cloud.services if s.name == "compute")
        agent = next(a for a in compute.agents if a.host == server.compute_host)
        assert agent.driver.virtapi is agent.virtapi

        async def prepare() -> asyncio.Future[str]:
            return agent.virtapi.prepare(server.id, "network-vif-plugged", "port-1")

        future = cloud.thread.call(prepare)
        resp = admin.compute.post("/os-server-external-events", json={"events": [{
            "name": "network-vif-plugged", "server_uuid": server.id, "tag": "port-1", "status": "completed"}]})
        assert resp.status_code == 200

        async def outcome() -> str:
            return await asyncio.wait_for(future, 10)  # type: ignore[arg-type]

        assert cloud.thread.call(outcome) == "completed"
        assert agent.virtapi.waiting(server.id) == []
    finally:
        admin.compute.delete_server(server)
        admin.compute.wait_for_delete(server, wait=30)
        admin.image.delete_image(image)


def test_console_sockets_of_long_instance_paths(tmp_path: Path) -> None:
    """A socket path a unix socket cannot hold moves to the temp dir, one per server and kind."""
    long_dir = tmp_path / ("x" * 120) / "uuid-1"
    serial, vnc = console_socket(long_dir, "serial"), console_socket(long_dir, "vnc")
    assert serial != vnc and serial.name == "uuid-1-serial.sock" and len(str(serial)) <= UNIX_PATH_MAX
    assert console_socket(tmp_path / "uuid-2", "vnc") == tmp_path / "uuid-2" / "vnc.sock"
