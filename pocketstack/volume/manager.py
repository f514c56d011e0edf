"""The volume manager (cinder-volume) of one backend: it does what the API accepted, through its backend, and
moves volumes and snapshots through their statuses; a failure ends in an error status with a user message.

Operations on one volume's files (create, delete, extend, snapshots, exporting it to a host) run one at a time
under that volume's lock, so an attach never sees a file that a snapshot is replacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.common import tracing
from pocketstack.common.clients.compute_events import VOLUME_EXTENDED, ComputeNotifier, ServerEvent
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.db import Database
from pocketstack.common.errors import APIError, BadRequest, NotFound
from pocketstack.common.rpc import RPCEndpoint
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import messages
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.backends import BackendError, Location, VolumeBackend
from pocketstack.volume.scheduler import VOLUME_BINARY

log = logging.getLogger("pocketstack.volume.manager")

DRIVER_VERSION = "1.0"


def location(row: m.Volume | m.Snapshot) -> Location | None:
    if not row.provider_location:
        return None
    return Location(row.provider_location, row.disk_format or "raw")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BackendError):
        return str(exc)
    return f"the backend failed unexpectedly ({type(exc).__name__})."


class VolumeManager(RPCEndpoint):
    namespace = "volume"
    version = "1.0"

    def __init__(self, settings: Settings, db: Database, backend: VolumeBackend, image: ImageClient, *,
                 compute_events: ComputeNotifier | None = None) -> None:
        self.settings = settings
        self.compute_events = compute_events  # tells compute of attached volumes that grew
        self.db = db
        self.backend = backend
        self.image = image
        cfg = settings.volume
        self.service_host = f"{cfg.host}@{cfg.backend_name}"  # RPC server name and services.host
        self.pool_host = f"{self.service_host}#{cfg.backend_name}"  # volumes' host
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: list[asyncio.Task[None]] = []

    # ----- lifecycle (not RPC) ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.backend.init()
        await self.report()
        await self._recover()
        self._tasks.append(asyncio.create_task(self._beat()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.volume.report_interval)
            try:
                await self.report()
            except Exception:
                log.exception("volume service report failed")

    async def report(self) -> None:
        """Heartbeat with the backend's capabilities (the scheduler's view of it)."""
        cfg = self.settings.volume
        capabilities = {**await self.backend.stats(), "volume_backend_name": cfg.backend_name,
                        "pool_name": cfg.backend_name, "driver_version": DRIVER_VERSION, "vendor_name": "pocketstack",
                        "thin_provisioning_support": True, "multiattach": True}
        now = utcnow()

        def write(session: Session) -> None:
            svc = session.scalar(select(m.Service).where(m.Service.host == self.service_host,
                                                         m.Service.binary == VOLUME_BINARY))
            if svc is None:
                svc = m.Service(host=self.service_host, binary=VOLUME_BINARY, topic="cinder-volume",
                                availability_zone=cfg.availability_zone, created_at=now, report_count=0)
                session.add(svc)
            svc.report_count += 1
            svc.last_seen_up = now
            svc.updated_at = now
            svc.availability_zone = cfg.availability_zone
            svc.total_capacity_gb = float(cfg.capacity_gb)
            svc.capabilities = capabilities

        await self.db.run(write, write=True)

    async def _recover(self) -> None:
        """What a restart interrupted (Cinder's init_host): creations, extensions and reverts fail, deletions run
        again."""
        def scan(session: Session) -> tuple[list[str], list[str]]:
            now = utcnow()
            for row in session.scalars(select(m.Volume).where(m.Volume.host == self.pool_host,
                                                              m.Volume.status == st.CREATING)).all():
                row.status, row.updated_at = st.ERROR, now
                messages.add(session, row.project_id, "VOLUME", row.id, messages.CREATE_VOLUME,
                             "the volume service restarted while the volume was being created.")
            for row in session.scalars(select(m.Volume).where(m.Volume.host == self.pool_host,
                                                              m.Volume.status == st.EXTENDING)).all():
                row.status, row.updated_at = st.ERROR_EXTENDING, now
            for row in session.scalars(select(m.Volume).where(m.Volume.host == self.pool_host,
                                                              m.Volume.status == st.REVERTING)).all():
                row.status, row.updated_at = st.ERROR, now
            for row in session.scalars(select(m.Snapshot).where(m.Snapshot.host == self.pool_host,
                                                                m.Snapshot.status == st.RESTORING)).all():
                row.status, row.updated_at = st.AVAILABLE, now
            for row in session.scalars(select(m.Volume).where(m.Volume.host == self.pool_host,
                                                              m.Volume.status == st.UPLOADING)).all():
                row.status, row.updated_at = st.AVAILABLE, now  # the image stays queued, as with Cinder
            for row in session.scalars(select(m.Snapshot).where(m.Snapshot.host == self.pool_host,
                                                                m.Snapshot.status == st.CREATING)).all():
                row.status, row.updated_at = st.ERROR, now
            volumes = session.scalars(select(m.Volume.id).where(m.Volume.host == self.pool_host,
                                                                m.Volume.status == st.DELETING)).all()
            snapshots = session.scalars(select(m.Snapshot.id).where(m.Snapshot.host == self.pool_host,
                                                                    m.Snapshot.status == st.DELETING)).all()
            return list(volumes), list(snapshots)

        volumes, snapshots = await self.db.run(scan, write=True)
        for snapshot_id in snapshots:
            self._tasks.append(asyncio.create_task(self.delete_snapshot(snapshot_id)))
        for volume_id in volumes:
            self._tasks.append(asyncio.create_task(self.delete_volume(volume_id)))

    # ----- volumes ------------------------------------------------------------------------------------------
    async def create_volume(self, volume_id: str) -> None:
        """Create the volume's data as its record says: empty, from an image, a snapshot or another volume."""
        volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
        if volume is None or volume.status != st.CREATING:
            return
        size = volume.size
        event = messages.COPY_IMAGE_TO_VOLUME if volume.image_id else messages.CREATE_VOLUME
        try:
            image_metadata: dict[str, Any] = {}
            if volume.snapshot_id:
                _, owner = await self.db.run(lambda s: self._snapshot_source(s, volume.snapshot_id), write=False)
                async with self._locks[owner]:  # its volume's files do not change while it is copied
                    source, _ = await self.db.run(lambda s: self._snapshot_source(s, volume.snapshot_id),
                                                  write=False)
                    loc = await self.backend.create_from_source(volume_id, size, source)
            elif volume.source_volid:
                async with self._locks[volume.source_volid]:
                    source = await self.db.run(lambda s: self._volume_source(s, volume.source_volid), write=False)
                    loc = await self.backend.create_from_source(volume_id, size, source)
            elif volume.image_id:
                async with tracing.span("WORK", f"{self.settings.volume.backend} backend: volume from image"):
                    loc, image_metadata = await self.backend.create_from_image(volume_id, size, volume.image_id)
            else:
                loc = await self.backend.create_empty(volume_id, size)
        except Exception as exc:
            if not isinstance(exc, BackendError):
                log.exception("creating volume %s failed", volume_id)
            await self._fail_volume(volume_id, st.ERROR, event, _reason(exc))
            return

        def finish(session: Session) -> bool:
            row = session.get(m.Volume, volume_id)
            if row is None:
                return False
            row.provider_location, row.disk_format = loc.path, loc.disk_format
            if row.status == st.CREATING:  # not if an admin reset it meanwhile
                row.status = st.AVAILABLE
            row.launched_at = row.updated_at = utcnow()
            if volume.image_id:
                row.bootable = True
                row.image_metadata = image_metadata
            elif volume.snapshot_id or volume.source_volid:
                source_row = (session.get(m.Volume, volume.source_volid) if volume.source_volid else
                              _snapshot_volume(session, volume.snapshot_id))
                if source_row is not None:
                    row.bootable = source_row.bootable
                    row.image_metadata = dict(source_row.image_metadata or {})
            return True

        if not await self.db.run(finish, write=True):  # force-deleted meanwhile: drop what was made
            await self.backend.delete(loc)

    @staticmethod
    def _snapshot_source(session: Session, snapshot_id: str) -> tuple[Location, str]:
        snap = session.get(m.Snapshot, snapshot_id)
        loc = location(snap) if snap is not None else None
        if snap is None or loc is None or snap.status != st.AVAILABLE:
            raise BackendError(f"Snapshot {snapshot_id} is not available.")
        return loc, snap.volume_id

    @staticmethod
    def _volume_source(session: Session, volume_id: str) -> Location:
        src = session.get(m.Volume, volume_id)
        loc = location(src) if src is not None else None
        if src is None or loc is None:
            raise BackendError(f"Source volume {volume_id} has no data.")
        return loc

    async def _fail_volume(self, volume_id: str, status: str, event: tuple[str, str], reason: str) -> None:
        await self._fail(m.Volume, "VOLUME", volume_id, status, event, reason)

    async def _fail(self, model: type[m.Volume] | type[m.Snapshot], kind: str, resource_id: str, status: str,
                    event: tuple[str, str], reason: str) -> None:
        """Put a volume or snapshot whose operation failed in `status`, with a user message saying why."""
        log.warning("%s %s: %s failed: %s", kind.lower(), resource_id, event[1], reason)

        def fail(session: Session) -> None:
            row = session.get(model, resource_id)
            if row is None:
                return
            row.status, row.updated_at = status, utcnow()
            messages.add(session, row.project_id, kind, resource_id, event, reason)

        await self.db.run(fail, write=True)

    async def delete_volume(self, volume_id: str) -> None:
        """Remove the volume's file, and its snapshots' (the API only lets a volume go with them when asked)."""
        async with self._locks[volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
            if volume is None or volume.status != st.DELETING:
                return
            snapshots = await self.db.run(lambda s: list(s.scalars(select(m.Snapshot).where(
                m.Snapshot.volume_id == volume_id)).all()), write=False)
            try:
                for loc in [location(volume), *(location(snap) for snap in snapshots)]:
                    if loc is not None:
                        await self.backend.delete(loc)
                await self.backend.purge(volume_id)  # what an interrupted creation may have left
            except Exception as exc:
                if not isinstance(exc, BackendError):
                    log.exception("deleting volume %s failed", volume_id)
                await self._fail_volume(volume_id, st.ERROR_DELETING, messages.DELETE_VOLUME, _reason(exc))
                return

            def drop(session: Session) -> None:
                session.execute(delete(m.Snapshot).where(m.Snapshot.volume_id == volume_id))
                row = session.get(m.Volume, volume_id)
                if row is not None:
                    session.delete(row)

            await self.db.run(drop, write=True)
        self._locks.pop(volume_id, None)

    async def extend_volume(self, volume_id: str, new_size: int) -> None:
        """Grow the volume's file; an attached volume's servers are then told (`volume-extended`), so their
        hypervisor makes the guest see the new size, as Cinder tells Nova."""
        async with self._locks[volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
            loc = location(volume) if volume is not None else None
            if volume is None or volume.status != st.EXTENDING or loc is None:
                return
            in_use = volume.previous_status == st.IN_USE
            try:
                await self.backend.extend(loc, new_size, in_use=in_use)
            except Exception as exc:
                if not isinstance(exc, BackendError):
                    log.exception("extending volume %s failed", volume_id)
                await self._fail_volume(volume_id, st.ERROR_EXTENDING, messages.EXTEND_VOLUME, _reason(exc))
                return

            def finish(session: Session) -> list[str]:
                row = session.get(m.Volume, volume_id)
                if row is None:
                    return []
                row.size, row.updated_at = new_size, utcnow()
                row.status, row.previous_status = (st.IN_USE if in_use else st.AVAILABLE), None
                return sorted({a.instance_uuid for a in row.attachments
                               if a.instance_uuid and a.attach_status == "attached"})

            servers = await self.db.run(finish, write=True)
        if servers and self.compute_events is not None:
            self.compute_events.notify([ServerEvent(VOLUME_EXTENDED, server, volume_id) for server in servers])

    # ----- snapshots ----------------------------------------------------------------------------------------
    async def create_snapshot(self, snapshot_id: str) -> None:
        snap = await self.db.run(lambda s: s.get(m.Snapshot, snapshot_id), write=False)
        if snap is None or snap.status != st.CREATING:
            return
        async with self._locks[snap.volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, snap.volume_id), write=False)
            loc = location(volume) if volume is not None else None
            try:
                if volume is None or loc is None:
                    raise BackendError(f"Volume {snap.volume_id} has no data to snapshot.")
                if _exported(volume):
                    raise BackendError(f"Volume {volume.id} was attached meanwhile; the file backend snapshots "
                                       "detached volumes only.")
                overlay = await self.backend.create_snapshot(volume.id, snapshot_id, loc)
            except Exception as exc:
                if not isinstance(exc, BackendError):
                    log.exception("creating snapshot %s failed", snapshot_id)
                await self._fail_snapshot(snapshot_id, st.ERROR, messages.CREATE_SNAPSHOT, _reason(exc))
                return

            def finish(session: Session) -> None:
                row = session.get(m.Snapshot, snapshot_id)
                vol = session.get(m.Volume, volume.id)
                now = utcnow()
                row.provider_location, row.disk_format = loc.path, loc.disk_format
                row.status, row.progress, row.updated_at = st.AVAILABLE, "100%", now
                vol.provider_location, vol.disk_format, vol.updated_at = overlay.path, overlay.disk_format, now

            await self.db.run(finish, write=True)

    async def _fail_snapshot(self, snapshot_id: str, status: str, event: tuple[str, str], reason: str) -> None:
        await self._fail(m.Snapshot, "VOLUME_SNAPSHOT", snapshot_id, status, event, reason)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        snap = await self.db.run(lambda s: s.get(m.Snapshot, snapshot_id), write=False)
        if snap is None or snap.status != st.DELETING:
            return
        async with self._locks[snap.volume_id]:
            def read(session: Session) -> tuple[m.Volume | None, list[Location]]:
                vol = session.get(m.Volume, snap.volume_id)
                others = session.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == snap.volume_id,
                                                                  m.Snapshot.id != snapshot_id)).all()
                chain = [loc for loc in [location(vol) if vol else None, *(location(o) for o in others)] if loc]
                return vol, chain

            volume, chain = await self.db.run(read, write=False)
            loc = location(snap)
            try:
                if loc is not None:
                    if volume is not None and _exported(volume):
                        raise BackendError(f"Volume {volume.id} is attached; the file backend deletes snapshots of "
                                           "detached volumes only.")
                    await self.backend.delete_snapshot(loc, chain)
            except Exception as exc:
                if not isinstance(exc, BackendError):
                    log.exception("deleting snapshot %s failed", snapshot_id)
                await self._fail_snapshot(snapshot_id, st.ERROR_DELETING, messages.DELETE_SNAPSHOT, _reason(exc))
                return
            await self.db.run(lambda s: s.execute(delete(m.Snapshot).where(m.Snapshot.id == snapshot_id)), write=True)

    async def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Revert a volume to its latest snapshot (3.40); a failure leaves the volume in error, as in Cinder."""
        async with self._locks[volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
            snap = await self.db.run(lambda s: s.get(m.Snapshot, snapshot_id), write=False)
            if volume is None or snap is None or volume.status != st.REVERTING:
                return
            try:
                loc, snap_loc = location(volume), location(snap)
                if loc is None or snap_loc is None:
                    raise BackendError(f"Volume {volume_id} or snapshot {snapshot_id} has no data.")
                reverted = await self.backend.revert_to_snapshot(loc, snap_loc)
            except Exception as exc:
                if not isinstance(exc, BackendError):
                    log.exception("reverting volume %s failed", volume_id)
                await self._fail_volume(volume_id, st.ERROR, messages.REVERT_VOLUME, _reason(exc))
                await self.db.run(lambda s: _set_status(s, snapshot_id, st.AVAILABLE), write=True)
                return

            def finish(session: Session) -> None:
                now = utcnow()
                row = session.get(m.Volume, volume_id)
                row.provider_location, row.disk_format = reverted.path, reverted.disk_format
                row.status, row.updated_at = st.AVAILABLE, now
                _set_status(session, snapshot_id, st.AVAILABLE)

            await self.db.run(finish, write=True)

    async def copy_volume_to_image(self, volume_id: str, image_id: str, disk_format: str) -> None:
        """Upload the volume's data as the (queued) image, as the user who asked; a failure deletes the image."""
        async with self._locks[volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
            loc = location(volume) if volume is not None else None
            if volume is None or volume.status != st.UPLOADING or loc is None:
                return
            exported = None
            try:
                exported = await self.backend.export(loc, disk_format)
                await self.image.upload(image_id, exported)
            except Exception as exc:
                if not isinstance(exc, BackendError | APIError):
                    log.exception("uploading volume %s to image %s failed", volume_id, image_id)
                reason = exc.message if isinstance(exc, APIError) else _reason(exc)
                await self._fail_volume(volume_id, st.AVAILABLE, messages.COPY_VOLUME_TO_IMAGE, reason)
                with contextlib.suppress(APIError):
                    await self.image.delete_image(image_id)
                return
            finally:
                if exported is not None:
                    await asyncio.to_thread(exported.unlink, True)

            def finish(session: Session) -> None:
                row = session.get(m.Volume, volume_id)
                if row is not None and row.status == st.UPLOADING:
                    row.status, row.updated_at = st.AVAILABLE, utcnow()

            await self.db.run(finish, write=True)

    # ----- attachments (FLOW.md steps 26-28, the volume side) ------------------------------------------------
    async def attachment_update(self, attachment_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        """Export the volume to the connector's host and mark the attachment attaching; returns connection info."""
        attachment = await self.db.run(lambda s: s.get(m.VolumeAttachment, attachment_id), write=False)
        if attachment is None:
            raise NotFound(f"Attachment {attachment_id} could not be found.")
        async with self._locks[attachment.volume_id]:
            def apply(session: Session) -> dict[str, Any]:
                att = session.get(m.VolumeAttachment, attachment_id)
                vol = session.get(m.Volume, attachment.volume_id) if att is not None else None
                if att is None or vol is None:
                    raise NotFound(f"Attachment {attachment_id} could not be found.")
                loc = location(vol)
                if loc is None or "error" in vol.status:
                    raise BadRequest(f"Invalid volume: Volume {vol.id} status is {vol.status}; it cannot be "
                                     "attached.")
                mode = att.attach_mode if att.attach_mode != "null" else connector.get("mode") or "rw"
                if (vol.admin_metadata or {}).get("readonly") == "True":
                    mode = "ro"
                info = self.backend.connection_info(loc, connector)
                info = {**info, "data": {**info["data"], "access_mode": mode, "volume_id": vol.id}}
                now = utcnow()
                att.connector, att.connection_info = dict(connector), info
                att.attached_host = connector.get("host")
                att.mountpoint = connector.get("mountpoint") or att.mountpoint
                att.attach_mode = mode
                att.attach_status, att.updated_at = st.ATTACH_ATTACHING, now
                vol.status, vol.updated_at = st.ATTACHING, now
                return info

            return await self.db.run(apply, write=True)

    async def initialize_connection(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        """The legacy export call (`os-initialize_connection`): connection info without an attachment record."""
        async with self._locks[volume_id]:
            volume = await self.db.run(lambda s: s.get(m.Volume, volume_id), write=False)
            loc = location(volume) if volume is not None else None
            if volume is None or loc is None:
                raise NotFound(f"Volume {volume_id} could not be found.")
            info = self.backend.connection_info(loc, connector)
            mode = "ro" if (volume.admin_metadata or {}).get("readonly") == "True" else "rw"
            return {**info, "data": {**info["data"], "access_mode": mode, "volume_id": volume_id}}


def _set_status(session: Session, snapshot_id: str, status: str) -> None:
    snap = session.get(m.Snapshot, snapshot_id)
    if snap is not None:
        snap.status, snap.updated_at = status, utcnow()


def _snapshot_volume(session: Session, snapshot_id: str | None) -> m.Volume | None:
    snap = session.get(m.Snapshot, snapshot_id) if snapshot_id else None
    return session.get(m.Volume, snap.volume_id) if snap is not None else None


def _exported(volume: m.Volume) -> bool:
    """Whether a host may have the volume's file open (an attachment past its reservation)."""
    return any(a.connection_info for a in volume.attachments)
