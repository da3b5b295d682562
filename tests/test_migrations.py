"""The migrations build exactly the models' schema and go down again, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage import migrate
from storage.db import Database
from storage.models import Base


async def _roundtrip(url: str) -> None:
    db = Database(url)
    try:
        assert await migrate.current_revisions(db) == set()
        assert not await migrate.is_up_to_date(db)
        await migrate.upgrade(db)
        assert await migrate.is_up_to_date(db)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
            assert diff == [], f"models and migrations differ: {diff}"
        await migrate.downgrade(db, "base")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(db)  # and up again
        assert await migrate.is_up_to_date(db)
    finally:
        await db.dispose()


async def test_sqlite_upgrade_downgrade(tmp_path: Path) -> None:
    await _roundtrip(f"sqlite:///{tmp_path / 'm.sqlite3'}")


@pytest.mark.postgres
async def test_postgres_upgrade_downgrade(pg_empty_url: str) -> None:
    await _roundtrip(pg_empty_url)


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    try:
        async with db.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert journal == "wal" and fks == 1
    finally:
        await db.dispose()
