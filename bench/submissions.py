"""Benchmark of the submission flows (not a test): in-process latency of one /nominate wizard step
and of a Submit, against a bare python-telegram-bot baseline measured in the same run.

A database is filled with 10,000 members (40 units) and 100,000 nominations (bulk Core inserts),
then each target feeds updates through `Application.process_update` with the offline Bot API of
`tests/fake_telegram` (like tests/harness.py), one at a time, and times each call:

The three run interleaved (one update of each per round) in one process, so that other load on
the machine weighs on all of them alike.

* `baseline` a bare PTB Application whose one handler does one SQLAlchemy SELECT (the sender's
             member row) and replies with send_message
* `step`     the real bot: a press on a criterion button of a nomination draft (gatekeeper,
             flow state, a checked write, the criteria list re-rendered, the message edited)
* `submit`   the real bot: the Submit press on a complete draft (every rule again: nominee,
             movement deadline, criteria, duplicates, daily cap; status, audit, outbox)

Printed per backend: p50 and p99 in milliseconds and the ratio of each median to the
baseline's. SQLite always; PostgreSQL at 127.0.0.1:5432 (user postgres) when reachable, in a
scratch database that is dropped afterwards.

    .venv/bin/python bench/submissions.py [--iterations 300] [--nominations 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, MessageHandler, filters  # noqa: E402

from bot.app import build_application  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.services.clock import Clock  # noqa: E402
from bot.services.flows import Flow  # noqa: E402
from bot.services.submissions import NomineeKind  # noqa: E402
from handlers.my import key, new_flow_data  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Criterion,
    Field,
    Member,
    Movement,
    MovementStatus,
    Nomination,
    Unit,
)
from tests.fake_telegram.core import FakeTelegramCore  # noqa: E402
from tests.fake_telegram.offline import (  # noqa: E402
    OFFLINE_BASE_FILE_URL,
    OFFLINE_BASE_URL,
    OfflineRequest,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
TOKEN = "123456789:BENCH-token-for-hoadep-bench-only-xx"
FIRST_BENCH_USER = 7_000_000
WARMUP = 20
STATUSES = (
    ["approved"] * 40
    + ["submitted"] * 20
    + ["rejected"] * 15
    + ["withdrawn"] * 10
    + ["changes_requested"] * 5
    + ["in_review"] * 5
    + ["draft"] * 5
)
SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Ngọc", "Quang", "Thanh", "Xuân"]
GIVEN = [
    "An",
    "Bình",
    "Chi",
    "Dũng",
    "Giang",
    "Hà",
    "Hải",
    "Hoa",
    "Hùng",
    "Lan",
    "Linh",
    "Mai",
    "Nam",
    "Phương",
    "Quân",
    "Sơn",
    "Tâm",
]
BASELINE_USER = 5_000_001  # a member of the filled directory


def fold(text: str) -> str:
    from bot.services.text import fold as _fold

    return _fold(text)


# --- filling the database ----------------------------------------------------------------------


async def fill(db: Database, nominations: int, members: int, bench_users: int) -> dict[str, Any]:
    rng = random.Random(20260311)
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        units = [{"name": f"Phòng nghiệp vụ {i + 1}", "kind": "department"} for i in range(40)]
        await conn.execute(insert(Unit), units)
        unit_ids = list((await conn.execute(select(Unit.id).order_by(Unit.id))).scalars())
        rows = []
        for i in range(members):
            name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)} {i}"
            rows.append(
                {
                    "full_name": name,
                    "name_folded": fold(name),
                    "unit_id": unit_ids[i % len(unit_ids)],
                    "role": "staff",
                    "telegram_user_id": 5_000_000 + i if i % 2 else None,
                    "language": "vi",
                }
            )
        for j in range(bench_users + 1):
            name = f"Người Đo {j}"
            rows.append(
                {
                    "full_name": name,
                    "name_folded": fold(name),
                    "unit_id": unit_ids[j % len(unit_ids)],
                    "role": "staff",
                    "telegram_user_id": FIRST_BENCH_USER + j,
                    "language": "vi",
                }
            )
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(Member), rows[start : start + 5000])
        member_ids = list(
            (
                await conn.execute(select(Member.id).where(Member.full_name.not_like("Người Đo %")))
            ).scalars()
        )
        await conn.execute(
            insert(Movement),
            [
                {
                    "name": f"Phong trào thi đua {y}",
                    "kind": "regular",
                    "starts_on": date(y, 1, 1),
                    "ends_on": date(y, 12, 31),
                    "nomination_deadline": now + timedelta(days=60)
                    if y == 2026
                    else datetime(y, 12, 1, tzinfo=UTC),
                    "status": MovementStatus.OPEN.value if y == 2026 else "closed",
                }
                for y in (2024, 2025, 2026)
            ],
        )
        movement_ids = list(
            (await conn.execute(select(Movement.id).order_by(Movement.id))).scalars()
        )
        await conn.execute(
            insert(Field), [{"name": f"Lĩnh vực {i + 1}", "sort_order": i} for i in range(12)]
        )
        field_ids = list((await conn.execute(select(Field.id).order_by(Field.id))).scalars())
        criteria = [
            {"field_id": None, "text": f"Tiêu chí chung {i + 1}", "applies_to": "both"}
            for i in range(3)
        ] + [
            {"field_id": f, "text": f"Tiêu chí {i + 1} của lĩnh vực {f}", "applies_to": "both"}
            for f in field_ids
            for i in range(5)
        ]
        await conn.execute(insert(Criterion), criteria)
        batch: list[dict[str, Any]] = []
        for i in range(nominations):
            status = rng.choice(STATUSES)
            nominee = rng.choice(member_ids)
            created = now - timedelta(days=rng.randint(1, 900), minutes=rng.randint(0, 1440))
            batch.append(
                {
                    "nominator_id": rng.choice(member_ids),
                    "nominee_kind": "individual",
                    "nominee_member_id": nominee,
                    "unit_id": unit_ids[nominee % len(unit_ids)],
                    "unit_name_at_time": "Phòng nghiệp vụ",
                    "nominee_name_at_time": f"Người {nominee}",
                    "movement_id": rng.choice(movement_ids),
                    "field_id": rng.choice(field_ids),
                    "achievements": "Hoàn thành xuất sắc nhiệm vụ, số hoá quy trình " * 3,
                    "status": status,
                    "created_at": created,
                    "submitted_at": None if status == "draft" else created,
                    "version": 1,
                }
            )
            if len(batch) == 10_000 or i == nominations - 1:
                await conn.execute(insert(Nomination), batch)
                batch = []
    async with db.read() as session:
        field = (await session.scalars(select(Field).order_by(Field.id).limit(1))).one()
        crit = list(
            await session.scalars(
                select(Criterion.id).where(Criterion.field_id == field.id).order_by(Criterion.id)
            )
        )
    return {
        "member_ids": member_ids,
        "movement": movement_ids[-1],
        "field": field.id,
        "criteria": crit,
    }


# --- the applications --------------------------------------------------------------------------


def settings_for(url: str) -> Settings:
    """Default settings except the flood control, which a benchmark's pace would trip."""
    values: dict[str, Any] = {
        "telegram": {
            "token": TOKEN,
            "base_url": OFFLINE_BASE_URL,
            "base_file_url": OFFLINE_BASE_FILE_URL,
        },
        "database": {"url": url},
        "access": {"throttle_burst": 1_000_000},
    }
    return Settings(**values)


