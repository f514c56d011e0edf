"""The product's main promise, end to end: `pocketstack up --compute-driver qemu` as its own process, and through
the `openstack` CLI a key pair, a network with a router, a security group allowing SSH, a server booted from
the registered test guest that gets its address by DHCP and its key and hostname from the metadata service, SSH
into it (through the network's DHCP namespace and through a floating IP from the host), power actions, a volume
seen by the guest, and a delete that leaves nothing behind. Then the cloud is killed with SIGKILL while a server
runs and started again: the server kept running and the restarted compute agent adopts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cloud, make_settings
from netagent_helpers import link_exists, wait_for
from qemu_helpers import GUEST_CACHE, guest_image, require, teardown_on_sigterm

from pocketstack.compute.virt.qemu import QemuDriver, tap_name
from pocketstack.guest.build import IMAGE_NAME
from pocketstack.settings import Settings

DEMO = "pocketstack-demo"
BOOT_WITHIN = 240.0  # seconds from ACTIVE to SSH under TCG on a loaded 2-core machine (usually ~10 s)


class ProcessCloud(Cloud):
    """`pocketstack up` as a child process (settings through POCKETSTACK_* variables), so it can be killed."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = settings.data_dir / "up.log"

    def env(self) -> dict[str, str]:
        values = self.settings.model_dump(mode="json", exclude_none=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETSTACK_")}
        for key, value in values.items():
            env[f"POCKETSTACK_{key.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env

    def start(self) -> ProcessCloud:
        out = self.settings.data_dir / "up.out"
        with open(self.log, "ab") as log, open(out, "wb") as stdout:
            self.proc = subprocess.Popen([sys.executable, "-m", "pocketstack", "up"], stdout=stdout, stderr=log,
                                         env=self.env(), cwd=self.settings.data_dir)
        # the ready line comes once every service answers
        wait_for(lambda: b"pocketstack ready" in out.read_bytes() or self.proc.poll() is not None  # type: ignore
                 or time.sleep(0.2), 300, "pocketstack up to be ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"pocketstack up exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
        # the guest image registration follows the ready line: wait until the image is active
        wait_for(lambda: any(i["Status"] == "active" for i in self.cli("image", "list", "--name", IMAGE_NAME,
                                                                        "-f", "json")),
                 180, "the test guest image to be registered")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def ecloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessCloud]:
    require("qemu-system-x86_64", "ssh", "ssh-keygen", "dnsmasq", "nft", "ip", root=True)
    guest_image()  # built once per host (cached); the cloud registers it from the same cache
    settings = make_settings(tmp_path_factory.mktemp("e2e"), log_level="info", compute={
        "driver": "qemu", "guest_cache_dir": str(GUEST_CACHE)})
    cloud = ProcessCloud(settings)
    try:
        with teardown_on_sigterm():
            yield cloud.start()
    finally:
        cloud.stop()
        leftovers = QemuDriver("cleanup", settings)

        async def reap() -> None:  # servers a failed test left: their QEMU, taps and files
            for uid in await leftovers.list_instances():
                await leftovers.destroy({"uuid": uid}, [])

        asyncio.run(reap())


# ----- helpers -------------------------------------------------------------------------------------------------
def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


def ssh(address: str, key: Path, command: str, *, netns: str | None = None,
        timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """ssh root@address with only `key` offered (from the host, or inside a namespace on the guest's network)."""
    cmd = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           f"root@{address}", command]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, 255, "", f"timed out: {exc}")


def ssh_until(address: str, key: Path, command: str, *, netns: str | None = None,
              within: float = BOOT_WITHIN) -> str:
    """The output of `command` once SSH answers (the guest boots, takes its lease and its key first)."""
    last: list[subprocess.CompletedProcess[str]] = []

    def attempt() -> bool:
        last[:] = [ssh(address, key, command, netns=netns)]
        if last[0].returncode != 0:
            time.sleep(1)
        return last[0].returncode == 0

    try:
        wait_for(attempt, within, f"SSH to {address}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last[0].stderr.strip()}") from None
    return last[0].stdout


def server_show(cloud: Cloud, server: str) -> dict[str, Any]:
    return cloud.cli("server", "show", server, "-f", "json", cloud=DEMO)


def wait_status(cloud: Cloud, server: str, status: str, within: float = 120) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(server_show(cloud, server))
        if found["status"] == "ERROR":
            raise AssertionError(f"server {server} went ERROR: {found.get('fault')}")
        return found["status"] == status and not found.get("OS-EXT-STS:task_state")

    wait_for(lambda: reached() or time.sleep(0.5), within, f"server {server} to be {status}")
    return found


def fixed_ip(server: dict[str, Any], network: str) -> str:
    addresses = server["addresses"]
    if isinstance(addresses, str):  # older CLIs print "net=1.2.3.4"
        return addresses.split("=", 1)[1].split(",")[0].strip()
    return next(a for a in addresses[network] if ":" not in a)


def qemu_pids(uuid: str) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"-uuid" in args and uuid.encode() in args:
            pids.append(int(pid))
    return pids


def wait_volume(cloud: Cloud, volume: str, status: str) -> None:
    wait_for(lambda: cloud.cli("volume", "show", volume, "-f", "json", cloud=DEMO)["status"] == status
             or time.sleep(0.5), 120, f"volume {volume} to be {status}")


def make_network(cloud: Cloud, prefix: str) -> tuple[str, str]:
    """A network and subnet of the demo project, routed to `public`: (network id, router id)."""
    net = cloud.cli("network", "create", f"{prefix}-net", "-f", "json", cloud=DEMO)["id"]
    cidr = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.0/24"
    cloud.cli("subnet", "create", "--network", net, "--subnet-range", cidr, f"{prefix}-subnet", cloud=DEMO)
    router = cloud.cli("router", "create", f"{prefix}-router", "-f", "json", cloud=DEMO)["id"]
    cloud.cli("router", "set", "--external-gateway", "public", router, cloud=DEMO)
    cloud.cli("router", "add", "subnet", router, f"{prefix}-subnet", cloud=DEMO)
    return net, router


def delete_network(cloud: Cloud, prefix: str, net: str, router: str) -> None:
    cloud.cli("router", "remove", "subnet", router, f"{prefix}-subnet", cloud=DEMO)
    cloud.cli("router", "delete", router, cloud=DEMO)
    cloud.cli("network", "delete", net, cloud=DEMO)


# ----- the tests -----------------------------------------------------------------------------------------------
def test_a_server_through_the_cli_from_boot_to_delete(ecloud: ProcessCloud, prefix: str, tmp_path: Path) -> None:
    key, stranger = keygen(tmp_path / "id_e2e"), keygen(tmp_path / "id_stranger")
    ecloud.cli("keypair", "create", "--public-key", f"{key}.pub", f"{prefix}-key", cloud=DEMO)
    net, router = make_network(ecloud, prefix)
    ecloud.cli("security", "group", "create", f"{prefix}-ssh", cloud=DEMO)
    ecloud.cli("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22",
               f"{prefix}-ssh", cloud=DEMO)
    name = f"{prefix}-vm"
    server = ecloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--network", net,
                        "--key-name", f"{prefix}-key", "--security-group", f"{prefix}-ssh", "--wait", "-f", "json",
                        name, cloud=DEMO)
    uid = server["id"]
    assert server["status"] == "ACTIVE", server.get("fault")
    address = fixed_ip(server, f"{prefix}-net")
    dhcp_ns = f"qdhcp-{net}"
    ports = ecloud.cli("port", "list", "--server", uid, "-f", "json", cloud=DEMO)
    assert len(ports) == 1 and ports[0]["Status"] == "ACTIVE"
    tap = tap_name(ports[0]["ID"])
    assert len(qemu_pids(uid)) == 1 and link_exists(tap)

    # SSH with the key the metadata service handed over, as root, and the hostname it gave
    assert ssh_until(address, key, "hostname", netns=dhcp_ns).strip() == name
    refused = ssh(address, stranger, "true", netns=dhcp_ns)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert ssh(address, key, "cat /root/.ssh/authorized_keys", netns=dhcp_ns).stdout.strip() == \
        Path(f"{key}.pub").read_text().strip()
    console = ecloud.cli("console", "log", "show", uid, cloud=DEMO)
    assert "metadata from metadata service" in console and f"pocketstack guest ready: {name}" in console

    # the security group decides: without the SSH rule port 22 is closed, with it open again
    rule = ecloud.cli("security", "group", "rule", "list", f"{prefix}-ssh", "--protocol", "tcp", "-f", "json",
                      cloud=DEMO)[0]["ID"]
    ecloud.cli("security", "group", "rule", "delete", rule, cloud=DEMO)
    wait_for(lambda: ssh(address, key, "true", netns=dhcp_ns, timeout=8).returncode != 0, 30,
             "SSH to be refused once the rule is gone")
    ecloud.cli("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22",
               f"{prefix}-ssh", cloud=DEMO)
    ssh_until(address, key, "true", netns=dhcp_ns, within=30)

    # power actions: SSH comes back each time, in a new boot of the guest
    boot_id = ssh(address, key, "cat /proc/sys/kernel/random/boot_id", netns=dhcp_ns).stdout
    show_host_key = "dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | grep '^ssh-'"
    host_key = ssh(address, key, show_host_key, netns=dhcp_ns).stdout
    assert host_key.startswith("ssh-ed25519 ")
    ecloud.cli("server", "stop", uid, cloud=DEMO)
    assert wait_status(ecloud, uid, "SHUTOFF")["OS-EXT-STS:power_state"] in (4, "Shutdown")
    assert qemu_pids(uid) == [] and ssh(address, key, "true", netns=dhcp_ns, timeout=8).returncode != 0
    ecloud.cli("server", "start", uid, cloud=DEMO)
    wait_status(ecloud, uid, "ACTIVE")
    after_start = ssh_until(address, key, "cat /proc/sys/kernel/random/boot_id", netns=dhcp_ns)
    assert after_start != boot_id
    ecloud.cli("server", "reboot", "--wait", uid, cloud=DEMO)
    assert ssh_until(address, key, "cat /proc/sys/kernel/random/boot_id", netns=dhcp_ns) != after_start
    assert ssh(address, key, show_host_key, netns=dhcp_ns).stdout == host_key  # ssh sees the same host

    # a volume appears in the guest as a new disk (its serial is the volume id) and goes on detach
    volume = ecloud.cli("volume", "create", "--size", "1", f"{prefix}-vol", "-f", "json", cloud=DEMO)["id"]
    wait_volume(ecloud, volume, "available")
    disks_before = ssh(address, key, "ls /sys/block", netns=dhcp_ns).stdout.split()
    ecloud.cli("server", "add", "volume", uid, volume, cloud=DEMO)
    wait_volume(ecloud, volume, "in-use")
    serials = ssh_until(address, key, f"grep -l {volume[:20]} /sys/block/vd*/serial", netns=dhcp_ns, within=60)
    disk = serials.split("/")[3]
    assert disk not in disks_before
    assert ssh(address, key, f"cat /sys/block/{disk}/size", netns=dhcp_ns).stdout.strip() == str((1 << 30) // 512)
    ecloud.cli("server", "remove", "volume", uid, volume, cloud=DEMO)
    wait_volume(ecloud, volume, "available")
    wait_for(lambda: ssh(address, key, "ls /sys/block", netns=dhcp_ns).stdout.split() == disks_before, 30,
             "the disk to leave the guest")
    ecloud.cli("volume", "delete", volume, cloud=DEMO)

    # a floating IP from `public` reaches the server from the host itself
    fip = ecloud.cli("floating", "ip", "create", "public", "-f", "json", cloud=DEMO)
    ecloud.cli("server", "add", "floating", "ip", uid, fip["floating_ip_address"], cloud=DEMO)
    assert ssh_until(fip["floating_ip_address"], key, "hostname", within=60).strip() == name

    # delete: no QEMU, tap, instance files or QMP socket stay; then the network's bridge and namespaces go too
    ecloud.cli("server", "delete", "--wait", uid, cloud=DEMO)
    driver = QemuDriver("check", ecloud.settings)
    assert qemu_pids(uid) == [] and not link_exists(tap)
    assert not (driver.instances_path / uid).exists() and not driver._qmp_path(uid).exists()
    ecloud.cli("floating", "ip", "delete", fip["id"], cloud=DEMO)
    delete_network(ecloud, prefix, net, router)
    bridge = f"{ecloud.settings.network.bridge_prefix}{net[:11]}"
    wait_for(lambda: not link_exists(bridge), 30, f"bridge {bridge} to go")
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    wait_for(lambda: dhcp_ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
             and f"qrouter-{router}" not in namespaces, 30, "the network's namespaces to go")


def test_servers_outlive_a_killed_cloud_and_are_adopted(ecloud: ProcessCloud, prefix: str, tmp_path: Path) -> None:
    key = keygen(tmp_path / "id_e2e")
    ecloud.cli("keypair", "create", "--public-key", f"{key}.pub", f"{prefix}-key", cloud=DEMO)
    # a network without a router: the guest answers hosts of its subnet directly (nothing at the gateway)
    net = ecloud.cli("network", "create", f"{prefix}-net", "-f", "json", cloud=DEMO)["id"]
    ecloud.cli("subnet", "create", "--network", net, "--subnet-range",
               f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.0/24", f"{prefix}-subnet", cloud=DEMO)
    ecloud.cli("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22",
               "default", cloud=DEMO)
    server = ecloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--network", net,
                        "--key-name", f"{prefix}-key", "--wait", "-f", "json", f"{prefix}-vm", cloud=DEMO)
    uid, address = server["id"], fixed_ip(server, f"{prefix}-net")
    boot_id = ssh_until(address, key, "cat /proc/sys/kernel/random/boot_id", netns=f"qdhcp-{net}")
    (pid,) = qemu_pids(uid)

    ecloud.kill()  # SIGKILL: every service of the all-in-one, the compute agent among them, dies at once
    assert qemu_pids(uid) == [pid]
    assert ssh(address, key, "cat /proc/sys/kernel/random/boot_id", netns=f"qdhcp-{net}").stdout == boot_id
    ecloud.start()
    shown = wait_status(ecloud, uid, "ACTIVE")
    assert shown["OS-EXT-STS:power_state"] in (1, "Running")
    assert qemu_pids(uid) == [pid]  # adopted, not restarted
    assert ssh_until(address, key, "cat /proc/sys/kernel/random/boot_id", netns=f"qdhcp-{net}",
                     within=60) == boot_id
    # the adopted server is fully managed again: a power action through its QMP socket, then delete
    ecloud.cli("server", "reboot", "--wait", uid, cloud=DEMO)
    assert ssh_until(address, key, "cat /proc/sys/kernel/random/boot_id", netns=f"qdhcp-{net}") != boot_id
    ecloud.cli("server", "delete", "--wait", uid, cloud=DEMO)
    assert qemu_pids(uid) == []
    ecloud.cli("network", "delete", net, cloud=DEMO)
