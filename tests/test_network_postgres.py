"""IPAM on PostgreSQL, the distributed case: two API workers (two engines, no shared lock) allocating on one
subnet at once. Correctness comes from the (subnet_id, ip_address) key plus retry. Skipped when no PostgreSQL
server answers at NETWORK_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import postgres_database

from pocketstack.common.clients.compute_events import ComputeNotifier
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import Conflict
from pocketstack.network.l3 import NetworkManager
from pocketstack.network.spec import SPEC
from pocketstack.settings import Settings

SERVER = os.environ.get("NETWORK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=["admin", "member", "reader"])


async def _no_token() -> str:
    raise AssertionError("no compute events are expected here")


@pytest_asyncio.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[NetworkManager]]:
    async with postgres_database(SERVER, "pocketstack_net") as url:
        settings = Settings(data_dir=tmp_path, compute={"driver": "fake"})
        dbs = [Database(url), Database(url)]
        await dbs[0].migrate(SPEC.migrations_dir, SPEC.version_table)
        notifier = ComputeNotifier("http://127.0.0.1:9", _no_token, "RegionOne")
        try:
            yield [NetworkManager(settings, db, notifier) for db in dbs]
        finally:
            for db in dbs:
                await db.close()


async def _subnet(manager: NetworkManager, cidr: str) -> str:
    net = await manager.create_network(ADMIN, {"name": "pg"})
    await manager.create_subnet(ADMIN, {"network_id": net["id"], "cidr": cidr, "ip_version": 4})
    return net["id"]


@pytest.mark.asyncio
async def test_100_concurrent_ports_on_two_postgres_workers(workers: list[NetworkManager]) -> None:
    network_id = await _subnet(workers[0], "10.200.0.0/24")
    first = await workers[0].create_port(ADMIN, {"network_id": network_id})  # creates the default group
    await workers[0].delete_port(ADMIN, first["id"])
    before = sum(w.write_retries for w in workers)
    ports = await asyncio.gather(*(workers[i % 2].create_port(ADMIN, {"network_id": network_id})
                                   for i in range(100)))
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert len(set(ips)) == 100 and "10.200.0.1" not in ips
    assert len({p["mac_address"] for p in ports}) == 100
    stored = await workers[1].list_ports(ADMIN, {"network_id": [network_id]})
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in stored) == sorted(ips)
    print(f"postgres: 100 ports, {sum(w.write_retries for w in workers) - before} transactions retried")


@pytest.mark.asyncio
async def test_exhaustion_on_postgres(workers: list[NetworkManager]) -> None:
    network_id = await _subnet(workers[0], "10.201.0.0/28")  # 13 addresses after the gateway
    results = await asyncio.gather(*(workers[i % 2].create_port(ADMIN, {"network_id": network_id})
                                     for i in range(20)), return_exceptions=True)
    created = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if not isinstance(r, dict)]
    assert len(created) == 13 and len({p["fixed_ips"][0]["ip_address"] for p in created}) == 13
    assert all(isinstance(f, Conflict) and f.error_type == "IpAddressGenerationFailure" for f in failed)
