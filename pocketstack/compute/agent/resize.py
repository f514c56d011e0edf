"""Resize and cold migration on the compute hosts (Nova's prep_resize, resize_instance, finish_resize,
confirm_resize, revert_resize, finish_revert_resize): the agent's RPC methods, mixed into `ComputeAgent`.

The conductor placed the move; then destination (prep) -> source (power off, hand the disk over) -> destination
(start with the new flavor: VERIFY_RESIZE). Confirm runs on the source (its copy goes), revert on the destination
(its guest goes) and then on the source (the old guest runs again). A failure on either host puts the server back
on its source with its old flavor, claim and power state, a fault and an Error event; never stuck in a task."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states
from pocketstack.compute.agent.rpcapi import ComputeAgentAPI
from pocketstack.compute.agent.shelve import attached_volumes

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _power_on(instance: dict[str, Any]) -> bool:
    """A server that was stopped stays stopped through its move (Nova's old_vm_state)."""
    return (instance.get("system_metadata") or {}).get("old_vm_state") != states.STOPPED


class ResizeOperations:
    """The agent's move methods; `self` is the `ComputeAgent`."""

    _peers: ComputeAgentAPI | None = None

    def _agents(self: ComputeAgent) -> ComputeAgentAPI:
        if self._peers is None:
            self._peers = ComputeAgentAPI(self.transport)
        return self._peers

    def _work(self: ComputeAgent, what: str) -> Any:
        return tracing.span("WORK", f"{self.driver.hypervisor_type} driver: {what}", target="hypervisor")

    async def _power_state(self: ComputeAgent, instance: dict[str, Any] | None) -> int:
        if instance is None:
            return states.NOSTATE
        try:
            return (await self.driver.get_info(instance)).power_state
        except Exception:
            return states.NOSTATE

    async def prep_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str) -> None:
        """Destination: the scheduler's claim is here; ask the source to hand the server over."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        try:
            migration = await self.conductor.migration_get(migration_uuid)
            instance = await self.conductor.instance_get(instance_uuid)
            if instance["task_state"] != states.RESIZE_PREP:
                raise RuntimeError(f"instance {instance_uuid} is in task_state {instance['task_state']}, not "
                                   f"{states.RESIZE_PREP}")
        except Exception as exc:
            await self._move_failed_early(instance_uuid, migration_uuid, exc)
            await self._event(instance_uuid, ctx, "compute_prep_resize", started, "Error", _reason(exc))
            return
        await self._event(instance_uuid, ctx, "compute_prep_resize", started, "Success")
        await self._agents().resize_instance(migration["source_compute"], instance_uuid, migration_uuid)

    async def _move_failed_early(self: ComputeAgent, instance_uuid: str, migration_uuid: str,
                                 exc: Exception) -> None:
        log.warning("%s: move of %s failed: %s", self.host, instance_uuid, _reason(exc))
        with contextlib.suppress(Exception):
            instance = await self.conductor.instance_get(instance_uuid)
            await self.conductor.move_back(instance_uuid, migration_uuid, status="error",
                                           power_state=instance["power_state"], fault=_reason(exc))

    async def resize_instance(self: ComputeAgent, instance_uuid: str, migration_uuid: str) -> None:
        """Source: power the guest off and hand its disk to the destination (resize_migrating, then
        resize_migrated); then the destination finishes."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        instance = None
        async with self._locks[instance_uuid]:
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                migration = await self.conductor.migration_update(migration_uuid, "migrating")
                await self.conductor.instance_update(instance_uuid, {"task_state": states.RESIZE_MIGRATING},
                                                     expected_task_state=[states.RESIZE_PREP])
                async with self._work("migrate disk and power off"):
                    disk_info = await self.driver.migrate_disk_and_power_off(
                        instance, migration["dest_compute"], migration["new_flavor"])
                await self.conductor.migration_update(migration_uuid, "post-migrating")
                await self.conductor.instance_update(instance_uuid, {
                    "task_state": states.RESIZE_MIGRATED, "power_state": states.SHUTDOWN},
                    expected_task_state=[states.RESIZE_MIGRATING])
            except Exception as exc:
                log.warning("%s: resize of %s failed on the source: %s", self.host, instance_uuid, _reason(exc))
                if instance is not None:
                    with contextlib.suppress(Exception):
                        await self.driver.finish_revert_migration(instance, instance["network_info"],
                                                                  attached_volumes(instance), _power_on(instance))
                with contextlib.suppress(Exception):
                    await self.conductor.move_back(instance_uuid, migration_uuid, status="error",
                                                   power_state=await self._power_state(instance),
                                                   fault=_reason(exc))
                await self._event(instance_uuid, ctx, "compute_resize_instance", started, "Error", _reason(exc))
                return
        await self._event(instance_uuid, ctx, "compute_resize_instance", started, "Success")
        await self._agents().finish_resize(migration["dest_compute"], instance_uuid, migration_uuid, disk_info)

    async def finish_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str,
                            disk_info: dict[str, Any]) -> None:
        """Destination: the server's new flavor and host recorded, its ports bound here, the guest started from
        the disk the source handed over: VERIFY_RESIZE. On failure the source takes it back."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        instance: dict[str, Any] | None = None
        source = None
        async with self._locks[instance_uuid]:
            try:
                migration = await self.conductor.migration_get(migration_uuid)
                source = migration["source_compute"]
                instance = await self.conductor.move_finish(instance_uuid, migration_uuid)
                network_info = await self._rebind_ports(instance)
                instance["network_info"] = network_info
                await self.conductor.instance_update(instance_uuid, {"network_info": network_info},
                                                     expected_task_state=[states.RESIZE_FINISH])
                async with self._work("finish migration"):
                    await self.driver.finish_migration(instance, disk_info, network_info, attached_volumes(instance),
                                                       _power_on(instance))
                await self.conductor.move_done(instance_uuid, migration_uuid, await self._power_state(instance))
            except Exception as exc:
                reason = _reason(exc)
                log.warning("%s: resize of %s failed on the destination: %s", self.host, instance_uuid, reason)
                if instance is not None:  # the new guest goes; the source's copy stays (on the same host too)
                    with contextlib.suppress(Exception):
                        await self.driver.destroy(instance, [])
                await self._event(instance_uuid, ctx, "compute_finish_resize", started, "Error", reason)
                if source is None:
                    await self._move_failed_early(instance_uuid, migration_uuid, exc)
                else:
                    await self._agents().rollback_resize(source, instance_uuid, migration_uuid, reason)
                return
        await self._event(instance_uuid, ctx, "compute_finish_resize", started, "Success")

    async def rollback_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str, reason: str) -> None:
        """Source, after the destination failed: the old guest runs again, the server is back here with its old
        flavor and claim, a fault names the failure; the migration errors."""
        async with self._locks[instance_uuid]:
            await self._restore_source(instance_uuid, migration_uuid, "error", reason)

    async def _restore_source(self: ComputeAgent, instance_uuid: str, migration_uuid: str, status: str,
                              fault: str | None) -> bool:
        instance = None
        try:
            instance = await self.conductor.instance_get(instance_uuid)
            if instance["deleted"] or instance["task_state"] == states.DELETING:  # nothing to run again: drop it
                await self.driver.confirm_migration(instance)
                await self.conductor.move_back(instance_uuid, migration_uuid, status="error",
                                               power_state=states.NOSTATE, fault=fault)
                return False
            network_info = await self._rebind_ports(instance)
            async with self._work("finish revert migration"):
                await self.driver.finish_revert_migration(instance, network_info, attached_volumes(instance),
                                                          _power_on(instance))
            await self.conductor.instance_update(instance_uuid, {"network_info": network_info})
            await self.conductor.move_back(instance_uuid, migration_uuid, status=status,
                                           power_state=await self._power_state(instance), fault=fault)
            return True
        except Exception as exc:
            log.warning("%s: could not restore %s on its source: %s", self.host, instance_uuid, _reason(exc))
            with contextlib.suppress(Exception):
                await self.conductor.move_back(instance_uuid, migration_uuid, status="error",
                                               power_state=await self._power_state(instance),
                                               fault=f"{fault + '; ' if fault else ''}{_reason(exc)}", error=True)
            return False

    async def confirm_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str) -> None:
        """Source: what it kept of the moved server goes, and with it the old claim."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                async with self._work("confirm migration"):
                    await self.driver.confirm_migration(instance)
                await self.conductor.move_confirm(instance_uuid, migration_uuid)
            except Exception as exc:
                log.warning("%s: confirming the resize of %s failed: %s", self.host, instance_uuid, _reason(exc))
                with contextlib.suppress(Exception):
                    await self.conductor.migration_update(migration_uuid, "error")
                with contextlib.suppress(Exception):
                    await self.conductor.instance_update(instance_uuid, {
                        "vm_state": states.ERROR, "fault": {"code": 500, "message": _reason(exc)}})
                await self._event(instance_uuid, ctx, "compute_confirm_resize", started, "Error", _reason(exc))
                return
        await self._event(instance_uuid, ctx, "compute_confirm_resize", started, "Success")

    async def revert_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str) -> None:
        """Destination: the moved guest goes (ports stay the server's), then the source takes the server back."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            try:
                migration = await self.conductor.migration_get(migration_uuid)
                instance = await self.conductor.instance_get(instance_uuid)
                async with self._work("destroy the moved guest (revert)"):
                    await self.driver.destroy(instance, [])
            except Exception as exc:
                log.warning("%s: reverting the resize of %s failed: %s", self.host, instance_uuid, _reason(exc))
                with contextlib.suppress(Exception):
                    await self.conductor.migration_update(migration_uuid, "finished")
                with contextlib.suppress(Exception):
                    await self.conductor.instance_update(instance_uuid, {
                        "task_state": None, "fault": {"code": 500, "message": _reason(exc)}},
                        expected_task_state=[states.RESIZE_REVERTING])
                await self._event(instance_uuid, ctx, "compute_revert_resize", started, "Error", _reason(exc))
                return
        await self._event(instance_uuid, ctx, "compute_revert_resize", started, "Success")
        await self._agents().finish_revert_resize(migration["source_compute"], instance_uuid, migration_uuid)

    async def finish_revert_resize(self: ComputeAgent, instance_uuid: str, migration_uuid: str) -> None:
        """Source: the old guest runs again with the old flavor; the server is ACTIVE (or SHUTOFF) here."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            ok = await self._restore_source(instance_uuid, migration_uuid, "reverted", None)
        await self._event(instance_uuid, ctx, "compute_finish_revert_resize", started, "Success" if ok else "Error")
