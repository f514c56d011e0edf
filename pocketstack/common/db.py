"""Database sessions and per-service Alembic migrations (SQLite embedded, PostgreSQL or MariaDB distributed).

Each service owns its database (its own SQLite file, or its own PostgreSQL database) and its own Alembic version
table, so services can also share one database without their migrations colliding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

from pocketstack.common import metrics

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns through orjson: decoding them was the largest cost of reading rows (server lists, ports)
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}

# The connection pool of each server database (PostgreSQL, MariaDB) in this process. `pocketstack serve` sizes it
# from `[distributed]` so that all the processes of a deployment stay under the server's max_connections.
POOL: dict[str, int] = {"pool_size": 10, "max_overflow": 20}


def configure_pool(pool_size: int, max_overflow: int) -> None:
    """Size the pools of the databases opened from now on in this process."""
    POOL.update(pool_size=pool_size, max_overflow=max_overflow)


def make_base() -> type[DeclarativeBase]:
    """A declarative base with its own metadata, one per service."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    return Base


class Database:
    """An async engine and session factory for one service's database.

    `run(fn, write=...)` is the one way to run a transaction: it commits on success and rolls back on any error,
    so a failed request leaves nothing half-written, and `write` says whether it writes. On SQLite, write
    transactions are serialised in-process and start with BEGIN IMMEDIATE, so concurrent writers wait for each
    other instead of failing with "database is locked".

    `fn` is synchronous ORM code taking a `Session` (the usual case), or a coroutine function taking an
    `AsyncSession` where the transaction must await between statements (network's IPAM retries, calls out).
    A synchronous `fn` on SQLite runs right on the
    event loop's thread through a synchronous engine: the statements of an embedded database take microseconds,
    while a hop to a worker thread (aiosqlite's, or `to_thread`) costs a loop turn and a GIL hand-off each way,
    and under load those hand-offs, not SQLite, were what requests waited for. Writes first take the in-process
    writer lock (the one every write transaction takes), so the BEGIN IMMEDIATE never waits for another writer
    of this process while the loop is blocked; reads need no lock (WAL: readers never wait for the writer). Keep
    `fn` short: it blocks the loop while it runs. Elsewhere (PostgreSQL, MariaDB) `fn` runs through
    `AsyncSession.run_sync`.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, **JSON_CODEC}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(pool_size=POOL["pool_size"], max_overflow=POOL["max_overflow"], pool_pre_ping=True,
                          pool_recycle=3600)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._sync_engine: Engine | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        name = Path(make_url(url).database or "").stem or "memory"
        self._seconds = {write: metrics.DB_TRANSACTION_SECONDS.labels(name, str(write).lower())
                         for write in (True, False)}

    @contextlib.asynccontextmanager
    async def _session(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        lock = self._write_lock if write else None
        if lock is not None:
            await lock.acquire()
        try:
            async with self.sessionmaker() as session:
                if write and self.is_sqlite:
                    await session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
        finally:
            if lock is not None:
                lock.release()


    @overload
    async def run(self, fn: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T: ...

    @overload
    async def run(self, fn: Callable[[Session], T], *, write: bool) -> T: ...

    async def run(self, fn: Callable[[Session], T] | Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
        """Run `fn(session)` as one transaction; see the class docstring."""
        began = time.perf_counter()
        try:
            return await self._transaction(fn, write)
        finally:
            self._seconds[write].observe(time.perf_counter() - began)

    async def _transaction(self, fn: Callable[[Session], T] | Callable[[AsyncSession], Awaitable[T]],
                           write: bool) -> T:
        if inspect.iscoroutinefunction(fn):
            async with self._session(write=write) as session:
                return await fn(session)
        if not self.is_sqlite:
            async with self._session(write=write) as session:
                return await session.run_sync(fn)  # type: ignore[arg-type]
        if write:
            assert self._write_lock is not None
            async with self._write_lock:  # one writer at a time in-process: BEGIN IMMEDIATE never waits here
                return self._run_now(fn, write)  # type: ignore[arg-type]
        return self._run_now(fn, write)  # type: ignore[arg-type]

    def _run_now(self, fn: Callable[[Session], T], write: bool) -> T:
        if self._sync_engine is None:
            self._sync_engine = create_engine(self.url.replace("+aiosqlite", ""), **JSON_CODEC,
                                              connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
            event.listen(self._sync_engine, "begin", _sqlite_begin)
        with Session(self._sync_engine, expire_on_commit=False) as session:
            if write:
                session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
            try:
                result = fn(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result

    async def migrate(self, migrations_dir: Path, version_table: str) -> None:
        """Upgrade this database to the newest revision of a service's migrations."""
        cfg = alembic_config(migrations_dir, version_table)

        def upgrade(conn: Connection) -> None:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

        async with self.engine.begin() as conn:
            await self.lock(conn, version_table)  # processes starting at once migrate one after the other
            await conn.run_sync(upgrade)

    async def lock(self, conn: Any, name: str) -> None:
        """Serialise a transaction with those of other processes taking the same named lock (PostgreSQL: an
        advisory lock held until the transaction ends; SQLite serialises writers itself)."""
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for write transactions (take the write lock first: no failing lock upgrade later).

    Other transactions keep the driver's own behaviour: reads run without a BEGIN/COMMIT round trip, and the
    driver begins before the first write.
    """
    begin = conn.get_execution_options().get("sqlite_begin")
    if begin:
        conn.exec_driver_sql(begin)


def alembic_config(migrations_dir: Path, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["version_table"] = version_table
    return cfg


def run_alembic_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`: run on the connection `Database.migrate` hands over."""
    from alembic import context

    conn = context.config.attributes.get("connection")
    version_table = context.config.attributes.get("version_table", "alembic_version")
    if conn is None:  # offline/autogenerate from the command line: use the URL given by `pocketstack db revision`
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _configure(context, connection, target_metadata, version_table)
        return
    _configure(context, conn, target_metadata, version_table)


def _configure(context: Any, conn: Connection, target_metadata: MetaData, version_table: str) -> None:
    context.configure(connection=conn, target_metadata=target_metadata, version_table=version_table,
                      render_as_batch=conn.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
