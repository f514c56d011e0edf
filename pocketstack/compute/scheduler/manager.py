"""The scheduler: host states from the nodes' reports and the claims, filters, weighers, atomic claims."""

from __future__ import annotations

import logging
from datetime import timedelta

from pocketstack.common import metrics, tracing
from pocketstack.common.db import Database
from pocketstack.common.rpc import RPCEndpoint
from pocketstack.common.timeutils import utcnow
from pocketstack.compute.build import BuildRequest
from pocketstack.compute.scheduler.filters import FILTERS, WEIGHERS, HostState, RequestView, weigh
from pocketstack.compute.store.scheduling import SchedulingStore
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

    async def _host_states(self) -> list[HostState]:
        down_after = utcnow() - timedelta(seconds=self.settings.compute.service_down_time)
        rows = await self.store.host_rows()
        result = []
        for node in rows.nodes:
            service = rows.services.get(node.host)
            if service is None:
                continue
            up = (not service.forced_down and service.last_seen_up is not None
                  and service.last_seen_up >= down_after)
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

    async def select_destinations(self, request_spec: BuildRequest, instance_uuids: list[str],
                                  excluded_hosts: list[str]) -> list[str | None]:
        """Step 10 (filter and weigh) and step 11 (claim) for each instance; None where no host fits."""
        hosts = [h for h in await self._host_states() if h.host not in set(excluded_hosts)]
        group = request_spec.get("group")
        group_host_list = await self.store.group_hosts(group["uuid"]) if group else []
        chosen: list[str | None] = []
        for instance_uuid in instance_uuids:
            spec = {**request_spec, "_group_host_list": group_host_list}
            req = RequestView(spec, set(group_host_list))
            async with tracing.span("WORK", f"filter and weigh {len(hosts)} hosts", step="10"):
                candidates = hosts
                for name, check in self.filters:
                    candidates = [h for h in candidates if check(h, req)]
                    if not candidates:
                        log.info("no host left for %s after %s", instance_uuid, name)
                        break
                ranked = weigh(candidates, req, self.multipliers)
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
            picked.consume(instance_uuid, request_spec)
            group_host_list.append(picked.host)
            chosen.append(picked.host)
        return chosen
