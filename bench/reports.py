"""Benchmark of the sơ kết / tổng kết report engine (not a test).

Fills a database with 100,000 nominations and 50,000 good deeds (10,000 members, 40 units, 12
fields; bulk Core `insert().values` in batches), then times, for the admin's whole-office report
of the year 2025:

* `baseline`  a bare `SELECT * FROM nominations` (every column, no join, no formatting) streamed
              into an openpyxl write-only workbook
* `summary`   build_report(include_lists=False): the SQL aggregates only
* `build`     build_report(): aggregates and the streamed lists
* `xlsx`      to_xlsx() of an already built report
* `build+xlsx` both, end to end (the figure compared with the baseline)
* `charts`    both PNG charts

Each target runs in a fresh child process (so peak RSS belongs to that target alone): `--repeat`
timed runs (median printed), then one extra run under tracemalloc for the Python peak. Runs on
SQLite and, when reachable, on PostgreSQL at 127.0.0.1:5432 (user postgres; a scratch database is
created and dropped).

    .venv/bin/python bench/reports.py [--repeat 3] [--nominations 100000] [--deeds 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from openpyxl import Workbook  # noqa: E402
from sqlalchemy import insert, select, text, update  # noqa: E402

from bot.services.report_files import (  # noqa: E402
    chart_deeds_per_unit_month,
    chart_exemplars_per_field,
    to_xlsx,
)
from bot.services.reports import ReportPeriod, ReportScope, build_report  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Field,
    GoodDeed,
    Member,
    Movement,
    Nomination,
    Title,
    Unit,
    UnitName,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
TARGETS = ("baseline", "summary", "build", "xlsx", "build+xlsx", "charts")
RENAMED_ON = datetime(2025, 7, 1, tzinfo=UTC)
_TEXT = (
    "hoàn thành xuất sắc nhiệm vụ được giao, chủ động đổi mới cách làm, ứng dụng công nghệ "
    "thông tin trong thu thập xử lý số liệu thống kê, hỗ trợ đồng nghiệp, tham gia tích cực "
    "phong trào thi đua, sáng kiến cải tiến quy trình, tiết kiệm thời gian, nâng cao chất lượng "
    "báo cáo, phục vụ kịp thời lãnh đạo các cấp, điều tra doanh nghiệp, tổng điều tra dân số"
)
WORDS = _TEXT.split()
STATUSES = (
    ["approved"] * 40
    + ["submitted"] * 15
    + ["in_review"] * 10
    + ["rejected"] * 15
    + ["changes_requested"] * 5
    + ["withdrawn"] * 5
    + ["draft"] * 10
)


@dataclass
class Filled:
    url: str
    admin_id: int
    seconds: float
    cleanup: Callable[[], Awaitable[None]]


def _sentence(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n)).capitalize() + "."


def _when(rnd: random.Random) -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randrange(365 * 86400))


async def fill(db: Database, n_nominations: int, n_deeds: int, n_members: int) -> int:
    """Insert the data set; returns the admin's member id."""
    rnd = random.Random(20250611)
    batch = 1000
    async with db.transaction() as s:
        await s.execute(
            insert(Unit).values(id=1, code="CUC", name="Thống kê tỉnh Hòa Bình", kind="office")
        )
        units: list[dict[str, Any]] = []
        for i in range(2, 41):
            kind = "department" if i <= 12 else "sub_department"
            name = f"Phòng Nghiệp vụ {i}" if kind == "department" else f"Chi cục Thống kê KV {i}"
            units.append(
                {
                    "id": i,
                    "code": f"U{i}",
                    "name": name,
                    "kind": kind,
                    "parent_id": 1,
                    "active": True,
                }
            )
        await s.execute(insert(Unit).values(units))
        # three units merged in 2025 into the next sub-department; five renamed
        merged = {38: 13, 39: 14, 40: 15}
        renamed = {13: "Chi cục Thống kê huyện Cũ 13", 14: "Chi cục Thống kê huyện Cũ 14"}
        renamed |= {16: "Chi cục TK thành phố 16", 17: "Chi cục TK thị xã 17", 18: "Chi cục 18"}
        for old, new in merged.items():
            await s.execute(
                update(Unit).where(Unit.id == old).values(active=False, merged_into_id=new)
            )
        await s.execute(
            insert(UnitName).values(
                [
                    {
                        "unit_id": u,
                        "name": n,
                        "valid_from": datetime(2020, 1, 1, tzinfo=UTC),
                        "valid_to": RENAMED_ON,
                    }
                    for u, n in renamed.items()
                ]
            )
        )
        unit_names = {u["id"]: u["name"] for u in units} | {1: "Thống kê tỉnh Hòa Bình"}
        active_units = [u["id"] for u in units if u["id"] not in merged]

        await s.execute(
            insert(Field).values(
                [
                    {"id": i, "name": f"Lĩnh vực {i}: nghiệp vụ thống kê", "sort_order": i}
                    for i in range(1, 13)
                ]
            )
        )
        await s.execute(
            insert(Title).values(
                [
                    {"id": 1, "name": "Lao động tiên tiến"},
                    {"id": 2, "name": "Chiến sĩ thi đua cơ sở"},
                    {"id": 3, "name": "Tập thể lao động tiên tiến", "applies_to": "collective"},
                    {"id": 4, "name": "Tập thể lao động xuất sắc", "applies_to": "collective"},
                ]
            )
        )
        await s.execute(
            insert(Movement).values(
                [
                    {
                        "id": 1,
                        "name": "Thi đua thường xuyên 2025",
                        "kind": "regular",
                        "starts_on": date(2025, 1, 1),
                        "ends_on": date(2025, 12, 31),
                        "nomination_deadline": datetime(2025, 12, 15, tzinfo=UTC),
                        "status": "closed",
                    },
                    {
                        "id": 2,
                        "name": "Thi đua chuyển đổi số",
                        "kind": "campaign",
                        "starts_on": date(2025, 3, 1),
                        "ends_on": date(2025, 9, 30),
                        "nomination_deadline": datetime(2025, 9, 15, tzinfo=UTC),
                        "status": "closed",
                    },
                ]
            )
        )

        members: list[dict[str, Any]] = []
        home: dict[int, int] = {}  # member -> unit before the July 2025 merger
        for i in range(1, n_members + 1):
            unit = rnd.choice(active_units)
            predecessor = next((o for o, n in merged.items() if n == unit), None)
            home[i] = predecessor if predecessor and rnd.random() < 0.3 else unit
            name = f"Nguyễn Văn Thành {i}"
            members.append(
                {
                    "id": i,
                    "full_name": name,
                    "name_folded": f"nguyen van thanh {i}",
                    "unit_id": unit,
                    "role": "admin" if i == 1 else "staff",
                }
            )
        for start in range(0, len(members), batch):
            await s.execute(insert(Member).values(members[start : start + batch]))

        def unit_at(member_id: int, unit_id: int, when: datetime) -> tuple[int, str]:
            if when < RENAMED_ON and home[member_id] != unit_id:
                unit_id = home[member_id]
            name = renamed[unit_id] if when < RENAMED_ON and unit_id in renamed else None
            return unit_id, name or unit_names[unit_id]

        rows: list[dict[str, Any]] = []
        for i in range(1, n_nominations + 1):
            status = rnd.choice(STATUSES)
            when = _when(rnd)
            nominee = rnd.randint(2, n_members)
            collective = rnd.random() < 0.05
            unit_id, unit_name = unit_at(nominee, members[nominee - 1]["unit_id"], when)
            rows.append(
                {
                    "id": i,
                    "nominator_id": rnd.randint(2, n_members),
                    "nominee_kind": "collective" if collective else "individual",
                    "nominee_member_id": None if collective else nominee,
                    "nominee_unit_id": unit_id if collective else None,
                    "unit_id": unit_id,
                    "unit_name_at_time": unit_name,
                    "nominee_name_at_time": unit_name
                    if collective
                    else f"Nguyễn Văn Thành {nominee}",
                    "movement_id": rnd.choice((1, 1, 2, None)),
                    "field_id": rnd.randint(1, 12) if rnd.random() > 0.02 else None,
                    "title_id": rnd.choice((3, 4)) if collective else rnd.choice((1, 2)),
                    "achievements": _sentence(rnd, rnd.randint(15, 35)),
                    "good_practices": _sentence(rnd, rnd.randint(8, 20))
                    if status == "approved" and rnd.random() < 0.6
                    else None,
                    "status": status,
                    "version": 1,
                    "created_at": when,
                    "submitted_at": None if status == "draft" else when,
                    "decided_at": when + timedelta(days=7)
                    if status in ("approved", "rejected")
                    else None,
                    "revoked_at": when + timedelta(days=60)
                    if status == "approved" and rnd.random() < 0.02
                    else None,
                    "revoke_reason": None,
                }
            )
            if len(rows) == batch:
                await s.execute(insert(Nomination).values(rows))
                rows = []
        if rows:
            await s.execute(insert(Nomination).values(rows))
            rows = []

        for i in range(1, n_deeds + 1):
            when = _when(rnd)
            subject = rnd.randint(2, n_members)
            unit_id, unit_name = unit_at(subject, members[subject - 1]["unit_id"], when)
            occurred = (when - timedelta(days=rnd.randint(0, 5))).date()
            rows.append(
                {
                    "id": i,
                    "reporter_id": rnd.randint(2, n_members),
                    "subject_kind": "individual",
                    "subject_member_id": subject,
                    "unit_id": unit_id,
                    "unit_name_at_time": unit_name,
                    "subject_name_at_time": f"Nguyễn Văn Thành {subject}",
                    "description": _sentence(rnd, rnd.randint(12, 30)),
                    "occurred_on": occurred if rnd.random() > 0.1 else None,
                    "place": rnd.choice(("Trụ sở Cục", "Địa bàn điều tra", "Chi cục", None)),
                    "status": "approved" if rnd.random() < 0.75 else "submitted",
                    "version": 1,
                    "created_at": when,
                    "submitted_at": when,
                }
            )
            if len(rows) == batch:
                await s.execute(insert(GoodDeed).values(rows))
                rows = []
        if rows:
            await s.execute(insert(GoodDeed).values(rows))
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    if db.is_postgres:  # explicit ids were inserted: move the sequences past them
        async with db.engine.begin() as conn:
            for table in (
                "units",
                "members",
                "fields",
                "titles",
                "movements",
                "nominations",
                "good_deeds",
            ):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    return 1


