"""Shelve, shelve offload and unshelve on a compute host (Nova's shelve_instance, shelve_offload_instance,
unshelve_instance): the agent's RPC methods, mixed into `ComputeAgent`.

Shelving saves the root disk as the image the API made (through the driver's snapshot), powers the guest off and
marks the server `shelved`; offloading destroys the guest and leaves its host (the conductor drops the claim when
the server becomes `shelved_offloaded`); unshelving powers a shelved guest on again, or spawns an offloaded one
from its shelve image on the host the scheduler chose, then deletes that image."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")

# the snapshot's task states as a shelve names them
SHELVE_TASK = {states.IMAGE_PENDING_UPLOAD: states.SHELVING_IMAGE_PENDING_UPLOAD,
               states.IMAGE_UPLOADING: states.SHELVING_IMAGE_UPLOADING}
SHELVE_TASKS: list[str | None] = [states.SHELVING, states.SHELVING_IMAGE_PENDING_UPLOAD,
                                  states.SHELVING_IMAGE_UPLOADING, states.SHELVING_OFFLOADING]
SHELVED_KEYS = ("shelved_at", "shelved_image_id", "shelved_host")


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def attached_volumes(instance: Any) -> dict[str, Any] | None:
    """The driver's block_device_info from the attachments the server kept (offloaded, or rebuilt)."""
    mapping = [{"connection_info": b["connection_info"], "mount_device": b["device_name"],
                "boot_index": b["boot_index"], "delete_on_termination": b["delete_on_termination"],
                "volume_id": b["volume_id"]}
               for b in instance["block_device_mapping"] if b["destination_type"] == "volume" and b["connection_info"]]
    return {"root_device_name": "/dev/vda", "block_device_mapping": mapping} if mapping else None


