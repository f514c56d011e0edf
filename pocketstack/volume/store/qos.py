"""QoS specs and their association with volume types; the encryption of volume types."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume.store.lookups import is_uuid


def _qos(session: Session, qos_id: str) -> m.QosSpecs:
    qos = session.get(m.QosSpecs, qos_id) if is_uuid(qos_id) else None
    if qos is None:
        raise NotFound(f"QoS Specs {qos_id} could not be found.")
    return qos


def _vtype(session: Session, type_id: str) -> m.VolumeType:
    vtype = session.get(m.VolumeType, type_id) if is_uuid(type_id) else None
    if vtype is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return vtype


def _associated(session: Session, qos_id: str) -> list[m.VolumeType]:
    return list(session.scalars(select(m.VolumeType).where(m.VolumeType.qos_specs_id == qos_id)
                                .order_by(m.VolumeType.name)).all())


async def create_qos(db: Database, name: str, consumer: str, specs: dict[str, str]) -> m.QosSpecs:
    def write(session: Session) -> m.QosSpecs:
        if session.scalar(select(m.QosSpecs).where(m.QosSpecs.name == name)):
            raise Conflict(f"QoS Specs {name} already exists.")
        now = utcnow()
        qos = m.QosSpecs(id=str(uuid.uuid4()), name=name, consumer=consumer, specs=specs, created_at=now,
                         updated_at=now)
        session.add(qos)
        session.flush()
        return qos
    return await db.run(write, write=True)


async def list_qos(db: Database) -> list[m.QosSpecs]:
    return await db.run(lambda s: list(s.scalars(select(m.QosSpecs)).all()), write=False)


async def get_qos(db: Database, qos_id: str) -> m.QosSpecs:
    return await db.run(lambda s: _qos(s, qos_id), write=False)


async def set_keys(db: Database, qos_id: str, changes: dict[str, str]) -> None:
    """Set specs keys (`consumer` among them changes the consumer)."""
    def write(session: Session) -> None:
        qos = _qos(session, qos_id)
        specs = dict(qos.specs or {})
        for key, value in changes.items():
            if key == "consumer":
                qos.consumer = value
            else:
                specs[key] = value
        qos.specs, qos.updated_at = specs, utcnow()
    await db.run(write, write=True)


async def delete_keys(db: Database, qos_id: str, keys: list[str]) -> None:
    """Remove specs keys; a key the specs do not have is 404, and then none is removed."""
    def write(session: Session) -> None:
        qos = _qos(session, qos_id)
        specs = dict(qos.specs or {})
        missing = [k for k in keys if k not in specs]
        if missing:
            raise NotFound(f"QoS spec {missing[0]} could not be found in QoS Specs {qos_id}.")
        qos.specs, qos.updated_at = {k: v for k, v in specs.items() if k not in keys}, utcnow()
    await db.run(write, write=True)


async def delete_qos(db: Database, qos_id: str, force: bool) -> None:
    """Delete QoS specs; while volume types use them 400, unless `force` (which disassociates them first)."""
    def write(session: Session) -> None:
        qos = _qos(session, qos_id)
        users = _associated(session, qos_id)
        if users and not force:
            raise BadRequest(f"QoS Specs {qos_id} is still associated with entities.")
        for vtype in users:
            vtype.qos_specs_id = None
        session.flush()
        session.delete(qos)
    await db.run(write, write=True)


async def associations(db: Database, qos_id: str) -> list[m.VolumeType]:
    def read(session: Session) -> list[m.VolumeType]:
        _qos(session, qos_id)
        return _associated(session, qos_id)
    return await db.run(read, write=False)


async def associate(db: Database, qos_id: str, type_id: str) -> None:
    """Associate a volume type; one already associated with other QoS specs is 400 (disassociate it first)."""
    def write(session: Session) -> None:
        _qos(session, qos_id)
        vtype = _vtype(session, type_id)
        if vtype.qos_specs_id not in (None, qos_id):
            raise BadRequest(f"Type {type_id} is already associated with another qos specs: {vtype.qos_specs_id}")
        vtype.qos_specs_id, vtype.updated_at = qos_id, utcnow()
    await db.run(write, write=True)


async def disassociate(db: Database, qos_id: str, type_id: str | None) -> None:
    """Disassociate one volume type, or every one when `type_id` is None."""
    def write(session: Session) -> None:
        _qos(session, qos_id)
        targets = _associated(session, qos_id) if type_id is None else [_vtype(session, type_id)]
        for vtype in targets:
            if vtype.qos_specs_id == qos_id:
                vtype.qos_specs_id, vtype.updated_at = None, utcnow()
    await db.run(write, write=True)


# ----- encryption of volume types --------------------------------------------------------------------------------
def _type_in_use(session: Session, type_id: str) -> bool:
    return session.scalar(select(m.Volume.id).where(m.Volume.volume_type_id == type_id).limit(1)) is not None


async def get_encryption(db: Database, type_id: str) -> m.VolumeTypeEncryption | None:
    return await db.run(lambda s: _vtype(s, type_id).encryption, write=False)


async def create_encryption(db: Database, type_id: str, fields: dict[str, Any]) -> m.VolumeTypeEncryption:
    """Give a volume type its encryption; 400 when it has one or volumes use the type."""
    def write(session: Session) -> m.VolumeTypeEncryption:
        vtype = _vtype(session, type_id)
        if vtype.encryption is not None:
            raise BadRequest(f"Volume type encryption for type {type_id} already exists.")
        if _type_in_use(session, type_id):
            raise BadRequest(f"Invalid volume type: Cannot create encryption specs. Volume type {type_id} in use.")
        now = utcnow()
        encryption = m.VolumeTypeEncryption(volume_type_id=type_id, encryption_id=str(uuid.uuid4()),
                                            created_at=now, updated_at=None, **fields)
        session.add(encryption)
        session.flush()
        return encryption
    return await db.run(write, write=True)


async def update_encryption(db: Database, type_id: str, encryption_id: str, fields: dict[str, Any]) -> None:
    def write(session: Session) -> None:
        encryption = _vtype(session, type_id).encryption
        if encryption is None or encryption.encryption_id != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if _type_in_use(session, type_id):
            raise BadRequest(f"Invalid volume type: Cannot update encryption specs. Volume type {type_id} in use.")
        for key, value in fields.items():
            setattr(encryption, key, value)
        encryption.updated_at = utcnow()
    await db.run(write, write=True)


async def delete_encryption(db: Database, type_id: str, encryption_id: str) -> None:
    def write(session: Session) -> None:
        vtype = _vtype(session, type_id)
        if vtype.encryption is None or vtype.encryption.encryption_id != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if _type_in_use(session, type_id):
            raise BadRequest(f"Invalid volume type: Cannot delete encryption specs. Volume type {type_id} in use.")
        session.delete(vtype.encryption)
    await db.run(write, write=True)
