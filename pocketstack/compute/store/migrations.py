"""The `migrations` rows as the compute API writes and reads them: the start of a resize or cold migration (its
checks, quota delta and record in one transaction), the start of a confirm or revert, and the `os-migrations`
list with Nova's filters."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.store.actions import record_action
from pocketstack.compute.store.instances import usage_dict, usage_query
from pocketstack.compute.store.quotas import project_limits_sync, user_limits_sync
from pocketstack.compute.store.servers import _resolve_flavor, visible_instance
from pocketstack.settings import Settings

InstanceCheck = Callable[[Any], None]
Migration = m.Migration  # the row type the API's views render

# a move in progress (its claims held on both hosts), as Nova's migration statuses name it
IN_PROGRESS = ("pre-migrating", "migrating", "post-migrating", "finished", "confirming", "reverting")


@dataclass
class MoveStart:
    """What the API hands the conductor after a resize or migrate was accepted."""

    instance_uuid: str
    migration_uuid: str


@dataclass
class MigrationQuery:
    """The filters and page of an os-migrations list."""

    instance_uuid: str | None = None
    source_compute: str | None = None
    status: str | None = None
    migration_type: str | None = None
    host: str | None = None
    hidden: bool | None = None
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    user_id: str | None = None
    project_id: str | None = None
    marker: str | None = None
    limit: int | None = None


def flavor_snapshot(session: Session, flavor: m.Flavor) -> dict[str, Any]:
    """A flavor as an instance keeps it (what `server show` renders)."""
    specs = {s.key: s.value for s in session.scalars(
        select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id)).all()}
    return {"id": flavor.flavorid, "name": flavor.name, "vcpus": flavor.vcpus, "ram": flavor.memory_mb,
            "disk": flavor.root_gb, "ephemeral": flavor.ephemeral_gb, "swap": flavor.swap, "extra_specs": specs}


def _volume_backed(inst: m.Instance) -> bool:
    return any(b.boot_index == 0 and b.destination_type == "volume" for b in inst.block_devices)


def _check_quota_delta(session: Session, settings: Settings, inst: m.Instance, ctx: RequestContext,
                       new: m.Flavor) -> None:
    """403 when growing to `new` takes the project (or the user) over its cores or RAM quota (Nova checks the
    delta of an upsize only)."""
    deltas = {"cores": new.vcpus - inst.vcpus, "ram": new.memory_mb - inst.memory_mb}
    if all(d <= 0 for d in deltas.values()):
        return
    for limits, query in ((project_limits_sync(session, settings, inst.project_id), usage_query(inst.project_id)),
                          (user_limits_sync(session, settings, inst.project_id, inst.user_id),
                           usage_query(inst.project_id).where(m.Instance.user_id == inst.user_id))):
        used = usage_dict(session.execute(query).one())
        for resource, delta in deltas.items():
            limit = limits[resource]
            if delta > 0 and 0 <= limit < used[resource] + delta:
                raise Forbidden(f"Quota exceeded for {resource}: Requested {delta}, but already used "
                                f"{used[resource]} of {limit} {resource}")


def _start_move(session: Session, settings: Settings, server_id: str, ctx: RequestContext, check: InstanceCheck,
                action: str, flavor_ref: str | None, auto_disk_config: bool | None) -> MoveStart:
    inst = visible_instance(session, server_id, ctx)
    check(inst)
    old = session.scalar(select(m.Flavor).where(m.Flavor.flavorid == inst.flavor["id"]))
    old_snapshot = dict(inst.flavor)
    if flavor_ref is not None:
        try:
            new = _resolve_flavor(session, flavor_ref, ctx)
        except BadRequest:
            raise BadRequest("Unable to locate requested flavor.") from None
        if new.flavorid == inst.flavor["id"]:
            raise BadRequest("When resizing, instances must change flavor!")
        if not _volume_backed(inst):
            if new.root_gb == 0 and inst.root_gb != 0:
                raise BadRequest("Server disk was unable to be resized because: Resize to zero disk flavor is not "
                                 "allowed.")
            if new.root_gb < inst.root_gb:
                raise BadRequest("Server disk was unable to be resized because: Resize of a disk to a smaller "
                                 "size is not possible.")
        new_snapshot = flavor_snapshot(session, new)
    else:
        new, new_snapshot = old, old_snapshot
    inst.task_state = states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)
    if new is not None and new is not old:
        _check_quota_delta(session, settings, inst, ctx, new)
    if auto_disk_config is not None:
        inst.auto_disk_config = auto_disk_config
    now = utcnow()
    migration = m.Migration(
        uuid=str(uuidlib.uuid4()), instance_uuid=inst.uuid, source_compute=inst.host, source_node=inst.node,
        old_instance_type_id=old.id if old is not None else None,
        new_instance_type_id=new.id if new is not None else None, old_flavor=old_snapshot,
        new_flavor=new_snapshot, status="pre-migrating", migration_type="resize" if flavor_ref else "migration",
        hidden=False, project_id=inst.project_id, user_id=inst.user_id, created_at=now, updated_at=now)
    session.add(migration)
    system_metadata = dict(inst.system_metadata or {})
    system_metadata["old_vm_state"] = inst.vm_state
    inst.system_metadata = system_metadata
    inst.updated_at = now
    record_action(session, inst.uuid, action, ctx, inst.project_id)
    return MoveStart(inst.uuid, migration.uuid)


def _start_finish(session: Session, server_id: str, ctx: RequestContext, check: InstanceCheck,
                  action: str) -> tuple[m.Migration, str]:
    """`confirmResize` or `revertResize` accepted: the migration (confirming / reverting) and the host to ask."""
    inst = visible_instance(session, server_id, ctx)
    check(inst)
    task = states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)
    migration = session.scalar(select(m.Migration).where(
        m.Migration.instance_uuid == inst.uuid, m.Migration.status == "finished")
        .order_by(m.Migration.id.desc()))
    if migration is None:
        raise BadRequest("Instance has not been resized.")
    if action == "revertResize":
        inst.task_state = task
        migration.status = "reverting"
        host = migration.dest_compute
    else:
        migration.status = "confirming"
        host = migration.source_compute
    migration.updated_at = inst.updated_at = utcnow()
    record_action(session, inst.uuid, action, ctx, inst.project_id)
    session.flush()
    session.expunge(migration)
    return migration, host or ""


def _list(session: Session, q: MigrationQuery) -> list[m.Migration]:
    query = select(m.Migration)
    if q.hidden is not None:
        query = query.where(m.Migration.hidden.is_(q.hidden))
    for column, value in ((m.Migration.instance_uuid, q.instance_uuid), (m.Migration.status, q.status),
                          (m.Migration.source_compute, q.source_compute),
                          (m.Migration.migration_type, q.migration_type), (m.Migration.user_id, q.user_id),
                          (m.Migration.project_id, q.project_id)):
        if value is not None:
            query = query.where(column == value)
    if q.host is not None:
        query = query.where(or_(m.Migration.source_compute == q.host, m.Migration.dest_compute == q.host))
    changed = m.Migration.updated_at
    if q.changes_since is not None:
        query = query.where(changed >= q.changes_since)
    if q.changes_before is not None:
        query = query.where(changed <= q.changes_before)
    if q.marker is not None:
        marker = session.scalar(select(m.Migration).where(m.Migration.uuid == q.marker))
        if marker is None:
            raise BadRequest(f"Marker {q.marker} could not be found.")
        query = query.where(or_(m.Migration.created_at < marker.created_at,
                                (m.Migration.created_at == marker.created_at) & (m.Migration.id < marker.id)))
    query = query.order_by(m.Migration.created_at.desc(), m.Migration.id.desc())
    if q.limit is not None:
        query = query.limit(q.limit)
    return list(session.scalars(query).all())


class MigrationStore:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def start_move(self, server_id: str, ctx: RequestContext, check: InstanceCheck, action: str,
                         flavor_ref: str | None, auto_disk_config: bool | None = None) -> MoveStart:
        """Accept a `resize` (to `flavor_ref`) or a `migrate` (None): checks, task resize_prep, the migration
        row (pre-migrating) and the instance action, in one transaction."""
        return await self.db.run(lambda s: _start_move(s, self.settings, server_id, ctx, check, action, flavor_ref,
                                                       auto_disk_config), write=True)

    async def start_finish(self, server_id: str, ctx: RequestContext, check: InstanceCheck,
                           action: str) -> tuple[m.Migration, str]:
        """Accept a `confirmResize` or `revertResize` (400 when the server has no finished migration)."""
        return await self.db.run(lambda s: _start_finish(s, server_id, ctx, check, action), write=True)

    async def abandon(self, migration_uuid: str, instance_uuid: str) -> None:
        """A move the conductor never got: the migration errors, the server's task ends."""
        def write(session: Session) -> None:
            migration = session.scalar(select(m.Migration).where(m.Migration.uuid == migration_uuid))
            if migration is not None:
                migration.status, migration.updated_at = "error", utcnow()
            inst = session.get(m.Instance, instance_uuid)
            if inst is not None and inst.task_state == states.RESIZE_PREP:
                inst.task_state = None

        await self.db.run(write, write=True)

    async def finished(self, instance_uuid: str) -> tuple[str, str] | None:
        """(uuid, source host) of the server's move waiting for confirm or revert, if it has one."""
        query = (select(m.Migration.uuid, m.Migration.source_compute)
                 .where(m.Migration.instance_uuid == instance_uuid, m.Migration.status == "finished"))
        row = await self.db.run(lambda s: s.execute(query).first(), write=False)
        return (row[0], row[1]) if row is not None and row[1] else None

    async def list(self, query: MigrationQuery) -> list[m.Migration]:
        return await self.db.run(lambda s: _list(s, query), write=False)
