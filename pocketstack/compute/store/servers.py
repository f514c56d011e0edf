"""The server rows the compute API reads and writes: lookups as a caller sees them, the server list, the records of a
create (with its quota check), updates, power and lock changes, and the start of a delete."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from pocketstack.common import tracing
from pocketstack.common.apikit import is_uuid
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.store.actions import record_action
from pocketstack.compute.store.aggregates import host_zones, zone_exists
from pocketstack.compute.store.instances import mark_deleted, usage_dict, usage_query
from pocketstack.compute.store.quotas import project_limits_sync, user_limits_sync
from pocketstack.settings import Settings

# Called with the instance row inside the transaction: raises to refuse (policy, lock, state).
InstanceCheck = Callable[[Any], None]

SORT_KEYS = ("created_at", "display_name", "updated_at", "uuid", "vm_state")

# a server list reads plain rows of the columns views show (no ORM objects: building them cost most of a list)
_NOT_LISTED = {"request_spec", "scheduler_hints", "requested_networks", "retry", "key_data"}
_LISTED = [c for c in m.Instance.__table__.c if c.key not in _NOT_LISTED]


@dataclass
class ServerRecord:
    """A server with what its view shows besides its row: metadata, tags and latest fault."""

    inst: Any  # m.Instance, or a listed row with its volume mappings as `block_devices`
    metadata: dict[str, str]
    tags: list[str]
    fault: m.InstanceFault | None


@dataclass
class ServerQuery:
    """The filters, order and page of a server list."""

    project_id: str | None  # with all_projects: None reads every project
    limit: int
    all_projects: bool = False
    show_deleted: bool = False
    changes_since: datetime | None = None
    vm_state: str | None = None
    task_state: str | None = None
    host: str | None = None
    image: str | None = None
    flavor: str | None = None
    availability_zone: str | None = None
    reservation_id: str | None = None
    locked: bool | None = None
    tags: list[str] = field(default_factory=list)  # all of these
    tags_any: list[str] = field(default_factory=list)  # one of these
    name: re.Pattern[str] | None = None
    ip: re.Pattern[str] | None = None  # searched in the fixed IPv4 addresses
    ip6: re.Pattern[str] | None = None  # and IPv6 ones
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    marker: str | None = None


def _fixed_ips(network_info: list[dict[str, Any]] | None, ip_version: int) -> list[str]:
    return [ip["ip_address"] for vif in network_info or [] for ip in vif.get("fixed_ips", [])
            if (":" in ip["ip_address"]) == (ip_version == 6)]


def _matches(query: ServerQuery, row: Any) -> bool:
    """The regular-expression filters Nova applies to a listed row: name, ip and ip6 (searched, not anchored)."""
    if query.name is not None and not query.name.search(row.display_name):
        return False
    for pattern, ip_version in ((query.ip, 4), (query.ip6, 6)):
        if pattern is not None and not any(pattern.search(ip) for ip in _fixed_ips(row.network_info, ip_version)):
            return False
    return True


@dataclass
class BuildInputs:
    """The rows a server create reads before it writes: the flavor (with its extra specs), key, group."""

    flavor: m.Flavor
    extra_specs: dict[str, str]
    key_data: str | None = None
    group: m.ServerGroup | None = None


@dataclass
class NewServers:
    """The rows of a server create: one instance per entry of `instances`, each with the same extras."""

    ctx: RequestContext
    instances: list[dict[str, Any]]  # Instance columns
    vcpus: int
    memory_mb: int
    mappings: list[dict[str, Any]] = field(default_factory=list)  # BlockDeviceMapping columns
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    group_uuid: str | None = None


def visible_instance(session: Session, server_id: str, ctx: RequestContext) -> m.Instance:
    """The server, or 404 when it does not exist or belongs to another project (for non-admins)."""
    inst = session.get(m.Instance, server_id) if is_uuid(server_id) else None
    if inst is None or inst.deleted or (not ctx.is_admin and inst.project_id != ctx.project_id):
        raise NotFound(f"Instance {server_id} could not be found.")
    return inst


def load_extras(session: Session, uuids: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, list[str]],
                                                             dict[str, m.InstanceFault]]:
    """Metadata, tags and latest fault of many instances in three queries."""
    metadata: dict[str, dict[str, str]] = {u: {} for u in uuids}
    tags: dict[str, list[str]] = {u: [] for u in uuids}
    faults: dict[str, m.InstanceFault] = {}
    if not uuids:
        return metadata, tags, faults
    for row in session.scalars(select(m.InstanceMetadata).where(m.InstanceMetadata.instance_uuid.in_(uuids))).all():
        metadata[row.instance_uuid][row.key] = row.value
    for row in session.scalars(select(m.InstanceTag).where(m.InstanceTag.instance_uuid.in_(uuids))
                               .order_by(m.InstanceTag.tag)).all():
        tags[row.instance_uuid].append(row.tag)
    for row in session.scalars(select(m.InstanceFault).where(m.InstanceFault.instance_uuid.in_(uuids))
                               .order_by(m.InstanceFault.id)).all():
        faults[row.instance_uuid] = row
    return metadata, tags, faults


def _record(session: Session, inst: m.Instance) -> ServerRecord:
    metadata, tags, faults = load_extras(session, [inst.uuid])
    return ServerRecord(inst, metadata[inst.uuid], tags[inst.uuid], faults.get(inst.uuid))


def _quota_message(resource: str, requested: int, used: int, limit: int) -> str:
    return f"Quota exceeded for {resource}: Requested {requested}, but already used {used} of {limit} {resource}"


def _check_quota(session: Session, settings: Settings, new: NewServers) -> None:
    """403 when the servers would take the project (or their group) over its quota."""
    count = len(new.instances)
    limits = project_limits_sync(session, settings, new.ctx.project_id)
    if 0 <= limits["metadata_items"] < len(new.metadata):
        raise Forbidden(f"Quota exceeded for metadata_items: Maximum number of metadata items exceeds "
                        f"{limits['metadata_items']}")
    used = usage_dict(session.execute(usage_query(new.ctx.project_id)).one())
    for resource, per_instance in (("instances", 1), ("cores", new.vcpus), ("ram", new.memory_mb)):
        limit = limits[resource]
        if limit >= 0 and used[resource] + per_instance * count > limit:
            raise Forbidden(_quota_message(resource, per_instance * count, used[resource], limit))
    # a user's own quota inside the project, where one is set (os-quota-sets?user_id=)
    user_limits = user_limits_sync(session, settings, new.ctx.project_id, new.ctx.user_id)
    if user_limits != limits:
        mine = usage_dict(session.execute(usage_query(new.ctx.project_id).where(
            m.Instance.user_id == new.ctx.user_id)).one())
        for resource, per_instance in (("instances", 1), ("cores", new.vcpus), ("ram", new.memory_mb)):
            limit = user_limits[resource]
            if limit >= 0 and mine[resource] + per_instance * count > limit:
                raise Forbidden(_quota_message(resource, per_instance * count, mine[resource], limit))


def _write_servers(session: Session, settings: Settings, new: NewServers) -> None:
    ctx, now = new.ctx, utcnow()
    if new.group_uuid is not None:
        members = session.scalar(select(func.count()).select_from(m.ServerGroupMember).where(
            m.ServerGroupMember.group_uuid == new.group_uuid))
        limit = project_limits_sync(session, settings, ctx.project_id)["server_group_members"]
        if limit >= 0 and members + len(new.instances) > limit:
            raise Forbidden(_quota_message("server_group_members", len(new.instances), members, limit))
    for columns in new.instances:
        instance_uuid = columns["uuid"]
        session.add(m.Instance(**columns, created_at=now, updated_at=now))
        for mapping in new.mappings:
            session.add(m.BlockDeviceMapping(instance_uuid=instance_uuid, created_at=now, **mapping))
        for key, value in new.metadata.items():
            session.add(m.InstanceMetadata(instance_uuid=instance_uuid, key=key, value=value))
        for tag in dict.fromkeys(new.tags):
            session.add(m.InstanceTag(instance_uuid=instance_uuid, tag=tag))
        session.add(m.InstanceAction(instance_uuid=instance_uuid, action="create", request_id=ctx.request_id,
                                     project_id=ctx.project_id, user_id=ctx.user_id, start_time=now))
        if new.group_uuid is not None:
            session.add(m.ServerGroupMember(group_uuid=new.group_uuid, instance_uuid=instance_uuid))
    session.flush()


def _resolve_flavor(session: Session, flavor_ref: str, ctx: RequestContext) -> m.Flavor:
    flavor = session.scalar(select(m.Flavor).where(m.Flavor.flavorid == flavor_ref))
    if flavor is None or flavor.disabled:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.")
    if not flavor.is_public and not ctx.is_admin:
        allowed = session.get(m.FlavorProject, (flavor.id, ctx.project_id))
        if allowed is None:
            raise BadRequest(f"Flavor {flavor_ref} could not be found.")
    return flavor


def _read_build_inputs(session: Session, ctx: RequestContext, flavor_ref: str, key_name: str | None,
                       group_uuid: str | None, zone: str | None) -> BuildInputs:
    flavor = _resolve_flavor(session, flavor_ref, ctx)
    inputs = BuildInputs(flavor, {s.key: s.value for s in session.scalars(
        select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id)).all()})
    if key_name:
        keypair = session.scalar(select(m.KeyPair).where(m.KeyPair.user_id == ctx.user_id,
                                                         m.KeyPair.name == key_name))
        if keypair is None:
            raise BadRequest("Invalid key_name provided.")
        inputs.key_data = keypair.public_key
    if group_uuid is not None:
        inputs.group = session.get(m.ServerGroup, group_uuid)
        if inputs.group is None or (inputs.group.project_id != ctx.project_id and not ctx.is_admin):
            raise BadRequest(f"Server group {group_uuid} could not be found.")
    if zone:
        if not zone_exists(session, zone):
            raise BadRequest(f"The requested availability zone is not available: {zone}")
    return inputs


def _filtered(query: Any, q: ServerQuery, is_sqlite: bool) -> Any:
    """The WHERE clauses of a server list (everything but the marker)."""
    if not q.all_projects or q.project_id:
        query = query.where(m.Instance.project_id == q.project_id)
    if not q.show_deleted:
        query = query.where(m.Instance.deleted.is_(False))
    if q.changes_since is not None:
        query = query.where(or_(m.Instance.updated_at >= q.changes_since, m.Instance.created_at >= q.changes_since))
    for column, value in ((m.Instance.vm_state, q.vm_state), (m.Instance.task_state, q.task_state),
                          (m.Instance.host, q.host), (m.Instance.image_ref, q.image),
                          (m.Instance.availability_zone, q.availability_zone),
                          (m.Instance.reservation_id, q.reservation_id)):
        if value:
            query = query.where(column == value)
    if q.flavor:
        query = query.where(func.json_extract(m.Instance.flavor, "$.id") == q.flavor
                            if is_sqlite else m.Instance.flavor["id"].as_string() == q.flavor)
    if q.locked is not None:
        query = query.where(m.Instance.locked.is_(q.locked))
    for tag in q.tags:
        query = query.where(m.Instance.uuid.in_(select(m.InstanceTag.instance_uuid).where(m.InstanceTag.tag == tag)))
    if q.tags_any:
        query = query.where(m.Instance.uuid.in_(select(m.InstanceTag.instance_uuid).where(
            m.InstanceTag.tag.in_(q.tags_any))))
    return query


def _ordered_page(session: Session, query: Any, q: ServerQuery) -> Any:
    """`query` after the marker, in the list's order."""
    column = getattr(m.Instance, q.sort_key)
    desc = q.sort_dir == "desc"
    if q.marker:
        marker = session.get(m.Instance, q.marker)
        if marker is None:
            raise BadRequest(f"marker [{q.marker}] not found")
        mval = getattr(marker, column.key)
        cmp = column < mval if desc else column > mval
        tie = and_(column == mval, m.Instance.uuid < marker.uuid if desc else m.Instance.uuid > marker.uuid)
        query = query.where(or_(cmp, tie))
    order = (column.desc(), m.Instance.uuid.desc()) if desc else (column.asc(), m.Instance.uuid.asc())
    return query.order_by(*order).with_only_columns(*_LISTED)


