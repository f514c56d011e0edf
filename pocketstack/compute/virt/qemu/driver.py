"""The QEMU driver's orchestration: spawn, power, consoles, volumes and interfaces over QMP (FLOW.md 29)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecuteError, QMPClient

from pocketstack.common.clients.identity import ServiceTokenProvider
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.errors import APIError
from pocketstack.compute import states
from pocketstack.compute.virt.driver import (
    Capabilities,
    ComputeDriver,
    ConsoleEndpoint,
    DriverError,
    HostResources,
    InstanceInfo,
    SnapshotFile,
    TaskStateUpdate,
    host_ip,
)
from pocketstack.compute.virt.qemu.console import console_args, console_socket, prepare_console_sockets
from pocketstack.compute.virt.qemu.domain import (
    DETACH_TIMEOUT,
    IMAGE_FORMATS,
    MIGRATE_TIMEOUT,
    NIC_SLOTS,
    PROBE_MARKER,
    QMP_POWER_STATES,
    QMP_TIMEOUT,
    SLOT_CONFIG,
    SLOT_RNG,
    SLOT_ROOT,
    UNIX_PATH_MAX,
    VOLUME_SLOTS,
    Disk,
    Domain,
    GiB,
    Nic,
    qemu_opt,
    tap_name,
)
from pocketstack.compute.virt.qemu.host import (
    config_drive_files,
    console_tail,
    cpu_time_ns,
    file_size,
    make_config_drive,
    plug_tap,
    read_text,
    run_host,
    unplug_tap,
    write_tree,
)
from pocketstack.compute.virt.virtapi import InstanceEventTimeout
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute.qemu")
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)  # it logs every dropped connection (guest poweroff)


class QemuDriver(ComputeDriver):
    hypervisor_type = "QEMU"
    capabilities = Capabilities(image_types=frozenset(IMAGE_FORMATS), attach_interface=True)

    def __init__(self, host: str, settings: Settings, *, image: ImageClient | None = None,
                 service_tokens: ServiceTokenProvider | None = None) -> None:
        super().__init__(host)
        self.settings = settings
        self.cfg = settings.compute
        # absolute: QEMU changes to / once daemonized, and later QMP commands name files too
        self.instances_path = (self.cfg.instances_path or settings.data_dir / "instances").absolute()
        self.base_dir = self.instances_path / "_base"
        self._image = image
        self._service_tokens = service_tokens
        self.accel: str | None = None  # "kvm" or "tcg", decided by init_host
        self._version: int | None = None
        self._qmp_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._image_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # ----- host -------------------------------------------------------------------------------------------
    async def init_host(self) -> None:
        if shutil.which(self.cfg.qemu_binary) is None:
            raise DriverError(f"{self.cfg.qemu_binary} is not installed (Debian: apt-get install qemu-system-x86)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.base_dir.glob(".*"):  # downloads or conversions cut by a crash
            stale.unlink(missing_ok=True)
        if self.accel is None:
            self.accel = await self.choose_accel()
        log.info("%s: qemu driver, %s acceleration, instances in %s (%d present)", self.host, self.accel,
                 self.instances_path, len(await self.list_instances()))

    async def choose_accel(self) -> str:
        """The configured accelerator, or with "auto" what the KVM probe answered on this host, kernel and QEMU.

        The probe takes up to `kvm_probe_timeout` seconds, so its answer is kept in `kvm_probe_cache` and asked
        again only when the host name, the kernel or QEMU's version changes.
        """
        if self.cfg.accel != "auto":
            return self.cfg.accel
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "tcg"
        uname = os.uname()
        key = {"host": uname.nodename, "kernel": f"{uname.release} {uname.version}",
               "qemu": await self._qemu_version()}
        cache = self.cfg.kvm_probe_cache
        with contextlib.suppress(OSError, ValueError, AttributeError):
            kept = json.loads(cache.read_text())
            if kept.get("key") == key and kept.get("accel") in ("kvm", "tcg"):
                return kept["accel"]
        accel = "kvm" if await self.probe_kvm() else "tcg"
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "accel": accel}))
        return accel

    async def probe_kvm(self) -> bool:
        """Does KVM really run a guest here? Boot a syslinux floppy that prints a marker, within a deadline.

        /dev/kvm may exist and still not work: nested KVM here stops on an emulation failure, or hangs, as soon
        as a boot loader switches modes. A real boot-loader run is what tells.
        """
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return False
        if not (shutil.which("syslinux") and shutil.which("mkfs.vfat") and shutil.which("mcopy")):
            log.warning("%s: no syslinux/mtools to probe KVM with; using TCG", self.host)
            return False
        with tempfile.TemporaryDirectory(prefix="pocketstack-kvm-probe-") as tmp:
            floppy, serial, cfg = Path(tmp, "probe.img"), Path(tmp, "serial.log"), Path(tmp, "syslinux.cfg")
            write_tree(Path(tmp), {"syslinux.cfg": f"SERIAL 0 115200\nSAY {PROBE_MARKER}\nPROMPT 0\nTIMEOUT 0\n"
                                                    "DEFAULT none\n".encode()})
            await run_host("mkfs.vfat", "-C", str(floppy), "1440")
            await run_host("syslinux", "--install", str(floppy))
            await run_host("mcopy", "-i", str(floppy), str(cfg), "::syslinux.cfg")
            proc = await asyncio.create_subprocess_exec(
                self.cfg.qemu_binary, "-accel", "kvm", "-machine", self.cfg.machine_type, "-nodefaults",
                "-no-user-config", "-display", "none", "-m", "32", "-no-reboot",
                "-drive", f"file={qemu_opt(str(floppy))},format=raw,if=floppy", "-serial", f"file:{serial}",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            deadline = time.monotonic() + self.cfg.kvm_probe_timeout
            ok = False
            try:
                while time.monotonic() < deadline and proc.returncode is None:
                    if PROBE_MARKER in read_text(serial):
                        ok = True
                        break
                    await asyncio.sleep(0.05)
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
        if not ok:
            log.warning("%s: /dev/kvm is present but a KVM guest did not boot within %g s; using TCG", self.host,
                        self.cfg.kvm_probe_timeout)
        return ok

    async def get_available_resource(self) -> HostResources:
        meminfo = dict(line.split(":", 1) for line in read_text(Path("/proc/meminfo")).splitlines())
        total_mb = int(meminfo["MemTotal"].split()[0]) // 1024
        free_mb = int(meminfo.get("MemAvailable", "0 kB").split()[0]) // 1024
        self.instances_path.mkdir(parents=True, exist_ok=True)
        disk = os.statvfs(self.instances_path)
        return HostResources(
            vcpus=os.cpu_count() or 1, memory_mb=total_mb, local_gb=disk.f_blocks * disk.f_frsize // GiB,
            hypervisor_type=self.hypervisor_type, hypervisor_hostname=self.host,
            hypervisor_version=await self._qemu_version(), host_ip=host_ip(),
            extra={"free_ram_mb": free_mb, "free_disk_gb": disk.f_bavail * disk.f_frsize // GiB,
                   "accel": self.accel or self.cfg.accel, "machine_type": self.cfg.machine_type})

    async def _qemu_version(self) -> int:
        """As Nova reports it: major * 1000000 + minor * 1000 + micro."""
        if self._version is None:
            _, out = await run_host(self.cfg.qemu_binary, "--version", check=False)
            words = out.split()
            numbers = words[words.index("version") + 1].split(".") if "version" in words else ["0"]
            parts = [int("".join(c for c in n if c.isdigit()) or 0) for n in numbers[:3]] + [0, 0]
            self._version = parts[0] * 1_000_000 + parts[1] * 1000 + parts[2]
        return self._version

    async def list_instances(self) -> list[str]:
        if not self.instances_path.is_dir():
            return []
        return sorted(p.name for p in self.instances_path.iterdir() if (p / "domain.json").exists())

    # ----- paths and state --------------------------------------------------------------------------------
    def _dir(self, uuid: str) -> Path:
        return self.instances_path / uuid

    def _qmp_path(self, uuid: str) -> Path:
        """The QMP socket: in the instance dir unless that path is too long for a unix socket."""
        path = self._dir(uuid) / "qmp.sock"
        if len(str(path)) <= UNIX_PATH_MAX:
            return path
        return Path(tempfile.gettempdir(), "pocketstack-qmp", f"{uuid}.sock")

    def _load(self, uuid: str) -> Domain:
        try:
            return Domain.from_json(json.loads((self._dir(uuid) / "domain.json").read_text()))
        except FileNotFoundError:
            raise DriverError(f"server {uuid} is not defined on host {self.host}")

    def _save(self, domain: Domain) -> None:
        path = self._dir(domain.uuid) / "domain.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(domain), indent=1))
        os.replace(tmp, path)

    def running_pid(self, uuid: str) -> int | None:
        """The pid of this server's QEMU if it runs (pid file checked against /proc: no reused pid, no zombie)."""
        try:
            pid = int((self._dir(uuid) / "qemu.pid").read_text().strip())
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return None
        try:
            return pid if args[args.index(b"-uuid") + 1] == uuid.encode() else None
        except (ValueError, IndexError):
            return None

    # ----- QMP --------------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _qmp(self, uuid: str) -> AsyncIterator[QMPClient]:
        """A QMP session (QEMU serves one client per socket, so sessions to one server are serialized)."""
        async with self._qmp_locks[uuid]:
            client = QMPClient(f"pocketstack-{uuid[:8]}")
            try:
                await asyncio.wait_for(client.connect(str(self._qmp_path(uuid))), QMP_TIMEOUT)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await client.disconnect()
                raise DriverError(f"the QEMU monitor of server {uuid} is unreachable: {exc}")
            try:
                yield client
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()

    @staticmethod
    async def _execute(client: QMPClient, command: str, arguments: dict[str, Any] | None = None) -> Any:
        try:
            return await asyncio.wait_for(client.execute(command, arguments), QMP_TIMEOUT)
        except ExecuteError as exc:
            raise DriverError(f"QEMU refused {command}: {exc}")
        except TimeoutError:
            raise DriverError(f"QEMU did not answer {command} within {QMP_TIMEOUT:g} s")

    async def _command(self, uuid: str, command: str, arguments: dict[str, Any] | None = None) -> Any:
        async with self._qmp(uuid) as client:
            return await self._execute(client, command, arguments)

    async def _status(self, uuid: str) -> str | None:
        if self.running_pid(uuid) is None:
            return None
        try:
            return (await self._command(uuid, "query-status"))["status"]
        except DriverError:
            return None if self.running_pid(uuid) is None else "unknown"

    # ----- processes --------------------------------------------------------------------------------------
    def command(self, domain: Domain, *, paused: bool = False, incoming: bool = False) -> list[str]:
        """The qemu-system command line of a server, from its definition."""
        d = self._dir(domain.uuid)
        accel = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else ["-accel", "tcg,thread=multi"]
        args = [
            self.cfg.qemu_binary, "-name", f"guest={domain.uuid}", "-uuid", domain.uuid,
            "-nodefaults", "-no-user-config", "-machine", domain.machine, *accel,
            "-m", str(domain.memory_mb), "-smp", str(domain.vcpus), "-display", "none",
            "-smbios", f"type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,serial={domain.uuid},"
                       f"uuid={domain.uuid},family=Virtual Machine",
            "-daemonize", "-pidfile", str(d / "qemu.pid"),
            "-qmp", f"unix:{qemu_opt(str(self._qmp_path(domain.uuid)))},server=on,wait=off",
            *console_args(d),
            "-device", f"virtio-rng-pci,addr={hex(SLOT_RNG)}",
        ]
        for disk in domain.disks:
            args += ["-blockdev", json.dumps(disk.blockdev()), "-device", json.dumps(disk.device())]
        for nic in domain.nics:
            args += ["-netdev", nic.netdev_args(), "-device", json.dumps(nic.device())]
        if paused or incoming:
            args.append("-S")
        if incoming:
            args += ["-incoming", "defer"]
        return args

    async def _start(self, domain: Domain, *, paused: bool = False, incoming: bool = False) -> None:
        for nic in domain.nics:
            await plug_tap(nic)
        self._qmp_path(domain.uuid).parent.mkdir(parents=True, exist_ok=True)
        self._qmp_path(domain.uuid).unlink(missing_ok=True)
        prepare_console_sockets(self._dir(domain.uuid))
        code, out = await run_host(*self.command(domain, paused=paused, incoming=incoming), within=60, check=False)
        if code != 0 or self.running_pid(domain.uuid) is None:
            raise DriverError(f"QEMU did not start: {out[-800:] or f'exit code {code}'}")

    async def _wait_exit(self, uuid: str, within: float) -> bool:
        deadline = time.monotonic() + within
        while self.running_pid(uuid) is not None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def _kill(self, uuid: str) -> None:
        """Stop the process now: SIGTERM (QEMU flushes its disks), SIGKILL if that is not enough."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            pid = self.running_pid(uuid)
            if pid is None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if await self._wait_exit(uuid, wait):
                break
        if self.running_pid(uuid) is not None:
            raise DriverError(f"the QEMU process of server {uuid} does not stop")
        self._qmp_path(uuid).unlink(missing_ok=True)

    async def _shutdown(self, uuid: str, within: float) -> bool:
        """ACPI power button, then wait for the guest to power off; False when it did not within `within` s."""
        if within <= 0 or await self._status(uuid) != "running":
            return False
        try:
            await self._command(uuid, "system_powerdown")
        except DriverError:
            return False
        return await self._wait_exit(uuid, within)

    # ----- images and disks -------------------------------------------------------------------------------
    def _image_client(self) -> tuple[ImageClient, ServiceTokenProvider]:
        """The agent's image client and service token (a driver made without them boots cached images only)."""
        if self._image is None or self._service_tokens is None:
            raise DriverError("this qemu driver has no image client: it boots only images already in its cache")
        return self._image, self._service_tokens

    async def cached_image(self, image_meta: dict[str, Any]) -> Path:
        """The image as raw in this host's cache: fetched once from the image service, converted once (step 22)."""
        image_id = image_meta["id"]
        base = self.base_dir / image_id
        async with self._image_locks[image_id]:
            if base.exists():
                return base
            self.base_dir.mkdir(parents=True, exist_ok=True)
            fetched = self.base_dir / f".{image_id}.fetch"
            converted = self.base_dir / f".{image_id}.raw"
            client, tokens = self._image_client()
            try:
                record = await client.download(image_id, fetched, token=await tokens.token(),
                                               image=image_meta if image_meta.get("os_hash_value") else None)
                fmt = IMAGE_FORMATS.get(record.get("disk_format") or "raw")
                if fmt is None:
                    raise DriverError(f"image {image_id} has disk_format {record.get('disk_format')}; the qemu "
                                      f"driver boots {', '.join(IMAGE_FORMATS)} images")
                _, out = await run_host("qemu-img", "info", "--output=json", "-f", fmt, str(fetched))
                info = json.loads(out)
                if info.get("backing-filename") or info.get("full-backing-filename"):
                    raise DriverError(f"image {image_id} refers to a backing file; refusing it")
                if fmt == "raw":
                    os.replace(fetched, base)
                else:
                    await run_host("qemu-img", "convert", "-f", fmt, "-O", "raw", str(fetched), str(converted),
                               within=3600)
                    os.replace(converted, base)
            except APIError as exc:
                raise DriverError(f"fetching image {image_id} failed: {exc.message}")
            finally:
                fetched.unlink(missing_ok=True)
                converted.unlink(missing_ok=True)
            return base

    async def _create_overlay(self, base: Path, disk: Path, root_gb: int) -> None:
        size = file_size(base)
        if root_gb and root_gb * GiB < size:
            raise DriverError(f"Flavor's disk is too small for requested image: the image needs {size} bytes, "
                              f"the flavor has {root_gb} GB")
        await run_host("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(disk),
                   str(root_gb * GiB if root_gb else size))

    async def snapshot(self, instance: dict[str, Any], directory: Path,
                       update_task_state: TaskStateUpdate) -> SnapshotFile:
        """The root disk flattened (overlay and base) into one qcow2. A running guest is paused meanwhile: QEMU
        drains and flushes its disks when it stops, so the copy is what the guest had written; it runs again
        after. A paused, stopped or suspended server's disk is copied as it is."""
        uuid = instance["uuid"]
        root = next((d for d in self._load(uuid).disks if d.path == str(self._dir(uuid) / "disk")), None)
        if root is None:  # a volume root: the volume service snapshots it, not the host
            raise DriverError(f"server {uuid} has no local root disk to snapshot")
        await update_task_state(states.IMAGE_PENDING_UPLOAD)
        out = directory / "disk.qcow2"
        running = self.running_pid(uuid) is not None
        paused_here = running and await self._status(uuid) == "running"
        if paused_here:
            await self._command(uuid, "stop")
        try:
            # -U: QEMU keeps its lock on the disk while it is open; the guest is stopped, so reading it is safe
            await run_host("qemu-img", "convert", *(["-U"] if running else []), "-f", root.format, "-O", "qcow2",
                           root.path, str(out), within=3600)
        finally:
            if paused_here:
                await self._command(uuid, "cont")
        return SnapshotFile(out, "qcow2")

    @staticmethod
    def _volume_disk(connection_info: dict[str, Any], node: str, slot: int, mountpoint: str | None,
                     bootindex: int | None = None, volume_id: str | None = None) -> Disk:
        if connection_info.get("driver_volume_type") != "file":
            raise DriverError(f"volume type {connection_info.get('driver_volume_type')!r} is not supported by the "
                              "qemu driver (it attaches file volumes)")
        data = connection_info.get("data", {})
        fmt = data.get("format", "raw")
        if fmt not in ("raw", "qcow2") or not data.get("path"):
            raise DriverError(f"volume connection info without a usable path/format: {data}")
        serial = connection_info.get("serial") or data.get("volume_id") or volume_id  # Nova: serial = volume id
        return Disk(node=node, path=data["path"], format=fmt, slot=slot, serial=serial, mountpoint=mountpoint,
                    bootindex=bootindex, read_only=bool(data.get("read_only") or data.get("access_mode") == "ro"))

    # ----- spawn and destroy ------------------------------------------------------------------------------
    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any], network_info: list[dict[str, Any]],
                    block_device_info: dict[str, Any] | None = None) -> None:
        uuid = instance["uuid"]
        if self.running_pid(uuid) is not None:
            raise DriverError(f"server {uuid} already runs on host {self.host}")
        if self.accel is None:
            self.accel = await self.choose_accel()
        try:
            domain = await self._define(instance, image_meta, network_info, block_device_info or {})
            await self._launch(domain, network_info)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.destroy(instance, network_info)
            if isinstance(exc, DriverError | asyncio.CancelledError):
                raise
            raise DriverError(f"spawning failed: {type(exc).__name__}: {exc}") from exc

    async def _define(self, instance: dict[str, Any], image_meta: dict[str, Any],
                      network_info: list[dict[str, Any]], block_device_info: dict[str, Any]) -> Domain:
        uuid = instance["uuid"]
        d = self._dir(uuid)
        if d.exists():
            shutil.rmtree(d)  # left-overs of an earlier failed attempt (no process runs, checked above)
        d.mkdir(parents=True)
        domain = Domain(uuid=uuid, name=instance.get("display_name") or uuid, vcpus=instance["vcpus"],
                        memory_mb=instance["memory_mb"], machine=self.cfg.machine_type)
        mappings = block_device_info.get("block_device_mapping") or []
        root = next((m for m in mappings if m.get("boot_index") in (0, "0")), None)
        if root is not None:
            domain.disks.append(self._volume_disk(root["connection_info"], "root", SLOT_ROOT,
                                                  root.get("mount_device") or "/dev/vda", bootindex=1,
                                                  volume_id=root.get("volume_id")))
        else:
            if not image_meta.get("id"):
                raise DriverError("no image and no boot volume to boot from")
            base = await self.cached_image(image_meta)
            await self._create_overlay(base, d / "disk", instance.get("root_gb") or 0)
            domain.disks.append(Disk("root", str(d / "disk"), "qcow2", SLOT_ROOT, bootindex=1))
        for mapping in mappings:
            if mapping is not root:
                mountpoint = mapping.get("mount_device")
                domain.disks.append(self._volume_disk(mapping["connection_info"], _volume_node(mountpoint),
                                                      _free_volume_slot(domain), mountpoint,
                                                      volume_id=mapping.get("volume_id")))
        if instance.get("config_drive"):
            await make_config_drive(d / "disk.config", config_drive_files(instance, network_info))
            domain.disks.append(Disk("config", str(d / "disk.config"), "raw", SLOT_CONFIG, read_only=True))
        for index, vif in enumerate(network_info):
            if index >= len(NIC_SLOTS):
                raise DriverError(f"at most {len(NIC_SLOTS)} network interfaces per server")
            domain.nics.append(_nic(vif, NIC_SLOTS[index]))
        self._save(domain)
        return domain

    async def _launch(self, domain: Domain, network_info: list[dict[str, Any]]) -> None:
        """Start QEMU; with ports to wait for, paused until network-vif-plugged arrived for each (Nova's wait)."""
        timeout = self.cfg.vif_plugging_timeout
        events: list[tuple[str, str | None]] = [("network-vif-plugged", vif["id"]) for vif in network_info
                                                if not vif.get("active")]  # an ACTIVE port sends no new event
        if self.virtapi is None or timeout <= 0 or not events:
            await self._start(domain)
            return
        try:
            async with self.virtapi.wait_for_instance_event(domain.uuid, events, timeout):
                await self._start(domain, paused=True)
        except InstanceEventTimeout as exc:
            if self.cfg.vif_plugging_is_fatal:
                raise DriverError(f"Virtual Interface creation failed: {exc}")
            log.warning("%s: %s; starting server %s anyway", self.host, exc, domain.uuid)
        await self._command(domain.uuid, "cont")

    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]]) -> None:
        """Stop the process, remove taps, overlay, config drive, socket, saved state: nothing stays."""
        uuid = instance["uuid"]
        await self._kill(uuid)
        taps = {tap_name(vif["id"]) for vif in network_info}
        with contextlib.suppress(DriverError):
            taps |= {nic.tap for nic in self._load(uuid).nics}
        for tap in sorted(taps):
            await unplug_tap(tap)
        shutil.rmtree(self._dir(uuid), ignore_errors=True)
        self._qmp_path(uuid).unlink(missing_ok=True)
        self._qmp_locks.pop(uuid, None)

    async def rescue(self, instance: dict[str, Any], image_meta: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None:
        """Stop the guest, boot the rescue image's overlay with the server's root disk as a second disk (Nova's
        libvirt rescue); the server's own definition waits in unrescue.json."""
        uuid = instance["uuid"]
        domain = self._load(uuid)
        d = self._dir(uuid)
        await self._kill(uuid)
        shutil.copy(d / "domain.json", d / "unrescue.json")
        base = await self.cached_image(image_meta)
        await self._create_overlay(base, d / "disk.rescue", instance.get("root_gb") or 0)
        own = [disk for disk in domain.disks if disk.slot == SLOT_ROOT]
        domain.disks = [disk for disk in domain.disks if disk.slot != SLOT_ROOT]
        for disk in own:
            disk.slot, disk.bootindex = _free_volume_slot(domain), None
            domain.disks.append(disk)
        domain.disks.insert(0, Disk("rescue", str(d / "disk.rescue"), "qcow2", SLOT_ROOT, bootindex=1))
        self._save(domain)
        await self._start(domain)

    async def unrescue(self, instance: dict[str, Any]) -> None:
        """Stop the rescue guest and boot the server's own definition again."""
        uuid = instance["uuid"]
        d = self._dir(uuid)
        if not (d / "unrescue.json").exists():
            raise DriverError(f"server {uuid} is not rescued on host {self.host}")
        await self._kill(uuid)
        os.replace(d / "unrescue.json", d / "domain.json")
        (d / "disk.rescue").unlink(missing_ok=True)
        await self._start(self._load(uuid))

    async def remove_all(self) -> list[str]:
        """Every guest of this host stopped and removed with its taps and files (`pocketstack purge`)."""
        removed = await self.list_instances()
        for uuid in removed:
            await self.destroy({"uuid": uuid}, [])
        return removed

    # ----- power ------------------------------------------------------------------------------------------
    async def power_off(self, instance: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        self._load(uuid)
        if self.running_pid(uuid) is None:
            return
        if not await self._shutdown(uuid, self.cfg.shutdown_timeout):
            log.info("%s: server %s did not power off on ACPI; stopping it", self.host, uuid)
        await self._kill(uuid)

    async def power_on(self, instance: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        domain = self._load(uuid)
        status = await self._status(uuid)
        if status in ("paused", "prelaunch"):
            await self._command(uuid, "cont")
        elif status is None:
            await self._start(domain)

    async def reboot(self, instance: dict[str, Any], hard: bool) -> None:
        """Soft: ACPI power off and start again (hard when the guest does not comply); hard: reset now."""
        uuid = instance["uuid"]
        domain = self._load(uuid)
        if self.running_pid(uuid) is not None:
            if not hard and await self._shutdown(uuid, self.cfg.shutdown_timeout):
                await self._start(domain)
                return
            async with self._qmp(uuid) as client:
                await self._execute(client, "system_reset")
                if (await self._execute(client, "query-status"))["status"] != "running":
                    await self._execute(client, "cont")
            return
        await self._start(domain)

    async def pause(self, instance: dict[str, Any]) -> None:
        await self._command(instance["uuid"], "stop")

    async def unpause(self, instance: dict[str, Any]) -> None:
        await self._command(instance["uuid"], "cont")

    async def suspend(self, instance: dict[str, Any]) -> None:
        """Save the guest's RAM and device state to suspend.state, then end the process (libvirt managed save)."""
        uuid = instance["uuid"]
        state = self._dir(uuid) / "suspend.state"
        partial = state.with_suffix(".part")
        async with self._qmp(uuid) as client:
            await self._execute(client, "stop")
            await self._execute(client, "migrate", {"uri": f"exec:cat > {shlex.quote(str(partial))}"})
            deadline = time.monotonic() + MIGRATE_TIMEOUT
            while True:
                status = (await self._execute(client, "query-migrate")).get("status")
                if status == "completed":
                    break
                if status in ("failed", "cancelled") or time.monotonic() > deadline:
                    await self._execute(client, "cont")
                    partial.unlink(missing_ok=True)
                    raise DriverError(f"saving the state of server {uuid} failed (migration {status})")
                await asyncio.sleep(0.1)
        await self._kill(uuid)
        os.replace(partial, state)

    async def resume(self, instance: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        domain = self._load(uuid)
        state = self._dir(uuid) / "suspend.state"
        if not state.exists():
            raise DriverError(f"server {uuid} has no saved state to resume from")
        await self._start(domain, incoming=True)
        async with self._qmp(uuid) as client:
            await self._execute(client, "migrate-incoming", {"uri": f"exec:cat {shlex.quote(str(state))}"})
            deadline = time.monotonic() + MIGRATE_TIMEOUT
            while (status := (await self._execute(client, "query-status"))["status"]) == "inmigrate":
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            if status != "paused":
                raise DriverError(f"restoring server {uuid} failed: QEMU is {status}")
            await self._execute(client, "cont")
        state.unlink()

    async def get_info(self, instance: dict[str, Any]) -> InstanceInfo:
        uuid = instance["uuid"]
        try:
            domain = self._load(uuid)
        except DriverError:
            return InstanceInfo(power_state=states.NOSTATE)
        status = await self._status(uuid)
        power = states.SHUTDOWN if status is None else QMP_POWER_STATES.get(status, states.NOSTATE)
        pid = self.running_pid(uuid)
        cpu_ns = cpu_time_ns(pid) if pid is not None else 0
        return InstanceInfo(power_state=power, max_mem_kb=domain.memory_mb * 1024,
                            mem_kb=domain.memory_mb * 1024 if status else 0, num_cpu=domain.vcpus,
                            cpu_time_ns=cpu_ns)

    async def get_console_output(self, instance: dict[str, Any]) -> str:
        uuid = instance["uuid"]
        self._load(uuid)
        return await asyncio.to_thread(console_tail, self._dir(uuid) / "console.log")

    async def get_serial_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        return self._console(instance, "serial")

    async def get_vnc_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        return self._console(instance, "vnc")

    def _console(self, instance: dict[str, Any], kind: str) -> ConsoleEndpoint:
        uuid = instance["uuid"]
        self._load(uuid)
        path = console_socket(self._dir(uuid), kind)
        if self.running_pid(uuid) is None or not path.exists():
            raise DriverError(f"server {uuid} is not running: it has no {kind} console")
        return ConsoleEndpoint(host=self.host, port=0, internal_access_path=str(path))

    # ----- volumes and interfaces -------------------------------------------------------------------------
    async def attach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any], mountpoint: str) -> None:
        """Hot-plug the volume's file (blockdev-add + device_add virtio-blk-pci) and keep it in the definition."""
        uuid = instance["uuid"]
        domain = self._load(uuid)
        if domain.volume(mountpoint) is not None:
            raise DriverError(f"{mountpoint} is already in use on server {uuid}")
        disk = self._volume_disk(connection_info, _volume_node(mountpoint), _free_volume_slot(domain), mountpoint)
        if self.running_pid(uuid) is not None:
            async with self._qmp(uuid) as client:
                await self._execute(client, "blockdev-add", disk.blockdev())
                try:
                    await self._execute(client, "device_add", disk.device())
                except DriverError:
                    with contextlib.suppress(DriverError):
                        await self._execute(client, "blockdev-del", {"node-name": disk.node})
                    raise
        domain.disks.append(disk)
        self._save(domain)

    async def detach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any], mountpoint: str) -> None:
        """Unplug (device_del, wait for the guest to release it, blockdev-del) and drop it from the definition."""
        uuid = instance["uuid"]
        domain = self._load(uuid)
        disk = domain.volume(mountpoint)
        if disk is None:
            path = connection_info.get("data", {}).get("path")
            disk = next((d for d in domain.disks if d.node.startswith("vol-") and d.path == path), None)
        if disk is None:
            raise DriverError(f"no volume at {mountpoint} on server {uuid}")
        if self.running_pid(uuid) is not None:
            await self._unplug_device(uuid, disk.device_id, "blockdev-del", {"node-name": disk.node})
        domain.disks.remove(disk)
        self._save(domain)

    async def _unplug_device(self, uuid: str, device_id: str, backend_del: str, backend: dict[str, Any]) -> None:
        async with self._qmp(uuid) as client:
            listener = EventListener("DEVICE_DELETED", lambda ev: ev.get("data", {}).get("device") == device_id)
            with client.listen(listener):
                await self._execute(client, "device_del", {"id": device_id})
                try:
                    await asyncio.wait_for(listener.get(), DETACH_TIMEOUT)
                except TimeoutError:
                    raise DriverError(f"the guest of server {uuid} did not release {device_id} within "
                                      f"{DETACH_TIMEOUT:g} s")
            await self._execute(client, backend_del, backend)

    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        domain = self._load(uuid)
        used = {n.slot for n in domain.nics}
        slot = next((s for s in NIC_SLOTS if s not in used), None)
        if slot is None:
            raise DriverError(f"at most {len(NIC_SLOTS)} network interfaces per server")
        nic = _nic(vif, slot)
        await plug_tap(nic)
        if self.running_pid(uuid) is not None:
            async with self._qmp(uuid) as client:
                await self._execute(client, "netdev_add", {"type": "tap", "id": f"net-{nic.tap}", "ifname": nic.tap,
                                                           "script": "no", "downscript": "no"})
                try:
                    await self._execute(client, "device_add", nic.device())
                except DriverError:
                    with contextlib.suppress(DriverError):
                        await self._execute(client, "netdev_del", {"id": f"net-{nic.tap}"})
                    raise
        domain.nics.append(nic)
        self._save(domain)

    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        uuid = instance["uuid"]
        domain = self._load(uuid)
        nic = next((n for n in domain.nics if n.port_id == vif["id"]), None)
        if nic is None:
            raise DriverError(f"port {vif['id']} is not plugged into server {uuid}")
        if self.running_pid(uuid) is not None:
            await self._unplug_device(uuid, f"nic-{nic.tap}", "netdev_del", {"id": f"net-{nic.tap}"})
        await unplug_tap(nic.tap)
        domain.nics.remove(nic)
        self._save(domain)


def _nic(vif: dict[str, Any], slot: int) -> Nic:
    vif_type = vif.get("vif_type")
    if vif_type not in ("bridge", None, ""):
        detail = "its binding failed" if vif_type == "binding_failed" else f"vif_type {vif_type!r} is not supported"
        raise DriverError(f"cannot plug port {vif['id']}: {detail}")
    details = vif.get("vif_details") or {}
    bridge = details.get("bridge_name") or f"brq{vif['network_id'][:11]}"
    mtu = vif.get("mtu") or details.get("mtu")
    return Nic(port_id=vif["id"], mac=vif["mac_address"], bridge=bridge, slot=slot, mtu=int(mtu) if mtu else None)


def _volume_node(mountpoint: str | None) -> str:
    name = (mountpoint or "").rsplit("/", 1)[-1] or "volume"
    return f"vol-{''.join(c for c in name if c.isalnum())[:24]}"


def _free_volume_slot(domain: Domain) -> int:
    used = {d.slot for d in domain.disks}
    slot = next((s for s in VOLUME_SLOTS if s not in used), None)
    if slot is None:
        raise DriverError(f"at most {len(VOLUME_SLOTS)} volumes per server")
    return slot