# --- the measured targets ------------------------------------------------------------------------

PERIOD = ReportPeriod.for_year(2025)
SCOPE = ReportScope.office()


async def baseline(db: Database) -> int:
    """SELECT * FROM nominations streamed into a write-only workbook: the floor to compare with."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("nominations")
    rows = 0
    # a transaction, not db.read(): asyncpg opens a server-side cursor only inside one
    async with db.transaction() as session:
        # SELECT * FROM nominations, as a Core select of the table: a text() statement is not
        # streamed by the aiosqlite driver (the whole result is buffered: 120 MiB here)
        result = await session.stream(
            select(Nomination.__table__).execution_options(yield_per=2000)
        )
        ws.append(list(result.keys()))
        async for part in result.partitions():
            for row in part:
                ws.append([v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
                rows += 1
    buf = io.BytesIO()
    wb.save(buf)
    return rows


async def run_target(target: str, db: Database, admin_id: int) -> Callable[[], Awaitable[Any]]:
    """The callable to time (setup that is not part of the figure happens here)."""
    if target == "baseline":
        return lambda: baseline(db)
    if target == "summary":
        return lambda: build_report(db, admin_id, PERIOD, SCOPE, include_lists=False)
    if target == "build":
        return lambda: build_report(db, admin_id, PERIOD, SCOPE)
    if target == "build+xlsx":

        async def both() -> int:
            data = await build_report(db, admin_id, PERIOD, SCOPE)
            return len(to_xlsx(data, "vi"))

        return both
    data = await build_report(db, admin_id, PERIOD, SCOPE)
    if target == "xlsx":

        async def xlsx() -> int:
            return len(to_xlsx(data, "vi"))

        return xlsx
    if target == "charts":

        async def charts() -> int:
            return len(chart_deeds_per_unit_month(data, "vi")) + len(
                chart_exemplars_per_field(data, "vi")
            )

        return charts
    raise SystemExit(f"unknown target {target}")


def _maxrss_mib() -> float:
    # Linux reports kilobytes (macOS bytes; this bench is run on Linux)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child(target: str, url: str, admin_id: int, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        fn = await run_target(target, db, admin_id)
        await fn()  # warm-up: imports, font cache, statement cache, OS page cache
        rss_before = _maxrss_mib()
        times: list[float] = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await fn()
            times.append(time.perf_counter() - t0)
        rss = _maxrss_mib()
        tracemalloc.start()
        await fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if target == "build":
            data = await build_report(db, admin_id, PERIOD, SCOPE)
            extra = {
                "nominations": len(data.nominations),
                "exemplars": len(data.exemplars),
                "good_deeds": len(data.good_deeds),
            }
        else:
            extra = {}
        return {
            "target": target,
            "times": times,
            "median": statistics.median(times),
            "tracemalloc_peak_mib": peak / 2**20,
            "maxrss_mib": rss,
            "maxrss_before_mib": rss_before,
            **extra,
        }
    finally:
        await db.dispose()


def measure(url: str, admin_id: int, repeat: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                target,
                "--url",
                url,
                "--admin",
                str(admin_id),
                "--repeat",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{target} failed:\n{proc.stderr}")
        out[target] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = out[target]
        print(
            f"  {target:<11} median {r['median']:7.2f} s  (runs: "
            f"{', '.join(f'{x:.2f}' for x in r['times'])})  tracemalloc peak "
            f"{r['tracemalloc_peak_mib']:7.1f} MiB  maxrss {r['maxrss_mib']:7.1f} MiB",
            flush=True,
        )
    return out


def report_ratios(results: dict[str, dict[str, Any]]) -> None:
    base = results["baseline"]
    full = results["build+xlsx"]
    print(
        f"  ratio build+xlsx / baseline: time {full['median'] / base['median']:.2f}x, "
        f"tracemalloc peak {full['tracemalloc_peak_mib'] / base['tracemalloc_peak_mib']:.2f}x, "
        f"maxrss {full['maxrss_mib'] / base['maxrss_mib']:.2f}x"
    )
    if "nominations" in results["build"]:
        b = results["build"]
        print(
            f"  rows listed: {b['nominations']} nominations, {b['exemplars']} exemplars, "
            f"{b['good_deeds']} good deeds"
        )


async def fill_sqlite(args: argparse.Namespace, workdir: Path) -> Filled:
    path = workdir / "bench_reports.sqlite3"
    url = f"sqlite:///{path}"
    db = Database(url)
    await upgrade(db)
    t0 = time.perf_counter()
    admin = await fill(db, args.nominations, args.deeds, args.members)
    seconds = time.perf_counter() - t0
    await db.dispose()

    async def cleanup() -> None:
        def remove() -> None:
            for p in workdir.glob("bench_reports.sqlite3*"):
                p.unlink()

        await asyncio.to_thread(remove)

    return Filled(url, admin, seconds, cleanup)


async def fill_postgres(args: argparse.Namespace) -> Filled | None:
    import asyncpg

    try:
        admin_conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
        )
    except Exception as exc:
        print(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {exc!r}; skipped")
        return None
    # not "hoadep_…": a sweep of stale test databases must not take the bench's away mid-run
    name = f"reports_bench_{uuid.uuid4().hex[:10]}"
    await admin_conn.execute(f'CREATE DATABASE "{name}"')

    async def cleanup() -> None:
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()

    url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    db = Database(url)
    try:
        await upgrade(db)
        t0 = time.perf_counter()
        admin = await fill(db, args.nominations, args.deeds, args.members)
        seconds = time.perf_counter() - t0
    except BaseException:
        await db.dispose()
        await cleanup()
        raise
    await db.dispose()
    return Filled(url, admin, seconds, cleanup)


async def main(args: argparse.Namespace) -> None:
    print(
        f"Hoa Đẹp report bench: {args.nominations} nominations, {args.deeds} good deeds, "
        f"{args.members} members, 40 units, 12 fields; repeat {args.repeat}; "
        f"Python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory(prefix="hoadep-bench-") as tmp:
        backends: list[tuple[str, Callable[[], Awaitable[Filled | None]]]] = []
        if not args.no_sqlite:
            backends.append(("SQLite", lambda: fill_sqlite(args, Path(tmp))))
        if not args.no_postgres:
            backends.append(("PostgreSQL", lambda: fill_postgres(args)))
        for label, make in backends:
            filled = await make()
            if filled is None:
                continue
            print(f"{label}: filled in {filled.seconds:.1f} s")
            try:
                results = await asyncio.to_thread(measure, filled.url, filled.admin_id, args.repeat)
                report_ratios(results)
            finally:
                await filled.cleanup()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nominations", type=int, default=100_000)
    p.add_argument("--deeds", type=int, default=50_000)
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--admin", type=int, default=1, help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ns = parse_args()
    if ns.child:
        result = asyncio.run(child(ns.child, ns.url, ns.admin, ns.repeat))
        print(json.dumps(result))
    else:
        asyncio.run(main(ns))
