"""The scheduler: candidate hosts from the database (a bounded page), Python filters and weighers on that page,
atomic claims."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pocketstack.common import metrics, tracing
from pocketstack.common.db import Database
from pocketstack.common.rpc import RPCEndpoint
from pocketstack.common.timeutils import utcnow
from pocketstack.compute.build import BuildRequest
from pocketstack.compute.scheduler.filters import FILTERS, WEIGHERS, HostState, RequestView, weigh
from pocketstack.compute.store.scheduling import CandidateQuery, SchedulingStore
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute.scheduler")


class SchedulerManager(RPCEndpoint):
    namespace = "scheduler"
    version = "1.0"

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.store = SchedulingStore(db)
        cfg = settings.compute
        unknown = [f for f in cfg.enabled_filters if f not in FILTERS]
        unknown += [w for w in cfg.weighers if w not in WEIGHERS]
        if unknown:
            raise ValueError(f"unknown scheduler filters or weighers in the settings: {unknown}")
        self.filters = [(name, FILTERS[name]) for name in cfg.enabled_filters]
        self.multipliers = dict(cfg.weighers)
        self.multipliers.setdefault("ServerGroupSoftAffinityWeigher", 10.0)
        self.multipliers.setdefault("ServerGroupSoftAntiAffinityWeigher", 10.0)

    def _query(self, spec: dict[str, Any], excluded: set[str], group_host_list: list[str],
                offset: int) -> CandidateQuery:
        """The part of the enabled filters the database answers; the Python filters still check every host."""
        enabled = {name for name, _ in self.filters}
        cfg = self.settings.compute
        group = spec.get("group") or {}
        excluded = set(excluded)
        required = None
        if "ServerGroupAntiAffinityFilter" in enabled and group.get("policy") == "anti-affinity":
            max_per_host = int(group.get("rules", {}).get("max_server_per_host", 1))
            excluded |= {h for h in group_host_list if group_host_list.count(h) >= max_per_host}
        if "ServerGroupAffinityFilter" in enabled and group.get("policy") == "affinity" and group_host_list:
            required = set(group_host_list)
        return CandidateQuery(
            flavor=spec["flavor"], down_after=utcnow() - timedelta(seconds=cfg.service_down_time),
            check_service="ComputeFilter" in enabled,
            check_resources=("CoreFilter" in enabled, "RamFilter" in enabled, "DiskFilter" in enabled),
            zone=spec.get("availability_zone") if "AvailabilityZoneFilter" in enabled else None,
            default_zone=cfg.default_availability_zone, excluded=excluded, required=required,
            limit=cfg.max_placement_results, offset=offset)

    async def _host_states(self, query: CandidateQuery) -> list[HostState]:
        rows = await self.store.candidate_rows(query)
        result = []
        for node in rows.nodes:
            service = rows.services[node.host]
            up = (not service.forced_down and service.last_seen_up is not None
                  and service.last_seen_up >= query.down_after)
            vcpus, ram, disk = rows.usage.get(node.id, (0, 0, 0))
            result.append(HostState(
                host=node.host, node_id=node.id, up=up, disabled=service.disabled,
                availability_zone=rows.zones.get(node.host, service.availability_zone),
                hypervisor_type=node.hypervisor_type,
                cpu_arch=node.cpu_arch, vcpus_total=node.vcpus * node.cpu_allocation_ratio,
                memory_total=(node.memory_mb - node.reserved_host_memory_mb) * node.ram_allocation_ratio,
                disk_total=node.local_gb * node.disk_allocation_ratio,
                vcpus_used=int(vcpus or 0), memory_used=int(ram or 0), disk_used=int(disk or 0),
                traits=frozenset(node.traits) if node.traits is not None else None,
                aggregate_metadata=rows.aggregate_metadata.get(node.host, {})))
        return result

    async def _ranked(self, instance_uuid: str, spec: dict[str, Any], excluded: set[str],
                      group_host_list: list[str]) -> list[HostState]:
        """Step 10: the database's candidates a page at a time (max_placement_results), the Python filters and
        the weighers on that page only; the next page only when nothing on this one passes."""
        req = RequestView(spec, set(group_host_list))
        offset = 0
        while True:
            query = self._query(spec, excluded, group_host_list, offset)
            hosts = await self._host_states(query)
            async with tracing.span("WORK", f"filter and weigh {len(hosts)} candidate hosts", step="10"):
                candidates = hosts
                for name, check in self.filters:
                    candidates = [h for h in candidates if check(h, req)]
                    if not candidates:
                        log.info("no host left for %s after %s", instance_uuid, name)
                        break
                if candidates or len(hosts) < query.limit:
                    return weigh(candidates, req, self.multipliers)
            offset += query.limit

    async def select_destinations(self, request_spec: BuildRequest, instance_uuids: list[str],
                                  excluded_hosts: list[str]) -> list[str | None]:
        """Step 10 (filter and weigh) and step 11 (claim) for each instance; None where no host fits."""
        group = request_spec.get("group")
        group_host_list = await self.store.group_hosts(group["uuid"]) if group else []
        chosen: list[str | None] = []
        for instance_uuid in instance_uuids:
            spec = {**request_spec, "_group_host_list": group_host_list}
            ranked = await self._ranked(instance_uuid, spec, set(excluded_hosts), group_host_list)
            picked = None
            async with tracing.span("DB", "claim resources on the chosen host", step="11"):
                for host in ranked:
                    if await self.store.claim(host.node_id, instance_uuid, request_spec):
                        picked = host
                        break
            if picked is None:
                metrics.SCHEDULER_DECISIONS.labels("no_valid_host").inc()
                chosen.append(None)
                continue
            metrics.SCHEDULER_DECISIONS.labels("host").inc()
            group_host_list.append(picked.host)
            chosen.append(picked.host)
        return chosen
