"""The conductor's heartbeat writer: the reports of many compute services in one transaction, a node's resources
written only when they changed.

Each compute agent reports every `report_interval` seconds; with a thousand hosts that is a hundred write
transactions a second, almost all of them saying "still here, nothing changed". Reports that arrive within
`heartbeat_batch_window` are written together (one UPDATE of `last_seen_up` for all of them, one read of their
disabled/forced-down flags), and a host's resources reach `compute_nodes` only when they differ from what this
conductor last wrote. A service or node that is missing (first report, or deleted through `os-services`) takes
the full path: created, resources written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.instances import record_heartbeat
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute.conductor")

Key = tuple[str, str]  # host, binary
CHUNK = 500  # hosts per IN list


@dataclass
class _Pending:
    topic: str
    resources: dict[str, Any] | None
    waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)


class HeartbeatWriter:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._pending: dict[Key, _Pending] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._written: dict[str, dict[str, Any]] = {}  # host -> the resources last written to its node

    async def report(self, host: str, binary: str, topic: str,
                     resources: dict[str, Any] | None) -> dict[str, Any]:
        """Record one report; answers the service's disabled and forced-down flags once its batch is written."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = self._pending.setdefault((host, binary), _Pending(topic, resources))
        if resources is not None:
            pending.resources = resources
        pending.waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await waiter

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for pending in self._pending.values():
            for waiter in pending.waiters:
                waiter.cancel()
        self._pending.clear()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.settings.compute.heartbeat_batch_window)
        batch, self._pending = self._pending, {}
        now = utcnow()
        try:
            flags = await self.db.run(lambda s: self._write(s, batch, now), write=True)
        except Exception as exc:
            for host, _ in batch:
                self._written.pop(host, None)
            for pending in batch.values():
                for waiter in pending.waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            return
        for key, pending in batch.items():
            for waiter in pending.waiters:
                if not waiter.done():
                    waiter.set_result(flags[key])

    def _write(self, session: Session, batch: dict[Key, _Pending], now: datetime) -> dict[Key, dict[str, Any]]:
        flags: dict[Key, dict[str, Any]] = {}
        by_binary: dict[str, list[str]] = {}
        for host, binary in batch:
            by_binary.setdefault(binary, []).append(host)
        for binary, hosts in by_binary.items():
            for start in range(0, len(hosts), CHUNK):
                chunk = hosts[start:start + CHUNK]
                where = (m.ComputeService.binary == binary, m.ComputeService.host.in_(chunk))
                session.execute(update(m.ComputeService).where(*where).values(
                    last_seen_up=now, updated_at=now, report_count=m.ComputeService.report_count + 1))
                for host, disabled, forced_down in session.execute(select(
                        m.ComputeService.host, m.ComputeService.disabled, m.ComputeService.forced_down).where(*where)):
                    flags[(host, binary)] = {"disabled": disabled, "forced_down": forced_down}
        for (host, binary), pending in batch.items():
            created = (host, binary) not in flags
            if created:  # first report, or its row was deleted: made again, as Nova's compute does
                service = record_heartbeat(session, self.settings.compute, host, binary, pending.topic, now)
                flags[(host, binary)] = {"disabled": service.disabled or False,
                                         "forced_down": service.forced_down or False}
            if pending.resources is not None and (created or self._written.get(host) != pending.resources):
                self._update_node(session, host, pending.resources, now)
        session.flush()
        for (host, _), pending in batch.items():
            if pending.resources is not None:
                self._written[host] = pending.resources
        return flags

    def _update_node(self, session: Session, host: str, resources: dict[str, Any], now: datetime) -> None:
        cfg = self.settings.compute
        node = session.scalar(select(m.ComputeNode).where(m.ComputeNode.host == host))
        if node is None:
            node = m.ComputeNode(uuid=str(uuidlib.uuid4()), host=host)
            session.add(node)
        node.hypervisor_hostname = resources["hypervisor_hostname"]
        node.hypervisor_type = resources["hypervisor_type"]
        node.hypervisor_version = resources.get("hypervisor_version", 0)
        node.host_ip = resources.get("host_ip")
        node.cpu_arch = resources.get("cpu_arch", "x86_64")
        node.vcpus = resources["vcpus"]
        node.memory_mb = resources["memory_mb"]
        node.local_gb = resources["local_gb"]
        node.traits = resources.get("traits")
        node.cpu_allocation_ratio = cfg.cpu_allocation_ratio
        node.ram_allocation_ratio = cfg.ram_allocation_ratio
        node.disk_allocation_ratio = cfg.disk_allocation_ratio
        node.reserved_host_memory_mb = cfg.reserved_host_memory_mb
        node.updated_at = now
