"""The QEMU driver: one detached `qemu-system-x86_64` per server, driven through its QMP socket.

Per host: an image cache (`_base/<image id>.raw`, each image fetched once from the image service and converted
once to raw) and per server an instance directory with a qcow2 overlay on the cached base (copy-on-write,
resized to the flavor's root disk), an optional config drive, the pid file, the serial log and the QEMU command
line; the QMP socket is under /run (UNIX socket paths are short). QEMU runs daemonized, so a restarted compute
agent finds its servers again (pid file + QMP) instead of losing them.

Acceleration: KVM when a short probe shows a guest really executes under it (nested KVM can hang), else TCG.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from pocketstack.common.clients.image import ImageClient
from pocketstack.common.config import Settings
from pocketstack.compute import states
from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.virt.configdrive import make_config_drive
from pocketstack.compute.virt.driver import ComputeDriver, DriverError, HostResources, InstanceInfo

log = logging.getLogger("pocketstack.compute.qemu")

QEMU = "qemu-system-x86_64"
QMP_STATUS = {"running": states.RUNNING, "paused": states.PAUSED_POWER, "suspended": states.SUSPENDED_POWER,
              "shutdown": states.SHUTDOWN, "internal-error": states.CRASHED, "guest-panicked": states.CRASHED}
KVM_PROBE_TIMEOUT = 5.0
QMP_DIR = Path("/run/pocketstack-qmp")  # one socket per server, named by its uuid


async def _run(*cmd: str) -> str:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise DriverError(f"{' '.join(cmd[:3])} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _host_memory_kb() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))


def probe_kernel(settings: Settings) -> Path | None:
    """A Linux kernel to probe KVM with: the host's, else a built test guest's."""
    candidates = sorted(Path("/boot").glob("vmlinuz-*")) + sorted((settings.data_dir / "guest").glob("*/vmlinuz"))
    candidates += sorted((Path.home() / ".cache" / "pocketstack-test-guest").glob("*/vmlinuz"))
    return candidates[0] if candidates else None


async def probe_accel(workdir: Path, kernel: Path | None) -> str:
    """"kvm" when a Linux kernel really runs under KVM within a few seconds, else "tcg".

    The kernel boots without a root disk and panics at once, printing to the serial port. Where nested KVM is
    broken QEMU starts but the guest stalls (no output: an emulation failure or a hang), so only a guest that
    gets as far as the kernel's panic counts; SeaBIOS alone runs even where kernels do not.
    """
    if kernel is None or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    serial = workdir / "kvm-probe.log"
    serial.unlink(missing_ok=True)
    proc = await asyncio.create_subprocess_exec(
        QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-machine", "pc", "-accel", "kvm", "-m", "128",
        "-serial", f"file:{serial}", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1", "-no-reboot",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KVM_PROBE_TIMEOUT
        while loop.time() < deadline:
            if serial.exists() and b"Kernel panic" in serial.read_bytes():
                return "kvm"
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        return "tcg"
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        serial.unlink(missing_ok=True)


class QemuDriver(ComputeDriver):
    hypervisor_type = "QEMU"

    def __init__(self, host: str, settings: Settings) -> None:
        super().__init__(host)
        self.settings = settings
        self.path = (settings.compute.instances_path or settings.data_dir / "instances") / host
        self.base_dir = self.path / "_base"
        self.image = ImageClient(settings.base_url("image"))
        self.accel = settings.compute.accel
        self._image_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def init_host(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.makedirs(QMP_DIR, 0o700, exist_ok=True)
        if shutil.which(QEMU) is None:
            raise DriverError(f"{QEMU} is not installed (run scripts/install.sh)")
        if self.accel == "auto":
            self.accel = await probe_accel(self.path, probe_kernel(self.settings))
        log.info("%s: QEMU driver with %s acceleration, instances in %s", self.host, self.accel, self.path)

    # ----- paths and processes -----------------------------------------------------------------------------
    def _dir(self, instance: dict[str, Any]) -> Path:
        return self.path / instance["uuid"]

    def _qmp_socket(self, instance: dict[str, Any]) -> Path:
        """Under /run: a UNIX socket path must stay under 108 bytes, instance dirs can be deeper."""
        return QMP_DIR / f"{instance['uuid']}.sock"

    def _pid(self, instance: dict[str, Any]) -> int | None:
        """The QEMU process of the server, if it runs (not a zombie, not a reused pid)."""
        try:
            pid = int((self._dir(instance) / "qemu.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        if state == "Z" or f"guest={instance['uuid']}".encode() not in cmdline:
            return None
        return pid

    async def _qmp(self, instance: dict[str, Any], command: str, **arguments: Any) -> Any:
        sock = self._qmp_socket(instance)
        if self._pid(instance) is None or not sock.exists():
            raise DriverError(f"server {instance['uuid']} is not running on host {self.host}")
        client = QMPClient(f"pocketstack-{instance['uuid'][:8]}")
        try:
            await asyncio.wait_for(client.connect(str(sock)), 10)
            return await asyncio.wait_for(client.execute(command, arguments or None), 30)
        except Exception as exc:
            raise DriverError(f"QMP {command} failed for {instance['uuid']}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):  # after `quit` the reader sees EOF and re-raises it here
                await client.disconnect()

    async def _start_qemu(self, instance: dict[str, Any]) -> None:
        cmdline = json.loads((self._dir(instance) / "cmdline.json").read_text())
        await _run(*cmdline)

    async def _stop_qemu(self, instance: dict[str, Any]) -> None:
        pid = self._pid(instance)
        if pid is None:
            return
        try:
            await self._qmp(instance, "quit")
        except DriverError:
            pass
        for _ in range(100):
            if self._pid(instance) is None:
                return
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    # ----- disks -------------------------------------------------------------------------------------------
    async def _cached_base(self, image_id: str) -> Path:
        """The image as a raw file in the host's cache: fetched and converted once per host."""
        base = self.base_dir / f"{image_id}.raw"
        async with self._image_locks[image_id]:
            if base.exists():
                return base
            with tempfile.TemporaryDirectory(dir=self.base_dir) as tmp:
                download = Path(tmp) / "image"
                await self.image.download(image_id, download)
                converted = Path(tmp) / "image.raw"
                await _run("qemu-img", "convert", "-O", "raw", str(download), str(converted))
                os.replace(converted, base)
        return base

    async def _root_disk(self, instance: dict[str, Any], image_meta: dict[str, Any]) -> Path:
        if not image_meta.get("id"):
            raise DriverError("the QEMU driver boots from an image (boot from volume arrives with volumes)")
        base = await self._cached_base(image_meta["id"])
        disk = self._dir(instance) / "disk.qcow2"
        await _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(disk))
        root_bytes = int(instance.get("root_gb") or 0) << 30
        if root_bytes > base.stat().st_size:
            await _run("qemu-img", "resize", "-q", str(disk), str(root_bytes))
        return disk

    # ----- network -----------------------------------------------------------------------------------------
    @staticmethod
    def tap_name(vif: dict[str, Any]) -> str:
        return "tap" + vif["id"][:11]

    async def _plug(self, vif: dict[str, Any]) -> str:
        """A tap for the port on the bridge its binding names (the bridge is made if the agent has not yet)."""
        tap = self.tap_name(vif)
        bridge = (vif.get("vif_details") or {}).get("bridge_name")
        if not _link_exists(tap):
            await _run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
        if bridge:
            if not _link_exists(bridge):
                try:
                    await _run("ip", "link", "add", "name", bridge, "type", "bridge")
                except DriverError:
                    if not _link_exists(bridge):
                        raise
                await _run("ip", "link", "set", bridge, "up")
            await _run("ip", "link", "set", tap, "master", bridge)
        await _run("ip", "link", "set", tap, "up")
        return tap

    async def _unplug(self, vif: dict[str, Any]) -> None:
        tap = self.tap_name(vif)
        if _link_exists(tap):
            await _run("ip", "link", "del", tap)

    # ----- ComputeDriver -----------------------------------------------------------------------------------
    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any], network_info: list[dict[str, Any]],
                    block_device_info: dict[str, Any] | None = None) -> None:
        workdir = self._dir(instance)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            disk = await self._root_disk(instance, image_meta)
            cmd = [QEMU, "-name", f"guest={instance['uuid']}", "-nodefaults", "-no-user-config", "-machine",
                   self.settings.compute.machine_type,
                   "-accel", "kvm" if self.accel == "kvm" else "tcg,thread=multi",
                   "-m", str(instance["memory_mb"]), "-smp", str(instance["vcpus"]), "-display", "none",
                   "-daemonize", "-pidfile", str(workdir / "qemu.pid"),
                   "-qmp", f"unix:{self._qmp_socket(instance)},server=on,wait=off",
                   "-chardev", f"file,id=console,path={workdir / 'console.log'},append=on", "-serial",
                   "chardev:console", "-device", "virtio-rng-pci",
                   "-drive", f"file={disk},if=virtio,format=qcow2,cache=writeback"]
            if instance.get("config_drive"):
                drive = await asyncio.to_thread(make_config_drive, InstanceMetadata(instance).config_drive_files(),
                                                workdir / "config.img")
                cmd += ["-drive", f"file={drive},if=virtio,format=raw,readonly=on"]
            for index, vif in enumerate(network_info):
                tap = await self._plug(vif)
                cmd += ["-netdev", f"tap,id=net{index},ifname={tap},script=no,downscript=no",
                        "-device", f"virtio-net-pci,netdev=net{index},mac={vif['mac_address']}"]
            (workdir / "cmdline.json").write_text(json.dumps(cmd))
            await self._start_qemu(instance)
        except BaseException:
            await self.destroy(instance, network_info)
            raise

    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]]) -> None:
        await self._stop_qemu(instance)
        for vif in network_info or []:
            await self._unplug(vif)
        shutil.rmtree(self._dir(instance), ignore_errors=True)
        self._qmp_socket(instance).unlink(missing_ok=True)

    async def power_off(self, instance: dict[str, Any]) -> None:
        await self._stop_qemu(instance)

    async def power_on(self, instance: dict[str, Any]) -> None:
        if self._pid(instance) is None:
            for vif in instance.get("network_info") or []:
                await self._plug(vif)
            await self._start_qemu(instance)

    async def reboot(self, instance: dict[str, Any], hard: bool) -> None:
        if self._pid(instance) is None:
            await self.power_on(instance)
            return
        await self._qmp(instance, "system_reset")
        status = await self._qmp(instance, "query-status")
        if status["status"] == "paused":
            await self._qmp(instance, "cont")

    async def pause(self, instance: dict[str, Any]) -> None:
        await self._qmp(instance, "stop")

    async def unpause(self, instance: dict[str, Any]) -> None:
        await self._qmp(instance, "cont")

    async def suspend(self, instance: dict[str, Any]) -> None:
        """The guest's vCPUs stop; its memory stays in the QEMU process (no save to disk)."""
        await self._qmp(instance, "stop")

    async def resume(self, instance: dict[str, Any]) -> None:
        await self._qmp(instance, "cont")

    async def get_info(self, instance: dict[str, Any]) -> InstanceInfo:
        if self._pid(instance) is None:
            return InstanceInfo(power_state=states.SHUTDOWN)
        status = await self._qmp(instance, "query-status")
        return InstanceInfo(power_state=QMP_STATUS.get(status["status"], states.NOSTATE),
                            max_mem_kb=instance.get("memory_mb", 0) * 1024, mem_kb=instance.get("memory_mb", 0) * 1024,
                            num_cpu=instance.get("vcpus", 0))

    async def get_console_output(self, instance: dict[str, Any]) -> str:
        log_file = self._dir(instance) / "console.log"
        if not log_file.exists():
            raise DriverError(f"server {instance['uuid']} has no console log on host {self.host}")
        return log_file.read_bytes()[-(1 << 20):].decode(errors="replace")

    async def attach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any],
                            mountpoint: str) -> None:
        raise DriverError("volume attach is not supported by the QEMU driver yet (it comes with the volume service)")

    async def detach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any],
                            mountpoint: str) -> None:
        raise DriverError("volume detach is not supported by the QEMU driver yet (it comes with the volume service)")

    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        raise DriverError("interface hot-plug is not supported by the QEMU driver yet")

    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        raise DriverError("interface hot-unplug is not supported by the QEMU driver yet")

    async def list_instances(self) -> list[str]:
        if not self.path.exists():
            return []
        return sorted(d.name for d in self.path.iterdir()
                      if d.is_dir() and d.name != "_base" and self._pid({"uuid": d.name}) is not None)

    async def get_available_resource(self) -> HostResources:
        mem_kb = _host_memory_kb()
        self.path.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self.path)
        return HostResources(vcpus=os.cpu_count() or 1, memory_mb=mem_kb // 1024, local_gb=disk.total >> 30,
                             hypervisor_type=self.hypervisor_type, hypervisor_hostname=self.host,
                             extra={"accel": self.accel})
