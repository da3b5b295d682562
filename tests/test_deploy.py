"""The production recipes in deploy/ keep their promises: a multi-stage image that runs as an
unprivileged user with a health check, a compose file whose bot waits for a healthy PostgreSQL
16, hardened systemd units, a proxy that lets only Telegram's webhook calls through, and no
secret in any of them. Checked on the files themselves, then by the validators installed here
(hadolint, docker compose, systemd-analyze, nginx, caddy): each is skipped, saying why, when it
is not installed. The recipes at work are in tests/test_deploy_runtime.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.__main__ import parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
SERVICES = ("hoadep.service", "hoadep-scheduler.service", "hoadep-backup.service")
# subcommands the recipes and the README use that other work of the same issue adds; a name
# here is accepted only while the parser does not know it yet
PENDING_COMMANDS = {"init", "status", "restore"}


def tool(name: str) -> str:
    """The path of an installed validator, or skip the test saying it is missing."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed here")
    return found


# --- the image ----------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in stage if w == word]


def test_image_is_built_from_the_wheel_and_runs_unprivileged_with_a_health_check() -> None:
    preamble, *stages = dockerfile_stages()
    assert [w for w, _ in preamble] == ["ARG"]  # only the base image is chosen before FROM
    assert [instructions(s, "FROM")[0].split()[-1] for s in stages] == ["build", "runtime"]
    build, runtime = stages

    build_runs = " ".join(instructions(build, "RUN"))
    assert "pip wheel --no-deps" in build_runs and "install /dist/hoadep-*.whl" in build_runs
    # the runtime stage gets the environment made from the wheel, never the source tree
    copies = instructions(runtime, "COPY")
    assert copies == ["--from=build /opt/hoadep /opt/hoadep"]

    (user,) = instructions(runtime, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, user
    assert f"--uid {uid}" in " ".join(instructions(runtime, "RUN"))
    (health,) = instructions(runtime, "HEALTHCHECK")
    assert health.endswith('CMD ["hoadep", "status"]') and "--timeout=" in health
    assert instructions(runtime, "ENTRYPOINT") == ['["hoadep"]']
    assert instructions(runtime, "CMD") == ['["run"]']
    assert instructions(runtime, "VOLUME") == ['["/var/lib/hoadep"]']
    env = " ".join(instructions(runtime, "ENV"))
    assert "HOADEP_CONFIG=/var/lib/hoadep/config.toml" in env
    assert "install -d -o hoadep -g hoadep -m 0700 /var/lib/hoadep" in " ".join(
        instructions(runtime, "RUN")
    )


def test_build_context_leaves_private_and_unneeded_files_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "config.toml", "*.sqlite3", ".env", "**/.env", "tests"} <= ignored
    # what the wheel is built from stays in
    for needed in ("pyproject.toml", "README.md", "bot", "handlers", "storage", "locales"):
        assert needed not in ignored


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- compose ------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return data


