"""Compute tables (Nova's cell database and the placement-style allocations, in one schema).

Only the compute API, the conductor and the scheduler open this database; compute agents never do (FLOW.md 14-18).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from pocketstack.common.db import make_base

Base = make_base()

UUID = String(36)
ID = String(64)


class Flavor(Base):
    __tablename__ = "flavors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class FlavorExtraSpec(Base):
    __tablename__ = "flavor_extra_specs"
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class FlavorProject(Base):
    """Access list of a private flavor."""

    __tablename__ = "flavor_projects"
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ID, index=True)
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Instance(Base):
    __tablename__ = "instances"
    uuid: Mapped[str] = mapped_column(UUID, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255))
    hostname: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    image_ref: Mapped[str] = mapped_column(String(255), default="")
    flavor: Mapped[dict] = mapped_column(JSON)  # snapshot of the flavor at boot (id, name, sizes, extra_specs)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    vm_state: Mapped[str] = mapped_column(String(32), index=True)
    task_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    access_ip_v4: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_ip_v6: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)  # OS-DCF:diskConfig AUTO
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reservation_id: Mapped[str] = mapped_column(String(64))
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    requested_networks: Mapped[list | str | None] = mapped_column(JSON, nullable=True)
    security_groups: Mapped[list] = mapped_column(JSON, default=list)
    scheduler_hints: Mapped[dict] = mapped_column(JSON, default=dict)
    request_spec: Mapped[dict] = mapped_column(JSON, default=dict)  # what the scheduler needs, for reschedules
    network_info: Mapped[list] = mapped_column(JSON, default=list)  # ports with MAC, fixed IPs, network name
    retry: Mapped[dict] = mapped_column(JSON, default=dict)  # {"num_attempts": n, "hosts": [...]}
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # what Nova keeps in instance_system_metadata: shelved_at, shelved_image_id, shelved_host while shelved
    system_metadata: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=dict)
    # the adminPass of the last create/rebuild/rescue, sealed (compute/passwords.py): for the guest's metadata
    admin_pass_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    # what the guest posted to the metadata service, encrypted with its key pair (os-server-password)
    guest_password: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    block_devices: Mapped[list[BlockDeviceMapping]] = relationship(
        lazy="selectin", order_by="BlockDeviceMapping.id", passive_deletes=True)


class BlockDeviceMapping(Base):
    """A disk of a server from `block_device_mapping_v2` or a volume attach (Nova's block_device_mapping)."""

    __tablename__ = "block_device_mappings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    source_type: Mapped[str] = mapped_column(String(16))  # image, volume, snapshot, blank
    destination_type: Mapped[str] = mapped_column(String(16))  # volume, local
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    volume_id: Mapped[str | None] = mapped_column(UUID, nullable=True, index=True)
    volume_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    attachment_id: Mapped[str | None] = mapped_column(UUID, nullable=True)
    connection_info: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class InstanceMetadata(Base):
    __tablename__ = "instance_metadata"
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class InstanceTag(Base):
    __tablename__ = "instance_tags"
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)


class InstanceFault(Base):
    __tablename__ = "instance_faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class InstanceAction(Base):
    __tablename__ = "instance_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    start_time: Mapped[datetime] = mapped_column(DateTime)
    finish_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class InstanceActionEvent(Base):
    __tablename__ = "instance_action_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[datetime] = mapped_column(DateTime)
    finish_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(32), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


class ServerGroup(Base):
    __tablename__ = "server_groups"
    uuid: Mapped[str] = mapped_column(UUID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict] = mapped_column(JSON, default=dict)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ServerGroupMember(Base):
    __tablename__ = "server_group_members"
    group_uuid: Mapped[str] = mapped_column(ForeignKey("server_groups.uuid", ondelete="CASCADE"), primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(UUID, primary_key=True, index=True)


class ComputeService(Base):
    """A compute-family process (nova-compute, nova-conductor, nova-scheduler) and its heartbeat."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_up: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ComputeNode(Base):
    """A hypervisor's resources as its compute agent last reported them (the resource provider)."""

    __tablename__ = "compute_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(64))
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=0)
    host_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cpu_arch: Mapped[str] = mapped_column(String(32), default="x86_64")
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    cpu_allocation_ratio: Mapped[float] = mapped_column(default=16.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(default=1.5)
    disk_allocation_ratio: Mapped[float] = mapped_column(default=1.0)
    reserved_host_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    # the driver's capabilities as traits (COMPUTE_IMAGE_TYPE_QCOW2, ...); None: reported by an older agent
    traits: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Allocation(Base):
    """Resources claimed by one instance on one node (placement's allocation); released on delete or failure."""

    __tablename__ = "allocations"
    consumer_uuid: Mapped[str] = mapped_column(UUID, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("compute_nodes.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ID)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Quota(Base):
    """A per-project quota override; resources without a row use the configured default."""

    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)



class QuotaClass(Base):
    """A quota class's limit of one resource; the class `default` overrides the configured defaults."""

    __tablename__ = "quota_classes"
    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class ProjectUserQuota(Base):
    """A per-user quota override inside a project (`os-quota-sets/{project}?user_id=`)."""

    __tablename__ = "project_user_quotas"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class Aggregate(Base):
    """A host aggregate: a named group of compute hosts with metadata (`availability_zone` makes it a zone)."""

    __tablename__ = "aggregates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(UUID, unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    hosts: Mapped[list[AggregateHost]] = relationship(
        lazy="selectin", order_by="AggregateHost.host", cascade="all, delete-orphan", passive_deletes=True)
    metadata_items: Mapped[list[AggregateMetadata]] = relationship(
        lazy="selectin", order_by="AggregateMetadata.key", cascade="all, delete-orphan", passive_deletes=True)


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class AggregateMetadata(Base):
    __tablename__ = "aggregate_metadata"
    aggregate_id: Mapped[int] = mapped_column(ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class ConsoleAuthToken(Base):
    """A remote console's token (Nova's console_auth_tokens): only its sha256 is kept; the proxy finds the guest's
    console by it until it expires."""

    __tablename__ = "console_auth_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    console_type: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    internal_access_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance_uuid: Mapped[str] = mapped_column(ForeignKey("instances.uuid", ondelete="CASCADE"), index=True)
    access_url_base: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires: Mapped[datetime] = mapped_column(DateTime, index=True)


# one-instance reads (the conductor's) load the block device mappings in the same query
INSTANCE_LOAD = (joinedload(Instance.block_devices),)

