"""Settings, the CLI and the token's absence from logs."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import RedactSecrets
from bot.config import ConfigError, load_settings
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_empty_config_names_the_missing_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    monkeypatch.setenv("HOADEP_CONFIG", str(empty))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "telegram.token is missing" in str(caught.value)
    assert "HOADEP_TELEGRAM__TOKEN" in str(caught.value)


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[telegram]\ntoken = "{TOKEN}"\n[database]\nurl = "sqlite:///a.db"\n'
        "[access]\nadmin_ids = [1]\n"
    )
    monkeypatch.setenv("HOADEP_CONFIG", str(config))
    monkeypatch.setenv("HOADEP_DATABASE__URL", "postgresql://x@h/db")
    monkeypatch.setenv("HOADEP_ACCESS__ADMIN_IDS", "111, 222")
    monkeypatch.setenv("HOADEP_TELEGRAM__BASE_URL", "http://127.0.0.1:8081/bot")
    settings = load_settings()
    assert settings.database.url == "postgresql://x@h/db"
    assert settings.access.admin_ids == [111, 222]
    assert settings.telegram.base_url == "http://127.0.0.1:8081/bot"
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.telegram.token)


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOADEP_CONFIG", str(ROOT / "config.example.toml"))
    settings = load_settings()
    assert settings.organisation.timezone == "Asia/Ho_Chi_Minh"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOADEP_TELEGRAM__TOKEN": "not-a-token"}, "telegram.token"),
        ({"HOADEP_ORGANISATION__TIMEZONE": "Mars/Olympus"}, "organisation.timezone"),
        ({"HOADEP_ACCESS__ADMIN_IDS": "12,abc"}, "access.admin_ids"),
        ({"HOADEP_TELEGRAM__MODE": "carrier-pigeon"}, "telegram.mode"),
    ],
)
def test_invalid_settings_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    monkeypatch.setenv("HOADEP_CONFIG", str(empty))
    monkeypatch.setenv("HOADEP_TELEGRAM__TOKEN", TOKEN)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert named in str(caught.value)


def test_cli_with_empty_config_exits_cleanly(tmp_path: Path) -> None:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    result = run_cli("run", env={"HOADEP_CONFIG": str(empty)})
    assert result.returncode == 2
    assert "telegram.token is missing" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_with_broken_toml(tmp_path: Path) -> None:
    broken = tmp_path / "config.toml"
    broken.write_text("[telegram\ntoken = ")
    result = run_cli("migrate", env={"HOADEP_CONFIG": str(broken)})
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_is_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    record = logger.makeRecord(
        "x", logging.INFO, __file__, 1, "POST https://api.telegram.org/bot%s/getMe", (TOKEN,), None
    )
    RedactSecrets([TOKEN]).filter(record)
    assert TOKEN not in record.getMessage() and "[REDACTED]" in record.getMessage()


def _cli_env(tmp_path: Path, db: Path) -> dict[str, str]:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    return {
        "HOADEP_CONFIG": str(empty),
        "HOADEP_TELEGRAM__TOKEN": TOKEN,
        "HOADEP_DATABASE__URL": f"sqlite:///{db}",
    }


def test_cli_migrate_import_and_backup(tmp_path: Path) -> None:
    db = tmp_path / "hoadep.sqlite3"
    env = _cli_env(tmp_path, db)
    assert run_cli("migrate", env=env).returncode == 0

    async def add_unit() -> None:
        from bot.services.clock import Clock
        from bot.services.directory import DirectoryService
        from storage.db import Database

        database = Database(f"sqlite:///{db}")
        directory = DirectoryService(database, Clock(), admin_ids=[1])
        admin = await directory.ensure_bootstrap_admin(1, "Quản Trị", "vi")
        await directory.add_unit(admin, "Phòng Tổng hợp", code="PTH")
        await database.dispose()

    asyncio.run(add_unit())
    bad = tmp_path / "bad.csv"
    bad.write_text("full_name,unit\nNguyễn Văn A,PTH\nLê B,Phòng Ma\n", encoding="utf-8")
    result = run_cli("import", str(bad), env=env)
    assert result.returncode == 1
    assert "dòng 3" in result.stderr and "Phòng Ma" in result.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes("full_name,unit\nTrần Thị Bé,PTH\n".encode("utf-16"))
    result = run_cli("import", "members", str(latin), env=env)
    assert result.returncode == 1 and "UTF-8" in result.stderr

    good = tmp_path / "members.csv"
    good.write_text(
        "\ufefffull_name,unit,role\nNguyễn Văn A,PTH,staff\nLê Thị B,PTH,council\n",
        encoding="utf-8",
    )
    result = run_cli("import", str(good), env=env)
    assert result.returncode == 0, result.stderr
    assert "Đã nhập 2 thành viên" in result.stdout

    copy = tmp_path / "copy.sqlite3"
    result = run_cli("backup", str(copy), env=env)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == 3
    assert run_cli("backup", str(copy), env=env).returncode == 2  # no silent overwrite
