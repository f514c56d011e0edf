"""Rescue and unrescue on a compute host (Nova's rescue_instance, unrescue_instance), mixed into `ComputeAgent`."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")


class RescueOperations:
    """The agent's rescue methods; `self` is the `ComputeAgent`."""

    async def rescue_instance(self: ComputeAgent, instance_uuid: str, image_id: str) -> None:
        """rescuing -> vm_state rescued: the guest boots `image_id`, its own disk attached second. On failure the
        server is in ERROR with a fault, as Nova's."""
        await self._rescue_step(instance_uuid, "rescue", image_id)

    async def unrescue_instance(self: ComputeAgent, instance_uuid: str) -> None:
        """unrescuing -> vm_state active: the guest boots its own disk again."""
        await self._rescue_step(instance_uuid, "unrescue", None)

    async def _rescue_step(self: ComputeAgent, instance_uuid: str, action: str, image_id: str | None) -> None:
        started = utcnow()
        ctx = get_current() or RequestContext()
        event = f"compute_{action}_instance"
        task, vm_state = ((states.RESCUING, states.RESCUED) if action == "rescue"
                          else (states.UNRESCUING, states.ACTIVE))
        async with self._locks[instance_uuid]:
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: {action}",
                                        target="hypervisor"):
                    if image_id is not None:
                        image_meta = await self.image.get_image(image_id)
                        await self.driver.rescue(instance, image_meta, instance["network_info"])
                    else:
                        await self.driver.unrescue(instance)
                info = await self.driver.get_info(instance)
                await self.conductor.instance_update(instance_uuid, {
                    "vm_state": vm_state, "task_state": None, "power_state": info.power_state},
                    expected_task_state=[task])
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.warning("%s: %s of %s failed: %s", self.host, action, instance_uuid, reason)
                with contextlib.suppress(Exception):
                    await self.conductor.instance_update(instance_uuid, {
                        "vm_state": states.ERROR, "task_state": None, "fault": {"code": 500, "message": reason}},
                        expected_task_state=[task])
                await self._event(instance_uuid, ctx, event, started, "Error", reason)
                return
        await self._event(instance_uuid, ctx, event, started, "Success")
