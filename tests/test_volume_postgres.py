"""The volume schema and capacity claims on PostgreSQL, the distributed case: several API workers (engines with no
shared lock) claiming a backend's last gigabytes at once must not overbook it. Skipped when no PostgreSQL server
answers at VOLUME_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth), except in CI."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from conftest import postgres_database
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import PayloadTooLarge
from pocketstack.common.timeutils import utcnow
from pocketstack.services import SERVICES
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import quotas, scheduler

SERVER = os.environ.get("VOLUME_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SPEC = next(s for s in SERVICES if s.name == "volume")
HOST = "pg@file#file"


@pytest_asyncio.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[Database]]:
    async with postgres_database(SERVER, "pocketstack_vol") as url:
        dbs = [Database(url) for _ in range(4)]
        try:
            await dbs[0].migrate(SPEC.migrations_dir, SPEC.version_table)

            def seed(session: Session) -> None:
                now = utcnow()
                session.add(m.VolumeType(id=str(uuid.uuid4()), name="__DEFAULT__", is_public=True, created_at=now))
                session.add(m.Service(host="pg@file", binary=scheduler.VOLUME_BINARY, topic="cinder-volume",
                                      availability_zone="nova", total_capacity_gb=10.0, last_seen_up=now,
                                      capabilities={"pool_name": "file"}, created_at=now))

            await dbs[0].run(seed, write=True)
            yield dbs
        finally:
            for db in dbs:
                await db.close()


async def test_concurrent_claims_never_overbook_a_backend(workers: list[Database], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"driver": "fake"})

    def claim(session: Session) -> bool:
        try:
            host = scheduler.pick(session, settings, 4)
        except scheduler.NoValidBackend:
            return False
        type_id = session.scalar(select(m.VolumeType.id))
        now = utcnow()
        session.add(m.Volume(id=str(uuid.uuid4()), project_id="p", user_id="u", size=4, status="creating",
                             availability_zone="nova", volume_type_id=type_id, host=host, created_at=now))
        return True

    results = await asyncio.gather(*(workers[i % len(workers)].run(claim, write=True) for i in range(12)))
    assert sum(results) == 2  # 10 GB holds two 4 GB volumes, however the claims interleave

    def allocated(session: Session) -> int:
        return int(session.scalar(select(func.sum(m.Volume.size)).where(m.Volume.host == HOST)))

    assert await workers[0].run(allocated, write=False) == 8


async def test_concurrent_creates_never_exceed_the_quota(workers: list[Database], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, compute={"driver": "fake"}, volume={"quota_volumes": 3})

    def create(session: Session) -> bool:
        try:
            quotas.check(session, settings, "p", volumes=1, gigabytes=1, volume_size=1)
        except PayloadTooLarge:
            return False
        type_id = session.scalar(select(m.VolumeType.id))
        session.add(m.Volume(id=str(uuid.uuid4()), project_id="p", user_id="u", size=1, status="creating",
                             availability_zone="nova", volume_type_id=type_id, created_at=utcnow()))
        return True

    results = await asyncio.gather(*(workers[i % len(workers)].run(create, write=True) for i in range(12)))
    assert sum(results) == 3
