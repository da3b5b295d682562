"""Shared fixtures: real databases (SQLite file and PostgreSQL), settings, a controlled clock."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.services.clock import FixedClock
from storage import migrate
from storage.db import Database

pytest_plugins = ["tests.harness"]

PG_ADMIN_URL = os.environ.get("HOADEP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TOKEN = "123456789:TEST-token-for-hoadep-tests-only-xx"


@pytest.fixture(autouse=True, scope="session")
def _isolated_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read a developer's config.toml or HOADEP_* variables."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("HOADEP_")}
    for key in saved:
        del os.environ[key]
    empty = tmp_path_factory.mktemp("config") / "config.toml"
    empty.write_text("")
    os.environ["HOADEP_CONFIG"] = str(empty)
    yield
    os.environ.pop("HOADEP_CONFIG", None)
    os.environ.update(saved)


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_dsn(database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


async def _pg_execute(*statements: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


_pg_state: dict[str, Any] = {}


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def postgres_reason() -> str | None:
    """None when PostgreSQL is reachable; otherwise why not (computed once)."""
    if "reason" not in _pg_state:
        try:
            run_sync(_pg_execute("SELECT 1"))
            _pg_state["reason"] = None
        except Exception as exc:
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"
    reason: str | None = _pg_state["reason"]
    return reason


def require_postgres() -> None:
    reason = postgres_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the PostgreSQL leg: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (CREATE DATABASE … TEMPLATE)."""
    require_postgres()
    name = f"hoadep_tpl_{uuid.uuid4().hex[:10]}"
    run_sync(_pg_execute(f'CREATE DATABASE "{name}"'))

    async def build() -> None:
        db = Database(_pg_dsn(name))
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    run_sync(build())
    yield name
    run_sync(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    name = f"hoadep_t_{uuid.uuid4().hex[:12]}"
    await _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_dsn(name)
    await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_empty_url() -> AsyncIterator[str]:
    require_postgres()
    name = f"hoadep_e_{uuid.uuid4().hex[:12]}"
    await _pg_execute(f'CREATE DATABASE "{name}"')
    yield _pg_dsn(name)
    await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- SQLite ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"

    async def build() -> None:
        db = Database(f"sqlite:///{path}")
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    run_sync(build())
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "hoadep.sqlite3"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


# --- the database every service test runs on, both backends ----------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # 09:00 Monday in Hà Nội


def make_settings(db_url: str = "sqlite:///:memory:", **sections: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram": {"token": TOKEN},
        "database": {"url": db_url},
        # tests write to the database directly too: no remembered roles between updates
        "access": {"admin_ids": [1001], "member_cache_seconds": 0},
    }
    for key, value in sections.items():
        values[key] = {**values.get(key, {}), **value}
    return Settings(**values)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)
