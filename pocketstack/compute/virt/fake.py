"""The fake driver: instant, resources from config; tests can make it fail on purpose.

It keeps what a real hypervisor would (power state, console, attached volumes and interfaces) so every API path
behaves as with QEMU, only without a guest. What it holds is written to `DATA_DIR/fake-hosts/HOST.json` after
each change and read again when its host starts, so its "guests" survive a restart of the cloud as QEMU's do
(rather than all turning SHUTOFF at the next power-state sync).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
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
    fail_finish_migration_on: dict[str, str] = {}  # and for the destination of a resize or migration
    slow_migration_on: dict[str, float] = {}  # host -> seconds the source of a move takes to hand its disk over
    slow_snapshot_on: dict[str, float] = {}  # host -> seconds a snapshot takes (tests of what happens meanwhile)
    SNAPSHOT_BYTES = 64 * 1024  # the size of the raw disk a fake snapshot uploads

    def __init__(self, host: str, settings: Settings) -> None:
        super().__init__(host)
        self.settings = settings
        self.instances: dict[str, FakeInstance] = {}
        self.resize_sources: dict[str, FakeInstance] = {}  # guests moved away, kept until confirm or revert
        self.state_file = Path(settings.data_dir) / "fake-hosts" / f"{host}.json"

    async def init_host(self) -> None:
        """The guests this host held when the cloud last stopped."""
        try:
            saved = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        for kind, target in (("instances", self.instances), ("resize_sources", self.resize_sources)):
            target.update({uuid: FakeInstance(**data) for uuid, data in saved.get(kind, {}).items()})

    def _save(self) -> None:
        """Write what the host holds (temp file + rename: a crash leaves the previous state, never half of one)."""
        data = {"instances": {u: asdict(f) for u, f in self.instances.items()},
                "resize_sources": {u: asdict(f) for u, f in self.resize_sources.items()}}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps(data))
        os.replace(temp, self.state_file)

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

    async def extend_volume(self, instance: dict[str, Any], connection_info: dict[str, Any], mountpoint: str,
                            new_size: int) -> None:
        fake = self._get(instance)
        if mountpoint not in fake.volumes:
            raise DriverError(f"no volume at {mountpoint} on server {instance['uuid']}")
        fake.volumes[mountpoint] = {**fake.volumes[mountpoint], "size_bytes": new_size}
        fake.console.append(f"fake: {mountpoint} is now {new_size} bytes")

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

    async def migrate_disk_and_power_off(self, instance: dict[str, Any], dest_host: str,
                                         flavor: dict[str, Any]) -> dict[str, Any]:
        """The guest powered off and set aside; its record travels in the disk info."""
        fake = self._get(instance)
        if self.slow_migration_on.get(self.host):
            await asyncio.sleep(self.slow_migration_on[self.host])
        fake.power_state = states.SHUTDOWN
        fake.console.append(f"fake: powered off, disk handed to {dest_host}")
        self.resize_sources[fake.uuid] = self.instances.pop(fake.uuid)
        return {"fake": {"console": list(fake.console), "volumes": dict(fake.volumes)}}

    async def finish_migration(self, instance: dict[str, Any], disk_info: dict[str, Any],
                               network_info: list[dict[str, Any]], block_device_info: dict[str, Any] | None,
                               power_on: bool) -> None:
        message = self.fail_finish_migration_on.get(self.host)
        if message:
            raise DriverError(message)
        moved = disk_info.get("fake") or {}
        fake = FakeInstance(instance["uuid"], instance["display_name"],
                            states.RUNNING if power_on else states.SHUTDOWN, instance["vcpus"], instance["memory_mb"],
                            console=list(moved.get("console") or []), volumes=dict(moved.get("volumes") or {}))
        fake.interfaces = {vif["id"]: vif for vif in network_info}
        fake.console.append(f"fake: started on {self.host} with {instance['vcpus']} vCPUs, "
                            f"{instance['memory_mb']} MiB")
        self.instances[fake.uuid] = fake

    async def confirm_migration(self, instance: dict[str, Any]) -> None:
        self.resize_sources.pop(instance["uuid"], None)

    async def finish_revert_migration(self, instance: dict[str, Any], network_info: list[dict[str, Any]],
                                      block_device_info: dict[str, Any] | None, power_on: bool) -> None:
        fake = self.resize_sources.pop(instance["uuid"], None)
        if fake is None:
            if instance["uuid"] in self.instances:  # never moved away: left as it is
                return
            raise DriverError(f"instance {instance['uuid']} has no copy kept on host {self.host}")
        if power_on:
            fake.power_state = states.RUNNING
            fake.console.append("fake: powered on again (reverted)")
        self.instances[fake.uuid] = fake

    async def list_instances(self) -> list[str]:
        return list(self.instances)

    async def get_available_resource(self) -> HostResources:
        cfg = self.settings.compute
        return HostResources(vcpus=cfg.fake_vcpus, memory_mb=cfg.fake_memory_mb, local_gb=cfg.fake_disk_gb,
                             hypervisor_type="fake", hypervisor_hostname=self.host, hypervisor_version=1000,
                             host_ip=host_ip())


def _saving(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def run(self: FakeDriver, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._save()
    return run


# the methods that change what a host holds: each is followed by a save
for _name in ("spawn", "destroy", "power_off", "power_on", "reboot", "pause", "unpause", "suspend", "resume",
              "attach_volume", "detach_volume", "extend_volume", "attach_interface", "detach_interface", "snapshot",
              "rescue", "unrescue", "migrate_disk_and_power_off", "finish_migration", "confirm_migration",
              "finish_revert_migration"):
    setattr(FakeDriver, _name, _saving(getattr(FakeDriver, _name)))
