"""Benchmark of /exemplars (not a test).

Fills a database with 10,000 members in 40 units, 12 fields, 10 movements (4 archived) and
100,000 nominations (about 45% approved, a few revoked, the rest in every other status), then
measures the latency of:

* `first page`   `/exemplars` in a private chat
* `unit+field`   the list narrowed by a unit and a field (a button press)
* `name search`  `/exemplars nguyen van` (accents-insensitive name search)
* `year (all)`   the list of one year, archived movements included (a button press)

each end to end through `Application.process_update` with the offline Bot API of tests/harness
(gatekeeper, service, rendering, the fake Telegram's HTML check), and, for comparison, the same
queries as bare service calls (`service` rows). Prints p50 / p95 / max in milliseconds for
SQLite and, when reachable, PostgreSQL at 127.0.0.1:5432 (a scratch database is created and
dropped). A fresh SQLite file has no planner statistics (nothing in Hoa Đẹp runs ANALYZE);
`--analyze` measures with them, `--index` with the index proposed below (and statistics).

    .venv/bin/python bench/exemplars.py [--runs 200] [--nominations 100000] [--members 10000]
        [--only sqlite|postgres] [--analyze] [--index]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from bot.services.clock import FixedClock  # noqa: E402
from bot.services.exemplars import ExemplarFilter  # noqa: E402
from bot.services.text import fold  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Field, Member, Movement, Nomination, Title, Unit  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# the index this benchmark argues for (the registry's filters and order, index-only)
PROPOSED_INDEX = (
    "CREATE INDEX ix_nominations_registry ON nominations (status, decided_at, id, movement_id, "
    "field_id, unit_id, nominee_member_id) WHERE revoked_at IS NULL"
)
USER = 777_000_001
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Quang", "Thu", "Xuân"]
GIVEN = [
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hoa",
    "Hùng",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Nga",
    "Phương",
    "Quân",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
]
STATUSES = (
    ["approved"] * 45
    + ["submitted"] * 15
    + ["rejected"] * 15
    + ["in_review"] * 5
    + ["changes_requested"] * 5
    + ["withdrawn"] * 5
    + ["draft"] * 10
)


async def fill(db: Database, n_nominations: int, n_members: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    async with db.transaction() as s:
        await s.execute(
            insert(Unit),
            [{"id": i, "name": f"Phòng Thống kê số {i}", "code": f"U{i}"} for i in range(1, 41)],
        )
        await s.execute(insert(Field), [{"id": i, "name": f"Lĩnh vực {i}"} for i in range(1, 13)])
        await s.execute(
            insert(Title),
            [{"id": 1, "name": "Lao động tiên tiến"}, {"id": 2, "name": "Chiến sĩ thi đua cơ sở"}],
        )
        movements = []
        for i in range(1, 11):
            year = 2017 + i
            movements.append(
                {
                    "id": i,
                    "name": f"Phong trào thi đua năm {year}",
                    "starts_on": date(year, 1, 1),
                    "ends_on": date(year, 12, 31),
                    "nomination_deadline": datetime(year, 11, 30, tzinfo=UTC),
                    "status": "archived" if i <= 4 else ("open" if i >= 9 else "closed"),
                }
            )
        await s.execute(insert(Movement), movements)
        members = []
        for i in range(1, n_members + 1):
            name = f"{rnd.choice(SURNAMES)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
            members.append(
                {
                    "id": i,
                    "full_name": name,
                    "name_folded": fold(name),
                    "unit_id": rnd.randint(1, 40),
                    "role": "staff",
                    "language": "vi",
                    "telegram_user_id": USER if i == 1 else None,
                }
            )
        for start in range(0, len(members), 5000):
            await s.execute(insert(Member), members[start : start + 5000])
    names = {m["id"]: (m["full_name"], m["unit_id"]) for m in members}
    batch: list[dict[str, Any]] = []
    for i in range(1, n_nominations + 1):
        status = rnd.choice(STATUSES)
        collective = rnd.random() < 0.1
        nominee = rnd.randint(1, n_members)
        name, unit = names[nominee]
        movement = rnd.randint(1, 10)
        submitted = now - timedelta(days=rnd.randint(1, 3000))
        row: dict[str, Any] = {
            "id": i,
            "nominator_id": rnd.randint(1, n_members),
            "nominee_kind": "collective" if collective else "individual",
            "nominee_member_id": None if collective else nominee,
            "nominee_unit_id": unit if collective else None,
            "unit_id": unit,
            "unit_name_at_time": f"Phòng Thống kê số {unit}",
            "nominee_name_at_time": f"Phòng Thống kê số {unit}" if collective else name,
            "movement_id": movement,
            "field_id": rnd.randint(1, 12),
            "title_id": rnd.randint(1, 2),
            "achievements": "Hoàn thành xuất sắc nhiệm vụ " * rnd.randint(2, 20),
            "good_practices": "Ứng dụng công nghệ thông tin " * rnd.randint(1, 10),
            "status": status,
            "version": 1,
            "created_at": submitted,
            "submitted_at": None if status == "draft" else submitted,
            "decided_at": submitted + timedelta(days=3)
            if status in ("approved", "rejected")
            else None,
            "revoked_at": submitted + timedelta(days=9)
            if status == "approved" and rnd.random() < 0.02
            else None,
        }
        batch.append(row)
        if len(batch) == 5000:
            async with db.transaction() as s:
                await s.execute(insert(Nomination), batch)
            batch = []
    if batch:
        async with db.transaction() as s:
            await s.execute(insert(Nomination), batch)
    if db.is_postgres:  # autovacuum would do it soon; SQLite is left as a fresh install is
        async with db.reader.connect() as conn:  # autocommit: VACUUM cannot run in a transaction
            await conn.execute(text("VACUUM ANALYZE"))
    return {"unit": 7, "field": 3, "year": 2019}


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    for _ in range(5):
        await fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def line(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"  {label:<26} p50 {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   "
        f"max {ordered[-1]:7.2f} ms"
    )


async def measure(url: str, backend: str, args: argparse.Namespace) -> None:
    from handlers.gate import Throttle
    from tests.conftest import make_settings
    from tests.harness import make_harness

    db = Database(url)
    await upgrade(db)
    t0 = time.perf_counter()
    probe = await fill(db, args.nominations, args.members)
    if args.index:
        async with db.engine.begin() as conn:
            await conn.execute(text(PROPOSED_INDEX))
    if args.analyze or args.index:
        async with db.reader.connect() as conn:
            await conn.execute(text("VACUUM ANALYZE" if db.is_postgres else "ANALYZE"))
    await db.dispose()
    print(
        f"{backend}: {args.nominations:,} nominations, {args.members:,} members "
        f"(filled in {time.perf_counter() - t0:.1f} s)"
        + (", with the proposed index" if args.index else "")
        + (", analysed" if (args.analyze or args.index or db.is_postgres) else ", not analysed")
    )
    clock = FixedClock(datetime(2026, 6, 1, 3, 0, tzinfo=UTC))
    h, app = await make_harness(make_settings(url), clock)
    h.app.bot_data["throttle"] = Throttle(10**9, 1.0)
    h.user(USER, "Bench")
    viewer = await h.services.directory.identify(USER)
    ex = h.services.exemplars
    narrowed = ExemplarFilter(unit_id=probe["unit"], field_id=probe["field"])
    year = ExemplarFilter(year=probe["year"], everything=True)
    first = await h.text(USER, "/exemplars")
    assert "Điển hình tiên tiến" in first[-1]["text"], first

    unit_data = f"ex:l:{narrowed.encode()}:0"
    year_data = f"ex:l:{year.encode()}:0"
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("first page", lambda: h.text(USER, "/exemplars")),
        ("unit+field", lambda: h.forge_press(USER, unit_data)),
        ("name search", lambda: h.text(USER, "/exemplars nguyen van")),
        ("year (all)", lambda: h.forge_press(USER, year_data)),
        ("service: first page", lambda: ex.search(viewer)),
        ("service: unit+field", lambda: ex.search(viewer, narrowed)),
        (
            "service: name search",
            lambda: ex.search(viewer, ExemplarFilter(search=True), query="nguyen van"),
        ),
        ("service: year (all)", lambda: ex.search(viewer, year)),
    ]
    totals = {
        "first page": (await ex.search(viewer)).total,
        "unit+field": (await ex.search(viewer, narrowed)).total,
        "name search": (
            await ex.search(viewer, ExemplarFilter(search=True), query="nguyen van")
        ).total,
        "year (all)": (await ex.search(viewer, year)).total,
    }
    print("  matches: " + ", ".join(f"{k} {v:,}" for k, v in totals.items()))
    for label, fn in cases:
        print(line(label, await timed(fn, args.runs)), flush=True)
    await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)


async def pg_scratch() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None
    name = f"hoadep_bench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(PG_ADMIN, timeout=5)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--nominations", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE on SQLite after filling (PostgreSQL is always analysed)",
    )
    parser.add_argument(
        "--index",
        action="store_true",
        help="also create the proposed registry index in the scratch database (not a migration)",
    )
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as tmp:
            await measure(f"sqlite:///{tmp}/bench.sqlite3", "SQLite", args)
    if args.only != "sqlite":
        scratch = await pg_scratch()
        if scratch is not None:
            url, drop = scratch
            try:
                await measure(url, "PostgreSQL", args)
            finally:
                await drop()


if __name__ == "__main__":
    asyncio.run(main())
