"""`hoadep report`: the files of /report from the command line (as an administrator), on SQLite
and PostgreSQL; mistakes give a clear message and exit 2, never a traceback."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

from storage.db import Database
from storage.models import GoodDeed, Nomination
from tests.conftest import TOKEN
from tests.test_report_handlers import DEPT_A, seed

ROOT = Path(__file__).resolve().parents[1]


def report(
    tmp_path: Path, db_url: str, *args: str, lang: str | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")}
    env.update(
        HOADEP_CONFIG=str(config),
        HOADEP_TELEGRAM__TOKEN=TOKEN,
        HOADEP_DATABASE__URL=db_url,
    )
    if lang:
        env["HOADEP_ORGANISATION__DEFAULT_LANGUAGE"] = lang
    return subprocess.run(
        [sys.executable, "-m", "bot", "report", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_workbook_csv_and_chart(db: Database, db_url: str, tmp_path: Path) -> None:
    world = await seed(db)
    async with db.read() as s:
        approved = await s.scalar(
            select(func.count()).select_from(Nomination).where(Nomination.status == "approved")
        )
        nominations = await s.scalar(select(func.count()).select_from(Nomination))
        deeds = await s.scalar(
            select(func.count()).select_from(GoodDeed).where(GoodDeed.status == "approved")
        )

    out = tmp_path / "bao-cao-tong-ket-2025.xlsx"
    result = report(
        tmp_path, db_url, "--period", "year:2025", "--format", "xlsx", "--out", str(out)
    )
    ok(result)
    assert f"Đã ghi báo cáo vào tệp {out}" in result.stdout
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["Điển hình", "Đề cử", "Người tốt việc tốt", "Thống kê theo đơn vị"]
    assert len(list(wb["Điển hình"].iter_rows())) - 2 == approved == 3
    assert len(list(wb["Đề cử"].iter_rows())) - 2 == nominations == 5  # as an administrator
    assert len(list(wb["Người tốt việc tốt"].iter_rows())) - 2 == deeds == 3
    total = list(wb["Thống kê theo đơn vị"].iter_rows(values_only=True))[-1]
    assert total[1] == "Tổng cộng" and (total[4], total[6], total[7]) == (3, 3, 5)
    wb.close()

    # one unit, one list, in English; the period typed as dates
    out = tmp_path / "nominations.csv"
    result = report(
        tmp_path,
        db_url,
        "--period",
        "01/01/2025-31/12/2025",
        "--unit",
        str(world.dept_a),
        "--format",
        "csv",
        "--list",
        "nominations",
        "--lang",
        "en",
        "--out",
        str(out),
    )
    ok(result)
    assert "Report written to" in result.stdout
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows[0][:3] == ["No.", "Nomination ID", "Name / Collective"]
    assert {r[4] for r in rows[1:]} == {DEPT_A} and len(rows) == 3  # approved + pending

    out = tmp_path / "chart.png"
    result = report(
        tmp_path,
        db_url,
        "--period",
        f"movement:{world.movement}",
        "--format",
        "png",
        "--chart",
        "fields",
        "--out",
        str(out),
    )
    ok(result)
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 10_000


async def test_mistakes_are_explained(sqlite_url: str, tmp_path: Path) -> None:
    """Backend independent: on SQLite only."""
    db = Database(sqlite_url)
    await seed(db)
    await db.dispose()
    db_url = sqlite_url
    out = str(tmp_path / "x.xlsx")
    base = ("--format", "xlsx", "--out", out)
    refused(
        report(tmp_path, db_url, "--period", "year:20x5", *base),
        "“year:20x5” không phải là kỳ báo cáo",
    )
    refused(
        report(tmp_path, db_url, "--period", "31/12/2025-01/01/2025", *base),
        "Kỳ báo cáo không hợp lệ.",
    )
    refused(
        report(tmp_path, db_url, "--period", "movement:999", *base),
        "Phong trào này không còn tồn tại.",
    )
    refused(
        report(tmp_path, db_url, "--period", "year:2025", "--unit", "999", *base),
        "Đơn vị này không còn tồn tại.",
    )
    refused(
        report(tmp_path, db_url, "--period", "year:2025", "--unit", "Phòng A", *base),
        "“Phòng A” không phải là đơn vị",
    )
    refused(
        report(
            tmp_path, db_url, "--period", "year:2025", "--format", "csv", "--out", out, lang="en"
        ),
        "--format csv needs --list",
    )
    refused(
        report(tmp_path, db_url, "--period", "year:2025", "--format", "png", "--out", out),
        "--format png cần kèm --chart",
    )
    refused(
        report(
            tmp_path,
            db_url,
            "--period",
            "year:2025",
            "--format",
            "xlsx",
            "--out",
            str(tmp_path / "missing" / "x.xlsx"),
        ),
        "Không có thư mục",
    )
    refused(report(tmp_path, db_url, "--period", "year:2025", "--format", "pdf"), "invalid choice")
    assert not (tmp_path / "x.xlsx").exists()


def test_no_database_and_no_administrator(sqlite_url: str, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.sqlite3'}"
    args = ("--period", "year:2025", "--format", "xlsx", "--out", str(tmp_path / "x.xlsx"))
    refused(report(tmp_path, missing, *args), "Không có cơ sở dữ liệu SQLite tại")
    assert not (tmp_path / "none.sqlite3").exists()
    # a migrated database nobody has used yet: no administrator to report as
    refused(report(tmp_path, sqlite_url, *args), "chưa có quản trị viên nào")
