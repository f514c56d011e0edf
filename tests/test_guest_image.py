"""The test guest image built by `pocketstack image build-guest`: booted by a bare QEMU (TCG) with a config drive
made from the compute metadata documents, it takes its hostname and SSH key from them and accepts SSH as root."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.virt.configdrive import make_config_drive
from pocketstack.image.guest import GUEST_MODULES, READY_MARKER, GuestImage, build_guest, ordered_modules

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))
# Builds are cached by package versions: one build per machine, not per run.
CACHE = Path(os.environ.get("POCKETSTACK_TEST_GUEST_CACHE", Path.home() / ".cache" / "pocketstack-test-guest"))


@pytest.fixture(scope="module")
def guest() -> GuestImage:
    out = subprocess.run([POCKETSTACK, "image", "build-guest", "--cache-dir", str(CACHE)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    image = build_guest(CACHE)  # the cached build the command just made
    assert str(image.raw) in out.stdout and str(image.qcow2) in out.stdout
    return image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh(key: Path, port: int, command: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-i", str(key), "-p", str(port),
                           "root@127.0.0.1", command], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def booted(guest: GuestImage, tmp_path: Path) -> Iterator[dict]:
    """The guest booted from a qcow2 overlay with a config drive, SSH forwarded to a free loopback port."""
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    instance = {"uuid": "a1b2c3", "hostname": "guest-under-test", "display_name": "guest under test",
                "project_id": "p", "key_name": "k", "key_data": key.with_suffix(".pub").read_text().strip(),
                "user_data": base64.b64encode(b"#!/bin/sh\necho user-data-ran > /tmp/user-data-ran\n").decode(),
                "network_info": [], "image_ref": "", "flavor": {}}
    drive = make_config_drive(InstanceMetadata(instance).config_drive_files(), tmp_path / "config.img")
    overlay = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest.raw), "-F", "raw", str(overlay)],
                   check=True)
    port = free_port()
    serial = tmp_path / "serial.log"
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", "tcg,thread=multi",
         "-m", "256", "-display", "none", "-serial", f"file:{serial}",
         "-drive", f"file={overlay},if=virtio,format=qcow2",
         "-drive", f"file={drive},if=virtio,format=raw,readonly=on", "-device", "virtio-rng-pci",
         "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
         "-device", "virtio-net-pci,netdev=n0"], start_new_session=True)
    try:
        yield {"key": key, "port": port, "serial": serial, "proc": proc}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_modules_come_in_dependency_order(guest: GuestImage, tmp_path: Path) -> None:
    tree = next(CACHE.glob("debs/linux-image-*-cloud-amd64"))
    names = [p.name.removesuffix(".ko") for p in ordered_modules(next((tree / "lib/modules").iterdir()),
                                                                 GUEST_MODULES)]
    assert {"virtio_net", "virtio_blk", "virtio_pci", "virtio", "virtio_ring", "vfat", "fat"} <= set(names)
    assert names.index("virtio") < names.index("virtio_pci") < names.index("virtio_net")
    assert names.index("fat") < names.index("vfat")


def test_guest_boots_takes_metadata_and_accepts_ssh(booted: dict) -> None:
    deadline = time.monotonic() + 120
    result = None
    while time.monotonic() < deadline:
        result = ssh(booted["key"], booted["port"], "hostname; cat /tmp/user-data-ran; cat /proc/partitions")
        if result.returncode == 0:
            break
        assert booted["proc"].poll() is None, booted["serial"].read_text()
        time.sleep(0.5)
    assert result is not None and result.returncode == 0, booted["serial"].read_text()
    lines = result.stdout.splitlines()
    assert lines[0] == "guest-under-test" and lines[1] == "user-data-ran"
    assert "vda" in result.stdout and "vdb" in result.stdout
    console = booted["serial"].read_text()
    assert "metadata from config-drive" in console and "1 public key(s) installed for root" in console
    assert READY_MARKER in console and "guest-under-test login:" in console
    # only the metadata's key opens it
    other = booted["key"].with_name("other")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    assert ssh(other, booted["port"], "true").returncode != 0
