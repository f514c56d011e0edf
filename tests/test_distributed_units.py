"""Distributed mode's safety nets, in-process: the conductor's periodic check of builds that can no longer finish
(a build older than `build_timeout`, its message lost with a broker restart, and a build on a host whose compute
service went down end in ERROR with a fault and without their claims; a fresh build on a live host is left alone),
and a shared Redis token cache that is unreachable."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pocketstack.common.auth import CachedTokenValidator
from pocketstack.common.cache import RedisCache
from pocketstack.common.config import Settings
from pocketstack.common.db import Database
from pocketstack.common.rpc.local import LocalTransport
from pocketstack.common.service import SERVICES
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.conductor.manager import ConductorManager


def _instance(uuid: str, host: str | None, age: float) -> m.Instance:
    created = utcnow() - timedelta(seconds=age)
    return m.Instance(uuid=uuid, display_name=uuid, hostname=uuid, project_id="p", user_id="u", image_ref="",
                      flavor={}, vcpus=1, memory_mb=512, root_gb=1, vm_state=states.BUILDING,
                      task_state=states.SPAWNING if host else states.SCHEDULING, power_state=states.NOSTATE,
                      host=host, node=host, availability_zone="nova", reservation_id="r-1", requested_networks=[],
                      security_groups=[],
                      network_info=[], retry={}, request_spec={}, created_at=created,
                      updated_at=created)


@pytest.mark.asyncio
async def test_builds_timed_out_or_on_a_dead_host_end_in_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"build_timeout": 60, "service_down_time": 30})
    spec = next(s for s in SERVICES if s.name == "compute")
    db = Database(settings.database_url("compute"))
    await db.migrate(spec.migrations_dir, spec.version_table)
    conductor = ConductorManager(settings, db, LocalTransport())
    now = utcnow()
    async with db.session(write=True) as session:
        for host, seen in (("alive", now), ("dead", now - timedelta(seconds=120))):
            session.add(m.ComputeService(uuid=host, host=host, binary="nova-compute", topic="compute",
                                         availability_zone="nova", created_at=now, report_count=1,
                                         last_seen_up=seen))
            session.add(m.ComputeNode(uuid=host, host=host, hypervisor_hostname=host, hypervisor_type="fake",
                                      vcpus=8, memory_mb=8192, local_gb=100))
        session.add_all([_instance("lost", None, age=300), _instance("on-dead", "dead", age=10),
                         _instance("fresh", "alive", age=10)])
        await session.flush()
        dead_node = await session.scalar(select(m.ComputeNode.id).where(m.ComputeNode.host == "dead"))
        session.add(m.Allocation(consumer_uuid="on-dead", node_id=dead_node, project_id="p", vcpus=1,
                                 memory_mb=512, disk_gb=1, created_at=now))

    assert sorted(await conductor.reap_builds()) == ["lost", "on-dead"]
    assert await conductor.reap_builds() == []  # done once (two conductors: one wins the row)
    async with db.session() as session:
        rows = {i.uuid: i for i in (await session.scalars(select(m.Instance))).all()}
        faults = {f.instance_uuid: f.message for f in (await session.scalars(select(m.InstanceFault))).all()}
        claims = (await session.scalars(select(m.Allocation.consumer_uuid))).all()
    assert rows["lost"].vm_state == rows["on-dead"].vm_state == states.ERROR
    assert rows["fresh"].vm_state == states.BUILDING
    assert "timed out after 60 seconds" in faults["lost"]
    assert "host dead went down during the build" in faults["on-dead"]
    assert claims == []
    await db.close()


@pytest.mark.asyncio
async def test_an_unreachable_redis_cache_is_a_cache_that_forgets() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0")
    calls: list[str] = []

    class Identity:
        async def validate(self, token: str) -> dict[str, Any]:
            calls.append(token)
            return {"user": {"id": "u"}, "expires_at": "2999-01-01T00:00:00.000000Z"}

    validator = CachedTokenValidator(Identity(), cache, ttl=5)
    assert (await validator.validate("tok"))["user"]["id"] == "u"
    assert (await validator.validate("tok"))["user"]["id"] == "u"
    assert calls == ["tok", "tok"]  # every validation went to identity: nothing failed
    await cache.delete("x")
    await cache.close()