class ShelveOperations:
    """The agent's shelve methods; `self` is the `ComputeAgent`."""

    async def shelve_instance(self: ComputeAgent, instance_uuid: str, image_id: str | None,
                              offload: bool) -> None:
        """Copy the disk into the queued image `image_id` (None: a volume-backed server, nothing to copy), power
        the guest off, vm_state shelved; then offload it at once when `offload` (shelved_offload_time 0)."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        current: list[str | None] = [states.SHELVING]

        async def move(task_state: str) -> None:
            task_state = SHELVE_TASK.get(task_state, task_state)
            await self.conductor.instance_update(instance_uuid, {"task_state": task_state},
                                                 expected_task_state=[current[-1]])
            current.append(task_state)

        async with self._locks[instance_uuid]:
            instance = None
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                if image_id is not None:
                    snapshots = self.settings.data_dir / "snapshots"
                    snapshots.mkdir(parents=True, exist_ok=True)
                    with tempfile.TemporaryDirectory(dir=snapshots, prefix=f"{instance_uuid}-") as tmp:
                        async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: snapshot for shelve",
                                                target="hypervisor"):
                            copy = await self.driver.snapshot(instance, Path(tmp), move)
                        await move(states.IMAGE_UPLOADING)
                        await self.image.update_image(image_id, disk_format=copy.disk_format,
                                                      container_format=copy.container_format)
                        async with tracing.span("REST", f"PUT /v2/images/{image_id}/file", target="image"):
                            await self.image.upload(image_id, copy.path)
                async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: power off for shelve",
                                        target="hypervisor"):
                    await self.driver.power_off(instance)
                info = await self.driver.get_info(instance)
                system_metadata = {**(instance.get("system_metadata") or {}), "shelved_at": utcnow().isoformat(),
                                   "shelved_image_id": image_id or "", "shelved_host": self.host}
                await self.conductor.instance_update(instance_uuid, {
                    "vm_state": states.SHELVED, "power_state": info.power_state, "system_metadata": system_metadata,
                    "task_state": states.SHELVING_OFFLOADING if offload else None},
                    expected_task_state=[current[-1]])
            except Exception as exc:
                await self._shelve_failed(instance, instance_uuid, image_id, exc)
                await self._event(instance_uuid, ctx, "compute_shelve_instance", started, "Error", _reason(exc))
                return
            await self._event(instance_uuid, ctx, "compute_shelve_instance", started, "Success")
            if offload:
                await self._offload(instance_uuid, ctx)

    async def _shelve_failed(self: ComputeAgent, instance: Any, instance_uuid: str, image_id: str | None,
                             exc: Exception) -> None:
        """The image goes, the task ends with a fault; the server keeps its vm_state (the guest is stopped only
        after its disk is saved)."""
        log.warning("%s: shelve of %s failed: %s", self.host, instance_uuid, _reason(exc))
        if image_id is not None:
            with contextlib.suppress(Exception):
                await self.image.delete_image(image_id)
        updates: dict[str, Any] = {"task_state": None, "fault": {"code": 500, "message": _reason(exc)}}
        if instance is not None:
            with contextlib.suppress(Exception):
                updates["power_state"] = (await self.driver.get_info(instance)).power_state
        with contextlib.suppress(Exception):
            await self.conductor.instance_update(instance_uuid, updates, expected_task_state=SHELVE_TASKS)

    async def shelve_offload_instance(self: ComputeAgent, instance_uuid: str) -> None:
        """`shelveOffload` of a shelved server (its task already shelving_offloading)."""
        async with self._locks[instance_uuid]:
            await self._offload(instance_uuid, get_current() or RequestContext())

    async def _offload(self: ComputeAgent, instance_uuid: str, ctx: RequestContext) -> None:
        """Destroy the guest and its disk, unbind its ports from this host (they stay the server's), leave the
        host: shelved_offloaded, host and node None, the claim released by the conductor."""
        started = utcnow()
        event = "compute_shelve_offload_instance"
        try:
            instance = await self.conductor.instance_get(instance_uuid)
            async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: destroy (offload)",
                                    target="hypervisor"):
                await self.driver.destroy(instance, instance["network_info"])
            await self._unbind_ports(instance["network_info"])
            await self.conductor.instance_update(instance_uuid, {
                "vm_state": states.SHELVED_OFFLOADED, "task_state": None, "power_state": states.NOSTATE,
                "host": None, "node": None}, expected_task_state=[states.SHELVING_OFFLOADING])
        except Exception as exc:
            log.warning("%s: offloading %s failed: %s", self.host, instance_uuid, _reason(exc))
            with contextlib.suppress(Exception):
                await self.conductor.instance_update(instance_uuid, {
                    "task_state": None, "fault": {"code": 500, "message": _reason(exc)}},
                    expected_task_state=[states.SHELVING_OFFLOADING])
            await self._event(instance_uuid, ctx, event, started, "Error", _reason(exc))
            return
        await self._event(instance_uuid, ctx, event, started, "Success")

    async def _unbind_ports(self: ComputeAgent, network_info: list[dict[str, Any]]) -> None:
        """The server's ports are bound to no host while it is on none (Nova's cleanup_instance_network_on_host)."""
        if not network_info:
            return
        token = await self.service_tokens.token()
        for vif in network_info:
            with contextlib.suppress(NotFound):
                await self.network.update_port(vif["id"], token=token, **{"binding:host_id": ""})

    async def _rebind_ports(self: ComputeAgent, instance: Any) -> list[dict[str, Any]]:
        """The server's ports bound to this host again (step 23's binding), as fresh network_info."""
        network_info = []
        token = await self.service_tokens.token()
        for vif in instance["network_info"]:
            port = await self.network.bind_port(vif["id"], self.host, instance["uuid"], token=token)
            fresh = {**vif, **self._vif(port, vif.get("preexisting", False))}
            network_info.append(fresh)
        return network_info

    async def unshelve_instance(self: ComputeAgent, instance_uuid: str) -> None:
        """Power a shelved guest on again, or spawn an offloaded one here from its shelve image (the conductor
        placed it on this host); then the shelve image is deleted. On failure it stays shelved (offloaded)."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        event = "compute_unshelve_instance"
        async with self._locks[instance_uuid]:
            instance = None
            offloaded = True
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                offloaded = instance["vm_state"] == states.SHELVED_OFFLOADED
                system_metadata = dict(instance.get("system_metadata") or {})
                image_id = system_metadata.get("shelved_image_id") or None
                network_info = instance["network_info"]
                if offloaded:
                    image_meta = await self.image.get_image(image_id) if image_id else {}
                    network_info = await self._rebind_ports(instance)
                    async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: spawn (unshelve)",
                                            target="hypervisor"):
                        await self.driver.spawn(instance, image_meta, network_info, attached_volumes(instance))
                else:
                    async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: power on (unshelve)",
                                            target="hypervisor"):
                        await self.driver.power_on(instance)
                info = await self.driver.get_info(instance)
                for key in SHELVED_KEYS:
                    system_metadata.pop(key, None)
                await self.conductor.instance_update(instance_uuid, {
                    "vm_state": states.ACTIVE, "task_state": None, "power_state": info.power_state,
                    "system_metadata": system_metadata, "network_info": network_info},
                    expected_task_state=[states.UNSHELVING])
            except Exception as exc:
                await self._unshelve_failed(instance, instance_uuid, offloaded, exc)
                await self._event(instance_uuid, ctx, event, started, "Error", _reason(exc))
                return
        if image_id:
            try:
                await self.image.delete_image(image_id)
            except Exception as err:  # the server runs; a left-over image is only clutter
                log.warning("%s: could not delete the shelve image %s of %s: %s", self.host, image_id,
                            instance_uuid, err)
        await self._event(instance_uuid, ctx, event, started, "Success")

    async def _unshelve_failed(self: ComputeAgent, instance: Any, instance_uuid: str, offloaded: bool,
                               exc: Exception) -> None:
        """Back to shelved with a fault; an offloaded server leaves this host again (guest, ports, claim)."""
        log.warning("%s: unshelve of %s failed: %s", self.host, instance_uuid, _reason(exc))
        updates: dict[str, Any] = {"task_state": None, "fault": {"code": 500, "message": _reason(exc)}}
        if offloaded:
            if instance is not None:
                with contextlib.suppress(Exception):
                    await self.driver.destroy(instance, instance["network_info"])
                with contextlib.suppress(Exception):
                    await self._unbind_ports(instance["network_info"])
            updates.update({"vm_state": states.SHELVED_OFFLOADED, "host": None, "node": None,
                            "power_state": states.NOSTATE})
        with contextlib.suppress(Exception):
            await self.conductor.instance_update(instance_uuid, updates, expected_task_state=[states.UNSHELVING])
