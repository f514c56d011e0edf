"""Resize and cold migration in the conductor (Nova's migrate_server task): schedule a destination with the new
flavor and hand the move to it, and the database side of each step the hosts take (the claims moved between the
server and its migration, the flavor and host switched, the move ended, confirmed, reverted or rolled back).

Claims follow Nova's placement: while a move runs, the old claim on the source is held by the migration's uuid and
the new one on the destination by the server, so both hosts count it; confirm drops the migration's, revert and
failures drop the server's and give it back the migration's. A conductor periodic task confirms resizes left
longer than `resize_confirm_window`."""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, current_context
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.store.aggregates import host_zones
from pocketstack.compute.store.instances import instance_dict

if TYPE_CHECKING:
    from pocketstack.compute.conductor.manager import ConductorManager

log = logging.getLogger("pocketstack.compute.conductor")

MIGRATION_FIELDS = ("id", "uuid", "instance_uuid", "source_compute", "dest_compute", "source_node", "dest_node",
                    "old_flavor", "new_flavor", "status", "migration_type")
ENDED = frozenset({"error", "confirmed", "reverted"})  # a move's statuses once it is over
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


def migration_dict(migration: m.Migration) -> dict[str, Any]:
    return {name: getattr(migration, name) for name in MIGRATION_FIELDS}


def _migration(session: Session, migration_uuid: str) -> m.Migration:
    migration = session.scalar(select(m.Migration).where(m.Migration.uuid == migration_uuid).with_for_update())
    if migration is None:
        raise LookupError(f"migration {migration_uuid} not found")
    return migration


def _apply_flavor(inst: m.Instance, flavor: dict[str, Any]) -> None:
    inst.flavor = flavor
    inst.vcpus, inst.memory_mb, inst.root_gb = flavor["vcpus"], flavor["ram"], flavor["disk"]
    spec = dict(inst.request_spec or {})
    if spec:
        spec["flavor"] = flavor
        inst.request_spec = spec


def _old_vm_state(inst: m.Instance) -> str:
    return (inst.system_metadata or {}).get("old_vm_state") or states.ACTIVE


def _clear_old_vm_state(inst: m.Instance) -> None:
    system_metadata = dict(inst.system_metadata or {})
    system_metadata.pop("old_vm_state", None)
    inst.system_metadata = system_metadata


def _give_back(session: Session, inst: m.Instance, migration: m.Migration) -> None:
    """The server's claim on the destination goes; the migration's on the source is the server's again (once: a
    second call finds no claim of the migration and leaves the server's)."""
    if session.get(m.Allocation, migration.uuid) is not None:
        session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == inst.uuid))
        session.execute(update(m.Allocation).where(m.Allocation.consumer_uuid == migration.uuid)
                        .values(consumer_uuid=inst.uuid))
    _apply_flavor(inst, migration.old_flavor)
    inst.host, inst.node = migration.source_compute, migration.source_node
    inst.availability_zone = host_zones(session).get(inst.host or "", inst.availability_zone)


