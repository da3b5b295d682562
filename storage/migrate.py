"""Alembic driven from code, on the application's own async engine."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.db import Database


def _package_dir() -> Path:
    """The installed package: alembic.ini, env.py, script.py.mako and versions/ are its data."""
    here = files(__package__ or "storage")
    if not isinstance(here, Path):  # Alembic reads a directory of scripts, not a zip archive
        raise RuntimeError(f"the storage package must be installed as files, not in {here}")
    return here


def alembic_config() -> Config:
    here = _package_dir()
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here / "migrations"))
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def is_up_to_date(db: Database) -> bool:
    return await current_revisions(db) == head_revisions()


async def _migrate(db: Database, step: Callable[[Config, str], None], target: str) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        step(cfg, target)
        if db.is_sqlite:  # what the foreign keys would have refused, refused now
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")

    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.run_sync(run)
        return
    # SQLite alters a table by copying it and dropping the original; with foreign keys on, the
    # drop would cascade to every row that references it (an open ballot's voters, say)
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(run)
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def upgrade(db: Database, target: str = "heads") -> None:
    await _migrate(db, command.upgrade, target)


async def downgrade(db: Database, target: str = "base") -> None:
    await _migrate(db, command.downgrade, target)


async def autogenerate(db: Database, message: str) -> None:
    """Developer helper: write a new revision from the models' difference to the database."""

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.revision(cfg, message=message, autogenerate=True)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
