"""The documents of `models.Record`, by kind: one transaction per call, 404 in Keystone's words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import Conflict, NotFound
from pocketstack.identity import models as m

Record = m.Record


def _missing(kind: str, record_id: str) -> NotFound:
    return NotFound(f"Could not find {kind.replace('_', ' ')}: {record_id}.")


async def create(db: Database, kind: str, record_id: str, data: dict[str, Any], owner: str | None = None,
                 check: Callable[[AsyncSession], Any] | None = None) -> Record:
    """A new record; 409 when `record_id` is taken. `check(session)` (a coroutine function) runs first."""
    async def write(session: AsyncSession) -> Record:
        if check is not None:
            await check(session)
        if await session.get(Record, (kind, record_id)) is not None:
            raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate ID, {record_id}.")
        row = Record(kind=kind, id=record_id, owner=owner, data=data)
        session.add(row)
        await session.flush()
        return row
    return await db.run(write, write=True)


async def get(db: Database, kind: str, record_id: str) -> Record:
    async def read(session: AsyncSession) -> Record:
        row = await session.get(Record, (kind, record_id))
        if row is None:
            raise _missing(kind, record_id)
        return row
    return await db.run(read, write=False)


async def find(db: Database, kind: str, record_id: str) -> Record | None:
    return await db.run(lambda s: s.get(Record, (kind, record_id)), write=False)


async def list_records(db: Database, kind: str, owner: str | None = None) -> list[Record]:
    query = select(Record).where(Record.kind == kind).order_by(Record.id)
    if owner is not None:
        query = query.where(Record.owner == owner)

    async def read(session: AsyncSession) -> list[Record]:
        return list((await session.scalars(query)).all())
    return await db.run(read, write=False)


async def update(db: Database, kind: str, record_id: str, change: Callable[[dict[str, Any]], dict[str, Any]],
                 *, create_missing: bool = False, owner: str | None = None) -> tuple[Record, bool]:
    """Replace a record's data by `change(current data)`; (the record, whether it was created). A missing record
    is a 404 unless `create_missing`, when `change` gets `{}`."""
    async def write(session: AsyncSession) -> tuple[Record, bool]:
        row = await session.get(Record, (kind, record_id))
        created = row is None
        if row is None:
            if not create_missing:
                raise _missing(kind, record_id)
            row = Record(kind=kind, id=record_id, owner=owner, data={})
            session.add(row)
        row.data = change(dict(row.data or {}))
        await session.flush()
        return row, created
    return await db.run(write, write=True)


async def remove(db: Database, kind: str, record_id: str,
                 check: Callable[[AsyncSession, Record], Any] | None = None) -> None:
    """Delete a record (404 when there is none); `check(session, record)` (a coroutine function) runs first."""
    async def write(session: AsyncSession) -> None:
        row = await session.get(Record, (kind, record_id))
        if row is None:
            raise _missing(kind, record_id)
        if check is not None:
            await check(session, row)
        await session.delete(row)
    await db.run(write, write=True)


async def remove_owned(session: AsyncSession, owner: str, *kinds: str) -> None:
    """Inside another store's transaction: the records of `kinds` that `owner` owns."""
    await session.execute(delete(Record).where(Record.owner == owner, Record.kind.in_(kinds)))
