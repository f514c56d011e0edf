"""The conductor: build orchestration (schedule, hand to a host, reschedule) and the agents' only path to the DB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.common import tracing
from pocketstack.common.clients.identity import ServiceTokenProvider
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.db import Database
from pocketstack.common.rpc import RPCEndpoint, Transport, register_remote_exception
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.agent.rpcapi import ComputeAgentAPI
from pocketstack.compute.build import BuildRequest
from pocketstack.compute.conductor.heartbeats import HeartbeatWriter
from pocketstack.compute.passwords import PasswordSeal
from pocketstack.compute.scheduler.rpcapi import SchedulerAPI
from pocketstack.compute.store.aggregates import host_zone
from pocketstack.compute.store.instances import (
    bdm_dict,
    instance_dict,
    mark_deleted,
)
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute.conductor")

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."

# Columns the agents may change through instance_update.
UPDATABLE = {"vm_state", "task_state", "power_state", "network_info", "launched_at", "progress", "host", "node",
             "system_metadata", "image_ref"}

# The tasks of a rebuild, whose spawn gets the new adminPass (config drive).
REBUILD_TASKS = frozenset({states.REBUILDING, states.REBUILD_BLOCK_DEVICE_MAPPING, states.REBUILD_SPAWNING})

# Block device mapping columns the agents may change through bdm_update (what a volume attach records).
BDM_UPDATABLE = {"volume_id", "attachment_id", "connection_info"}


# The services a conductor process reports as alive: in the all-in-one it also speaks for its scheduler.
ALL_IN_ONE_BINARIES = (("nova-conductor", "conductor"), ("nova-scheduler", "scheduler"))


class ConductorManager(RPCEndpoint):
    namespace = "conductor"
    version = "1.4"  # 1.1: bdm_update, bdm_destroy (volumes); 1.2: abort_build; 1.3: instance_update changes_only
    # 1.4: unshelve_instance

    def __init__(self, settings: Settings, db: Database, transport: Transport, *,
                 network: NetworkClient | None = None, service_tokens: ServiceTokenProvider | None = None,
                 binaries: tuple[tuple[str, str], ...] = ALL_IN_ONE_BINARIES) -> None:
        self.settings = settings
        self.db = db
        self.scheduler = SchedulerAPI(transport)
        self.agents = ComputeAgentAPI(transport)
        self.network = network  # releases the ports of builds that can no longer finish
        self.service_tokens = service_tokens
        self.binaries = binaries
        self._tasks: list[asyncio.Task[None]] = []
        self._seal: PasswordSeal | None = None
        self.heartbeats = HeartbeatWriter(settings, db)

    def _password_seal(self) -> PasswordSeal | None:
        if self._seal is None:
            self._seal = PasswordSeal.from_settings(self.settings)
        return self._seal

    # ----- lifecycle (not RPC) ------------------------------------------------------------------------------
    async def start(self) -> None:
        started = utcnow()
        for binary, topic in self.binaries:
            await self.service_report(host=self.settings.compute.host, binary=binary, topic=topic)
        if self.settings.rpc.transport_url.startswith("local:"):
            await self.abort_lost_builds(started)
        self._tasks = [asyncio.create_task(self._beat()), asyncio.create_task(self._watch_builds())]

    async def abort_lost_builds(self, before: datetime) -> list[str]:
        """On the in-process bus a build's messages die with the process: builds from before this start that no
        host had begun (waiting for the scheduler or in a host's queue) end in ERROR now, not at the timeout.
        (On RabbitMQ the queued messages survive a restart and are left to run.)"""
        def find(session: Session) -> list[str]:
            return list(session.scalars(select(m.Instance.uuid).where(
                m.Instance.vm_state == states.BUILDING, m.Instance.deleted.is_(False),
                m.Instance.created_at < before,
                m.Instance.host.is_(None) | (m.Instance.task_state == states.SCHEDULING))).all())

        aborted = []
        for instance_uuid in await self.db.run(find, write=False):
            reason = f"Build of instance {instance_uuid} aborted: the cloud restarted before a host began it"
            if await self.abort_build(instance_uuid, reason):
                aborted.append(instance_uuid)
        if aborted:
            log.warning("ended %d builds the restart interrupted", len(aborted))
        return aborted

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.compute.report_interval)
            with contextlib.suppress(Exception):
                for binary, topic in self.binaries:
                    await self.service_report(host=self.settings.compute.host, binary=binary, topic=topic)

    async def _watch_builds(self) -> None:
        while True:
            await asyncio.sleep(self.settings.compute.build_check_interval)
            try:
                await self.reap_builds()
            except Exception as exc:  # database or broker away: the next round retries
                log.warning("checking for stuck builds failed: %s", exc)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.heartbeats.stop()

    # ----- builds that can no longer finish -----------------------------------------------------------------
    async def reap_builds(self) -> list[str]:
        """End in ERROR the builds that cannot finish: older than `build_timeout` (a lost message, a broker
        restart), or placed on a host whose compute service went down. Returns the instances moved to ERROR."""
        cfg = self.settings.compute
        now = utcnow()
        down_after = now - timedelta(seconds=cfg.service_down_time)

        def find(session: Session) -> list[tuple[str, str]]:
            building = session.execute(select(m.Instance.uuid, m.Instance.host, m.Instance.created_at).where(
                m.Instance.vm_state == states.BUILDING, m.Instance.deleted.is_(False),
                (m.Instance.task_state != states.DELETING) | m.Instance.task_state.is_(None))).all()
            if not building:
                return []
            seen = {s.host: s.last_seen_up for s in session.scalars(
                select(m.ComputeService).where(m.ComputeService.binary == "nova-compute")).all()}
            stuck = []
            for instance_uuid, host, created_at in building:
                if cfg.build_timeout and created_at < now - timedelta(seconds=cfg.build_timeout):
                    stuck.append((instance_uuid, f"Build of instance {instance_uuid} timed out after "
                                                 f"{cfg.build_timeout:g} seconds"))
                elif host is not None and host in seen and (seen[host] is None or seen[host] < down_after):
                    stuck.append((instance_uuid, f"Build of instance {instance_uuid} aborted: the compute service "
                                                 f"on host {host} went down during the build"))
            return stuck

        aborted = []
        for instance_uuid, reason in await self.db.run(find, write=False):
            if await self.abort_build(instance_uuid, reason):
                aborted.append(instance_uuid)
        return aborted

    async def abort_build(self, instance_uuid: str, reason: str) -> bool:
        """Move a build to ERROR with a fault and release its claim and ports; False if it is no longer building
        (finished, deleted, or another conductor got there first)."""
        def abort(session: Session) -> list[str] | None:
            inst = session.get(m.Instance, instance_uuid, with_for_update=True)
            if (inst is None or inst.deleted or inst.vm_state != states.BUILDING
                    or inst.task_state == states.DELETING):
                return None
            inst.vm_state = states.ERROR
            inst.task_state = None
            inst.updated_at = utcnow()
            session.add(m.InstanceFault(instance_uuid=instance_uuid, code=500, message=reason[:4000], details="",
                                        host=inst.host, created_at=utcnow()))
            session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
            requested = inst.requested_networks if isinstance(inst.requested_networks, list) else []
            return [r["port"] for r in requested if isinstance(r, dict) and r.get("port")]

        user_ports = await self.db.run(abort, write=True)
        if user_ports is None:
            return False
        log.warning("%s", reason)
        await self._release_ports(instance_uuid, set(user_ports))
        return True

    async def _release_ports(self, instance_uuid: str, user_ports: set[str]) -> None:
        """Delete the ports the build created, unbind the ones the user brought (found by device id)."""
        if self.network is None or self.service_tokens is None:
            return
        try:
            token = await self.service_tokens.token()
            for port in await self.network.list_ports(token=token, device_id=instance_uuid):
                if port["id"] in user_ports:
                    await self.network.update_port(port["id"], token=token, **{
                        "binding:host_id": "", "device_id": "", "device_owner": ""})
                else:
                    await self.network.delete_port(port["id"], token=token)
        except Exception:
            log.exception("could not release the ports of %s", instance_uuid)

    # ----- build orchestration -----------------------------------------------------------------------------
    async def build_instances(self, instance_uuids: list[str], request_spec: BuildRequest) -> None:
        """Ask the scheduler for hosts (step 9), then cast each build to its host (step 12)."""
        started = utcnow()
        try:
            hosts = await self.scheduler.select_destinations(request_spec, instance_uuids)
        except Exception as exc:  # scheduler down or failing: the builds end in ERROR, not stuck in BUILD
            log.exception("scheduling failed")
            hosts = [None] * len(instance_uuids)
            reason = f"Scheduling failed: {exc}"
        else:
            reason = NO_VALID_HOST
        for instance_uuid, host in zip(instance_uuids, hosts, strict=True):
            await self._dispatch(instance_uuid, host, request_spec, started, reason)

    async def _dispatch(self, instance_uuid: str, host: str | None, request_spec: BuildRequest,
                        started: datetime, reason: str) -> None:
        request_id = request_spec.get("request_id") or ""
        if host is None:
            await self._fail(instance_uuid, reason, code=500)
            await self.action_event(instance_uuid=instance_uuid, request_id=request_id,
                                    event="conductor_schedule_and_build_instances", start_time=started.isoformat(),
                                    result="Error", host=self.settings.compute.host, details=reason)
            return
        def record_host(session: Session) -> bool:
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None or inst.deleted or inst.task_state == states.DELETING:
                session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
                return False
            retry = dict(inst.retry or {})
            retry["num_attempts"] = retry.get("num_attempts", 0) + 1
            retry["hosts"] = [*retry.get("hosts", []), host]
            inst.retry = retry
            inst.host = host
            inst.node = host
            # the server is in its host's zone (an aggregate's, else the service's), as Nova records it
            inst.availability_zone = host_zone(session, host) or inst.availability_zone
            inst.updated_at = utcnow()
            return True

        if not await self.db.run(record_host, write=True):
            return
        await self.action_event(instance_uuid=instance_uuid, request_id=request_id,
                                event="conductor_schedule_and_build_instances", start_time=started.isoformat(),
                                result="Success", host=self.settings.compute.host)
        await self.agents.build_and_run_instance(host, instance_uuid)

    async def reschedule(self, instance_uuid: str, failed_host: str, reason: str) -> None:
        """A build failed on `failed_host`: release its claim and try another host, up to max_attempts."""
        started = utcnow()
        def release(session: Session) -> tuple[dict[str, Any], dict[str, Any]] | None:
            session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None or inst.deleted:
                return None
            inst.host = None
            inst.node = None
            inst.task_state = states.SCHEDULING
            return dict(inst.retry or {}), dict(inst.request_spec or {})

        released = await self.db.run(release, write=True)
        if released is None:
            return
        retry, request_spec = released
        attempts = retry.get("num_attempts", 1)
        if attempts >= self.settings.compute.max_attempts:
            await self._fail(instance_uuid, f"Exceeded maximum number of retries. Exhausted all hosts available "
                                            f"for retrying build failures for instance {instance_uuid}. "
                                            f"Last error on {failed_host}: {reason}", code=500)
            return
        try:
            hosts = await self.scheduler.select_destinations(request_spec, [instance_uuid],
                                                             excluded_hosts=retry.get("hosts", []))
        except Exception as exc:
            hosts = [None]
            reason = f"Scheduling failed: {exc}"
        host = hosts[0]
        if host is None:
            reason = (f"{NO_VALID_HOST} Build of instance {instance_uuid} was re-scheduled after failing on "
                      f"{failed_host}: {reason}")
        await self._dispatch(instance_uuid, host, request_spec, started, reason)

    async def unshelve_instance(self, instance_uuid: str, request_id: str, availability_zone: str | None = None,
                                host: str | None = None) -> None:
        """Place a shelved-offloaded server again (steps 9-11, in `availability_zone` or on `host` when asked) and
        hand it to its new host (CAST); with no host it stays offloaded, its task ended, with a fault."""
        started = utcnow()
        event = "conductor_unshelve_instance"

        def read(session: Session) -> tuple[dict[str, Any], list[str]] | None:
            inst = session.get(m.Instance, instance_uuid)
            if inst is None or inst.deleted or inst.task_state != states.UNSHELVING:
                return None
            others = [h for h in session.scalars(select(m.ComputeNode.host)).all() if h != host] if host else []
            return dict(inst.request_spec or {}), others

        found = await self.db.run(read, write=False)
        if found is None:
            return
        spec, excluded = found
        if availability_zone:
            spec["availability_zone"] = availability_zone
        try:
            chosen = (await self.scheduler.select_destinations(spec, [instance_uuid], excluded_hosts=excluded))[0]
            reason = NO_VALID_HOST
        except Exception as exc:
            chosen, reason = None, f"Scheduling failed: {exc}"

        def place(session: Session) -> bool:
            inst = session.get(m.Instance, instance_uuid)
            if inst is None or inst.deleted or inst.task_state != states.UNSHELVING:
                session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
                return False
            inst.updated_at = utcnow()
            if chosen is None:
                inst.task_state = None
                session.add(m.InstanceFault(instance_uuid=instance_uuid, code=500, message=reason, details="",
                                            host=None, created_at=utcnow()))
                return False
            inst.host = inst.node = chosen
            inst.availability_zone = host_zone(session, chosen) or inst.availability_zone
            return True

        placed = await self.db.run(place, write=True)
        await self.action_event(instance_uuid=instance_uuid, request_id=request_id, event=event,
                                start_time=started.isoformat(), result="Success" if placed else "Error",
                                host=self.settings.compute.host, details=None if placed else reason)
        if placed and chosen is not None:
            await self.agents.unshelve_instance(chosen, instance_uuid)

    async def _fail(self, instance_uuid: str, message: str, code: int = 500, details: str = "") -> None:
        def fail(session: Session) -> None:
            session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None or inst.deleted:
                return
            inst.vm_state = states.ERROR
            inst.task_state = None
            inst.updated_at = utcnow()
            session.add(m.InstanceFault(instance_uuid=instance_uuid, code=code, message=message[:4000],
                                        details=details, host=inst.host, created_at=utcnow()))

        await self.db.run(fail, write=True)

    # ----- the agents' database access (steps 14-18) --------------------------------------------------------
    async def instance_get(self, instance_uuid: str) -> dict[str, Any]:
        def read(session: Session) -> dict[str, Any]:
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None:
                raise LookupError(f"instance {instance_uuid} not found")
            view = instance_dict(inst)
            # for the config drive, as Nova's build_and_run_instance and rebuild_instance hand their
            # admin_password to spawn
            if inst.admin_pass_sealed and (inst.vm_state == states.BUILDING or inst.task_state in REBUILD_TASKS):
                seal = self._password_seal()
                password = seal.unseal(inst.admin_pass_sealed) if seal is not None else None
                if password:
                    view["admin_pass"] = password
            return view

        async with tracing.span("DB", "read instance and flavor", step="15-17"):
            return await self.db.run(read, write=False)

    async def instance_update(self, instance_uuid: str, updates: dict[str, Any],
                              expected_task_state: list[str | None] | None = None,
                              changes_only: bool = False) -> dict[str, Any]:
        """Update an instance; with expected_task_state the update only happens from one of those states.
        Returns the instance, or with `changes_only` (1.3) just the fields it changed, as the instance shows them."""
        bad = set(updates) - UPDATABLE - {"fault"}
        if bad:
            raise ValueError(f"instance fields not updatable through the conductor: {sorted(bad)}")
        fault = updates.pop("fault", None)
        if isinstance(updates.get("launched_at"), str):
            updates["launched_at"] = datetime.fromisoformat(updates["launched_at"])
        def apply(session: Session) -> dict[str, Any]:
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None or inst.deleted:
                raise LookupError(f"instance {instance_uuid} not found")
            if expected_task_state is not None and inst.task_state not in expected_task_state:
                raise UnexpectedTaskState(f"instance {instance_uuid} is in task_state {inst.task_state}, expected "
                                          f"one of {expected_task_state}")
            was_building, old_host = inst.vm_state == states.BUILDING, inst.host
            for key, value in updates.items():
                setattr(inst, key, value)
            inst.updated_at = utcnow()
            if fault:
                session.add(m.InstanceFault(instance_uuid=instance_uuid, code=fault.get("code", 500),
                                            message=str(fault.get("message", ""))[:4000],
                                            details=fault.get("details", ""), host=inst.host, created_at=utcnow()))
            # a build that failed, or a server offloaded: no host holds it now (a failed rebuild keeps its claim)
            if (updates.get("vm_state") == states.ERROR and was_building) or (
                    updates.get("vm_state") == states.SHELVED_OFFLOADED):
                session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
            if inst.host != old_host:  # the consoles were the old host's (Nova's clean_console_auths_for_instance)
                session.execute(delete(m.ConsoleAuthToken).where(m.ConsoleAuthToken.instance_uuid == instance_uuid))
            view = instance_dict(inst)
            return {key: view[key] for key in updates} if changes_only else view

        return await self.db.run(apply, write=True)

    async def instance_destroy(self, instance_uuid: str) -> None:
        """The agent has torn the server down: mark it deleted and release everything it held."""
        await self.db.run(lambda session: mark_deleted(session, instance_uuid), write=True)

    async def bdm_update(self, bdm_id: int, updates: dict[str, Any]) -> dict[str, Any]:
        """Record what attaching a volume produced (its id, attachment, connection info) on a mapping (1.1)."""
        bad = set(updates) - BDM_UPDATABLE
        if bad:
            raise ValueError(f"block device mapping fields not updatable through the conductor: {sorted(bad)}")

        def apply(session: Session) -> dict[str, Any]:
            bdm = session.get(m.BlockDeviceMapping, bdm_id)
            if bdm is None:
                raise LookupError(f"block device mapping {bdm_id} not found")
            for key, value in updates.items():
                setattr(bdm, key, value)
            bdm.updated_at = utcnow()
            return bdm_dict(bdm)

        return await self.db.run(apply, write=True)

    async def bdm_destroy(self, bdm_id: int) -> None:
        """A volume is detached (or its attach failed): its mapping goes (1.1)."""
        await self.db.run(lambda session: session.execute(
            delete(m.BlockDeviceMapping).where(m.BlockDeviceMapping.id == bdm_id)), write=True)

    async def instances_on_host(self, host: str) -> list[dict[str, Any]]:
        return await self.db.run(lambda session: [instance_dict(i) for i in session.scalars(select(m.Instance).where(
            m.Instance.host == host, m.Instance.deleted.is_(False)))], write=False)

    async def action_event(self, instance_uuid: str, request_id: str, event: str, start_time: str, result: str,
                           host: str, details: str | None = None) -> None:
        """Record a finished event of the instance action of `request_id` (`server event list`)."""
        def add_event(session: Session) -> None:
            action = session.scalar(select(m.InstanceAction).where(
                m.InstanceAction.instance_uuid == instance_uuid, m.InstanceAction.request_id == request_id))
            if action is None:
                return
            now = utcnow()
            session.add(m.InstanceActionEvent(action_id=action.id, event=event,
                                              start_time=datetime.fromisoformat(start_time), finish_time=now,
                                              result=result, host=host, details=details))
            action.updated_at = now
            if result == "Error":
                action.message = "Error"
            action.finish_time = now

        await self.db.run(add_event, write=True)

    async def service_report(self, host: str, binary: str, topic: str,
                             resources: dict[str, Any] | None = None) -> dict[str, Any]:
        """A service's heartbeat (and a compute node's resources): written with the others of the same moment,
        the resources only when they changed (heartbeats.py)."""
        return await self.heartbeats.report(host, binary, topic, resources)


@register_remote_exception
class UnexpectedTaskState(Exception):
    """An update raced with another action (e.g. a delete during a build)."""