class MigrateOperations:
    """The conductor's resize and migrate methods; `self` is the `ConductorManager`."""

    async def migrate_server(self: ConductorManager, instance_uuid: str, migration_uuid: str, request_id: str,
                             host: str | None = None) -> None:
        """Steps 9-11 for a move: the old claim passes to the migration, the scheduler claims the new flavor on a
        destination (not the source, unless allow_resize_to_same_host for a resize; only `host` when given), and
        the destination is told to prepare (CAST prep_resize). No host: the server stays where it was, its task
        ended, with a fault; the migration errors."""
        started = utcnow()
        same_host = self.settings.compute.allow_resize_to_same_host

        def begin(session: Session) -> tuple[dict[str, Any], list[str]] | None:
            migration = _migration(session, migration_uuid)
            inst = session.get(m.Instance, instance_uuid)
            if inst is None or inst.deleted or inst.task_state != states.RESIZE_PREP:
                migration.status = "error"
                return None
            session.execute(update(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid)
                            .values(consumer_uuid=migration_uuid))
            spec = {**(inst.request_spec or {}), "flavor": migration.new_flavor, "project_id": inst.project_id}
            excluded = []
            if host is not None:
                excluded = [h for h in session.scalars(select(m.ComputeNode.host)).all() if h != host]
            if migration.migration_type == "migration" or not same_host:
                excluded.append(inst.host or "")
            return spec, excluded

        found = await self.db.run(begin, write=True)
        if found is None:
            return
        spec, excluded = found
        try:
            chosen = (await self.scheduler.select_destinations(spec, [instance_uuid], excluded_hosts=excluded))[0]
            reason = NO_VALID_HOST
        except Exception as exc:
            chosen, reason = None, f"Scheduling failed: {exc}"

        def place(session: Session) -> bool:
            migration = _migration(session, migration_uuid)
            inst = session.get(m.Instance, instance_uuid)
            alive = inst is not None and not inst.deleted and inst.task_state == states.RESIZE_PREP
            if chosen is None or not alive:
                migration.status, migration.updated_at = "error", utcnow()
                if inst is not None:
                    session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
                    session.execute(update(m.Allocation).where(m.Allocation.consumer_uuid == migration_uuid)
                                    .values(consumer_uuid=instance_uuid))
                if alive and inst is not None:
                    inst.task_state, inst.updated_at = None, utcnow()
                    _clear_old_vm_state(inst)
                    session.add(m.InstanceFault(instance_uuid=instance_uuid, code=400 if chosen is None else 500,
                                                message=reason, details="", host=inst.host, created_at=utcnow()))
                return False
            migration.dest_compute = migration.dest_node = chosen
            migration.dest_host = session.scalar(select(m.ComputeNode.host_ip).where(m.ComputeNode.host == chosen))
            migration.updated_at = utcnow()
            return True

        placed = await self.db.run(place, write=True)
        await self.action_event(instance_uuid=instance_uuid, request_id=request_id,
                                event="conductor_migrate_server", start_time=started.isoformat(),
                                result="Success" if placed else "Error", host=self.settings.compute.host,
                                details=None if placed else reason)
        if placed and chosen is not None:
            await self.agents.prep_resize(chosen, instance_uuid, migration_uuid)

    # ----- the hosts' database access during a move ---------------------------------------------------------
    async def migration_get(self: ConductorManager, migration_uuid: str) -> dict[str, Any]:
        return await self.db.run(lambda s: migration_dict(_migration(s, migration_uuid)), write=False)

    async def migration_update(self: ConductorManager, migration_uuid: str, status: str) -> dict[str, Any]:
        def write(session: Session) -> dict[str, Any]:
            migration = _migration(session, migration_uuid)
            if migration.status in ENDED:
                raise LookupError(f"migration {migration_uuid} has ended ({migration.status})")
            migration.status, migration.updated_at = status, utcnow()
            return migration_dict(migration)

        return await self.db.run(write, write=True)

    async def move_finish(self: ConductorManager, instance_uuid: str, migration_uuid: str) -> dict[str, Any]:
        """The destination takes the server: its new flavor and host recorded (task resize_finish)."""
        def write(session: Session) -> dict[str, Any]:
            migration = _migration(session, migration_uuid)
            inst = session.get(m.Instance, instance_uuid, options=m.INSTANCE_LOAD)
            if inst is None or inst.deleted or inst.task_state != states.RESIZE_MIGRATED:
                raise LookupError(f"instance {instance_uuid} is not waiting for its move to finish")
            _apply_flavor(inst, migration.new_flavor)
            inst.host, inst.node = migration.dest_compute, migration.dest_node
            inst.availability_zone = host_zones(session).get(inst.host or "", inst.availability_zone)
            inst.task_state, inst.updated_at = states.RESIZE_FINISH, utcnow()
            return dict(instance_dict(inst))

        async with tracing.span("DB", "record the new flavor and host"):
            return await self.db.run(write, write=True)

    async def move_done(self: ConductorManager, instance_uuid: str, migration_uuid: str, power_state: int) -> None:
        """The guest runs on the destination: VERIFY_RESIZE (vm_state resized), the migration finished."""
        def write(session: Session) -> None:
            migration = _migration(session, migration_uuid)
            inst = session.get(m.Instance, instance_uuid)
            migration.status, migration.updated_at = "finished", utcnow()
            if inst is not None and not inst.deleted and inst.task_state == states.RESIZE_FINISH:
                inst.vm_state, inst.task_state, inst.power_state = states.RESIZED, None, power_state
                inst.updated_at = utcnow()

        await self.db.run(write, write=True)

    async def move_confirm(self: ConductorManager, instance_uuid: str, migration_uuid: str) -> None:
        """Confirmed: the source's claim (the migration's) goes; the server is ACTIVE again (or SHUTOFF when it
        was stopped)."""
        def write(session: Session) -> None:
            migration = _migration(session, migration_uuid)
            session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == migration_uuid))
            migration.status, migration.updated_at = "confirmed", utcnow()
            inst = session.get(m.Instance, instance_uuid)
            if inst is not None and not inst.deleted and inst.vm_state == states.RESIZED:
                inst.vm_state = states.STOPPED if _old_vm_state(inst) == states.STOPPED else states.ACTIVE
                _clear_old_vm_state(inst)
                inst.updated_at = utcnow()

        await self.db.run(write, write=True)

    async def move_back(self: ConductorManager, instance_uuid: str, migration_uuid: str, *, status: str,
                        power_state: int, fault: str | None = None, error: bool = False) -> None:
        """A revert (`status` reverted) or a failed move (error): the server is on its source again with its old
        flavor and claim, in the vm_state it had before (ERROR with `error`), no task; a fault with `fault`."""
        def write(session: Session) -> None:
            migration = _migration(session, migration_uuid)
            migration.status, migration.updated_at = status, utcnow()
            inst = session.get(m.Instance, instance_uuid)
            if inst is None or inst.deleted:
                session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == migration_uuid))
                return
            _give_back(session, inst, migration)
            if inst.task_state == states.DELETING:  # being deleted: the delete ends it, on its source
                return
            inst.vm_state = states.ERROR if error else _old_vm_state(inst)
            inst.task_state, inst.power_state, inst.updated_at = None, power_state, utcnow()
            _clear_old_vm_state(inst)
            if fault:
                session.add(m.InstanceFault(instance_uuid=instance_uuid, code=500, message=fault[:4000],
                                            details="", host=inst.host, created_at=utcnow()))

        async with tracing.span("DB", f"move claims back to the source ({status})"):
            await self.db.run(write, write=True)

    # ----- resize_confirm_window ----------------------------------------------------------------------------
    async def _watch_resizes(self: ConductorManager) -> None:
        while True:
            await asyncio.sleep(min(self.settings.compute.build_check_interval, 60.0))
            try:
                await self.confirm_old_resizes()
                await self.reap_moves()
            except Exception as exc:  # database or broker away: the next round retries
                log.warning("confirming old resizes or ending stuck moves failed: %s", exc)

    async def reap_moves(self: ConductorManager) -> list[str]:
        """End the moves no host has advanced for `build_timeout` (a lost message, a host that went away): one
        the source never began goes back to its previous state, one it began ends in ERROR; both with a fault,
        the claims back on the source. Returns the servers ended."""
        timeout = self.settings.compute.build_timeout
        if not timeout:
            return []
        before = utcnow() - timedelta(seconds=timeout)
        stuck = ("pre-migrating", "migrating", "post-migrating", "reverting")

        def find(session: Session) -> list[tuple[str, str, str]]:
            return [(r.instance_uuid, r.uuid, r.status) for r in session.scalars(select(m.Migration).where(
                m.Migration.status.in_(stuck), m.Migration.updated_at < before)).all()]

        ended = []
        for instance_uuid, migration_uuid, status in await self.db.run(find, write=False):
            reason = f"Migration {migration_uuid} of instance {instance_uuid} timed out after {timeout:g} seconds"
            log.warning("%s", reason)
            await self.move_back(instance_uuid, migration_uuid, status="error", power_state=states.NOSTATE,
                                 fault=reason, error=status != "pre-migrating")
            ended.append(instance_uuid)
        return ended

    async def confirm_old_resizes(self: ConductorManager) -> list[str]:
        """Confirm the moves left in VERIFY_RESIZE longer than `resize_confirm_window` (Nova's
        _poll_unconfirmed_resizes), each recorded as a confirmResize action; the servers confirmed."""
        window = self.settings.compute.resize_confirm_window
        if not window:
            return []
        before = utcnow() - timedelta(seconds=window)
        request_id = f"req-{uuidlib.uuid4()}"

        def claim(session: Session) -> list[tuple[str, str, str]]:
            rows = session.scalars(select(m.Migration).where(
                m.Migration.status == "finished", m.Migration.updated_at < before).with_for_update()).all()
            due = []
            for migration in rows:
                inst = session.get(m.Instance, migration.instance_uuid)
                if inst is None or inst.deleted or inst.vm_state != states.RESIZED or inst.task_state is not None:
                    continue
                migration.status, migration.updated_at = "confirming", utcnow()
                session.add(m.InstanceAction(instance_uuid=inst.uuid, action="confirmResize", request_id=request_id,
                                             project_id=inst.project_id, user_id=inst.user_id, start_time=utcnow()))
                due.append((inst.uuid, migration.uuid, migration.source_compute or ""))
            return due

        due = await self.db.run(claim, write=True)
        if due:
            current_context.set(RequestContext(request_id=request_id, roles=["admin"]))
        for instance_uuid, migration_uuid, source in due:
            log.info("confirming the resize of %s (older than %gs)", instance_uuid, window)
            await self.agents.confirm_resize(source, instance_uuid, migration_uuid)
        return [d[0] for d in due]
