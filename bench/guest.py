"""Guest boot benchmark: seconds from start to a working SSH login of the test guest; JSON on stdout. Needs root.

Two paths on the same image, in the same run, on the same sandbox network (pocketstack.guest.sandbox: a bridge,
DHCP with option 121, a metadata server that hands out the SSH key):

  floor   a bare `qemu-system-x86_64` command line (the same machine type, accelerator, devices and memory the
          driver uses) on a qcow2 overlay of the image, its tap made beforehand: QEMU start -> SSH login
  driver  QemuDriver.spawn (image already in the host cache: overlay, tap, config, QEMU, QMP) -> SSH login

  api     the whole cloud in this process (all-in-one, qemu driver, host network agent): POST /servers (as the
          demo user, openstacksdk) -> ACTIVE -> SSH login through the network's DHCP namespace; the guest gets its
          address from the agent's dnsmasq and its key from the metadata proxy
  hosts   the same through `pocketstack up --distributed --namespace-hosts 2` (the machine's RabbitMQ and
          PostgreSQL): the guests run on two compute hosts in network namespaces and reach the network node's
          DHCP and metadata over VXLAN

Each path boots 1 server, then N at once (--concurrency 1,4). For every server: seconds to SSH and the CPU
seconds its QEMU used by then; per run the mean and max, and the ratios driver/floor and api/floor of the means.

    .venv/bin/python bench/guest.py [--concurrency 1,4] [--repeat 1] [--memory 256] [--paths floor,driver,api,hosts]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pocketstack.compute.virt.qemu import QemuDriver, tap_name
from pocketstack.guest.build import build_guest_image
from pocketstack.guest.register import register_guest_image
from pocketstack.guest.sandbox import GuestNetwork, make_key, random_mac, wait_ssh
from pocketstack.launcher import CloudThread
from pocketstack.settings import Settings

SSH_WITHIN = 300.0


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def read_text(path: Path) -> str:
    return path.read_text()


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def summary(results: list[dict[str, float]]) -> dict[str, Any]:
    times = [r["ssh_s"] for r in results]
    return {"servers": results, "mean_s": round(statistics.mean(times), 2), "max_s": round(max(times), 2),
            "mean_cpu_s": round(statistics.mean(r["cpu_s"] for r in results), 2)}


class Floor:
    """Bare QEMU: what a person would type to boot the image with a tap, nothing else."""

    def __init__(self, work: Path, base: Path, net: GuestNetwork, memory: int) -> None:
        self.work, self.base, self.net, self.memory = work, base, net, memory
        self.pids: list[int] = []
        self.taps: list[str] = []

    def prepare(self, mac: str) -> tuple[list[str], str]:
        name = uuid.uuid4().hex[:10]
        overlay = self.work / f"floor-{name}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.base), "-F", "raw", str(overlay),
                        "1G"], check=True)
        tap = f"tapf{name}"
        subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
        subprocess.run(["ip", "link", "set", "dev", tap, "master", self.net.bridge, "up"], check=True)
        self.taps.append(tap)
        pidfile = self.work / f"floor-{name}.pid"
        cmd = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", "tcg,thread=multi",
               "-m", str(self.memory), "-smp", "1", "-display", "none", "-device", "virtio-rng-pci",
               "-drive", f"file={overlay},if=virtio,format=qcow2",
               "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=n0,mac={mac}",
               "-serial", f"file:{self.work / f'floor-{name}.log'}", "-daemonize", "-pidfile", str(pidfile)]
        return cmd, str(pidfile)

    async def boot(self, mac: str, ip: str, key: Path) -> dict[str, float]:
        cmd, pidfile = self.prepare(mac)
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*cmd)
        if await proc.wait() != 0:
            raise RuntimeError("bare QEMU did not start")
        pid = int(read_text(Path(pidfile)))
        self.pids.append(pid)
        await asyncio.to_thread(wait_ssh, ip, key, SSH_WITHIN)
        return {"ssh_s": round(time.monotonic() - start, 2), "cpu_s": round(cpu_seconds(pid), 2)}

    def close(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}/cmdline").exists() and Path(f"/proc/{p}/cmdline").read_bytes()
                  for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pids.clear()
        for tap in self.taps:
            subprocess.run(["ip", "link", "del", "dev", tap], capture_output=True)
        self.taps.clear()


class DriverPath:
    def __init__(self, work: Path, image_path: Path, net: GuestNetwork, memory: int) -> None:
        self.net, self.memory = net, memory
        settings = Settings(data_dir=work / "driver", compute={"driver": "qemu", "accel": "tcg",
                                                                "vif_plugging_timeout": 0})
        self.driver = QemuDriver("bench-host", settings)
        self.image_id = str(uuid.uuid4())
        self.image_path = image_path
        self.servers: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def init(self) -> None:
        await self.driver.init_host()
        shutil.copyfile(self.image_path, self.driver.base_dir / self.image_id)  # as if fetched before

    async def boot(self, mac: str, ip: str, key: Path, name: str) -> dict[str, float]:
        uid = str(uuid.uuid4())
        instance = {"uuid": uid, "display_name": name, "hostname": name, "vcpus": 1, "memory_mb": self.memory,
                    "root_gb": 1, "config_drive": False}
        vif = {"id": str(uuid.uuid4()), "mac_address": mac, "network_id": "bench", "vif_type": "bridge",
               "vif_details": {"bridge_name": self.net.bridge}}
        self.servers.append((instance, vif))
        start = time.monotonic()
        await self.driver.spawn(instance, {"id": self.image_id}, [vif])
        spawned = time.monotonic() - start
        await asyncio.to_thread(wait_ssh, ip, key, SSH_WITHIN)
        return {"ssh_s": round(time.monotonic() - start, 2), "spawn_s": round(spawned, 3),
                "cpu_s": round(cpu_seconds(self.driver.running_pid(uid)), 2)}

    async def close(self) -> None:
        for instance, vif in self.servers:
            await self.driver.destroy(instance, [vif])
            assert not link_exists(tap_name(vif["id"]))
        self.servers.clear()


class ApiPath:
    """The product path: a server created through the compute API, reached by SSH like a user would."""

    def __init__(self, work: Path, image: Any, memory: int, key: Path) -> None:
        import openstack

        tag = uuid.uuid4().hex[:6]
        self.settings = Settings(
            data_dir=work / "cloud", port_offset=random.randint(20000, 30000), log_level="warning",
            access_log=False, identity={"bcrypt_rounds": 4}, compute={"driver": "qemu", "accel": "tcg"},
            network={"public_cidr": f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24",
                     "bridge_mappings": {"public": f"exb{tag}"}, "agent_teardown_on_stop": True})
        self.start_cloud(image)
        config = openstack.config.OpenStackConfig(config_files=[str(self.settings.data_dir / "clouds.yaml")])
        self.admin = openstack.connection.Connection(config=config.get_one(cloud="pocketstack"))
        self.conn = openstack.connection.Connection(config=config.get_one(cloud="pocketstack-demo"))
        self.key = key
        self.flavor = self.admin.compute.create_flavor(name=f"bench-{tag}", ram=memory, vcpus=1, disk=1)
        self.image = self.conn.image.find_image("pocketstack-guest")
        self.network = self.conn.network.create_network(name=f"bench-{tag}")
        self.conn.network.create_subnet(network_id=self.network.id, cidr="10.250.0.0/24", ip_version=4)
        group = self.conn.network.find_security_group("default", project_id=self.conn.current_project_id)
        self.conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                     protocol="tcp", port_range_min=22, port_range_max=22)
        self.conn.compute.create_keypair(name="bench", public_key=key.with_suffix(".pub").read_text())
        self.servers: list[str] = []

    def start_cloud(self, image: Any) -> None:
        self.cloud = CloudThread(self.settings).start(timeout=120)
        self.cloud.call(lambda: register_guest_image(self.settings, image), timeout=120)

    def stop_cloud(self) -> None:
        self.cloud.stop()

    def qemu_pid(self, server_id: str) -> int | None:
        return QemuDriver("bench", self.settings).running_pid(server_id)

    def _boot(self, name: str) -> dict[str, float]:
        start = time.monotonic()
        server = self.conn.compute.create_server(name=name, image_id=self.image.id, flavor_id=self.flavor.id,
                                                 networks=[{"uuid": self.network.id}], key_name="bench")
        self.servers.append(server.id)
        server = self.conn.compute.wait_for_server(server, interval=0.2, wait=SSH_WITHIN)
        active = time.monotonic() - start
        ip = server.addresses[self.network.name][0]["addr"]
        while time.monotonic() - start < SSH_WITHIN:
            login = subprocess.run(["ip", "netns", "exec", f"qdhcp-{self.network.id}", "ssh", "-i", str(self.key),
                                    "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
                                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                    "-o", "LogLevel=ERROR", f"root@{ip}", "true"], capture_output=True)
            if login.returncode == 0:
                break
            time.sleep(0.1)
        else:
            console = self.conn.compute.get_server_console_output(server)["output"][-3000:]
            raise TimeoutError(f"no SSH login on {name} ({ip}) within {SSH_WITHIN:g} s; console:\n{console}")
        pid = self.qemu_pid(server.id)
        return {"ssh_s": round(time.monotonic() - start, 2), "active_s": round(active, 2),
                "cpu_s": round(cpu_seconds(pid), 2)}

    async def boot(self, name: str) -> dict[str, float]:
        return await asyncio.to_thread(self._boot, name)

    def clear(self) -> None:
        for server in self.servers:
            self.conn.compute.delete_server(server)
        deadline = time.monotonic() + 120
        while any(self.conn.compute.find_server(server) for server in self.servers):
            if time.monotonic() > deadline:
                raise TimeoutError("servers not deleted within 120 s")
            time.sleep(0.2)
        self.servers.clear()

    def close(self) -> None:
        try:
            self.clear()
            self.conn.network.delete_network(self.network)
        finally:
            self.stop_cloud()


class HostsPath(ApiPath):
    """The product path on `up --distributed --namespace-hosts 2`: the guests on compute hosts in namespaces."""

    hosts = 2

    def start_cloud(self, image: Any) -> None:
        subnet = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}"
        tag = uuid.uuid4().hex[:6]
        self.settings = self.settings.model_copy(update={"bind": f"{subnet}.1"})
        values = {"DISTRIBUTED__NAME": f"pstest_bench_{tag}", "DISTRIBUTED__NAMESPACE_HOSTS": str(self.hosts),
                  "DISTRIBUTED__MANAGEMENT_CIDR": f"{subnet}.0/24", "DISTRIBUTED__MANAGEMENT_BRIDGE": f"mgb{tag}",
                  "COMPUTE__GUEST_CACHE_DIR": str(Path(tempfile.gettempdir()) / "pocketstack-test-guest"),
                  "COMPUTE__ACCEL": "tcg", "PORT_OFFSET": str(self.settings.port_offset), "LOG_LEVEL": "warning",
                  "ACCESS_LOG": "false", "IDENTITY__BCRYPT_ROUNDS": "4",
                  "NETWORK__PUBLIC_CIDR": self.settings.network.public_cidr,
                  "NETWORK__BRIDGE_MAPPINGS": json.dumps(self.settings.network.bridge_mappings),
                  "NETWORK__AGENT_TEARDOWN_ON_STOP": "true"}
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("POCKETSTACK_")},
               **{f"POCKETSTACK_{k}": v for k, v in values.items()}}
        self.up = subprocess.Popen([sys.executable, "-m", "pocketstack", "up", "--distributed", "--data-dir",
                                    str(self.settings.data_dir), "--compute-driver", "qemu"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        self.env = env
        assert self.up.stdout is not None
        for line in self.up.stdout:
            if line.strip() == "pocketstack ready":
                break
        else:
            raise RuntimeError(f"up --distributed exited ({self.up.wait()})")
        # its output must keep draining, or the processes that write to it would block
        threading.Thread(target=lambda: [None for _ in self.up.stdout or ()], daemon=True).start()

    def stop_cloud(self) -> None:
        self.up.send_signal(signal.SIGTERM)
        self.up.wait(120)
        subprocess.run([sys.executable, "-m", "pocketstack", "purge", "--data-dir", str(self.settings.data_dir)],
                       env=self.env, capture_output=True, timeout=120)

    def qemu_pid(self, server_id: str) -> int | None:
        host = self.admin.compute.get_server(server_id).compute_host
        settings = self.settings.model_copy(update={"compute": self.settings.compute.model_copy(update={
            "instances_path": self.settings.data_dir / "hosts" / host / "instances"})})
        return QemuDriver("bench", settings).running_pid(server_id)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    image = await asyncio.to_thread(build_guest_image, Path(tempfile.gettempdir()) / "pocketstack-test-guest")
    work = Path(tempfile.mkdtemp(prefix="pocketstack-guestbench-"))
    key = make_key(work)
    public_key = key.with_suffix(".pub").read_text()
    report: dict[str, Any] = {"image": image.version, "kernel": image.kernel, "accel": "tcg",
                              "memory_mb": args.memory, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
                              "runs": []}
    api = await asyncio.to_thread(ApiPath, work, image, args.memory, key) if "api" in args.paths else None
    hosts = await asyncio.to_thread(HostsPath, work / "hosts", image, args.memory, key) \
        if "hosts" in args.paths else None
    with GuestNetwork() as net:
        floor = Floor(work, image.raw, net, args.memory)
        drv = DriverPath(work, image.raw, net, args.memory)
        await drv.init()

        def guest(name: str) -> tuple[str, str]:
            mac = random_mac()
            return mac, net.add_guest(mac, {"uuid": str(uuid.uuid4()), "hostname": name, "name": name,
                                            "public_keys": {"bench": public_key}})

        try:
            for repeat in range(args.repeat):
                for n in args.concurrency:
                    for path in args.paths:
                        guests = [guest(f"bench-{path}-{n}-{i}") for i in range(n)]
                        started = time.monotonic()
                        if path == "floor":
                            results = await asyncio.gather(*(floor.boot(mac, ip, key) for mac, ip in guests))
                        elif path in ("api", "hosts"):
                            cloud = api if path == "api" else hosts
                            assert cloud is not None
                            results = await asyncio.gather(*(cloud.boot(f"bench-{path}-{n}-{i}")
                                                             for i in range(n)))
                        else:
                            results = await asyncio.gather(*(drv.boot(mac, ip, key, f"bench-{n}-{i}")
                                                             for i, (mac, ip) in enumerate(guests)))
                        wall = time.monotonic() - started
                        report["runs"].append({"path": path, "concurrency": n, "repeat": repeat,
                                               "wall_s": round(wall, 2), **summary(list(results))})
                        print(f"{path:6} x{n}: mean {report['runs'][-1]['mean_s']} s to SSH, max "
                              f"{report['runs'][-1]['max_s']} s, {report['runs'][-1]['mean_cpu_s']} CPU-s each",
                              file=sys.stderr, flush=True)
                        if path == "floor":
                            floor.close()
                        elif path in ("api", "hosts"):
                            await asyncio.to_thread((api if path == "api" else hosts).clear)  # type: ignore
                        else:
                            await drv.close()
        finally:
            floor.close()
            await drv.close()
            for cloud in (api, hosts):
                if cloud is not None:
                    await asyncio.to_thread(cloud.close)
            shutil.rmtree(work, ignore_errors=True)
    for path in args.paths[1:]:
        ratios = {}
        for n in args.concurrency:
            means = {p: statistics.mean(r["mean_s"] for r in report["runs"] if r["path"] == p
                                        and r["concurrency"] == n) for p in ("floor", path)}
            ratios[f"x{n}"] = round(means[path] / means["floor"], 2)
            print(f"ratio {path}/floor x{n}: {ratios[f'x{n}']}", file=sys.stderr)
        report[f"ratio_{path}_to_floor"] = ratios
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--concurrency", default="1,4", help="servers booted at once, comma separated")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--paths", default="floor,driver,api",
                        help="floor (always run: the reference), driver, api, hosts")
    parser.add_argument("--memory", type=int, default=256, help="MB of RAM per guest")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.paths = ["floor", *(p for p in args.paths.split(",") if p in ("driver", "api", "hosts"))]
    if os.geteuid() != 0:
        sys.exit("bench/guest.py needs root (taps, a bridge, a network namespace)")
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
