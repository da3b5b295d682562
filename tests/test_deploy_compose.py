"""deploy/compose.yaml brought up for real when a container engine answers and its images are at
hand: PostgreSQL becomes healthy, then the bot starts, migrates, registers its webhook and
answers a person through it, with its data in PostgreSQL; a call without the webhook secret is
refused. Telegram is the local Bot API server, reached from the bot's network."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.__main__ import parser
from tests.e2e.process import free_port
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_deploy import DEPLOY, compose_command
from tests.test_deploy_runtime import (
    ADMIN,
    DOCKER_BASE,
    adocker,
    answers_help,
    docker,
    wait_for_port,
)

pytestmark = pytest.mark.timeout(1800)


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.name = f"hoadeptest{uuid.uuid4().hex[:8]}"
        self.subnet = f"172.31.{int(uuid.uuid4().hex[:2], 16) % 200 + 20}"
        self.gateway = f"{self.subnet}.1"
        self.telegram_port = free_port()
        self.secret = secrets.token_hex(16)
        self.env_file = tmp_path / "test.env"
        self.override = tmp_path / "override.yaml"

    def command(self, *args: str) -> list[str]:
        return [
            *compose_command(), "--project-name", self.name, "--project-directory", str(DEPLOY),
            "-f", str(DEPLOY / "compose.yaml"), "-f", str(self.override),
            "--env-file", str(self.env_file), *args,
        ]  # fmt: skip

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*args), capture_output=True, text=True,
                                timeout=timeout)  # fmt: skip
        assert result.returncode == 0, f"compose {' '.join(args)}:\n{result.stderr[-3000:]}"
        return result

    def write(self, token: str) -> None:
        self.env_file.write_text(
            f"HOADEP_TELEGRAM__TOKEN={token}\nHOADEP_TELEGRAM__WEBHOOK_SECRET={self.secret}\n"
            f"POSTGRES_PASSWORD={secrets.token_hex(12)}\nHOADEP_VERSION={self.name}\n"
        )
        api = f"http://{self.gateway}:{self.telegram_port}"
        override = {
            "services": {
                "bot": {
                    # the host's network for pip: an engine may have no default bridge
                    "build": {"args": {"PYTHON_IMAGE": DOCKER_BASE}, "network": "host"},
                    "environment": {
                        "HOADEP_TELEGRAM__BASE_URL": f"{api}/bot",
                        "HOADEP_TELEGRAM__BASE_FILE_URL": f"{api}/file/bot",
                        # the local Bot API calls the published port directly (no TLS proxy)
                        "HOADEP_TELEGRAM__WEBHOOK_URL": "http://127.0.0.1:8443/telegram",
                        "HOADEP_ACCESS__ADMIN_IDS": str(ADMIN),
                    },
                }
            },
            "networks": {"default": {"ipam": {"config": [{"subnet": f"{self.subnet}.0/24"}]}}},
        }
        self.override.write_text(json.dumps(override))  # JSON is YAML

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).stdout.strip()


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        pytest.skip(f"no container engine answers: {info.stderr.strip()[-200:]}")
    for image in ("postgres:16", DOCKER_BASE):
        if docker("image", "inspect", image, check=False).returncode != 0:
            pytest.skip(f"image {image} is not at hand (no registry reachable?)")
    compose_command()
    if port_taken(8443):
        pytest.skip("port 8443, which compose publishes, is taken on this machine")
    result = Stack(tmp_path)
    try:
        yield result
    finally:
        subprocess.run(result.command("down", "--volumes"), capture_output=True, timeout=300)
        docker("image", "rm", "--force", f"hoadep:{result.name}", check=False)


async def compose_run(
    stack: Stack, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """compose, off the event loop: the local Bot API the bot talks to runs on it."""
    return await asyncio.to_thread(stack.run, *args, timeout=timeout)


async def test_compose_stack_answers_through_the_webhook_from_postgresql(stack: Stack) -> None:
    core = FakeTelegramServer().core  # the token compose must use
    stack.write(core.token)
    await compose_run(stack, "up", "--no-start", "--build", timeout=1500)
    async with FakeTelegramServer(core, host=stack.gateway, port=stack.telegram_port) as tg:
        tg.core.user(ADMIN, "Trần", "Quản Trị")
        mark = tg.core.mark()
        await compose_run(stack, "up", "-d")
        hook = await tg.core.wait_for_request(
            lambda r: r.method.lower() == "setwebhook", timeout=180, after=mark
        )
        assert hook.params["url"] == "http://127.0.0.1:8443/telegram"
        await wait_for_port(8443)

        db, bot = stack.container("db"), stack.container("bot")
        db_state = json.loads((await adocker("inspect", db)).stdout)[0]["State"]
        bot_state = json.loads((await adocker("inspect", bot)).stdout)[0]["State"]
        assert db_state["Health"]["Status"] == "healthy"
        probes, started = db_state["Health"]["Log"], bot_state["StartedAt"]
        if probes[0]["Start"] < started:  # the engine keeps the last 5 probes only
            assert [p["ExitCode"] for p in probes if p["End"] < started][-1] == 0

        await answers_help(tg, started="setWebhook", after=mark, timeout=5)
        members = await compose_run(
            stack, "exec", "-T", "db", "psql", "-U", "hoadep", "-d", "hoadep", "-tAc",
            "SELECT count(*) FROM members WHERE role = 'admin'",
        )  # fmt: skip
        assert members.stdout.strip() == "1"

        async with aiohttp.ClientSession() as http:
            update = {"update_id": 999, "message": {"message_id": 1, "text": "/help"}}
            async with http.post("http://127.0.0.1:8443/telegram", json=update) as r:
                assert r.status == 403  # no secret header
        subcommands = next(a for a in parser()._actions if a.dest == "command").choices or {}
        if "status" in subcommands:  # /healthz arrives with `hoadep status`
            for _ in range(60):
                state = json.loads((await adocker("inspect", bot)).stdout)[0]["State"]
                if state["Health"]["Status"] == "healthy":
                    break
                await asyncio.sleep(2)
            assert state["Health"]["Status"] == "healthy", state["Health"]

        await compose_run(stack, "stop", "bot")
        logs = (await compose_run(stack, "logs", "--no-color", "bot")).stdout
        assert core.token not in logs and stack.secret not in logs
        assert json.loads((await adocker("inspect", bot)).stdout)[0]["State"]["ExitCode"] == 0
