"""Distributed mode's safety nets, in-process: the conductor's periodic check of builds that can no longer finish
(a build older than `build_timeout`, its message lost with a broker restart, and a build on a host whose compute
service went down end in ERROR with a fault and without their claims; a fresh build on a live host is left alone),
and a shared Redis token cache that is unreachable."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.auth import CachedTokenValidator
from pocketstack.common.cache import RedisCache
from pocketstack.common.db import Database
from pocketstack.common.rpc.local import LocalTransport
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.conductor.manager import ConductorManager
from pocketstack.distributed.hosts import EngineRelay, hosts_settings, namespace_hosts
from pocketstack.services import SERVICES
from pocketstack.settings import Settings


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
async def test_the_in_process_bus_lost_builds_end_in_error_at_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # rpc local://: queued messages die with the process
    spec = next(s for s in SERVICES if s.name == "compute")
    db = Database(settings.database_url("compute"))
    await db.migrate(spec.migrations_dir, spec.version_table)
    queued = _instance("queued", "h1", age=5)
    queued.task_state = states.SCHEDULING  # cast to h1's queue, not begun
    await db.run(lambda s: s.add_all([_instance("unscheduled", None, age=5), queued,
                                      _instance("spawning", "h1", age=5), _instance("new", None, age=-5)]),
                 write=True)
    conductor = ConductorManager(settings, db, LocalTransport())
    assert sorted(await conductor.abort_lost_builds(utcnow())) == ["queued", "unscheduled"]
    rows = await db.run(lambda s: {i.uuid: i.vm_state for i in s.scalars(select(m.Instance))}, write=False)
    # the build a host had begun is its agent's to end when it starts again; one made after this start runs
    assert rows == {"queued": states.ERROR, "unscheduled": states.ERROR, "spawning": states.BUILDING,
                    "new": states.BUILDING}
    await db.close()


@pytest.mark.asyncio
async def test_builds_timed_out_or_on_a_dead_host_end_in_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"build_timeout": 60, "service_down_time": 30})
    spec = next(s for s in SERVICES if s.name == "compute")
    db = Database(settings.database_url("compute"))
    await db.migrate(spec.migrations_dir, spec.version_table)
    conductor = ConductorManager(settings, db, LocalTransport())
    now = utcnow()
    def seed(session: Session) -> None:
        for host, seen in (("alive", now), ("dead", now - timedelta(seconds=120))):
            session.add(m.ComputeService(uuid=host, host=host, binary="nova-compute", topic="compute",
                                         availability_zone="nova", created_at=now, report_count=1,
                                         last_seen_up=seen))
            session.add(m.ComputeNode(uuid=host, host=host, hypervisor_hostname=host, hypervisor_type="fake",
                                      vcpus=8, memory_mb=8192, local_gb=100))
        session.add_all([_instance("lost", None, age=300), _instance("on-dead", "dead", age=10),
                         _instance("fresh", "alive", age=10)])
        session.flush()
        dead_node = session.scalar(select(m.ComputeNode.id).where(m.ComputeNode.host == "dead"))
        session.add(m.Allocation(consumer_uuid="on-dead", node_id=dead_node, project_id="p", vcpus=1,
                                 memory_mb=512, disk_gb=1, created_at=now))

    await db.run(seed, write=True)

    assert sorted(await conductor.reap_builds()) == ["lost", "on-dead"]
    assert await conductor.reap_builds() == []  # done once (two conductors: one wins the row)
    def read(session: Session) -> tuple[dict, dict, list]:
        return ({i.uuid: i for i in session.scalars(select(m.Instance))},
                {f.instance_uuid: f.message for f in session.scalars(select(m.InstanceFault))},
                list(session.scalars(select(m.Allocation.consumer_uuid))))

    rows, faults, claims = await db.run(read, write=False)
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


def _namespaced(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, compute={"driver": "qemu"},
                    distributed={"namespace_hosts": 2, "management_cidr": "10.251.9.0/24", "name": "pstest_units",
                                 "management_bridge": "mgunits"})


def test_namespaced_hosts_get_their_own_agents_namespaces_and_addresses(tmp_path: Path) -> None:
    from pocketstack.distributed.deploy import deployment_settings, plan

    settings = _namespaced(tmp_path)
    hosts = namespace_hosts(settings, "pstest_units")
    assert [(h.name, h.netns, h.address) for h in hosts] == [
        ("compute1", "pstest_units-compute1", "10.251.9.11"), ("compute2", "pstest_units-compute2", "10.251.9.12")]
    assert len({h.veth for h in hosts}) == 2 and all(len(h.veth) <= 15 for h in hosts)
    processes = {p.name: p for p in plan(settings)}
    # the controller's network agent is the network node; each host has a compute and an L2-only network agent
    assert processes["network-agent"].netns is None
    for host in hosts:
        compute, agent = processes[f"compute-{host.name}"], processes[f"network-agent-{host.name}"]
        assert compute.netns == agent.netns == host.netns
        assert compute.env["POCKETSTACK_COMPUTE__HOSTS"] == f'["{host.name}"]'
        assert agent.env["POCKETSTACK_COMPUTE__HOST"] == host.name
        assert agent.env["POCKETSTACK_NETWORK__LOCAL_IP"] == host.address
        assert compute.env["POCKETSTACK_COMPUTE__INSTANCES_PATH"].endswith(f"/hosts/{host.name}/instances")
        assert agent.env["POCKETSTACK_NETWORK__AGENT_STATE_DIR"].endswith(f"/hosts/{host.name}/network-agent")
    assert not [p for p in processes.values() if p.role.name == "compute" and p.netns is None]
    data, _ = deployment_settings(settings)
    assert data["bind"] == "10.251.9.1" and data["network"]["local_ip"] == "10.251.9.1"
    # without namespaced hosts nothing of it
    plain = Settings(data_dir=tmp_path, compute={"driver": "qemu"})
    assert all(p.netns is None for p in plan(plain)) and deployment_settings(plain)[0]["bind"] == "127.0.0.1"


def test_the_hosts_settings_name_the_controller_where_the_deployment_names_the_loopback() -> None:
    data = {"rpc": {"transport_url": "amqp://guest:guest@127.0.0.1:5672/pstest"},
            "trace": {"database_url": "postgresql+asyncpg://postgres@localhost:5432/pstest_trace"},
            "auth": {"cache_url": "redis://10.0.0.5:6379/0"}, "bind": "10.251.9.1", "identity": {"port": 5000}}
    hosts, ports = hosts_settings(data, "10.251.9.1")
    assert hosts["rpc"]["transport_url"] == "amqp://guest:guest@10.251.9.1:5672/pstest"
    assert hosts["trace"]["database_url"] == "postgresql+asyncpg://postgres@10.251.9.1:5432/pstest_trace"
    assert hosts["auth"]["cache_url"] == "redis://10.0.0.5:6379/0"  # not on the loopback: reachable as it is
    assert ports == {5672, 5432}
    assert hosts["network"] == {"agent_dhcp": False, "agent_l3": False, "bridge_mappings": {}}  # L2 only
    assert data["rpc"]["transport_url"].startswith("amqp://guest:guest@127.0.0.1")  # the input is not changed


@pytest.mark.asyncio
async def test_the_engine_relay_carries_a_connection_to_the_loopback_port() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    # the relay listens on another loopback address here (the management address in a deployment)
    relay = EngineRelay("127.0.0.2", {port}, {"127.0.0.1"})
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.2", port)
        writer.write(b"hello\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"HELLO\n"
        writer.close()
        relay.peers = {"127.0.0.9"}  # from an address that is no host's: closed at once, nothing relayed
        reader, writer = await asyncio.open_connection("127.0.0.2", port)
        writer.write(b"hello\n")
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:  # closed with our line unread
            answer = b""
        assert answer == b""
        writer.close()
    finally:
        await relay.stop()
        upstream.close()
