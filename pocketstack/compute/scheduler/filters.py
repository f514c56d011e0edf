"""Host states, the filters and the weighers of the scheduler, chosen by name in the compute settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pocketstack.compute.scheduler.aggregate_filters import (
    aggregate_instance_extra_specs_filter,
    aggregate_multi_tenancy_isolation,
)
from pocketstack.compute.virt.driver import image_type_trait


@dataclass
class HostState:
    host: str
    node_id: int
    up: bool
    disabled: bool
    availability_zone: str
    hypervisor_type: str
    cpu_arch: str
    vcpus_total: float  # already multiplied by the allocation ratio
    memory_total: float
    disk_total: float
    vcpus_used: int = 0
    memory_used: int = 0
    disk_used: int = 0
    instances: set[str] = field(default_factory=set)
    traits: frozenset[str] | None = None  # the driver's capabilities; None: not reported
    aggregate_metadata: dict[str, set[str]] = field(default_factory=dict)  # key -> values over its aggregates

    @property
    def free_vcpus(self) -> float:
        return self.vcpus_total - self.vcpus_used

    @property
    def free_ram_mb(self) -> float:
        return self.memory_total - self.memory_used

    @property
    def free_disk_gb(self) -> float:
        return self.disk_total - self.disk_used

    def consume(self, instance_uuid: str, spec: dict[str, Any]) -> None:
        flavor = spec["flavor"]
        self.vcpus_used += flavor["vcpus"]
        self.memory_used += flavor["ram"]
        self.disk_used += flavor["disk"]
        self.instances.add(instance_uuid)


@dataclass
class RequestView:
    """What filters look at: the request spec plus the group's current hosts."""

    spec: dict[str, Any]
    group_hosts: set[str]

    @property
    def flavor(self) -> dict[str, Any]:
        return self.spec["flavor"]

    @property
    def group_policy(self) -> str | None:
        group = self.spec.get("group")
        return group.get("policy") if group else None


Filter = Callable[[HostState, RequestView], bool]


def compute_filter(host: HostState, req: RequestView) -> bool:
    """The compute service must be enabled and heartbeating."""
    return host.up and not host.disabled


def availability_zone_filter(host: HostState, req: RequestView) -> bool:
    zone = req.spec.get("availability_zone")
    return not zone or host.availability_zone == zone


def ram_filter(host: HostState, req: RequestView) -> bool:
    return host.free_ram_mb >= req.flavor["ram"]


def disk_filter(host: HostState, req: RequestView) -> bool:
    return host.free_disk_gb >= req.flavor["disk"]


def core_filter(host: HostState, req: RequestView) -> bool:
    return host.free_vcpus >= req.flavor["vcpus"]


def image_properties_filter(host: HostState, req: RequestView) -> bool:
    """Image properties `architecture` and `hypervisor_type` (or `img_hv_type`) must match the host, and the
    host's driver must boot the image's disk format (Nova's image type prefilter; a volume root needs none)."""
    props = req.spec.get("image_properties") or {}
    disk_format = props.get("disk_format")
    if (disk_format and not req.spec.get("is_bfv") and host.traits is not None
            and image_type_trait(str(disk_format)) not in host.traits):
        return False
    arch = props.get("architecture") or props.get("hw_architecture")
    if arch and arch != host.cpu_arch:
        return False
    hv_type = props.get("hypervisor_type") or props.get("img_hv_type")
    return not hv_type or hv_type == host.hypervisor_type


def anti_affinity_filter(host: HostState, req: RequestView) -> bool:
    if req.group_policy != "anti-affinity":
        return True
    max_per_host = int((req.spec.get("group") or {}).get("rules", {}).get("max_server_per_host", 1))
    return sum(1 for h in req.spec.get("_group_host_list", []) if h == host.host) < max_per_host


def affinity_filter(host: HostState, req: RequestView) -> bool:
    if req.group_policy != "affinity" or not req.group_hosts:
        return True
    return host.host in req.group_hosts


FILTERS: dict[str, Filter] = {
    "ComputeFilter": compute_filter,
    "AvailabilityZoneFilter": availability_zone_filter,
    "RamFilter": ram_filter,
    "DiskFilter": disk_filter,
    "CoreFilter": core_filter,
    "ImagePropertiesFilter": image_properties_filter,
    "ServerGroupAntiAffinityFilter": anti_affinity_filter,
    "ServerGroupAffinityFilter": affinity_filter,
    "AggregateInstanceExtraSpecsFilter": aggregate_instance_extra_specs_filter,
    "AggregateMultiTenancyIsolation": aggregate_multi_tenancy_isolation,
}

Weigher = Callable[[HostState, RequestView], float]

WEIGHERS: dict[str, Weigher] = {
    "RAMWeigher": lambda host, req: host.free_ram_mb,
    "CPUWeigher": lambda host, req: host.free_vcpus,
    "DiskWeigher": lambda host, req: host.free_disk_gb,
    # the soft group policies prefer (or avoid) hosts already holding members
    "ServerGroupSoftAffinityWeigher": lambda host, req: (
        float(host.host in req.group_hosts) if req.group_policy == "soft-affinity" else 0.0),
    "ServerGroupSoftAntiAffinityWeigher": lambda host, req: (
        -float(sum(1 for h in req.spec.get("_group_host_list", []) if h == host.host))
        if req.group_policy == "soft-anti-affinity" else 0.0),
}


def weigh(hosts: list[HostState], req: RequestView, multipliers: dict[str, float]) -> list[HostState]:
    """Sort hosts best first: each weigher's raw values normalised to [0, 1], times its multiplier, summed."""
    if len(hosts) <= 1:
        return hosts
    totals = {h.host: 0.0 for h in hosts}
    for name, multiplier in multipliers.items():
        raw = [WEIGHERS[name](h, req) for h in hosts]
        low, high = min(raw), max(raw)
        for h, value in zip(hosts, raw, strict=True):
            normalised = 0.0 if high == low else (value - low) / (high - low)
            totals[h.host] += multiplier * normalised
    return sorted(hosts, key=lambda h: (-totals[h.host], h.host))
