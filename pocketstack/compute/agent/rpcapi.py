"""Client side of a compute agent's RPC interface (topic `compute.<host>`)."""

from __future__ import annotations

from typing import Any

from pocketstack.common.rpc import RPCAPI


class ComputeAgentAPI(RPCAPI):
    topic = "compute"
    namespace = "compute"
    version = "1.7"  # 1.2: build_and_run_instance without the request spec (the agent reads the instance)
    # 1.3: snapshot_instance (createImage, createBackup); 1.4: shelve, shelve offload, unshelve
    # 1.5: rebuild_instance, rescue_instance, unrescue_instance; 1.7: get_console
    steps = {("cast", "build_and_run_instance"): "12"}

    async def build_and_run_instance(self, host: str, instance_uuid: str) -> None:
        """FLOW.md step 12: the conductor hands the build to the chosen host (CAST)."""
        await self.prepare(server=host, version="1.2").cast("build_and_run_instance",
                                                            instance_uuid=instance_uuid)

    async def terminate_instance(self, host: str, instance_uuid: str) -> None:
        await self.prepare(server=host).cast("terminate_instance", instance_uuid=instance_uuid)

    async def power_action(self, host: str, instance_uuid: str, action: str) -> None:
        """stop, start, reboot, reboot_hard, pause, unpause, suspend, resume (CAST)."""
        await self.prepare(server=host).cast("power_action", instance_uuid=instance_uuid, action=action)

    async def snapshot_instance(self, host: str, instance_uuid: str, image_id: str, *,
                                backup_type: str | None = None, rotation: int | None = None) -> None:
        """Copy the server's disk into the queued image `image_id`; a backup with `backup_type` (CAST, 1.3)."""
        await self.prepare(server=host, version="1.3").cast("snapshot_instance", instance_uuid=instance_uuid,
                                                            image_id=image_id, backup_type=backup_type,
                                                            rotation=rotation)

    async def shelve_instance(self, host: str, instance_uuid: str, image_id: str | None, offload: bool) -> None:
        """Save the disk into the queued image `image_id`, power off, shelved; offloaded at once with `offload`
        (CAST, 1.4)."""
        await self.prepare(server=host, version="1.4").cast("shelve_instance", instance_uuid=instance_uuid,
                                                            image_id=image_id, offload=offload)

    async def shelve_offload_instance(self, host: str, instance_uuid: str) -> None:
        """Destroy a shelved server's guest and leave the host (CAST, 1.4)."""
        await self.prepare(server=host, version="1.4").cast("shelve_offload_instance", instance_uuid=instance_uuid)

    async def unshelve_instance(self, host: str, instance_uuid: str) -> None:
        """Run a shelved server again on `host` (CAST, 1.4): its own, or the one the conductor chose."""
        await self.prepare(server=host, version="1.4").cast("unshelve_instance", instance_uuid=instance_uuid)

    async def rebuild_instance(self, host: str, instance_uuid: str, image_id: str, *,
                               preserve_ephemeral: bool = False) -> None:
        """Spawn the server's guest again from `image_id` on the same ports and volumes (CAST, 1.5)."""
        await self.prepare(server=host, version="1.5").cast("rebuild_instance", instance_uuid=instance_uuid,
                                                            image_id=image_id, preserve_ephemeral=preserve_ephemeral)

    async def rescue_instance(self, host: str, instance_uuid: str, image_id: str) -> None:
        """Boot the server from the rescue image `image_id`, its own disk second (CAST, 1.5)."""
        await self.prepare(server=host, version="1.5").cast("rescue_instance", instance_uuid=instance_uuid,
                                                            image_id=image_id)

    async def unrescue_instance(self, host: str, instance_uuid: str) -> None:
        """Boot a rescued server from its own disk again (CAST, 1.5)."""
        await self.prepare(server=host, version="1.5").cast("unrescue_instance", instance_uuid=instance_uuid)

    async def get_console_output(self, host: str, instance_uuid: str, length: int | None) -> str:
        return await self.prepare(server=host).call("get_console_output", instance_uuid=instance_uuid,
                                                    length=length)

    async def get_console(self, host: str, instance_uuid: str, console_type: str) -> dict[str, Any] | None:
        """Where the guest's `console_type` console (serial, novnc) listens; None: the driver has none (CALL, 1.7)."""
        return await self.prepare(server=host, version="1.7").call("get_console", instance_uuid=instance_uuid,
                                                                   console_type=console_type)

    async def get_host_uptime(self, host: str) -> str:
        """The uptime of the agent's host, as `uptime` prints it (CALL)."""
        return await self.prepare(server=host).call("get_host_uptime")

    async def attach_interface(self, host: str, instance_uuid: str, network_id: str | None, port_id: str | None,
                               fixed_ip: str | None) -> dict[str, Any]:
        return await self.prepare(server=host).call("attach_interface", instance_uuid=instance_uuid,
                                                    network_id=network_id, port_id=port_id, fixed_ip=fixed_ip)

    async def detach_interface(self, host: str, instance_uuid: str, port_id: str) -> None:
        await self.prepare(server=host).call("detach_interface", instance_uuid=instance_uuid, port_id=port_id)

    async def attach_volume(self, host: str, instance_uuid: str, bdm_id: int) -> None:
        """Attach the volume of a reserved block device mapping to the running server (CAST)."""
        await self.prepare(server=host, version="1.1").cast("attach_volume", instance_uuid=instance_uuid,
                                                            bdm_id=bdm_id)

    async def detach_volume(self, host: str, instance_uuid: str, volume_id: str) -> None:
        await self.prepare(server=host, version="1.1").cast("detach_volume", instance_uuid=instance_uuid,
                                                            volume_id=volume_id)

    async def external_instance_event(self, host: str, instance_uuid: str, name: str, tag: str | None,
                                      status: str) -> None:
        await self.prepare(server=host).cast("external_instance_event", instance_uuid=instance_uuid, name=name,
                                             tag=tag, status=status)
