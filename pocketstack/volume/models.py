"""Block storage tables: volumes, snapshots, attachments, types, quotas, user messages and the services.

The volume API writes the records and the volume manager (cinder-volume) moves them through their statuses as
its backend does the work; both use this database, as in Cinder. Deleted volumes and snapshots lose their row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pocketstack.common.db import make_base

Base = make_base()

UUID = String(36)
ID = String(64)


class VolumeType(Base):
    __tablename__ = "volume_types"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    qos_specs_id: Mapped[str | None] = mapped_column(ForeignKey("qos_specs.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    extra_specs: Mapped[list[VolumeTypeExtraSpec]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)
    encryption: Mapped[VolumeTypeEncryption | None] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)


class QosSpecs(Base):
    """A named set of QoS specs (`consumer`: front-end, back-end or both) that volume types may be associated with."""

    __tablename__ = "qos_specs"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    consumer: Mapped[str] = mapped_column(String(16), default="back-end")
    specs: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class VolumeTypeEncryption(Base):
    """The encryption a volume type asks for (provider, cipher, key size, where it is done)."""

    __tablename__ = "volume_type_encryption"
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id", ondelete="CASCADE"), primary_key=True)
    encryption_id: Mapped[str] = mapped_column(UUID, unique=True)
    provider: Mapped[str] = mapped_column(String(255))
    cipher: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    control_location: Mapped[str] = mapped_column(String(16), default="front-end")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class VolumeTypeExtraSpec(Base):
    __tablename__ = "volume_type_extra_specs"
    type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class VolumeTypeProject(Base):
    """A project allowed to use a private volume type."""

    __tablename__ = "volume_type_projects"
    type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ProjectDefaultType(Base):
    """A project's own default volume type (3.62), used instead of the configured one."""

    __tablename__ = "project_default_types"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id"), index=True)


class Volume(Base):
    __tablename__ = "volumes"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer)  # GiB
    status: Mapped[str] = mapped_column(String(32), index=True)
    attach_status: Mapped[str] = mapped_column(String(32), default="detached")
    previous_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    migration_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255))
    volume_type_id: Mapped[str] = mapped_column(ForeignKey("volume_types.id"), index=True)
    snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    source_volid: Mapped[str | None] = mapped_column(UUID, nullable=True)
    image_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)  # host@backend#pool
    provider_location: Mapped[str | None] = mapped_column(Text, nullable=True)  # the backend's file
    disk_format: Mapped[str | None] = mapped_column(String(16), nullable=True)  # raw or qcow2
    image_metadata: Mapped[dict] = mapped_column(JSON, default=dict)  # volume_image_metadata
    admin_metadata: Mapped[dict] = mapped_column(JSON, default=dict)  # readonly flag
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    volume_type: Mapped[VolumeType] = relationship(lazy="selectin")
    metadata_items: Mapped[list[VolumeMetadata]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)
    attachments: Mapped[list[VolumeAttachment]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True, order_by="VolumeAttachment.created_at")


class VolumeMetadata(Base):
    __tablename__ = "volume_metadata"
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class VolumeAttachment(Base):
    __tablename__ = "volume_attachments"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    instance_uuid: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attach_status: Mapped[str] = mapped_column(String(32))
    attach_mode: Mapped[str] = mapped_column(String(8), default="null")
    connector: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    connection_info: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attach_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    detach_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Snapshot(Base):
    __tablename__ = "snapshots"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id"), index=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    progress: Mapped[str] = mapped_column(String(8), default="0%")
    volume_size: Mapped[int] = mapped_column(Integer)
    volume_type_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    provider_location: Mapped[str | None] = mapped_column(Text, nullable=True)  # the frozen file
    disk_format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    metadata_items: Mapped[list[SnapshotMetadata]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True)


class SnapshotMetadata(Base):
    __tablename__ = "snapshot_metadata"
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Transfer(Base):
    """A pending hand-over of a volume (and its snapshots) to whichever project accepts it with the auth key."""

    __tablename__ = "transfers"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)  # the volume's project when the transfer was made
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    salt: Mapped[str] = mapped_column(String(32))
    crypt_hash: Mapped[str] = mapped_column(String(64))  # sha256 of salt + auth key; the key itself is not kept
    no_snapshots: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class QuotaClass(Base):
    """A limit of a quota class: the `default` class's rows replace the configured defaults (Cinder's quota
    classes)."""

    __tablename__ = "quota_classes"
    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Quota(Base):
    """A per-project quota override; resources without a row use the default class's limit, else the configured
    default."""

    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Message(Base):
    """A user message (`/messages`): why an asynchronous operation on a resource failed."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_uuid: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    message_level: Mapped[str] = mapped_column(String(16), default="ERROR")
    user_message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class Service(Base):
    """A block storage process (cinder-scheduler, cinder-volume per backend), its heartbeat and capacity."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))  # host, or host@backend for cinder-volume
    binary: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    availability_zone: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_up: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    total_capacity_gb: Mapped[float] = mapped_column(Float, default=0.0)  # of a cinder-volume backend
    capabilities: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
