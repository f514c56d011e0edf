"""The hypervisor driver interface the compute agent drives (Nova's ComputeDriver, reduced to what we use)."""

from __future__ import annotations

import contextlib
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pocketstack.compute.virt.virtapi import VirtAPI


@dataclass
class InstanceInfo:
    power_state: int
    max_mem_kb: int = 0
    mem_kb: int = 0
    num_cpu: int = 0
    cpu_time_ns: int = 0


ATTACH_INTERFACE = "COMPUTE_NET_ATTACH_INTERFACE"

# Moves the server's task_state on from where the agent has it (image_snapshot/backup -> image_pending_upload).
TaskStateUpdate = Callable[[str], Awaitable[None]]


@dataclass
class SnapshotFile:
    """A driver's copy of a server's root disk, flattened (no backing file), for the image service."""

    path: Path
    disk_format: str  # raw or qcow2
    container_format: str = "bare"


def image_type_trait(disk_format: str) -> str:
    """The trait of a host whose driver boots images of `disk_format` (placement's COMPUTE_IMAGE_TYPE_*)."""
    return f"COMPUTE_IMAGE_TYPE_{disk_format.upper()}"


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do (Nova's driver `capabilities`). The agent reports them as traits of its compute node;
    the scheduler keeps images off hosts that cannot boot their disk format, and the compute API refuses an
    operation the server's host cannot do before it asks the host."""

    image_types: frozenset[str] = frozenset({"raw"})  # disk formats it boots
    attach_interface: bool = False  # hot-plugs a port into a running guest

    def traits(self) -> list[str]:
        traits = [image_type_trait(fmt) for fmt in self.image_types]
        if self.attach_interface:
            traits.append(ATTACH_INTERFACE)
        return sorted(traits)


@dataclass
class HostResources:
    """What `get_available_resource` reports; the scheduler sizes claims against it."""

    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_hostname: str
    hypervisor_version: int = 0
    cpu_arch: str = "x86_64"
    host_ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)  # the driver's capabilities; the agent fills them in


def host_uptime(proc: Path = Path("/proc")) -> str:
    """` 08:32:11 up 3 days,  4:05,  0 users,  load average: 0.20, 0.12, 0.14`, from /proc/uptime and loadavg."""
    seconds = int(float((proc / "uptime").read_text().split()[0]))
    load = (proc / "loadavg").read_text().split()[:3]
    days, rest = divmod(seconds, 86400)
    hours, minutes = divmod(rest // 60, 60)
    since = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    now = time.strftime("%H:%M:%S")
    return f" {now} up {since}{hours:2d}:{minutes:02d},  0 users,  load average: {', '.join(load)}"


def host_ip() -> str:
    """The address this host reaches others from (Nova's `my_ip`; a namespaced host's own); no packet is sent."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]
    return "127.0.0.1"


class DriverError(Exception):
    """A driver operation failed; the message ends up in the server's fault."""


@dataclass(frozen=True)
class ConsoleEndpoint:
    """Where a guest's console listens (Nova's ConsoleSerial/ConsoleVNC): a TCP `host:port`, or with port 0 the
    unix socket `internal_access_path` on the agent's host."""

    host: str
    port: int
    internal_access_path: str | None = None


class ComputeDriver(ABC):
    hypervisor_type: str = "unknown"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, host: str) -> None:
        self.host = host
        self.virtapi: VirtAPI | None = None  # set by the agent: waiting for external events

    async def init_host(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Prepare the host (directories, probes); called once when the agent starts."""

    @abstractmethod
    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any], network_info: list[dict[str, Any]],
                    block_device_info: dict[str, Any] | None = None) -> None: ...

    @abstractmethod
    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    async def power_off(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def power_on(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def reboot(self, instance: dict[str, Any], hard: bool) -> None: ...

    @abstractmethod
    async def pause(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def unpause(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def suspend(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def resume(self, instance: dict[str, Any]) -> None: ...

    @abstractmethod
    async def get_info(self, instance: dict[str, Any]) -> InstanceInfo: ...

    @abstractmethod
    async def get_console_output(self, instance: dict[str, Any]) -> str: ...

    @abstractmethod
    async def attach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any],
                            mountpoint: str) -> None: ...

    @abstractmethod
    async def detach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any],
                            mountpoint: str) -> None: ...

    @abstractmethod
    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None: ...

    @abstractmethod
    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None: ...

    @abstractmethod
    async def snapshot(self, instance: dict[str, Any], directory: Path,
                       update_task_state: TaskStateUpdate) -> SnapshotFile:
        """A consistent copy of the server's root disk written under `directory` (Nova's driver snapshot, minus the
        upload, which the agent does). Calls `update_task_state(image_pending_upload)` once it copies; the server
        is left in the power state it had."""

    @abstractmethod
    async def rescue(self, instance: dict[str, Any], image_meta: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None:
        """Boot the server from the rescue image `image_meta`, its own root disk attached as a second disk."""

    @abstractmethod
    async def unrescue(self, instance: dict[str, Any]) -> None:
        """Boot the server from its own root disk again, the rescue disk discarded."""

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """UUIDs of the instances the hypervisor knows on this host."""

    @abstractmethod
    async def get_available_resource(self) -> HostResources: ...

    async def get_serial_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        """Where the guest's serial port is served (the serial console proxy connects there)."""
        raise NotImplementedError

    async def get_vnc_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        """Where the guest's VNC server listens (the noVNC proxy connects there)."""
        raise NotImplementedError

    async def get_host_uptime(self) -> str:
        """The host's uptime as `uptime` prints it (`os-hypervisors/{id}/uptime`): both drivers run their guests
        (real or simulated) on this machine, so both report its uptime and load."""
        return host_uptime()