async def process(app: Application[Any, Any, Any, Any, Any, Any], update: dict[str, Any]) -> float:
    """Milliseconds one update takes through process_update."""
    parsed = Update.de_json(copy.deepcopy(update), app.bot)
    start = time.perf_counter()
    await app.process_update(parsed)
    return (time.perf_counter() - start) * 1000


async def kicked_deliveries() -> None:
    """Outbox deliveries a handler started; awaited outside the timed part."""
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "outbox-kick" and not t.done()]
    if tasks:
        await asyncio.gather(*tasks)


async def baseline_app(url: str, core: FakeTelegramCore) -> tuple[Any, Database]:
    """A bare PTB Application: one SQLAlchemy SELECT per update, then a reply."""
    db = Database(url)
    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(OFFLINE_BASE_URL)
        .base_file_url(OFFLINE_BASE_FILE_URL)
        .request(OfflineRequest(core))
        .get_updates_request(OfflineRequest(core))
        .build()
    )

    async def handler(update: Update, context: Any) -> None:
        assert update.effective_user is not None and update.effective_chat is not None
        async with db.read() as session:
            row = (
                await session.execute(
                    select(Member.id, Member.full_name).where(
                        Member.telegram_user_id == update.effective_user.id
                    )
                )
            ).first()
        name = row.full_name if row else "?"
        await context.bot.send_message(update.effective_chat.id, f"Xin chào {name}")

    app.add_handler(MessageHandler(filters.ALL, handler))
    await app.initialize()
    return app, db