def _listed(session: Session, rows: list[Any]) -> list[ServerRecord]:
    """The records of listed rows: their extras and volume mappings, in four queries."""
    uuids = [i.uuid for i in rows]
    metadata, tags, faults = load_extras(session, uuids)
    volumes: dict[str, list[SimpleNamespace]] = defaultdict(list)
    for uuid, volume_id, delete_on_termination in session.execute(
            select(m.BlockDeviceMapping.instance_uuid, m.BlockDeviceMapping.volume_id,
                   m.BlockDeviceMapping.delete_on_termination).where(
                m.BlockDeviceMapping.instance_uuid.in_(uuids), m.BlockDeviceMapping.volume_id.is_not(None))
            .order_by(m.BlockDeviceMapping.id)):
        volumes[uuid].append(SimpleNamespace(volume_id=volume_id, delete_on_termination=delete_on_termination))
    return [ServerRecord(SimpleNamespace(**i._mapping, block_devices=volumes[i.uuid]), metadata[i.uuid],
                         tags[i.uuid], faults.get(i.uuid)) for i in rows]


class ServerStore:
    """The instance rows as the compute API sees them."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def visible(self, server_id: str, ctx: RequestContext) -> m.Instance:
        """The server as `ctx` may see it (404 otherwise), its block device mappings loaded."""
        return await self.db.run(lambda s: visible_instance(s, server_id, ctx), write=False)

    async def show(self, server_id: str, ctx: RequestContext) -> ServerRecord:
        return await self.db.run(lambda s: _record(s, visible_instance(s, server_id, ctx)), write=False)

    async def page(self, query: ServerQuery, *, detail: bool) -> list[Any]:
        """The page of servers `query` selects: their records when `detail`, else rows of uuid and display_name."""
        def read(session: Session) -> list[Any]:
            statement = _ordered_page(session, _filtered(select(m.Instance), query, self.db.is_sqlite), query)
            if query.name is None and query.ip is None and query.ip6 is None:
                rows = session.execute(statement.limit(query.limit)).all()
            else:
                rows = [i for i in session.execute(statement).all() if _matches(query, i)][:query.limit]
            return _listed(session, rows) if detail else rows

        return await self.db.run(read, write=False)  # one hop: polled often, and lists are long

    async def build_inputs(self, ctx: RequestContext, flavor_ref: str, key_name: str | None,
                           group_uuid: str | None, zone: str | None) -> BuildInputs:
        """What a create reads (400 when the flavor, key, group or zone does not exist for the caller)."""
        return await self.db.run(lambda s: _read_build_inputs(s, ctx, flavor_ref, key_name, group_uuid, zone),
                                 write=False)  # one hop for the API's reads

    async def create(self, new: NewServers) -> None:
        """The quota check (FLOW.md step 6) and the records of the new servers (step 7), as one transaction."""
        def write(session: Session) -> None:
            with tracing.sync_span("DB", "quota check", step="6"):
                _check_quota(session, self.settings, new)
            with tracing.sync_span("DB", "write instance records (building/scheduling)", step="7"):
                _write_servers(session, self.settings, new)

        await self.db.run(write, write=True)

    async def fail_build(self, uuids: list[str], code: int, reason: str) -> None:
        """The servers go to ERROR with a fault (their build could not start)."""
        def write(session: Session) -> None:
            for instance_uuid in uuids:
                inst = session.get(m.Instance, instance_uuid)
                inst.vm_state, inst.task_state = states.ERROR, None
                session.add(m.InstanceFault(instance_uuid=instance_uuid, code=code, created_at=utcnow(),
                                            message=reason))

        await self.db.run(write, write=True)

    async def update(self, server_id: str, ctx: RequestContext, check: InstanceCheck,
                     changes: dict[str, Any]) -> ServerRecord:
        """Set the columns in `changes` on the server (`check` passing) and read it back."""
        def write(session: Session) -> ServerRecord:
            inst = visible_instance(session, server_id, ctx)
            check(inst)
            for column, value in changes.items():
                setattr(inst, column, value)
            inst.updated_at = utcnow()
            session.flush()
            return _record(session, inst)

        return await self.db.run(write, write=True)

    async def start_delete(self, instance_uuid: str, server_id: str, ctx: RequestContext) -> str | None:
        """Record the delete; the host to tear the server down on (for a shelved-offloaded server one that
        releases its ports and volumes), or None when it never reached one (then the row is deleted now)."""
        def write(session: Session) -> str | None:
            row = session.get(m.Instance, instance_uuid)
            if row is None or row.deleted:
                raise NotFound(f"Instance {server_id} could not be found.")
            record_action(session, row.uuid, "delete", ctx, row.project_id)
            host = row.host
            if host is None and row.vm_state == states.SHELVED_OFFLOADED:
                # on no host, but it still holds ports and volume attachments: a compute agent releases them (the
                # one it was shelved on, else any), as Nova's API does for an offloaded server
                hosts = set(host_zones(session))
                last = (row.system_metadata or {}).get("shelved_host")
                host = last if last in hosts else next(iter(sorted(hosts)), None)
            if host is None:
                # never reached a host (scheduling failed, or still scheduling): nothing to tear down there
                mark_deleted(session, row.uuid)
                return None
            row.task_state = states.DELETING
            row.updated_at = utcnow()
            return host

        return await self.db.run(write, write=True)

    async def start_power_action(self, server_id: str, ctx: RequestContext, check: InstanceCheck, action: str,
                                 recorded: str) -> str | None:
        """Set the task of a power `action` (409 when the state allows none), record it; the server's host."""
        def write(session: Session) -> str | None:
            inst = visible_instance(session, server_id, ctx)
            check(inst)
            inst.task_state = states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)
            inst.updated_at = utcnow()
            record_action(session, inst.uuid, recorded, ctx, inst.project_id)
            return inst.host

        return await self.db.run(write, write=True)

    async def start_rebuild(self, server_id: str, ctx: RequestContext, check: InstanceCheck,
                            changes: dict[str, Any], metadata: dict[str, str] | None,
                            key_name: str | None = None, set_key: bool = False) -> tuple[str | None, ServerRecord]:
        """Set the task of a rebuild (409 when the state allows none) with its `changes` to the row, `metadata`
        replacing the server's when given, the key pair `key_name` when `set_key` (None: no key; 400 when the
        caller has none of that name); record it. The server's host and its record."""
        def write(session: Session) -> tuple[str | None, ServerRecord]:
            inst = visible_instance(session, server_id, ctx)
            check(inst)
            inst.task_state = states.check_action("rebuild", inst.uuid, inst.vm_state, inst.task_state)
            if set_key:
                key_data = None
                if key_name is not None:
                    owner = ctx.user_id or inst.user_id
                    keypair = session.scalar(select(m.KeyPair).where(m.KeyPair.user_id == owner,
                                                                     m.KeyPair.name == key_name))
                    if keypair is None:
                        raise BadRequest("Invalid key_name provided.")
                    key_data = keypair.public_key
                inst.key_name, inst.key_data = key_name, key_data
            for column, value in changes.items():
                setattr(inst, column, value)
            if metadata is not None:
                session.execute(delete(m.InstanceMetadata).where(m.InstanceMetadata.instance_uuid == inst.uuid))
                for key, value in metadata.items():
                    session.add(m.InstanceMetadata(instance_uuid=inst.uuid, key=key, value=value))
            inst.updated_at = utcnow()
            record_action(session, inst.uuid, "rebuild", ctx, inst.project_id)
            session.flush()
            return inst.host, _record(session, inst)

        return await self.db.run(write, write=True)

    async def end_task(self, instance_uuid: str, task_states: list[str | None]) -> None:
        """Clear the server's task if it is still one of `task_states` (an action its host never got)."""
        def write(session: Session) -> None:
            inst = session.get(m.Instance, instance_uuid)
            if inst is not None and inst.task_state in task_states:
                inst.task_state = None
                inst.updated_at = utcnow()

        await self.db.run(write, write=True)

    async def reset_state(self, instance_uuid: str, ctx: RequestContext, vm_state: str) -> None:
        """An admin's os-resetState: the vm_state given, no task (whatever was running is abandoned), recorded."""
        def write(session: Session) -> None:
            inst = visible_instance(session, instance_uuid, ctx)
            inst.vm_state, inst.task_state, inst.updated_at = vm_state, None, utcnow()
            record_action(session, inst.uuid, "resetState", ctx, inst.project_id)

        await self.db.run(write, write=True)

    async def set_lock(self, server_id: str, ctx: RequestContext, check: InstanceCheck, *, locked: bool,
                       reason: str | None = None) -> None:
        """Lock (by the admin or the owner, as `ctx` is) or unlock the server, and record it."""
        def write(session: Session) -> None:
            inst = visible_instance(session, server_id, ctx)
            check(inst)
            if locked:
                inst.locked, inst.locked_by, inst.locked_reason = True, "admin" if ctx.is_admin else "owner", reason
            else:
                inst.locked, inst.locked_by, inst.locked_reason = False, None, None
            record_action(session, inst.uuid, "lock" if locked else "unlock", ctx, inst.project_id)

        await self.db.run(write, write=True)

    async def host_zones(self) -> dict[str, str]:
        """Every compute host and its availability zone."""
        return await self.db.run(host_zones, write=False)

    async def hosts(self, uuids: list[str]) -> dict[str, str | None]:
        """The host of each existing, undeleted server among `uuids` (None: not on a host yet)."""
        def read(session: Session) -> dict[str, str | None]:
            rows = session.execute(select(m.Instance.uuid, m.Instance.host).where(
                m.Instance.uuid.in_(uuids), m.Instance.deleted.is_(False))).all()
            return {uuid: host for uuid, host in rows}

        return await self.db.run(read, write=False)
