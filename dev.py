#!/usr/bin/env python3
"""Set everything up and run: `python3 dev.py run` (the bot on SQLite) or `python3 dev.py test`
(lint, types, layer contract and the whole test suite). Needs only Python >= 3.11 and git."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older Python
        sys.exit("Hoa Đẹp needs Python 3.11 or newer.")
    if not PY.exists():
        say("creating the virtual environment in .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing dependencies (first run takes a minute)")
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(digest)


def ensure_config() -> None:
    """A token is the one thing a user must supply: asked for once, kept in config.toml."""
    if os.environ.get("HOADEP_CONFIG") or os.environ.get("HOADEP_TELEGRAM__TOKEN"):
        return
    config = ROOT / "config.toml"
    if config.exists():
        return
    if not sys.stdin.isatty():
        sys.exit(
            "No config.toml. Set HOADEP_TELEGRAM__TOKEN=<token from @BotFather> (and optionally "
            "HOADEP_ACCESS__ADMIN_IDS=<your numeric Telegram id>) or copy config.example.toml "
            "to config.toml."
        )
    print("Hoa Đẹp needs a bot token. Create a bot with @BotFather in Telegram and paste its")
    token = input("token here (123456789:ABC…): ").strip()
    admin = input(
        "Your numeric Telegram id, to be the first administrator (from @userinfobot; "
        "Enter to skip): "
    ).strip()
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace(
        'token = "123456789:replace-with-the-token-from-BotFather"', f'token = "{token}"', 1
    )
    if admin.isdigit():
        text = text.replace("admin_ids = []", f"admin_ids = [{admin}]", 1)
    config.write_text(text, encoding="utf-8")
    config.chmod(stat.S_IRUSR | stat.S_IWUSR)
    say("wrote config.toml (readable by you only); edit it to change any setting")


def run_checks() -> int:
    steps = [
        ("ruff (lint)", [str(BIN / "ruff"), "check", "."]),
        ("ruff (format)", [str(BIN / "ruff"), "format", "--check", "."]),
        ("mypy (types)", [str(BIN / "mypy")]),
        ("import-linter (layers)", [str(BIN / "lint-imports")]),
        ("i18n catalogs", [str(PY), "-m", "bot.i18n_tool"]),
    ]
    failed = []
    for name, command in steps:
        say(name)
        if subprocess.run(command, cwd=ROOT).returncode != 0:
            failed.append(name)
    say("pytest")
    code = subprocess.run([str(PY), "-m", "pytest", *sys.argv[2:]], cwd=ROOT).returncode
    if code == 5:
        print("pytest collected no tests", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return code


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command == "run":
        ensure_venv("")
        ensure_config()
        return subprocess.run([str(BIN / "hoadep"), "run"], cwd=ROOT).returncode
    if command == "test":
        ensure_venv("dev")
        return run_checks()
    if command == "setup":
        ensure_venv("dev")
        return 0
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    raise SystemExit(main())