async def run(url: str, iterations: int, filled: dict[str, Any]) -> dict[str, list[float]]:
    """The three targets interleaved, one update each per round, so that load on the machine
    weighs on all of them alike."""
    core = FakeTelegramCore(token=TOKEN)
    base, base_db = await baseline_app(url, core)
    app = build_application(
        settings_for(url),
        db=Database(url),
        clock=Clock(),
        request=OfflineRequest(core),
        get_updates_request=OfflineRequest(core),
    )
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    services = app.bot_data["services"]
    directory, submissions, flows = services.directory, services.submissions, services.flows
    rng = random.Random(7)
    rounds = WARMUP + iterations
    criterion = filled["criteria"][0]
    out: dict[str, list[float]] = {"baseline": [], "step": [], "submit": []}
    try:
        # one wizard step: a criterion button pressed on a draft at the criteria step
        stepper = FIRST_BENCH_USER
        core.user(stepper, "Đo")
        core.user(BASELINE_USER, "Cơ sở")
        viewer = await directory.identify(stepper)
        draft = await submissions.start_nomination(viewer)
        await submissions.set_nominee_kind(viewer, draft.id, NomineeKind.INDIVIDUAL)
        await submissions.set_nominee_member(viewer, draft.id, rng.choice(filled["member_ids"]))
        await submissions.set_movement(viewer, draft.id, filled["movement"])
        await submissions.set_field(viewer, draft.id, filled["field"])
        flow = Flow("nominate", "criteria", new_flow_data(draft.id))
        await flows.set(stepper, flow)
        await app.process_update(Update.de_json(core.send_text(stepper, "?"), app.bot))
        toggle = f"nom:ct:{key(flow)}:{criterion}"
        # a submit: one complete draft per bench user at the summary, each pressed once
        prepared: list[tuple[int, str]] = []
        for j in range(1, rounds + 1):
            uid = FIRST_BENCH_USER + j
            core.user(uid, f"Đo {j}")
            v = await directory.identify(uid)
            d = await submissions.start_nomination(v)
            await submissions.set_nominee_member(v, d.id, rng.choice(filled["member_ids"]))
            await submissions.set_movement(v, d.id, filled["movement"])
            await submissions.set_field(v, d.id, filled["field"])
            await submissions.toggle_criterion(v, d.id, criterion)
            await submissions.set_achievements(v, d.id, "Hoàn thành xuất sắc nhiệm vụ năm 2026")
            f = Flow("nominate", "sum", new_flow_data(d.id))
            await flows.set(uid, f)
            await app.process_update(Update.de_json(core.send_text(uid, "?"), app.bot))
            prepared.append((uid, f"nom:ok:{key(f)}"))

        for i in range(rounds):
            b = await process(base, core.send_text(BASELINE_USER, f"tin nhắn {i}"))
            s = await process(app, core.press_button(stepper, core.sent(stepper)[-1], toggle))
            uid, ok = prepared[i]
            t = await process(app, core.press_button(uid, core.sent(uid)[-1], ok))
            await kicked_deliveries()
            if i >= WARMUP:
                out["baseline"].append(b)
                out["step"].append(s)
                out["submit"].append(t)
        from sqlalchemy import func

        async with services.db.read() as session:
            submitted = int(
                await session.scalar(
                    select(func.count())
                    .select_from(Nomination)
                    .join(Member, Member.id == Nomination.nominator_id)
                    .where(
                        Member.telegram_user_id > FIRST_BENCH_USER,
                        Nomination.status == "submitted",
                    )
                )
                or 0
            )
        if submitted != rounds:
            print(f"  !! only {submitted} of {rounds} submits went through")
    finally:
        await kicked_deliveries()
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        await base.shutdown()
        await base_db.dispose()
    return out


# --- reporting ---------------------------------------------------------------------------------


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(backend: str, results: dict[str, list[float]]) -> None:
    base = statistics.median(results["baseline"])
    print(f"\n{backend}")
    print(f"  {'target':<10} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'p50 / baseline':>15}")
    for name in ("baseline", "step", "submit"):
        samples = results[name]
        median = statistics.median(samples)
        print(
            f"  {name:<10} {len(samples):>5} {median:>9.2f} {p(samples, 0.99):>9.2f} "
            f"{median / base:>15.2f}"
        )


async def bench_backend(name: str, url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        start = time.perf_counter()
        filled = await fill(db, args.nominations, args.members, args.iterations + WARMUP)
        print(
            f"{name}: {args.members} members, {args.nominations} nominations inserted in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
    finally:
        await db.dispose()
    results = await run(url, args.iterations, filled)
    report(name, results)


async def postgres_url() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
        )
    except Exception as exc:
        print(f"\nPostgreSQL not reachable at {PG_HOST}:{PG_PORT} ({exc!r}): skipped")
        return None
    name = f"hoadep_bench_{uuid.uuid4().hex[:10]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await c.close()

    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", drop


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"in-process latency, {args.iterations} timed updates per target after {WARMUP} "
        f"warm-up ones; Python {sys.version.split()[0]}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        await bench_backend("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args)
    if not args.no_postgres:
        found = await postgres_url()
        if found is not None:
            url, drop = found
            try:
                await bench_backend("PostgreSQL", url, args)
            finally:
                await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--nominations", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message=".*create_task.*")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
