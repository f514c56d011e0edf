"""The volume manager on its own (real database and file backend, no HTTP): what a restart finds half done."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.services import SERVICES
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.backends.file import FileBackend
from pocketstack.volume.manager import VolumeManager

SPEC = next(s for s in SERVICES if s.name == "volume")


def exists(path: str | Path) -> bool:
    return Path(path).exists()


async def _no_token() -> str:
    raise AssertionError("no image is fetched here")


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Settings, Database, FileBackend]]:
    settings = Settings(data_dir=tmp_path, compute={"driver": "fake"}, volume={"host": "h1", "report_interval": 3600})
    db = Database(settings.database_url("volume"))
    await db.migrate(SPEC.migrations_dir, SPEC.version_table)
    backend = FileBackend(tmp_path / "volumes", volume_format="raw", image=None, token=_no_token)  # type: ignore[arg-type]
    yield settings, db, backend
    await db.close()


def _volume(session: Session, status: str, path: Path | None) -> str:
    vtype = session.scalar(select(m.VolumeType))
    if vtype is None:
        vtype = m.VolumeType(id=str(uuid.uuid4()), name="__DEFAULT__", is_public=True, created_at=utcnow())
        session.add(vtype)
        session.flush()
    volume_id = str(uuid.uuid4())
    session.add(m.Volume(id=volume_id, project_id="p", user_id="u", size=1, status=status, availability_zone="nova",
                         volume_type_id=vtype.id, host="h1@file#file", created_at=utcnow(),
                         provider_location=str(path) if path else None, disk_format="raw" if path else None))
    return volume_id


async def test_a_restart_fails_interrupted_creations_and_finishes_deletions(
        parts: tuple[Settings, Database, FileBackend]) -> None:
    settings, db, backend = parts
    await backend.init()
    creating = await db.run(lambda s: _volume(s, st.CREATING, None), write=True)
    half_made = backend.root / f"volume-{creating}"
    half_made.write_bytes(b"partial")  # what a crash in the middle of a copy leaves
    deleting_loc = await backend.create_empty("d", 1)
    deleting = await db.run(lambda s: _volume(s, st.DELETING, Path(deleting_loc.path)), write=True)
    extending = await db.run(lambda s: _volume(s, st.EXTENDING, None), write=True)

    manager = VolumeManager(settings, db, backend, image=None)  # type: ignore[arg-type]
    await manager.start()
    try:
        for _ in range(100):
            if await db.run(lambda s: s.get(m.Volume, deleting), write=False) is None:
                break
            await asyncio.sleep(0.05)

        def read(session: Session) -> tuple:
            return (session.get(m.Volume, creating).status, session.get(m.Volume, deleting),
                    session.get(m.Volume, extending).status,
                    [msg.user_message for msg in session.scalars(select(m.Message)).all()],
                    session.scalar(select(m.Service).where(m.Service.binary == "cinder-volume")))

        created_status, deleted, extended_status, notes, service = await db.run(read, write=False)
        assert created_status == st.ERROR and deleted is None and extended_status == st.ERROR_EXTENDING
        assert notes == ["create volume: the volume service restarted while the volume was being created."]
        assert not exists(deleting_loc.path)
        assert service.host == "h1@file" and service.total_capacity_gb == settings.volume.capacity_gb
        assert service.capabilities["storage_protocol"] == "file"

        await db.run(lambda s: setattr(s.get(m.Volume, creating), "status", st.DELETING), write=True)
        await manager.delete_volume(creating)
        assert not exists(half_made)  # the purge takes what the interrupted creation left
    finally:
        await manager.stop()
