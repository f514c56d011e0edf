"""The fake driver: instant, in memory, resources from config; tests can make it fail on purpose.

It keeps what a real hypervisor would (power state, console, attached volumes and interfaces) so every API path
behaves as with QEMU, only without a guest.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from pocketstack.settings import Settings


@dataclass
class FakeInstance:
    uuid: str
    name: str
    power_state: int
    vcpus: int
    memory_mb: int
    console: list[str] = field(default_factory=list)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeDriver(ComputeDriver):
    hypervisor_type = "fake"
    # it reads no image, so it "boots" every disk format Glance accepts
    capabilities = Capabilities(image_types=frozenset({"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2",
                                                       "vdi", "iso", "ploop"}),
                                attach_interface=True)

    # Hosts whose next spawns fail, for reschedule tests: host -> message. Class level so a test reaches every
    # agent of an in-process cloud.
    fail_spawn_on: dict[str, str] = {}
    fail_attach_on: dict[str, str] = {}  # the same for volume attaches (rollback tests)
    fail_snapshot_on: dict[str, str] = {}  # and for snapshots (createImage, createBackup)
    slow_snapshot_on: dict[str, float] = {}  # host -> seconds a snapshot takes (tests of what happens meanwhile)
    SNAPSHOT_BYTES = 64 * 1024  # the size of the raw disk a fake snapshot uploads

    def __init__(self, host: str, settings: Settings) -> None:
        super().__init__(host)
        self.settings = settings
        self.instances: dict[str, FakeInstance] = {}

    def _get(self, instance: dict[str, Any]) -> FakeInstance:
        fake = self.instances.get(instance["uuid"])
        if fake is None:
            raise DriverError(f"instance {instance['uuid']} is not on host {self.host}")
        return fake

    async def spawn(self, instance: dict[str, Any], image_meta: dict[str, Any], network_info: list[dict[str, Any]],
                    block_device_info: dict[str, Any] | None = None) -> None:
        message = self.fail_spawn_on.get(self.host)
        if message:
            raise DriverError(message)
        if self.settings.compute.fake_spawn_seconds:  # a guest that takes time to start (fault tests)
            await asyncio.sleep(self.settings.compute.fake_spawn_seconds)
        fake = FakeInstance(instance["uuid"], instance["display_name"], states.RUNNING, instance["vcpus"],
                            instance["memory_mb"])
        volumes = (block_device_info or {}).get("block_device_mapping", [])
        root = next((v for v in volumes if v["boot_index"] == 0), None)
        source = f"volume {root['volume_id']}" if root else f"image {image_meta.get('name')}"
        fake.console.append(f"fake: booting {instance['display_name']} from {source}")
        for volume in volumes:
            fake.volumes[volume["mount_device"]] = volume["connection_info"]
        for vif in network_info:
            ips = ", ".join(ip["ip_address"] for ip in vif.get("fixed_ips", []))
            fake.console.append(f"fake: eth{len(fake.interfaces)} {vif.get('mac_address')} {ips}")
            fake.interfaces[vif["id"]] = vif
        fake.console.append(f"{instance['hostname']} login:")
        self.instances[instance["uuid"]] = fake

    async def destroy(self, instance: dict[str, Any], network_info: list[dict[str, Any]]) -> None:
        self.instances.pop(instance["uuid"], None)

    async def _set_power(self, instance: dict[str, Any], state: int, line: str) -> None:
        fake = self._get(instance)
        fake.power_state = state
        fake.console.append(line)

    async def power_off(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.SHUTDOWN, "fake: powered off")

    async def power_on(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.RUNNING, "fake: powered on")

    async def reboot(self, instance: dict[str, Any], hard: bool) -> None:
        await self._set_power(instance, states.RUNNING, f"fake: {'hard' if hard else 'soft'} reboot")

    async def pause(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.PAUSED_POWER, "fake: paused")

    async def unpause(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.RUNNING, "fake: unpaused")

    async def suspend(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.SUSPENDED_POWER, "fake: suspended")

    async def resume(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.RUNNING, "fake: resumed")

    async def get_info(self, instance: dict[str, Any]) -> InstanceInfo:
        fake = self.instances.get(instance["uuid"])
        if fake is None:
            return InstanceInfo(power_state=states.NOSTATE)
        return InstanceInfo(power_state=fake.power_state, max_mem_kb=fake.memory_mb * 1024,
                            mem_kb=fake.memory_mb * 1024, num_cpu=fake.vcpus)

    async def get_console_output(self, instance: dict[str, Any]) -> str:
        return "\n".join(self._get(instance).console) + "\n"

    async def get_serial_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        """What Nova's fake driver answers: a console nothing listens on (the fake guest has no serial port)."""
        self._get(instance)
        return ConsoleEndpoint(host="fake", port=6969)

    async def get_vnc_console(self, instance: dict[str, Any]) -> ConsoleEndpoint:
        """What Nova's fake driver answers: a VNC server nothing runs."""
        self._get(instance)
        return ConsoleEndpoint(host="fakevncconsole.com", port=6969, internal_access_path="FAKE")

    async def attach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any], mountpoint: str) -> None:
        fake = self._get(instance)
        message = self.fail_attach_on.get(self.host)
        if message:
            raise DriverError(message)
        fake.volumes[mountpoint] = connection_info

    async def detach_volume(self, instance: dict[str, Any], connection_info: dict[str, Any], mountpoint: str) -> None:
        self._get(instance).volumes.pop(mountpoint, None)

    async def attach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        self._get(instance).interfaces[vif["id"]] = vif

    async def detach_interface(self, instance: dict[str, Any], vif: dict[str, Any]) -> None:
        self._get(instance).interfaces.pop(vif["id"], None)

    async def snapshot(self, instance: dict[str, Any], directory: Path,
                       update_task_state: TaskStateUpdate) -> SnapshotFile:
        """A small raw disk naming the server and its image: real bytes, so the image becomes active."""
        fake = self._get(instance)
        await update_task_state(states.IMAGE_PENDING_UPLOAD)
        if self.slow_snapshot_on.get(self.host):
            await asyncio.sleep(self.slow_snapshot_on[self.host])
        message = self.fail_snapshot_on.get(self.host)
        if message:
            raise DriverError(message)
        label = f"pocketstack fake disk of server {fake.uuid} (image {instance.get('image_ref') or 'none'})\n"
        path = directory / "disk.raw"
        await asyncio.to_thread(path.write_bytes, label.encode().ljust(self.SNAPSHOT_BYTES, b"\0"))
        fake.console.append("fake: disk snapshot taken")
        return SnapshotFile(path, "raw")

    async def rescue(self, instance: dict[str, Any], image_meta: dict[str, Any],
                     network_info: list[dict[str, Any]]) -> None:
        fake = self._get(instance)
        fake.power_state = states.RUNNING
        fake.console.append(f"fake: rescue boot from image {image_meta.get('name')}, own disk second")

    async def unrescue(self, instance: dict[str, Any]) -> None:
        await self._set_power(instance, states.RUNNING, "fake: unrescued, booting its own disk")

    async def list_instances(self) -> list[str]:
        return list(self.instances)

    async def get_available_resource(self) -> HostResources:
        cfg = self.settings.compute
        return HostResources(vcpus=cfg.fake_vcpus, memory_mb=cfg.fake_memory_mb, local_gb=cfg.fake_disk_gb,
                             hypervisor_type="fake", hypervisor_hostname=self.host, hypervisor_version=1000,
                             host_ip=host_ip())
