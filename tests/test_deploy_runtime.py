"""The production recipes at work, as far as this machine allows: nginx in front of a webhook
backend, compose's health probe against 200 and 503, the bot under the kernel's
memory-deny-write-execute (what systemd's MemoryDenyWriteExecute=yes enforces), and the image
built and run when a container engine answers. Each is skipped, saying why, when its tool, its
kernel feature or its engine is missing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.process import free_port
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_deploy import DEPLOY, ROOT, compose, tool

ADMIN = 1001
# read at import, like HOADEP_TEST_PG: the tests run with every HOADEP_* variable removed
DOCKER_BASE = os.environ.get("HOADEP_TEST_DOCKER_BASE", "python:3.12-slim-bookworm")


# --- nginx --------------------------------------------------------------------------------------


def nginx_site(
    tmp_path: Path, *, http_port: int, https_port: int, upstream_port: int, ipv6: bool
) -> Path:
    """deploy/nginx/hoadep.conf in a whole nginx.conf, with a self-signed certificate, logs in
    tmp_path and the given ports."""
    openssl = tool("openssl")
    subject = ["-subj", "/CN=bot.example.gov.vn", "-keyout", "key.pem", "-out", "cert.pem"]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx" / "hoadep.conf").read_text(encoding="utf-8")
    live = "/etc/letsencrypt/live/bot.example.gov.vn/"
    site = site.replace(live + "fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace(live + "privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("/var/log/nginx/", f"{tmp_path}/").replace("/var/www/", f"{tmp_path}/")
    site = site.replace("server 127.0.0.1:8443;", f"server 127.0.0.1:{upstream_port};")
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{http_port};", site)
    site = re.sub(r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", site)
    if not ipv6:
        site = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", site)
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    return conf


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def wait_for_port(port: int, timeout: float = 10.0) -> None:
    for _ in range(int(timeout * 20)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


async def test_nginx_lets_only_telegrams_posts_reach_the_bot(tmp_path: Path) -> None:
    nginx = tool("nginx")
    seen: list[tuple[str, str, str | None]] = []

    async def backend(request: web.Request) -> web.Response:
        await request.read()
        seen.append((request.method, request.path, request.headers.get("X-Forwarded-Proto")))
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", backend)
    upstream, http_port, https_port = free_port(), free_port(), free_port()
    runner = await serve(app, upstream)
    conf = nginx_site(
        tmp_path, http_port=http_port, https_port=https_port, upstream_port=upstream, ipv6=False
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off; master_process off;"],
        stderr=subprocess.PIPE,
    )
    try:
        await wait_for_port(https_port)
        base = f"https://127.0.0.1:{https_port}"
        update = {"update_id": 1, "message": {"message_id": 1, "text": "/start"}}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            async with http.post(f"{base}/telegram", json=update, headers=secret) as r:
                assert r.status == 200 and await r.json() == {"ok": True}
            async with http.get(f"{base}/telegram") as r:
                assert r.status == 403  # only POST
            async with http.post(f"{base}/telegram/../admin", json=update) as r:
                assert r.status == 404
            async with http.post(f"{base}/", json=update) as r:
                assert r.status == 404
            async with http.post(f"{base}/telegram", data=b"x" * (1024 * 1024 + 1)) as r:
                assert r.status == 413  # client_max_body_size 1m
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200  # from this machine
            async with http.get(
                f"http://127.0.0.1:{http_port}/telegram", allow_redirects=False
            ) as r:
                assert r.status == 301 and r.headers["Location"].startswith("https://")
        assert seen == [("POST", "/telegram", "https"), ("GET", "/healthz", None)]
        log = (tmp_path / "hoadep.access.log").read_text()
        assert "s3cret" not in log and "POST /telegram" in log
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=10)
        await runner.cleanup()


# --- compose's health probe ---------------------------------------------------------------------


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
async def test_compose_health_probe_follows_healthz(status: int, healthy: bool) -> None:
    probe = compose()["services"]["bot"]["healthcheck"]["test"]
    assert probe[0] == "CMD"
    port = free_port()
    command = [arg.replace(":8443/", f":{port}/") for arg in probe[1:]]

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"database": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = await serve(app, port)
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert (await proc.wait() == 0) is healthy
    finally:
        await runner.cleanup()


async def answers_help(tg: FakeTelegramServer, *, started: str, after: int, timeout: float) -> None:
    """Once the bot has called `started` (getUpdates, setWebhook) past request `after`, an
    administrator's /help is answered with the commands."""
    await tg.core.wait_for_request(started, timeout=timeout, after=after)
    mark = tg.core.mark()
    tg.core.send_text(ADMIN, "/help")
    reply = await tg.core.wait_for_message(ADMIN, lambda m: True, timeout=30, after=mark)
    assert "/nominate" in reply["text"]


