"""The scheduler and the conductor at fleet scale, on a real SQLite database: the database pages the candidates
(max_placement_results) and a page the Python filters empty leads to the next one, zones and groups are decided
in SQL as the Python filters would; heartbeats of many hosts are written in one batch, a node's resources only
when they change, and a deleted service comes back with its next report."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.conductor.heartbeats import HeartbeatWriter
from pocketstack.compute.scheduler.manager import SchedulerManager
from pocketstack.services import SERVICES
from pocketstack.settings import Settings

FLAVOR = {"vcpus": 1, "ram": 512, "disk": 1}


async def _db(settings: Settings) -> Database:
    spec = next(s for s in SERVICES if s.name == "compute")
    db = Database(settings.database_url("compute"))
    await db.migrate(spec.migrations_dir, spec.version_table)
    return db


def _seed(session: Session, hosts: int, *, arch_of: dict[str, str] | None = None,
          down: set[str] = frozenset(), memory_of: dict[str, int] | None = None) -> None:
    now = utcnow()
    for i in range(hosts):
        host = f"h{i:04d}"
        seen = now - timedelta(seconds=600) if host in down else now
        session.add(m.ComputeService(uuid=f"s-{host}", host=host, binary="nova-compute", topic="compute",
                                     availability_zone="nova", created_at=now, report_count=1, last_seen_up=seen,
                                     disabled=False, forced_down=False))
        session.add(m.ComputeNode(uuid=f"n-{host}", host=host, hypervisor_hostname=host, hypervisor_type="fake",
                                  cpu_arch=(arch_of or {}).get(host, "x86_64"), vcpus=4,
                                  memory_mb=(memory_of or {}).get(host, 8192), local_gb=100,
                                  cpu_allocation_ratio=1.0, ram_allocation_ratio=1.0, disk_allocation_ratio=1.0))


def _spec(**extra: Any) -> dict[str, Any]:
    return {"project_id": "p", "flavor": FLAVOR, "image_id": "", "image_properties": {}, "is_bfv": False,
            "availability_zone": None, "scheduler_hints": {}, "request_id": "req-1", "group": None, **extra}


@pytest.mark.asyncio
async def test_candidates_come_a_page_at_a_time_and_the_next_page_when_filters_empty_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"max_placement_results": 3})
    db = await _db(settings)
    # most free RAM first: h0000..h0002 are the first page, and only h0007 has the image's architecture
    memory = {f"h{i:04d}": 16384 - i * 512 for i in range(10)}
    await db.run(lambda s: _seed(s, 10, arch_of={"h0007": "aarch64"}, down={"h0001"}, memory_of=memory),
                 write=True)
    scheduler = SchedulerManager(settings, db)
    assert await scheduler.select_destinations(_spec(), ["a"], []) == ["h0000"]
    assert await scheduler.select_destinations(_spec(), ["b"], ["h0000"]) == ["h0002"]  # h0001 is down
    arm = _spec(image_properties={"architecture": "aarch64"})
    assert await scheduler.select_destinations(arm, ["c"], []) == ["h0007"]  # found on the third page
    assert await scheduler.select_destinations(_spec(image_properties={"architecture": "s390x"}), ["d"],
                                               []) == [None]
    claims = await db.run(lambda s: {a.consumer_uuid for a in s.scalars(select(m.Allocation))}, write=False)
    assert claims == {"a", "b", "c"}
    await db.close()


@pytest.mark.asyncio
async def test_a_full_host_is_not_a_candidate_and_groups_and_zones_are_honoured(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"max_placement_results": 2})
    db = await _db(settings)
    await db.run(lambda s: _seed(s, 4), write=True)
    scheduler = SchedulerManager(settings, db)
    big = {"vcpus": 4, "ram": 512, "disk": 1}
    picked = await scheduler.select_destinations(_spec(flavor=big), [f"x{i}" for i in range(5)], [])
    assert sorted(h for h in picked if h) == ["h0000", "h0001", "h0002", "h0003"] and picked[-1] is None
    await db.close()

    settings = Settings(data_dir=tmp_path / "groups", compute={"max_placement_results": 1})
    db = await _db(settings)
    await db.run(lambda s: _seed(s, 3), write=True)
    scheduler = SchedulerManager(settings, db)
    anti = {"uuid": "g1", "policy": "anti-affinity", "rules": {}, "members": []}
    await db.run(lambda s: s.add(m.ServerGroup(uuid="g1", name="g1", project_id="p", user_id="u",
                                               policy="anti-affinity", rules={}, created_at=utcnow())),
                 write=True)
    for i in range(3):
        await db.run(lambda s, i=i: s.add(m.ServerGroupMember(group_uuid="g1", instance_uuid=f"m{i}")),
                     write=True)
    chosen = await scheduler.select_destinations(_spec(group=anti), ["m0", "m1", "m2"], [])
    assert sorted(chosen) == ["h0000", "h0001", "h0002"]  # one per host, though each page holds one host
    await db.run(lambda s: s.add(m.ServerGroupMember(group_uuid="g1", instance_uuid="m3")), write=True)
    assert await scheduler.select_destinations(_spec(group=anti), ["m3"], []) == [None]
    assert await scheduler.select_destinations(_spec(availability_zone="elsewhere"), ["z"], []) == [None]
    assert await scheduler.select_destinations(_spec(availability_zone="nova"), ["z"], []) != [None]
    await db.close()


@pytest.mark.asyncio
async def test_heartbeats_are_batched_and_resources_written_on_change(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"heartbeat_batch_window": 0.05})
    db = await _db(settings)
    writer = HeartbeatWriter(settings, db)
    transactions = 0
    run = db.run

    async def counting_run(fn: Any, *, write: bool) -> Any:
        nonlocal transactions
        transactions += write
        return await run(fn, write=write)

    db.run = counting_run  # type: ignore[method-assign]

    def resources(host: str, vcpus: int = 8) -> dict[str, Any]:
        return {"hypervisor_hostname": host, "hypervisor_type": "fake", "vcpus": vcpus, "memory_mb": 4096,
                "local_gb": 10}

    hosts = [f"hb{i}" for i in range(300)]
    flags = await asyncio.gather(*(writer.report(h, "nova-compute", "compute", resources(h)) for h in hosts))
    assert transactions == 1 and all(f == {"disabled": False, "forced_down": False} for f in flags)

    def nodes(session: Session) -> dict[str, tuple[int, Any]]:
        return {n.host: (n.vcpus, n.updated_at) for n in session.scalars(select(m.ComputeNode))}

    first = await run(nodes, write=False)
    assert len(first) == 300
    await asyncio.sleep(0.01)
    await asyncio.gather(*(writer.report(h, "nova-compute", "compute",
                                         resources(h, 16 if h == "hb7" else 8)) for h in hosts))
    second = await run(nodes, write=False)
    assert second["hb7"][0] == 16 and second["hb7"][1] > first["hb7"][1]
    assert all(second[h] == first[h] for h in hosts if h != "hb7")  # unchanged resources: not written
    counts = await run(lambda s: {x.report_count for x in s.scalars(select(m.ComputeService))}, write=False)
    assert counts == {2}

    # a service deleted through os-services (its node with it) is made again by its next report
    def delete_hb3(session: Session) -> None:
        session.delete(session.scalar(select(m.ComputeService).where(m.ComputeService.host == "hb3")))
        session.delete(session.scalar(select(m.ComputeNode).where(m.ComputeNode.host == "hb3")))

    await run(delete_hb3, write=True)
    await writer.report("hb3", "nova-compute", "compute", resources("hb3"))
    assert "hb3" in await run(nodes, write=False)
    await writer.stop()
    await db.close()
