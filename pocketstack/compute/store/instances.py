"""The instance rows as the compute family shares them: the agents' view of an instance, soft delete, usage
counts, service heartbeats and what a guest learns of itself. Plain functions over a session, run inside the
caller's `Database.run` (and `GuestStore`, the metadata service's)."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.build import InstanceView
from pocketstack.compute.settings import ComputeSettings

INSTANCE_FIELDS = ("uuid", "display_name", "hostname", "project_id", "user_id", "image_ref", "flavor", "vcpus",
                   "memory_mb", "root_gb", "vm_state", "task_state", "power_state", "host", "node",
                   "availability_zone", "key_name", "key_data", "user_data", "config_drive", "requested_networks",
                   "security_groups", "network_info", "request_id", "retry", "system_metadata", "deleted")

BDM_FIELDS = ("id", "source_type", "destination_type", "boot_index", "device_name", "image_id", "snapshot_id",
              "volume_id", "volume_size", "delete_on_termination", "attachment_id", "connection_info", "tag")

def bdm_dict(bdm: m.BlockDeviceMapping) -> dict[str, Any]:
    return {name: getattr(bdm, name) for name in BDM_FIELDS}


def instance_dict(inst: m.Instance) -> InstanceView:
    """An instance as the agents get it, with its block device mappings under `block_device_mapping`."""
    data: dict[str, Any] = {name: getattr(inst, name) for name in INSTANCE_FIELDS}
    data["launched_at"] = inst.launched_at.isoformat() if inst.launched_at else None
    data["block_device_mapping"] = [bdm_dict(b) for b in inst.block_devices]
    return cast(InstanceView, data)


def record_heartbeat(session: Session, settings: ComputeSettings, host: str, binary: str, topic: str,
                     now: datetime) -> m.ComputeService:
    """A service's heartbeat: its row (created on the first one) is seen up now."""
    service = session.scalar(select(m.ComputeService).where(m.ComputeService.host == host,
                                                           m.ComputeService.binary == binary))
    if service is None:
        service = m.ComputeService(uuid=str(uuidlib.uuid4()), host=host, binary=binary, topic=topic,
                                   availability_zone=settings.default_availability_zone,
                                   created_at=now, report_count=0)
        session.add(service)
    service.report_count += 1
    service.last_seen_up = now
    service.updated_at = now
    return service


def mark_deleted(session: Session, instance_uuid: str) -> None:
    """Soft-delete an instance row and release its claim, group membership and console tokens (shared by API and
    conductor)."""
    now = utcnow()
    session.execute(update(m.Instance).where(m.Instance.uuid == instance_uuid).values(
        deleted=True, deleted_at=now, terminated_at=now, vm_state=states.DELETED, task_state=None,
        power_state=states.NOSTATE, updated_at=now))
    session.execute(delete(m.Allocation).where(m.Allocation.consumer_uuid == instance_uuid))
    session.execute(delete(m.ServerGroupMember).where(m.ServerGroupMember.instance_uuid == instance_uuid))
    session.execute(delete(m.BlockDeviceMapping).where(m.BlockDeviceMapping.instance_uuid == instance_uuid))
    session.execute(delete(m.ConsoleAuthToken).where(m.ConsoleAuthToken.instance_uuid == instance_uuid))


def usage_query(project_id: str) -> Any:
    """Instances, cores and RAM a project holds: a query for `count_usage` and its synchronous twin."""
    return (select(func.count(), func.coalesce(func.sum(m.Instance.vcpus), 0),
                   func.coalesce(func.sum(m.Instance.memory_mb), 0))
            .where(m.Instance.project_id == project_id, m.Instance.deleted.is_(False)))


def usage_dict(row: Any) -> dict[str, int]:
    return {"instances": int(row[0]), "cores": int(row[1]), "ram": int(row[2])}


def count_usage(session: Session, project_id: str) -> dict[str, int]:
    """Instances, cores and RAM a project holds (for quotas and limits)."""
    return usage_dict(session.execute(usage_query(project_id)).one())


def count_by_state(session: Session) -> dict[str, int]:
    """Servers that are not deleted, by vm_state (one indexed GROUP BY; the servers-by-state metric)."""
    rows = session.execute(select(m.Instance.vm_state, func.count()).where(m.Instance.deleted.is_(False))
                           .group_by(m.Instance.vm_state))
    return {state: count for state, count in rows}


def guest_record(session: Session, instance_id: str, project_id: str
                 ) -> tuple[dict[str, Any], dict[str, str], str] | None:
    """What the metadata service tells a guest about itself: its instance dict (with launch index, reservation,
    sealed admin password and posted password), its metadata items and its key pair's type; None when the project
    has no such undeleted instance."""
    inst = session.get(m.Instance, instance_id)
    if inst is None or inst.deleted or inst.project_id != project_id:
        return None
    data: dict[str, Any] = dict(instance_dict(inst))
    data.update(launch_index=inst.launch_index, reservation_id=inst.reservation_id,
                admin_pass_sealed=inst.admin_pass_sealed, guest_password=inst.guest_password or "")
    meta = {key: value for key, value in session.execute(select(m.InstanceMetadata.key, m.InstanceMetadata.value)
                                                         .where(m.InstanceMetadata.instance_uuid == instance_id))}
    key_type = "ssh"
    if inst.key_name:
        key_type = session.scalar(select(m.KeyPair.type).where(
            m.KeyPair.user_id == inst.user_id, m.KeyPair.name == inst.key_name)) or "ssh"
    return data, meta, key_type


def post_guest_password(session: Session, instance_id: str, project_id: str, password: str) -> bool | None:
    """Keep the password a guest posted, once (True); False when one is already kept; None: no such instance."""
    inst = session.get(m.Instance, instance_id)
    if inst is None or inst.deleted or inst.project_id != project_id:
        return None
    if inst.guest_password:
        return False
    inst.guest_password = password
    return True


class GuestStore:
    """The instance rows as the metadata service reads them (compute owns and migrates the database; the one
    write is the password a guest posts)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def guest_record(self, instance_id: str, project_id: str
                           ) -> tuple[dict[str, Any], dict[str, str], str] | None:
        return await self.db.run(lambda s: guest_record(s, instance_id, project_id), write=False)

    async def post_password(self, instance_id: str, project_id: str, password: str) -> bool | None:
        return await self.db.run(lambda s: post_guest_password(s, instance_id, project_id, password), write=True)
