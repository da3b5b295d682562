"""The real `hoadep run` process, started by a test against the local Bot API server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.fake_telegram.server import FakeTelegramServer

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    """One bot process; its output goes to a log file that tests can read."""

    def __init__(
        self,
        server: FakeTelegramServer,
        db_url: str,
        workdir: Path,
        *,
        command: Sequence[str] = (sys.executable, "-m", "bot"),
        cwd: Path = ROOT,
        **env: str,
    ) -> None:
        self.server = server
        self.db_url = db_url
        self.workdir = workdir
        self.command = list(command)  # an installed `hoadep` in the wheel's test
        self.cwd = cwd
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "bot.log"
        self.starts = 0

    def env(self) -> dict[str, str]:
        config = self.workdir / "config.toml"
        if not config.exists():
            config.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")}
        env.update(
            HOADEP_CONFIG=str(config),
            HOADEP_TELEGRAM__TOKEN=self.server.token,
            HOADEP_TELEGRAM__BASE_URL=self.server.base_url,
            HOADEP_TELEGRAM__BASE_FILE_URL=self.server.base_file_url,
            HOADEP_TELEGRAM__POLL_TIMEOUT="1",
            HOADEP_DATABASE__URL=self.db_url,
            HOADEP_ACCESS__ADMIN_IDS="1001",
            HOADEP_ANNOUNCEMENTS__TICK_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    async def start(self, *, wait_for: str = "getUpdates", timeout: float = 30.0) -> None:
        mark = self.server.core.mark()
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"\n=== start {self.starts} ===\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [*self.command, "run"],
            cwd=self.cwd,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            await self.server.core.wait_for_request(
                lambda r: r.method.lower() == wait_for.lower(), timeout=timeout, after=mark
            )
        except AssertionError:
            raise AssertionError(f"the bot did not start:\n{self.log()}") from None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        for _ in range(int(timeout * 10)):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        else:
            self.proc.kill()
        code = self.proc.wait()
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