# --- MemoryDenyWriteExecute ---------------------------------------------------------------------

# prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): from here on (and across exec) no mapping may be
# writable and executable, nor become executable (Linux >= 6.3)
MDWE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(65, 1, 0, 0, 0) != 0:\n"
    "    sys.exit('no-mdwe: ' + os.strerror(ctypes.get_errno()))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
RWX_PROBE = (
    "import mmap\n"
    "try:\n"
    "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "    print('allowed')\n"
    "except OSError:\n"
    "    print('refused')\n"
)


def mdwe(*args: str) -> list[str]:
    return [sys.executable, "-c", MDWE, sys.executable, *args]


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")}
    env.update(
        HOADEP_CONFIG=str(config),
        HOADEP_DATABASE__URL=f"sqlite:///{tmp_path / 'hoadep.sqlite3'}",
        HOADEP_ACCESS__ADMIN_IDS=str(ADMIN),
        MPLCONFIGDIR=str(tmp_path / "mpl"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.mark.timeout(300)
async def test_bot_works_without_writable_executable_memory(
    tmp_path: Path, bot_api: FakeTelegramServer
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_MDWE is Linux's")
    probe = subprocess.run(mdwe("-c", RWX_PROBE), capture_output=True, text=True)
    if "no-mdwe" in probe.stderr:
        pytest.skip(f"this kernel has no PR_SET_MDWE (Linux >= 6.3): {probe.stderr.strip()}")
    assert probe.stdout.strip() == "refused", probe.stdout + probe.stderr

    env = bot_env(
        tmp_path,
        HOADEP_TELEGRAM__TOKEN=bot_api.token,
        HOADEP_TELEGRAM__BASE_URL=bot_api.base_url,
        HOADEP_TELEGRAM__BASE_FILE_URL=bot_api.base_file_url,
        HOADEP_TELEGRAM__POLL_TIMEOUT="1",
    )
    members = tmp_path / "members.csv"
    members.write_text(
        f"full_name,unit,role,telegram_user_id\nTrần Quản Trị,{UNIT},admin,{ADMIN}\n"
    )

    def hoadep(*args: str) -> str:
        result = subprocess.run(
            mdwe("-m", "bot", *args),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    hoadep("migrate")
    hoadep("import", "catalogue", str(ROOT / "examples" / "catalogue.vi.toml"))
    hoadep("import", "members", str(members))
    for fmt, extra in (("xlsx", ()), ("png", ("--chart", "fields"))):
        out = tmp_path / f"report.{fmt}"
        hoadep("report", "--period", "year:2026", "--format", fmt, *extra, "--out", str(out))
        assert out.stat().st_size > 1000

    bot_api.core.user(ADMIN, "Trần", "Quản Trị")
    mark = bot_api.core.mark()
    log = (tmp_path / "bot.log").open("wb")
    proc = subprocess.Popen(
        mdwe("-m", "bot", "run"), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        await answers_help(bot_api, started="getUpdates", after=mark, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "bot.log").read_text()


UNIT = "Phòng Thống kê Kinh tế"


# --- the image ----------------------------------------------------------------------------------


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


async def adocker(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """docker, off the event loop: the local Bot API the container talks to runs on it."""
    return await asyncio.to_thread(docker, *args, **kwargs)


@pytest.fixture
def image() -> Any:
    """The image, built from this checkout on the base named by HOADEP_TEST_DOCKER_BASE (any
    Debian-based image with Python >= 3.11; by default the Dockerfile's own)."""
    tool("docker")
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        pytest.skip(f"no container engine answers: {info.stderr.strip().splitlines()[-1:]}")
    base = DOCKER_BASE
    if docker("image", "inspect", base, check=False).returncode != 0:
        pulled = docker("pull", base, check=False, timeout=300)
        if pulled.returncode != 0:
            pytest.skip(f"no base image {base}: {pulled.stderr.strip()[:200]}")
    tag = f"hoadep:test-{uuid.uuid4().hex[:8]}"
    docker(
        "build", "--network", "host", "-f", str(DEPLOY / "Dockerfile"),
        "--build-arg", f"PYTHON_IMAGE={base}", "-t", tag, str(ROOT), timeout=1500,
    )  # fmt: skip
    yield tag
    docker("image", "rm", "--force", tag, check=False)


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.mark.timeout(1800)
async def test_image_serves_as_an_unprivileged_user_on_a_read_only_root(
    image: str, bot_api: FakeTelegramServer, tmp_path: Path
) -> None:
    tg = bot_api
    config = tmp_path / "config.toml"
    config.write_text('[organisation]\nname = "Thống kê thử"\n', encoding="utf-8")
    config.chmod(0o644)
    volume = f"hoadep-test-{uuid.uuid4().hex[:8]}"
    name = volume
    env = {
        "HOADEP_CONFIG": "/etc/hoadep/config.toml",
        "HOADEP_TELEGRAM__TOKEN": tg.token,
        "HOADEP_TELEGRAM__BASE_URL": tg.base_url,
        "HOADEP_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
        "HOADEP_TELEGRAM__POLL_TIMEOUT": "1",
        "HOADEP_ACCESS__ADMIN_IDS": str(ADMIN),
        "HOADEP_DATABASE__URL": "sqlite:////var/lib/hoadep/hoadep.sqlite3",
    }
    flags = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
    flags += ["--security-opt", "no-new-privileges:true", "-v", f"{volume}:/var/lib/hoadep"]
    flags += ["-v", f"{config}:/etc/hoadep/config.toml:ro"]
    for key, value in env.items():
        flags += ["-e", f"{key}={value}"]
    tg.core.user(ADMIN, "Trần", "Quản Trị")
    mark = tg.core.mark()
    await adocker("run", "-d", "--name", name, *flags, image)
    try:
        await answers_help(tg, started="getUpdates", after=mark, timeout=60)
        assert (await adocker("exec", name, "id", "-u")).stdout.strip() == "10001"
        assert (await adocker("exec", name, "touch", "/opt/hoadep/x", check=False)).returncode != 0
        listing = (await adocker("exec", name, "ls", "-ln", "/var/lib/hoadep")).stdout
        assert re.search(r" 10001 +10001 .* hoadep\.sqlite3\n", listing), listing
        await adocker("stop", "--time", "30", name, timeout=60)
        state = (await adocker("inspect", "--format", "{{.State.ExitCode}}", name)).stdout.strip()
        logged = await adocker("logs", name)
        logs = logged.stdout + logged.stderr
        assert state == "0", logs
        assert not [line for line in logs.splitlines() if tg.token in line]
        assert "Traceback" not in logs, logs

        # another container on the same volume: the CLI works with the bot's data
        await adocker("run", "--rm", *flags, image, "migrate")
    finally:
        await adocker("rm", "--force", name, check=False)
        await adocker("volume", "rm", "--force", volume, check=False)


# --- the README's PostgreSQL backup and restore -------------------------------------------------


def readme_command(program: str) -> str:
    """The README's own command line for `program` (Production, Backups)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith(program + " ")]
    return line


@pytest.mark.postgres
async def test_readme_pg_dump_and_pg_restore_bring_the_data_back(
    pg_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from storage.db import Database
    from tests.conftest import TOKEN

    pg_dump, pg_restore = tool("pg_dump"), tool("pg_restore")
    url = make_url(pg_url)
    where = f"-h {url.host} -p {url.port or 5432} -U {url.username} -d {url.database}"
    env = bot_env(tmp_path, HOADEP_TELEGRAM__TOKEN=TOKEN, HOADEP_DATABASE__URL=pg_url)

    def hoadep(*args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    async def counts() -> tuple[int, int]:
        db = Database(pg_url)
        try:
            async with db.read() as session:
                units = await session.scalar(text("SELECT count(*) FROM units"))
                members = await session.scalar(text("SELECT count(*) FROM members"))
        finally:
            await db.dispose()
        return int(units or 0), int(members or 0)

    hoadep("import", "catalogue", str(ROOT / "examples" / "catalogue.vi.toml"))
    before = await counts()
    assert before[0] > 0

    dump = readme_command("pg_dump").replace("-h 127.0.0.1 -U hoadep -d hoadep", where)
    dump = dump.replace("pg_dump", pg_dump, 1)
    done = subprocess.run(["bash", "-c", dump], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (dump_file,) = tmp_path.glob("hoadep-*.dump")

    members = tmp_path / "members.csv"
    members.write_text(f"full_name,unit\nNguyễn Văn Sau,{UNIT}\n")
    hoadep("import", "members", str(members))
    assert (await counts())[1] == before[1] + 1

    restore = readme_command("pg_restore").replace("-h 127.0.0.1 -U hoadep -d hoadep", where)
    restore = restore.replace("hoadep-2026-12-01.dump", str(dump_file))
    restore = restore.replace("pg_restore", pg_restore, 1)
    done = subprocess.run(["bash", "-c", restore], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    assert await counts() == before
    hoadep("migrate")
