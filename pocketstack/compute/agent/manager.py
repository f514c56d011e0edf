"""The compute agent of one host: builds, power actions and teardown through its driver (FLOW.md 13-29).

It never opens the database: it reads and writes its instances through the conductor (CALL), gets image
metadata from the image service and ports from the network service over REST, and drives the hypervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pocketstack.common import metrics, tracing
from pocketstack.common.clients.identity import ServiceTokenProvider
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.clients.volume import VolumeClient
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.errors import APIError, NotFound
from pocketstack.common.rpc import MessagingTimeout, RPCEndpoint, RPCServer, Transport
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states
from pocketstack.compute.agent.block_device import BlockDevices, Prepared, VolumeSetupError
from pocketstack.compute.agent.consoles import ConsoleOperations
from pocketstack.compute.agent.network_cache import NETWORK_CHANGED, NetworkCacheOperations
from pocketstack.compute.agent.rebuild import RebuildOperations
from pocketstack.compute.agent.rescue import RescueOperations
from pocketstack.compute.agent.shelve import SHELVE_TASKS, ShelveOperations
from pocketstack.compute.build import InstanceView
from pocketstack.compute.conductor.rpcapi import ConductorAPI
from pocketstack.compute.virt.driver import ComputeDriver, DriverError
from pocketstack.compute.virt.virtapi import VirtAPI
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute.agent")

# action -> (driver method, vm_state after, event name)
POWER_ACTIONS = {
    "stop": ("power_off", states.STOPPED, "compute_stop_instance"),
    "start": ("power_on", states.ACTIVE, "compute_start_instance"),
    "reboot": ("reboot", states.ACTIVE, "compute_reboot_instance"),
    "reboot_hard": ("reboot", states.ACTIVE, "compute_reboot_instance"),
    "pause": ("pause", states.PAUSED, "compute_pause_instance"),
    "unpause": ("unpause", states.ACTIVE, "compute_unpause_instance"),
    "suspend": ("suspend", states.SUSPENDED, "compute_suspend_instance"),
    "resume": ("resume", states.ACTIVE, "compute_resume_instance"),
}


class BuildAborted(Exception):
    """The server was deleted while it was being built."""


# The task states of a snapshot on its host, any of which a failure returns to None.
SNAPSHOT_TASKS: list[str | None] = [states.IMAGE_SNAPSHOT_PENDING, states.IMAGE_SNAPSHOT, states.IMAGE_BACKUP,
                                    states.IMAGE_PENDING_UPLOAD, states.IMAGE_UPLOADING]
# The tasks a restarted agent ends as it ends a snapshot's: its own snapshots' and the shelves' (their vm_state
# is still the one they started from, or shelved before an offload).
INTERRUPTED_COPIES: list[str | None] = [*SNAPSHOT_TASKS, *SHELVE_TASKS]


class ComputeAgent(ShelveOperations, RebuildOperations, RescueOperations, ConsoleOperations, NetworkCacheOperations,
                   RPCEndpoint):
    namespace = "compute"
    version = "1.7"  # 1.3: snapshot_instance; 1.4: shelve_instance, shelve_offload_instance, unshelve_instance
    # 1.5: rebuild_instance, rescue_instance, unrescue_instance; 1.7: get_console

    def __init__(self, settings: Settings, host: str, driver: ComputeDriver, transport: Transport, *,
                 image: ImageClient, network: NetworkClient, service_tokens: ServiceTokenProvider) -> None:
        self.settings = settings
        self.host = host
        self.driver = driver
        self.transport = transport
        self.conductor = ConductorAPI(transport)
        self.image = image
        self.network = network
        self.service_tokens = service_tokens
        self.volume = VolumeClient(settings.base_url("volume"))
        self.block_devices = BlockDevices(host, driver, self.conductor, self.volume)
        self.server = RPCServer(transport, "compute", host, [self], component=f"compute@{host}")
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: list[asyncio.Task[None]] = []
        self._networks: dict[str, dict[str, Any]] = {}  # network id -> name and MTU, for network_info
        self.external_events: deque[tuple[str, str, str | None, str]] = deque(maxlen=1000)
        self._refreshes: set[asyncio.Task[None]] = set()  # network info refreshes under way (network-changed)
        self.virtapi = VirtAPI()  # the driver waits on it (network-vif-plugged before a guest runs)
        driver.virtapi = self.virtapi

    # ----- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.driver.init_host()
        await self._first_report()
        await self._abort_interrupted_builds()
        await self._end_interrupted_snapshots()
        await self.server.start()
        self._tasks.append(asyncio.create_task(self._periodic(self.report, self.settings.compute.report_interval)))
        self._tasks.append(asyncio.create_task(
            self._periodic(self.sync_power_states, self.settings.compute.sync_power_state_interval)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.server.stop()

    async def _first_report(self, attempt_timeout: float = 5.0) -> None:
        """Report, waiting for a conductor as Nova's compute does: a call to a topic that no conductor has
        consumed yet is dropped by the bus, so it is retried until one answers."""
        conductor = ConductorAPI(self.transport, timeout=attempt_timeout)
        attempts = 0
        while True:
            try:
                await conductor.service_report(self.host, "nova-compute", "compute", await self._resources())
                return
            except MessagingTimeout:
                attempts += 1
                log.warning("%s: no conductor answered within %gs (attempt %d); is one running?", self.host,
                            attempt_timeout, attempts)

    async def _abort_interrupted_builds(self) -> None:
        """Builds this host had begun when its previous run ended cannot finish (Nova's _init_instance): the
        conductor moves them to ERROR and releases their claims and ports. Builds still waiting in the host's
        queue (task_state scheduling) are left to run."""
        try:
            instances = await self.conductor.instances_on_host(self.host)
        except Exception as exc:
            log.warning("%s: could not look for interrupted builds: %s", self.host, exc)
            return
        for inst in instances:
            if inst["vm_state"] != states.BUILDING or inst["task_state"] in (states.SCHEDULING, states.DELETING):
                continue
            with contextlib.suppress(Exception):
                await self.driver.destroy(inst, inst["network_info"] or [])
            try:
                await self.conductor.abort_build(inst["uuid"], f"Build of instance {inst['uuid']} aborted: the "
                                                               f"compute service on host {self.host} restarted "
                                                               "during the build")
            except Exception as exc:  # the conductor's periodic check catches it later
                log.warning("%s: could not abort the interrupted build of %s: %s", self.host, inst["uuid"], exc)

    async def _end_interrupted_snapshots(self) -> None:
        """Snapshots and shelves this host had begun when its previous run ended cannot finish (Nova's
        _init_instance): their task ends, and the images they were filling (still queued or saving) are deleted."""
        try:
            instances = [i for i in await self.conductor.instances_on_host(self.host)
                         if i["task_state"] in INTERRUPTED_COPIES]
            token = await self.service_tokens.token() if instances else None
        except Exception as exc:
            log.warning("%s: could not look for interrupted snapshots: %s", self.host, exc)
            return
        for inst in instances:
            try:
                for image in await self.image.list_images(token=token, instance_uuid=inst["uuid"]):
                    if image["status"] in ("queued", "saving"):
                        await self.image.delete_image(image["id"], token=token)
                await self.conductor.instance_update(inst["uuid"], {"task_state": None},
                                                     expected_task_state=INTERRUPTED_COPIES)
            except Exception as exc:
                log.warning("%s: could not end the interrupted snapshot of %s: %s", self.host, inst["uuid"], exc)

    async def _periodic(self, func: Any, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await func()
            except Exception:
                log.exception("%s: periodic task %s failed", self.host, func.__name__)

    async def report(self) -> None:
        """Heartbeat and resource report (the scheduler's host state)."""
        await self.conductor.service_report(self.host, "nova-compute", "compute", await self._resources())

    async def _resources(self) -> dict[str, Any]:
        """What the host reports: the driver's resources, and its capabilities as traits."""
        resources = await self.driver.get_available_resource()
        resources.traits = self.driver.capabilities.traits()
        return asdict(resources)

    async def sync_power_states(self) -> None:
        """Make the database agree with the hypervisor (a guest that shut itself down becomes SHUTOFF)."""
        for inst in await self.conductor.instances_on_host(self.host):
            if inst["task_state"] is not None or inst["vm_state"] == states.BUILDING:
                continue
            info = await self.driver.get_info(inst)
            updates: dict[str, Any] = {}
            if info.power_state != inst["power_state"]:
                updates["power_state"] = info.power_state
            if inst["vm_state"] == states.ACTIVE and info.power_state in (states.SHUTDOWN, states.NOSTATE,
                                                                         states.CRASHED):
                updates["vm_state"] = states.STOPPED
            if updates:
                with contextlib.suppress(Exception):
                    await self.conductor.instance_update(inst["uuid"], updates, expected_task_state=[None])

    # ----- build (steps 13-29) -----------------------------------------------------------------------------
    async def build_and_run_instance(self, instance_uuid: str, request_spec: dict[str, Any] | None = None) -> None:
        """Steps 13-29 on this host. `request_spec` is what 1.1 conductors still send; the agent never read it."""
        started, began = utcnow(), time.perf_counter()
        ctx = get_current() or RequestContext()
        tracing.record("WORK", self.server.component, "take build_and_run_instance from the host queue",
                       time.time(), 0.0, step="13")
        async with self._locks[instance_uuid]:
            network_info: list[dict[str, Any]] = []
            volumes: list[Prepared] = []
            try:
                instance = await self.conductor.instance_get(instance_uuid)  # steps 14-18
                if instance["deleted"] or instance["task_state"] == states.DELETING:
                    raise BuildAborted()
                await self._progress(instance, states.NETWORKING, [states.SCHEDULING])
                image_meta = await self._image_meta(instance)  # steps 20-22
                network_info = await self._allocate_network(instance, ctx)  # steps 23-25
                await self._progress(instance, states.BLOCK_DEVICE_MAPPING, [states.NETWORKING],
                                     network_info=network_info)
                block_device_info = await self.block_devices.prepare(instance, volumes)  # steps 26-28
                await self._progress(instance, states.SPAWNING, [states.BLOCK_DEVICE_MAPPING])
                async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: spawn", step="29",
                                        target="hypervisor"):
                    await self.driver.spawn(instance, image_meta, network_info, block_device_info)
                    info = await self.driver.get_info(instance)
                await self.conductor.instance_update(
                    instance_uuid, {"vm_state": states.ACTIVE, "task_state": None, "power_state": info.power_state,
                                    "launched_at": utcnow().isoformat()}, expected_task_state=[states.SPAWNING])
            except Exception as exc:
                await self.block_devices.rollback(volumes)
                await self._build_failed(instance_uuid, exc, network_info, ctx, started)
                metrics.BUILD_SECONDS.labels("failed").observe(time.perf_counter() - began)
                return
            finally:
                self._locks.pop(instance_uuid, None)
        await self._event(instance_uuid, ctx, "compute__do_build_and_run_instance", started, "Success")
        metrics.BUILD_SECONDS.labels("active").observe(time.perf_counter() - began)

    async def _progress(self, instance: InstanceView, task_state: str, expected: list[str | None],
                        **changes: Any) -> None:
        """Step 19: move the build to `task_state` (with other `changes`), and the agent's view with it."""
        instance.update(await self.conductor.instance_update(  # type: ignore[typeddict-item]
            instance["uuid"], {"task_state": task_state, **changes}, expected_task_state=expected))

    async def _image_meta(self, instance: dict[str, Any]) -> dict[str, Any]:
        if not instance["image_ref"]:
            return {}
        return await self.image.get_image(instance["image_ref"])

    async def _network(self, network_id: str) -> dict[str, Any]:
        if network_id not in self._networks:
            network = await self.network.get_network(network_id, token=await self.service_tokens.token())
            self._networks[network_id] = {"name": network["name"], "mtu": network.get("mtu")}
        return self._networks[network_id]

    async def _allocate_network(self, instance: dict[str, Any], ctx: RequestContext) -> list[dict[str, Any]]:
        """Create (or take) a port per requested network and bind it to this host."""
        requested = instance["requested_networks"]
        if not requested or requested in ("none", "auto"):
            return []
        service_token = await self.service_tokens.token()
        network_info: list[dict[str, Any]] = []
        try:
            for req in requested:
                if req.get("port"):
                    port = await self.network.get_port(req["port"])
                    preexisting = True
                else:
                    attrs: dict[str, Any] = {"device_id": instance["uuid"], "device_owner": "compute:nova"}
                    if req.get("fixed_ip"):
                        attrs["fixed_ips"] = [{"ip_address": req["fixed_ip"]}]
                    if instance["security_groups"]:  # recorded as {id, name}; ports take the ids
                        attrs["security_groups"] = [sg["id"] for sg in instance["security_groups"]]
                    port = await self.network.create_port(req["uuid"], **attrs)  # step 23, as the user
                    preexisting = False
                network_info.append(self._vif(port, preexisting))  # remembered for cleanup before binding
                port = await self.network.bind_port(port["id"], self.host, instance["uuid"], token=service_token)
                vif = self._vif(port, preexisting)
                network = await self._network(port["network_id"])
                vif["network_name"], vif["mtu"] = network["name"], network["mtu"]  # the tap gets the MTU
                network_info[-1] = vif
        except Exception:
            await self._deallocate_network(network_info)
            raise
        return network_info

    @staticmethod
    def _vif(port: dict[str, Any], preexisting: bool) -> dict[str, Any]:
        return {"id": port["id"], "network_id": port["network_id"], "mac_address": port["mac_address"],
                "fixed_ips": port.get("fixed_ips", []), "vif_type": port.get("binding:vif_type"),
                "vif_details": port.get("binding:vif_details", {}), "preexisting": preexisting,
                "active": port.get("status") == "ACTIVE"}

    async def _deallocate_network(self, network_info: list[dict[str, Any]]) -> None:
        """Delete the ports this server created, unbind the ones the user brought."""
        if not network_info:
            return
        token = await self.service_tokens.token()
        for vif in network_info:
            try:
                if vif.get("preexisting"):
                    await self.network.update_port(vif["id"], token=token, **{
                        "binding:host_id": "", "device_id": "", "device_owner": ""})
                else:
                    await self.network.delete_port(vif["id"], token=token)
            except NotFound:
                pass
            except APIError:
                log.exception("%s: could not release port %s", self.host, vif["id"])

    async def _build_failed(self, instance_uuid: str, exc: Exception, network_info: list[dict[str, Any]],
                            ctx: RequestContext, started: Any) -> None:
        await self._deallocate_network(network_info)
        with contextlib.suppress(Exception):
            await self.driver.destroy({"uuid": instance_uuid}, network_info)
        if isinstance(exc, BuildAborted) or type(exc).__name__ == "UnexpectedTaskState":
            log.info("%s: build of %s aborted: the server is being deleted", self.host, instance_uuid)
            return
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("%s: build of %s failed: %s", self.host, instance_uuid, reason)
        await self._event(instance_uuid, ctx, "compute__do_build_and_run_instance", started, "Error", reason)
        if isinstance(exc, VolumeSetupError):  # another host would fail the same way (Nova's BuildAbortException)
            with contextlib.suppress(Exception):
                await self.conductor.instance_update(instance_uuid, {"vm_state": states.ERROR, "task_state": None,
                                                                     "fault": {"code": 500, "message": str(exc)}})
            return
        await self.conductor.reschedule(instance_uuid, self.host, reason)

    async def _event(self, instance_uuid: str, ctx: RequestContext, event: str, started: Any, result: str,
                     details: str | None = None) -> None:
        with contextlib.suppress(Exception):
            await self.conductor.action_event(instance_uuid, ctx.request_id, event, started.isoformat(), result,
                                              self.host, details)

    # ----- teardown and power actions ----------------------------------------------------------------------
    async def terminate_instance(self, instance_uuid: str) -> None:
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            try:
                instance = await self.conductor.instance_get(instance_uuid)
            except Exception:
                return
            if instance["deleted"]:
                return
            await self.driver.destroy(instance, instance["network_info"])
            await self._deallocate_network(instance["network_info"])
            await self.block_devices.release(instance)
            await self.conductor.instance_destroy(instance_uuid)
            self._locks.pop(instance_uuid, None)
        await self._event(instance_uuid, ctx, "compute_terminate_instance", started, "Success")

    async def power_action(self, instance_uuid: str, action: str) -> None:
        method, vm_state, event = POWER_ACTIONS[action]
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            instance = await self.conductor.instance_get(instance_uuid)
            try:
                func = getattr(self.driver, method)
                await (func(instance, hard=action == "reboot_hard") if method == "reboot" else func(instance))
                info = await self.driver.get_info(instance)
                await self.conductor.instance_update(instance_uuid, {
                    "vm_state": vm_state, "task_state": None, "power_state": info.power_state})
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                await self.conductor.instance_update(instance_uuid, {
                    "task_state": None, "fault": {"code": 500, "message": reason}})
                await self._event(instance_uuid, ctx, event, started, "Error", reason)
                return
        await self._event(instance_uuid, ctx, event, started, "Success")

    # ----- snapshots (createImage, createBackup) -----------------------------------------------------------
    async def snapshot_instance(self, instance_uuid: str, image_id: str, backup_type: str | None = None,
                                rotation: int | None = None) -> None:
        """Copy the server's disk through the driver into the queued image `image_id` the API made (image_snapshot
        -> image_pending_upload -> image_uploading -> None). With `backup_type` a backup: afterwards only the newest
        `rotation` backups of the server of that type are kept. On failure the image goes and the task ends."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        event = "compute_backup_instance" if backup_type is not None else "compute_snapshot_instance"
        # the task_state the agent has the server in (a backup starts in the one the API set)
        current = [states.IMAGE_BACKUP if backup_type is not None else states.IMAGE_SNAPSHOT_PENDING]

        async def move(task_state: str) -> None:
            await self.conductor.instance_update(instance_uuid, {"task_state": task_state},
                                                 expected_task_state=[current[-1]])
            current.append(task_state)

        async with self._locks[instance_uuid]:
            instance = None
            try:
                instance = await self.conductor.instance_get(instance_uuid)
                if backup_type is None:
                    await move(states.IMAGE_SNAPSHOT)
                snapshots = self.settings.data_dir / "snapshots"
                snapshots.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=snapshots, prefix=f"{instance_uuid}-") as tmp:
                    async with tracing.span("WORK", f"{self.driver.hypervisor_type} driver: snapshot",
                                            target="hypervisor"):
                        copy = await self.driver.snapshot(instance, Path(tmp), move)
                    await move(states.IMAGE_UPLOADING)
                    await self.image.update_image(image_id, disk_format=copy.disk_format,
                                                  container_format=copy.container_format)
                    async with tracing.span("REST", f"PUT /v2/images/{image_id}/file", target="image"):
                        await self.image.upload(image_id, copy.path)
                if backup_type is not None and rotation is not None:  # done before the task ends, as seen
                    await self._rotate_backups(instance_uuid, backup_type, rotation)
                info = await self.driver.get_info(instance)
                await self.conductor.instance_update(instance_uuid, {"task_state": None,
                                                                     "power_state": info.power_state},
                                                     expected_task_state=[states.IMAGE_UPLOADING])
            except Exception as exc:
                await self._snapshot_failed(instance, instance_uuid, image_id, exc)
                await self._event(instance_uuid, ctx, event, started, "Error", f"{type(exc).__name__}: {exc}")
                return
        await self._event(instance_uuid, ctx, event, started, "Success")

    async def _snapshot_failed(self, instance: InstanceView | None, instance_uuid: str, image_id: str,
                               exc: Exception) -> None:
        """The image is deleted, the server's task ends (its power state as the driver left it), with a fault."""
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("%s: snapshot of %s into image %s failed: %s", self.host, instance_uuid, image_id, reason)
        try:
            await self.image.delete_image(image_id)
        except NotFound:
            pass
        except Exception as err:
            log.warning("%s: could not delete the image %s of a failed snapshot: %s", self.host, image_id, err)
        updates: dict[str, Any] = {"task_state": None, "fault": {"code": 500, "message": reason}}
        if instance is not None:
            with contextlib.suppress(Exception):
                updates["power_state"] = (await self.driver.get_info(instance)).power_state
        with contextlib.suppress(Exception):  # deleted meanwhile, or another task took over: nothing to end
            await self.conductor.instance_update(instance_uuid, updates, expected_task_state=SNAPSHOT_TASKS)

    async def _rotate_backups(self, instance_uuid: str, backup_type: str, rotation: int) -> None:
        """Delete the server's backups of `backup_type` beyond the newest `rotation` (Nova's _rotate_backups)."""
        try:
            backups = await self.image.list_images(image_type="backup", backup_type=backup_type,
                                                   instance_uuid=instance_uuid, sort_key="created_at",
                                                   sort_dir="desc")
            for image in backups[rotation:]:
                await self.image.delete_image(image["id"])
        except APIError as exc:
            log.warning("%s: rotating the %s backups of %s failed: %s", self.host, backup_type, instance_uuid, exc)

    async def get_console_output(self, instance_uuid: str, length: int | None) -> str:
        instance = await self.conductor.instance_get(instance_uuid)
        text = await self.driver.get_console_output(instance)
        if length is not None:
            lines = text.splitlines()
            text = "\n".join(lines[-length:]) + ("\n" if lines else "") if length else ""
        return text

    async def get_host_uptime(self) -> str:
        """The host's uptime as the driver reports it (os-hypervisors/{id}/uptime)."""
        return await self.driver.get_host_uptime()

    async def attach_interface(self, instance_uuid: str, network_id: str | None, port_id: str | None,
                               fixed_ip: str | None) -> dict[str, Any]:
        if not self.driver.capabilities.attach_interface:
            raise DriverError(f"Attaching interfaces is not supported for instance {instance_uuid}.")
        async with self._locks[instance_uuid]:
            instance = await self.conductor.instance_get(instance_uuid)
            req: dict[str, Any] = {"port": port_id} if port_id else {"uuid": network_id, "fixed_ip": fixed_ip}
            ctx = get_current() or RequestContext()
            vifs = await self._allocate_network({**instance, "requested_networks": [req]}, ctx)
            vif = vifs[0]
            try:
                await self.driver.attach_interface(instance, vif)
            except Exception:
                await self._deallocate_network(vifs)
                raise
            await self.conductor.instance_update(instance_uuid, {"network_info": [*instance["network_info"], vif]})
            return vif

    async def detach_interface(self, instance_uuid: str, port_id: str) -> None:
        async with self._locks[instance_uuid]:
            instance = await self.conductor.instance_get(instance_uuid)
            vif = next((v for v in instance["network_info"] if v["id"] == port_id), None)
            if vif is None:
                raise LookupError(f"port {port_id} is not attached to server {instance_uuid}")
            await self.driver.detach_interface(instance, vif)
            await self._deallocate_network([vif])
            remaining = [v for v in instance["network_info"] if v["id"] != port_id]
            await self.conductor.instance_update(instance_uuid, {"network_info": remaining})

    async def attach_volume(self, instance_uuid: str, bdm_id: int) -> None:
        """Attach a volume the API reserved (its mapping holds the attachment) to the running server (1.1)."""
        await self._volume_action(instance_uuid, lambda bdm: bdm["id"] == bdm_id, self.block_devices.attach,
                                  "compute_attach_volume", "attaching")

    async def detach_volume(self, instance_uuid: str, volume_id: str) -> None:
        """Detach a volume from the server; the volume service already has it detaching (1.1)."""
        await self._volume_action(instance_uuid, lambda bdm: bdm["volume_id"] == volume_id,
                                  self.block_devices.detach, "compute_detach_volume", "detaching")

    async def _volume_action(self, instance_uuid: str, match: Callable[[dict[str, Any]], bool],
                             action: Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]], event: str,
                             doing: str) -> None:
        """Run `action` on the server's mapping `match` picks (none: nothing to do), recorded as `event`."""
        started = utcnow()
        ctx = get_current() or RequestContext()
        async with self._locks[instance_uuid]:
            instance = await self.conductor.instance_get(instance_uuid)
            bdm = next((b for b in instance["block_device_mapping"] if match(b)), None)
            if bdm is None:
                return
            try:
                await action(instance, bdm)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("%s: %s volume %s of %s failed: %s", self.host, doing, bdm["volume_id"], instance_uuid,
                            reason)
                await self._event(instance_uuid, ctx, event, started, "Error", reason)
                return
        await self._event(instance_uuid, ctx, event, started, "Success")

    async def external_instance_event(self, instance_uuid: str, name: str, tag: str | None, status: str) -> None:
        """An event from another service (network-vif-plugged/unplugged/deleted): wakes a driver waiting for it."""
        log.info("%s: event %s (%s) for %s: %s", self.host, name, tag, instance_uuid, status)
        self.external_events.append((instance_uuid, name, tag, status))
        self.virtapi.dispatch(instance_uuid, name, tag, status)
        if name == NETWORK_CHANGED:
            self._network_changed(instance_uuid, tag)

