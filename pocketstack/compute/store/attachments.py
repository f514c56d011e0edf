"""The volume mappings of a server's attachments (os-volume_attachments): recorded when the volume service has
reserved the volume, removed when the host could not be asked to attach it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.actions import record_action
from pocketstack.compute.store.servers import InstanceCheck


@dataclass
class NewAttachment:
    """A volume attachment to record: the volume, the volume service's attachment, what the caller asked for."""

    volume_id: str
    volume_size: int | None
    attachment_id: str
    delete_on_termination: bool = False
    tag: str | None = None


class AttachmentStore:
    """Volume mappings of servers."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, instance_uuid: str, server_id: str, ctx: RequestContext, check: InstanceCheck,
                     device_for: Callable[[set[str]], str], new: NewAttachment
                     ) -> tuple[m.BlockDeviceMapping, str | None]:
        """The mapping (its device from `device_for(devices in use)`) and the attach_volume action, `check`
        passing on the server; the mapping and the server's host."""
        def write(session: Session) -> tuple[m.BlockDeviceMapping, str | None]:
            inst = session.get(m.Instance, instance_uuid)
            if inst is None or inst.deleted:
                raise NotFound(f"Instance {server_id} could not be found.")
            check(inst)
            device = device_for({b.device_name for b in inst.block_devices if b.device_name})
            bdm = m.BlockDeviceMapping(instance_uuid=instance_uuid, source_type="volume", destination_type="volume",
                                       boot_index=None, device_name=device, volume_id=new.volume_id,
                                       volume_size=new.volume_size, delete_on_termination=new.delete_on_termination,
                                       tag=new.tag, attachment_id=new.attachment_id, created_at=utcnow())
            session.add(bdm)
            record_action(session, instance_uuid, "attach_volume", ctx, inst.project_id)
            session.flush()
            return bdm, inst.host

        return await self.db.run(write, write=True)

    async def delete(self, bdm_id: int) -> None:
        await self.db.run(lambda s: s.execute(delete(m.BlockDeviceMapping).where(m.BlockDeviceMapping.id == bdm_id)),
                          write=True)
