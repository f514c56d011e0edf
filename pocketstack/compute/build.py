"""The build contract: what travels between the compute API, the conductor, the scheduler and the agents.

FLOW.md steps 3-12 carry a `BuildRequest` (what scheduling needs, made once by the API and kept on the instance
row for reschedules); steps 14-19 return an `InstanceView` (the instance as the agent and its driver see it).
Both are plain dicts on the wire (msgpack), typed here so a reader can follow a field from the handler to the
driver by definition rather than by grep.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class FlavorSnapshot(TypedDict):
    """The flavor as it was at boot (a later change of the flavor does not change the server)."""

    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int
    swap: int
    extra_specs: dict[str, str]


class GroupSpec(TypedDict):
    """The server group a build belongs to (affinity and anti-affinity filters)."""

    uuid: str
    policy: str
    rules: dict[str, Any]


class BuildRequest(TypedDict):
    """What the scheduler needs of a build (Nova's RequestSpec)."""

    project_id: str | None
    flavor: FlavorSnapshot
    image_id: str
    image_properties: dict[str, str | int | float | bool]
    is_bfv: bool  # the root disk is a volume: the host's image types do not matter
    availability_zone: str | None
    scheduler_hints: dict[str, Any]
    request_id: str
    group: GroupSpec | None


class BlockDeviceView(TypedDict):
    id: int
    source_type: str
    destination_type: str
    boot_index: int | None
    device_name: str | None
    image_id: str | None
    snapshot_id: str | None
    volume_id: str | None
    volume_size: int | None
    delete_on_termination: bool
    attachment_id: str | None
    connection_info: dict[str, Any] | None
    tag: str | None


class InstanceView(TypedDict):
    """An instance as the conductor hands it to an agent (FLOW.md 14-18) and the agent to its driver."""

    uuid: str
    display_name: str
    hostname: str
    project_id: str
    user_id: str
    image_ref: str
    flavor: FlavorSnapshot
    vcpus: int
    memory_mb: int
    root_gb: int
    vm_state: str
    task_state: str | None
    power_state: int
    host: str | None
    node: str | None
    availability_zone: str | None
    key_name: str | None
    key_data: str | None
    user_data: str | None
    config_drive: bool
    requested_networks: list[Any] | str | None
    security_groups: list[dict[str, Any]]
    network_info: list[dict[str, Any]]
    request_id: str | None
    retry: dict[str, Any]
    system_metadata: dict[str, str] | None
    deleted: bool
    launched_at: str | None
    block_device_mapping: list[BlockDeviceView]
    admin_pass: NotRequired[str]  # while building: the adminPass for the config drive (Nova's admin_password)
