"""Rebuild on a compute host (Nova's rebuild_instance): the guest destroyed and spawned again from the image the
API recorded, on the same ports and volumes; mixed into `ComputeAgent`."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states
from pocketstack.compute.agent.shelve import attached_volumes

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")

REBUILD_TASKS: list[str | None] = [states.REBUILDING, states.REBUILD_BLOCK_DEVICE_MAPPING, states.REBUILD_SPAWNING]


class RebuildOperations:
    """The agent's rebuild method; `self` is the `ComputeAgent`."""

    async def rebuild_instance(self: ComputeAgent, instance_uuid: str, image_id: str,
                               preserve_ephemeral: bool = False) -> None:
        """rebuilding -> rebuild_block_device_mapping -> rebuild_spawning -> None: the guest destroyed (its ports
        stay bound, its volumes attached) and spawned from `image_id`; a stopped server is stopped again after.
        `preserve_ephemeral` asks to keep an ephemeral disk, which neither driver has. On failure: ERROR."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        event = "compute_rebuild_instance"
        async with self._locks[instance_uuid]:
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                was_stopped = instance["vm_state"] == states.STOPPED
                image_meta = await self.image.get_image(image_id) if instance["image_ref"] else {}
                async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: destroy (rebuild)",
                                        target="hypervisor"):
                    await self.driver.destroy(instance, instance["network_info"])
                await self._progress(instance, states.REBUILD_BLOCK_DEVICE_MAPPING, [states.REBUILDING])
                block_device_info = attached_volumes(instance)
                await self._progress(instance, states.REBUILD_SPAWNING, [states.REBUILD_BLOCK_DEVICE_MAPPING])
                # the ports are set up already: the guest need not wait for network-vif-plugged again
                network_info = [{**vif, "active": True} for vif in instance["network_info"]]
                async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: spawn (rebuild)",
                                        target="hypervisor"):
                    await self.driver.spawn(instance, image_meta, network_info, block_device_info)
                    if was_stopped:
                        await self.driver.power_off(instance)
                info = await self.driver.get_info(instance)
                await self.conductor.instance_update(instance_uuid, {
                    "vm_state": states.STOPPED if was_stopped else states.ACTIVE, "task_state": None,
                    "power_state": info.power_state, "launched_at": utcnow().isoformat()},
                    expected_task_state=[states.REBUILD_SPAWNING])
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("%s: rebuild of %s failed: %s", self.host, instance_uuid, reason)
                with contextlib.suppress(Exception):
                    await self.conductor.instance_update(instance_uuid, {
                        "vm_state": states.ERROR, "task_state": None, "fault": {"code": 500, "message": reason}},
                        expected_task_state=REBUILD_TASKS)
                await self._event(instance_uuid, ctx, event, started, "Error", reason)
                return
        await self._event(instance_uuid, ctx, event, started, "Success")


