"""Shared bench helpers: databases filled in bulk, the offline Bot API, the bare-PTB baseline."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, MessageHandler, filters  # noqa: E402
from telegram.request import BaseRequest, RequestData  # noqa: E402

from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Member, Role, Unit, UnitName, utcnow  # noqa: E402
from tests.fake_telegram.core import FakeTelegramCore  # noqa: E402

PG_ADMIN = os.environ.get("HOADEP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "123456789:BENCH-token-for-hoadep-benchmarks-x"
FIRST_USER = 500_000


@dataclass
class Figures:
    name: str
    per_second: float
    p50_ms: float
    p99_ms: float

    def line(self, baseline: Figures | None = None) -> str:
        ratio = f"  ratio {self.per_second / baseline.per_second:5.2f}" if baseline else ""
        return (
            f"{self.name:<34} {self.per_second:8.0f} updates/s  p50 {self.p50_ms:6.2f} ms"
            f"  p99 {self.p99_ms:6.2f} ms{ratio}"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    name: str, make_update: Callable[[int], dict[str, Any]], app: Any, count: int, repeat: int
) -> Figures:
    """Median over `repeat` runs of `count` updates processed one after another."""
    runs: list[Figures] = []
    for _ in range(count // 10):  # warm-up
        await app.process_update(Update.de_json(make_update(0), app.bot))
    for _ in range(repeat):
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(count):
            update = Update.de_json(make_update(i), app.bot)
            t0 = time.perf_counter()
            await app.process_update(update)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        runs.append(
            Figures(
                name,
                count / elapsed,
                percentile(latencies, 0.5) * 1000,
                percentile(latencies, 0.99) * 1000,
            )
        )
    return Figures(
        name,
        statistics.median(r.per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
    )


async def fresh_database(backend: str, workdir: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A migrated, empty database; returns its URL and a clean-up."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
        url = f"sqlite:///{path}"

        async def drop() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        import asyncpg
        from sqlalchemy.engine import make_url

        name = f"hoadep_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)

        async def drop() -> None:
            c = await asyncpg.connect(PG_ADMIN)
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await c.close()

    db = Database(url)
    await migrate.upgrade(db)
    await db.dispose()
    return url, drop


async def postgres_available() -> str | None:
    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 5)
        await conn.close()
        return None
    except Exception as exc:
        return str(exc)


async def fill_directory(url: str, members: int, units: int = 40) -> None:
    """`units` units and `members` members; member i has Telegram id FIRST_USER + i."""
    db = Database(url)
    now = utcnow()
    async with db.transaction() as session:
        await session.execute(
            insert(Unit),
            [
                {
                    "id": u + 1,
                    "name": f"Phòng {u + 1:02d}",
                    "kind": "department",
                    "active": True,
                    "created_at": now,
                }
                for u in range(units)
            ],
        )
        await session.execute(
            insert(UnitName),
            [
                {"unit_id": u + 1, "name": f"Phòng {u + 1:02d}", "valid_from": now}
                for u in range(units)
            ],
        )
        batch: list[dict[str, Any]] = []
        for i in range(members):
            name = f"Nguyễn Văn {i:05d}"
            batch.append(
                {
                    "telegram_user_id": FIRST_USER + i,
                    "full_name": name,
                    "name_folded": f"nguyen van {i:05d}",
                    "unit_id": i % units + 1,
                    "role": Role.ADMIN.value if i == 0 else Role.STAFF.value,
                    "language": "vi",
                    "active": True,
                    "notify_opt_out": False,
                    "under_discipline": False,
                    "created_at": now,
                    "joined_at": now,
                }
            )
            if len(batch) == 2000:
                await session.execute(insert(Member), batch)
                batch = []
        if batch:
            await session.execute(insert(Member), batch)
    if db.is_postgres:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
    await db.dispose()


def register_users(core: FakeTelegramCore, count: int) -> None:
    for i in range(count):
        core.user(FIRST_USER + i, f"User{i}")


class CannedRequest(BaseRequest):
    """Answers every Bot API call at once with a minimal valid result, so that a benchmark
    measures the bot and not a stand-in for Telegram (the tests use the validating fake)."""

    def __init__(self) -> None:
        self.calls = 0
        self.message_id = 0

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        self.calls += 1
        api = url.rsplit("/", 1)[-1].lower()
        params = request_data.json_parameters if request_data else {}
        result: Any = True
        if api == "getme":
            result = {
                "id": 7000000001,
                "is_bot": True,
                "first_name": "Hoa Đẹp",
                "username": "hoadep_bench_bot",
            }
        elif api in ("sendmessage", "editmessagetext"):
            self.message_id += 1
            result = {
                "message_id": self.message_id,
                "date": 0,
                "chat": {"id": int(params.get("chat_id", 1)), "type": "private"},
                "text": "ok",
            }
        return 200, json.dumps({"ok": True, "result": result}).encode()


def user_json(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Người", "language_code": "vi"}


def text_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private"},
        "from": user_json(user_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


def press_update(update_id: int, user_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id),
            "from": user_json(user_id),
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private"},
                "text": "menu",
            },
        },
    }


def baseline_application(url: str) -> tuple[Any, Database]:
    """A bare PTB application: one SQLAlchemy SELECT per update, then a reply."""
    db = Database(url)
    app = (
        Application.builder()
        .token(TOKEN)
        .request(CannedRequest())
        .get_updates_request(CannedRequest())
        .build()
    )

    async def handler(update: Update, context: Any) -> None:
        assert update.effective_user is not None and update.effective_message is not None
        async with db.sessions() as session:
            member = await session.scalar(
                select(Member).where(Member.telegram_user_id == update.effective_user.id)
            )
        await update.effective_message.reply_text(f"Hello {member.full_name if member else ''}")

    app.add_handler(MessageHandler(filters.ALL, handler))
    return app, db
