"""`hoadep import catalogue FILE`: a summary on success; the problems and exit 1 otherwise."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "catalogue.vi.toml"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")}
    env.update(
        HOADEP_CONFIG=str(config),
        HOADEP_TELEGRAM__TOKEN=TOKEN,
        HOADEP_DATABASE__URL=f"sqlite:///{tmp_path / 'hoadep.sqlite3'}",
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", "import", "catalogue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(tmp_path: Path) -> dict[str, int]:
    with sqlite3.connect(tmp_path / "hoadep.sqlite3") as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("units", "fields", "criteria", "titles", "movements")
        }


def test_import_catalogue_from_the_command_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace('kind = "campaign"', 'kind = "đợt"'),
        encoding="utf-8",
    )
    result = _run(tmp_path, str(broken))
    assert result.returncode == 1, result.stderr
    assert "không có gì thay đổi" in result.stderr
    assert "movements[5].kind" in result.stderr and "“đợt”" in result.stderr
    assert result.stdout == ""
    assert set(_rows(tmp_path).values()) == {0}

    result = _run(tmp_path, str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "Đã nạp danh mục thi đua." in result.stdout
    assert "Lĩnh vực: thêm mới 6, cập nhật 0, giữ nguyên 0." in result.stdout
    assert "Phong trào: thêm mới 6" in result.stdout
    loaded = _rows(tmp_path)
    assert loaded["units"] == 8 and loaded["titles"] == 6

    result = _run(tmp_path, str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "Không có gì thay đổi" in result.stdout
    assert "Lĩnh vực: thêm mới 0, cập nhật 0, giữ nguyên 6." in result.stdout
    assert _rows(tmp_path) == loaded

    not_toml = tmp_path / "notes.toml"
    not_toml.write_bytes("[[fields]\nname = 'Lĩnh vực'\n".encode("utf-16"))
    result = _run(tmp_path, str(not_toml))
    assert result.returncode == 1
    assert "UTF-8" in result.stderr
    assert _rows(tmp_path) == loaded


def test_import_the_shipped_example_catalogue(tmp_path: Path) -> None:
    result = _run(tmp_path, "members.csv", "--example")
    assert result.returncode == 2
    assert "--example goes with `hoadep import catalogue` and no file." in result.stderr
    assert not (tmp_path / "hoadep.sqlite3").exists()

    result = _run(tmp_path, "--example")
    assert result.returncode == 0, result.stderr
    assert "Đã nạp danh mục thi đua." in result.stdout
    loaded = _rows(tmp_path)
    assert loaded["units"] == 8 and loaded["titles"] == 6
    # the same file as examples/catalogue.vi.toml: loading that changes nothing
    result = _run(tmp_path, str(EXAMPLE))
    assert "Không có gì thay đổi" in result.stdout
    assert _rows(tmp_path) == loaded