def test_compose_bot_waits_for_a_healthy_postgresql_16_with_its_own_volume() -> None:
    services = compose()["services"]
    db, bot = services["db"], services["bot"]
    assert db["image"] == "postgres:16"
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pgdata" in compose()["volumes"]
    assert bot["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    # the webhook port is published on the host's loopback only, behind nginx or Caddy
    assert bot["ports"] == ["127.0.0.1:8443:8443"]
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in bot["security_opt"]
    # the database is on an internal network the bot shares, and nothing else
    assert db["networks"] == ["backend"] and compose()["networks"]["backend"]["internal"]


def test_compose_takes_every_secret_from_the_environment() -> None:
    services = compose()["services"]
    env = {**services["bot"]["environment"], **services["db"]["environment"]}
    for key in ("HOADEP_TELEGRAM__TOKEN", "HOADEP_TELEGRAM__WEBHOOK_SECRET", "POSTGRES_PASSWORD"):
        assert re.fullmatch(r"\$\{" + key + r":\?[^}]+\}", env[key]), env[key]
    assert "${POSTGRES_PASSWORD}" in env["HOADEP_DATABASE__URL"]
    example = (DEPLOY / "env.example").read_text()
    for key in ("HOADEP_TELEGRAM__TOKEN", "HOADEP_TELEGRAM__WEBHOOK_SECRET", "POSTGRES_PASSWORD"):
        assert re.search(rf"^{key}=$", example, re.M), f"{key} must be empty in env.example"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_compose_configuration_is_valid_webhook_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import load_settings

    monkeypatch.setenv("HOADEP_CONFIG", str(DEPLOY / "compose.config.toml"))
    monkeypatch.setenv("HOADEP_TELEGRAM__TOKEN", "123456789:" + "x" * 35)
    settings = load_settings()
    tg = settings.telegram
    assert tg.mode == "webhook" and tg.webhook_listen == "0.0.0.0" and tg.webhook_port == 8443
    assert tg.webhook_url is not None and tg.webhook_url.endswith("/telegram")
    mount = "./compose.config.toml:/etc/hoadep/config.toml:ro"
    assert mount in compose()["services"]["bot"]["volumes"]


def compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return [tool("docker-compose")]


def test_compose_file_validates_and_refuses_to_run_without_the_secrets(tmp_path: Path) -> None:
    command = [*compose_command(), "--project-directory", str(DEPLOY), "-f"]
    command.append(str(DEPLOY / "compose.yaml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOADEP_", "POSTGRES_"))}
    secrets = {
        "HOADEP_TELEGRAM__TOKEN": "123456789:" + "t" * 35,
        "HOADEP_TELEGRAM__WEBHOOK_SECRET": "w" * 32,
        "POSTGRES_PASSWORD": "p" * 24,
    }
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    ok = subprocess.run(
        [*command, "--env-file", str(env_file), "config"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "postgresql://hoadep:" + "p" * 24 + "@db:5432/hoadep" in ok.stdout

    del secrets["HOADEP_TELEGRAM__WEBHOOK_SECRET"]
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    missing = subprocess.run(
        [*command, "--env-file", str(env_file), "config"], env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert "set HOADEP_TELEGRAM__WEBHOOK_SECRET in deploy/.env" in missing.stderr + missing.stdout


# --- systemd ------------------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as ordered (key, value) lists (systemd keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/hoadep",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "MemoryDenyWriteExecute": "yes",
    "UMask": "0077",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
}


@pytest.mark.parametrize("name", SERVICES)
def test_services_run_as_the_dedicated_user_in_a_hardened_sandbox(name: str) -> None:
    service = unit(name)["Service"]
    values = dict(service)
    assert values["User"] == values["Group"] == "hoadep"
    assert "hoadep" in values["StateDirectory"].split()
    assert values["ConfigurationDirectory"] == "hoadep"
    assert ("Environment", "HOADEP_CONFIG=/etc/hoadep/config.toml") in service
    for key, expected in HARDENING.items():
        assert values.get(key) == expected, f"{name}: {key}={values.get(key)!r}"
    filters = [v for k, v in service if k == "SystemCallFilter"]
    assert filters == ["@system-service", "~@privileged @resources"]


def test_the_three_services_share_one_sandbox() -> None:
    def sandbox(name: str) -> list[tuple[str, str]]:
        service = unit(name)["Service"]
        start = service.index(("UMask", "0077"))
        return service[start:]

    assert sandbox("hoadep.service") == sandbox("hoadep-scheduler.service")
    assert sandbox("hoadep.service") == sandbox("hoadep-backup.service")


def test_bot_services_restart_except_on_a_configuration_error() -> None:
    for name in ("hoadep.service", "hoadep-scheduler.service"):
        values = dict(unit(name)["Service"])
        assert values["ExecStart"] == "/opt/hoadep/bin/hoadep run"
        assert values["Restart"] == "always" and values["RestartPreventExitStatus"] == "2"
    scheduler = unit("hoadep-scheduler.service")["Service"]
    assert ("Environment", "HOADEP_ANNOUNCEMENTS__ROLE=scheduler") in scheduler
    timer = dict(unit("hoadep-backup.timer")["Timer"])
    assert timer["Persistent"] == "true" and timer["OnCalendar"]


def installable_units(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at this checkout's `hoadep`: systemd-analyze checks
    that the program exists."""
    hoadep = Path(sys.executable).parent / "hoadep"
    if not hoadep.exists():
        pytest.skip("no hoadep script beside this Python (run `python3 dev.py setup`)")
    out = []
    for source in sorted(UNITS.iterdir()):
        target = tmp_path / source.name
        target.write_text(source.read_text().replace("/opt/hoadep/bin/hoadep", str(hoadep)))
        out.append(target)
    return out


def test_systemd_analyze_verifies_the_units_and_rates_them_well_protected(
    tmp_path: Path,
) -> None:
    analyze = tool("systemd-analyze")
    units = installable_units(tmp_path)
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    for name in SERVICES:
        security = subprocess.run(
            [analyze, "security", "--offline=true", "--no-pager", name],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        if "--offline" in security.stderr:
            pytest.skip(f"systemd-analyze security has no --offline here: {security.stderr}")
        level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
        assert level is not None, security.stdout + security.stderr
        assert float(level.group(1)) <= 2.0, security.stdout  # 0 = locked down, 10 = exposed


# --- the reverse proxy --------------------------------------------------------------------------


def test_nginx_forwards_only_the_webhook_path_with_a_small_body_limit() -> None:
    conf = (DEPLOY / "nginx" / "hoadep.conf").read_text(encoding="utf-8")
    active = "\n".join(line for line in conf.splitlines() if not line.strip().startswith("#"))
    locations = re.findall(r"location\s+([^{]+?)\s*\{", active)
    # port 80: certificate renewal and a redirect; 443: the webhook, the health check, 404
    assert locations == ["/.well-known/acme-challenge/", "/", "= /telegram", "= /healthz", "/"]
    assert len(re.findall(r"proxy_pass http://hoadep_webhook;", active)) == 2
    assert "server 127.0.0.1:8443;" in active and "client_max_body_size 1m;" in active
    assert "listen 443 ssl;" in active and "return 404;" in active
    assert re.search(
        r"location = /healthz \{\s*allow 127\.0\.0\.1;\s*allow ::1;\s*deny all;", active
    )
    # Telegram's published ranges are offered, commented out (see the comment why)
    assert "# allow 149.154.160.0/20;" in conf and "# allow 91.108.4.0/22;" in conf


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    from tests.test_deploy_runtime import nginx_site

    nginx = tool("nginx")
    conf = nginx_site(tmp_path, http_port=80, https_port=443, upstream_port=8443, ipv6=True)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], text=True, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_caddy_accepts_the_caddyfile() -> None:
    caddy = tool("caddy")
    result = subprocess.run(
        [caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(Path(os.environ.get("TMPDIR", "/tmp")))},
    )
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
    formatted = subprocess.run(
        [caddy, "fmt", str(DEPLOY / "Caddyfile")], capture_output=True, text=True
    )
    assert formatted.stdout == (DEPLOY / "Caddyfile").read_text(), "run caddy fmt --overwrite"


# --- everywhere ---------------------------------------------------------------------------------

TOKEN_SHAPE = re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b")


def recipe_files() -> list[Path]:
    return [p for p in sorted(DEPLOY.rglob("*")) if p.is_file()] + [ROOT / ".dockerignore"]


def test_no_secret_is_written_in_any_recipe() -> None:
    for path in recipe_files():
        text = path.read_text(encoding="utf-8")
        assert not TOKEN_SHAPE.search(text), f"{path}: a bot token?"
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            match = re.search(r"(TOKEN|SECRET|PASSWORD)[\"']?\s*[:=]\s*[\"']?([^\s\"'#]*)", line)
            if match and match.group(2):
                assert match.group(2).startswith("${"), f"{path}: {line.strip()}"


# `hoadep WORD` where a command starts (a line, inline code, after bin/, && or ;), an image's
# command after `docker run … hoadep`, and exec form ["hoadep", "WORD"]
SHELL_USE = re.compile(
    r"(?:^|[`\"'\[]|bin/|&& |; )hoadep[ \t]+([a-z][a-z-]*)(?=[\s\"'`\]]|$)", re.M
)
DOCKER_RUN = re.compile(r"docker run .*?(?<=\s)hoadep(?::\S+)?[ \t]+([a-z][a-z-]*)")
JSON_USE = re.compile(r'"hoadep",\s*"([a-z][a-z-]*)"')


def commands_used(text: str, *, markdown: bool = False) -> set[str]:
    if markdown:  # in prose "hoadep" may be a user or a folder: only code counts
        text = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", text, re.S))
    patterns = (SHELL_USE, DOCKER_RUN, JSON_USE)
    return {word for pattern in patterns for word in pattern.findall(text)}


def test_recipes_and_docs_name_only_real_commands() -> None:
    subparsers = next(a for a in parser()._actions if a.dest == "command")
    known = set(subparsers.choices or {})
    used = {w for p in recipe_files() for w in commands_used(p.read_text(encoding="utf-8"))}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        used |= commands_used(doc.read_text(encoding="utf-8"), markdown=True)
    assert {"run", "migrate", "backup", "init", "status", "restore"} <= used
    unknown = used - known - PENDING_COMMANDS
    assert not unknown, f"the recipes or the docs use unknown subcommands: {sorted(unknown)}"
