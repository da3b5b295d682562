"""Engine and session factory for SQLite (WAL, foreign keys on, deleted content zeroed) and
PostgreSQL; a lock held across transactions (`exclusive`) and `scrub`, which leaves no earlier
version of a row readable in the files (the secret ballot needs both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

BUSY_TIMEOUT_MS = 10_000
SCRUB_WAIT_MS = 2_000
_NEXT_XID = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296"
# VACUUM keeps a dead row that a snapshot taken before its deletion might still see; such a
# snapshot anywhere in the cluster (VACUUM's horizon is not always per database) means "not yet"
_OLDER_SNAPSHOTS = """
SELECT EXISTS (
    SELECT 1 FROM pg_stat_activity
    WHERE pid <> pg_backend_pid()
      AND (age(backend_xmin) > age(CAST(:mark AS xid))
           OR age(backend_xid) > age(CAST(:mark AS xid)))
) OR EXISTS (
    SELECT 1 FROM pg_prepared_xacts WHERE age(transaction) > age(CAST(:mark AS xid))
) OR EXISTS (
    SELECT 1 FROM pg_replication_slots
    WHERE age(xmin) > age(CAST(:mark AS xid)) OR age(catalog_xmin) > age(CAST(:mark AS xid))
)
"""


def affected(result: object) -> int:
    """Rows an UPDATE or DELETE touched (the conditional updates that settle races)."""
    return int(getattr(result, "rowcount", 0) or 0)


def normalise_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # what is deleted or overwritten is zeroed in the file, not left in free space
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, reader: bool = False) -> AsyncEngine:
    """The writing engine, or (reader=True) an autocommit one for reads: a read needs no
    BEGIN and no ROLLBACK round trip, which is most of a small query's cost."""
    url = normalise_url(url)
    # an error or an echoed statement never shows the values: what people typed, a voter id
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if not is_sqlite(url):
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    if reader:
        kwargs.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """Owns the engine; hands out one session (one transaction) per unit of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, echo=echo)
        self.reader = create_engine(self.url, echo=echo, reader=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only (autocommit: each statement sees committed data)."""
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def exclusive(self, space: int, key: int) -> AsyncIterator[AsyncConnection]:
        """A connection holding a lock on (space, key) until the block ends, across the several
        transactions run on it (`async with conn.begin()`). PostgreSQL: a session-level advisory
        lock, which the server releases if the process dies. SQLite: an in-process lock (SQLite
        has one writer, and one process takes the updates)."""
        if not self.is_postgres:
            lock = self._locks.setdefault((space, key), asyncio.Lock())
            async with lock, self.engine.connect() as conn:
                yield conn
            return
        args = {"s": space, "k": key}
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:s, :k)"), args)
            await conn.commit()
            try:
                yield conn
            finally:
                try:
                    if conn.in_transaction():
                        await conn.rollback()
                    await conn.execute(text("SELECT pg_advisory_unlock(:s, :k)"), args)
                    await conn.commit()
                except Exception:  # a broken connection: closing it releases the lock
                    await conn.invalidate()

    async def scrub(self, *tables: str) -> bool:
        """Leave no earlier version of the tables' rows readable on disk; True when done.
        SQLite: copy the WAL into the database file (whose freed space secure_delete zeroes)
        and truncate it. PostgreSQL: rewrite the tables (VACUUM FULL), so that no dead tuple
        and no free space in a page holds an old row. A reader on an older snapshot keeps old
        rows alive: then the result is False and the caller tries again later. Raises when a
        reader holds its lock for too long."""
        if self.is_sqlite:
            async with self.engine.connect() as conn:
                # wait for readers on older snapshots, but not as long as a writer would
                await conn.exec_driver_sql(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
                try:
                    result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    busy = result.one()[0]
                finally:
                    await conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return not busy
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # every transaction that wrote the old rows has an id below this one
            mark = (await auto.exec_driver_sql(_NEXT_XID)).scalar_one()
            # never queue behind a long reader (a pg_dump) while blocking every other one
            await auto.exec_driver_sql("SET lock_timeout = '2s'")
            try:
                await auto.exec_driver_sql("VACUUM FULL " + ", ".join(tables))
            finally:
                await auto.exec_driver_sql("RESET lock_timeout")
            held = (await auto.execute(text(_OLDER_SNAPSHOTS), {"mark": int(mark)})).scalar_one()
            return not held

    async def optimize(self) -> None:
        """Keep the query planner's statistics current (SQLite has none until asked;
        PostgreSQL's autovacuum does this by itself)."""
        if self.is_sqlite:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA optimize=0x10002")

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.reader.dispose()
