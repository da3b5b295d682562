"""The wheel is the product: built (sdist, then the wheel from the sdist, as a release is), it
carries the compiled catalogs, the migrations with their template and the example files;
installed in a fresh virtual environment and run from another directory, the bot answers a
Vietnamese user in Vietnamese; a missing or incomplete catalog stops it at start-up.

Dependencies: the fresh environment sees the test's own site-packages through a .pth file
rather than reinstalling them from a wheel cache. The dependencies are the same pinned ranges
either way, and what this test is about is the wheel's own files; installing numpy, matplotlib
and the rest again would cost about a minute and the network on every CI run. A .pth path line
adds that directory to sys.path without running its own .pth files, so the checkout's editable
install stays out; `pip check` still proves the wheel's declared dependencies are satisfied.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.resources import EXAMPLES, mo_name, po_translations
from tests.e2e.process import BotProcess
from tests.e2e.test_e2e_directory import press, say
from tests.fake_telegram.server import FakeTelegramServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADMIN = 1001
# what .gitignore keeps out of a commit, kept out of the copy that is built
TOP_LEVEL = {".git", ".venv", ".hypothesis", "build", "dist", "htmlcov", "data", "config.toml"}


def _untracked(directory: str, names: list[str]) -> set[str]:
    top = Path(directory) == ROOT
    return {
        n
        for n in names
        if n.endswith((".egg-info", "_cache", ".sqlite3", ".db", ".pyc"))
        or ".sqlite3-" in n
        or n == "__pycache__"
        or (top and n in TOP_LEVEL)
    }


def _source_copy(target: Path) -> Path:
    """The checkout as it would be committed: a build in place would leave build/ and
    *.egg-info behind, and a stale build/lib could put deleted files in the wheel."""
    shutil.copytree(ROOT, target, ignore=_untracked)
    return target


def _run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = _source_copy(work / "src")
    # no isolation: setuptools and Babel (build-system.requires) come from the dev extras, so the
    # build needs no network; test_build_requirements checks that pyproject lists them
    built = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", work / "dist", source)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = (work / "dist").glob("hoadep-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the wheel installed; yields its bin/ folder."""
    import site

    env = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env)
    python = env / "bin" / "python"
    paths = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    outer = [p for p in site.getsitepackages() if Path(p).resolve() != ROOT]
    Path(paths.stdout.strip(), "outer-dependencies.pth").write_text("\n".join(outer) + "\n")
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    done = _run(*pip, "install", "--no-deps", "--no-index", "--no-cache-dir", "-q", wheel)
    assert done.returncode == 0, done.stdout + done.stderr
    check = _run(*pip, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    yield env / "bin"


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_build_requirements_cover_the_build_hook() -> None:
    """The hook imports Babel: `pip install .` on a clean machine builds in an isolated
    environment with only build-system.requires; the test's build uses the dev extras."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    def names(requirements: list[str]) -> set[str]:
        return {Requirement(r).name.lower() for r in requirements}

    assert {"setuptools", "babel"} <= names(project["build-system"]["requires"])
    assert {"setuptools", "build"} <= names(project["project"]["optional-dependencies"]["dev"])


def test_the_wheel_carries_catalogs_migrations_and_examples(wheel: Path) -> None:
    from babel.messages.mofile import read_mo

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        languages = sorted(p.name for p in (ROOT / "locales").iterdir() if p.is_dir())
        assert languages == ["en", "vi"]
        for language in languages:
            with archive.open(f"bot/data/{mo_name(language)}") as handle:
                compiled = {m.id: m.string for m in read_mo(handle) if m.id}
            # every translation of every feature's .po, nothing else
            assert compiled == po_translations(ROOT / "locales" / language), language
        migrations = ROOT / "storage" / "migrations"
        shipped = [migrations / "script.py.mako", ROOT / "storage" / "alembic.ini"]
        shipped += sorted(migrations.glob("*.py")) + sorted(migrations.glob("versions/*.py"))
        assert len(shipped) >= 4
        for path in shipped:
            name = path.relative_to(ROOT).as_posix()
            assert archive.read(name) == path.read_bytes(), name
        for name, source in EXAMPLES.items():
            assert archive.read(f"bot/data/{name}") == (ROOT / source).read_bytes(), name
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "hoadep = bot.__main__:main" in archive.read(entry_points).decode()
    assert not [n for n in names if n.startswith(("tests/", "locales/", "examples/"))]


def test_the_build_refuses_a_catalog_with_gaps(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    core = source / "locales" / "vi" / "core.po"
    text = core.read_text(encoding="utf-8")
    untranslated = text.replace('msgstr "Các chức năng Anh/Chị có thể dùng:"', 'msgstr ""', 1)
    assert untranslated != text
    core.write_text(untranslated, encoding="utf-8")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", tmp_path / "dist", source,
    )  # fmt: skip
    assert built.returncode != 0
    assert "missing vi: 'What I can do for you:'" in built.stdout + built.stderr
    assert not list(tmp_path.glob("dist/*.whl"))


async def test_the_installed_wheel_speaks_vietnamese_from_another_directory(
    installed: Path,
    telegram: FakeTelegramServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clean_env(monkeypatch)
    office = tmp_path / "srv"
    office.mkdir()
    hoadep = installed / "hoadep"
    tg = telegram
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")},
        "HOADEP_CONFIG": str(office / "config.toml"),
        "HOADEP_TELEGRAM__TOKEN": tg.token,
        "HOADEP_DATABASE__URL": f"sqlite:///{office / 'hoadep.sqlite3'}",
    }

    # the packaged config example is the starting point of an installation
    example = _run(hoadep, "example", "config", cwd=office, env=env)
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "config.example.toml").read_text(encoding="utf-8")
    (office / "config.toml").write_text(example.stdout, encoding="utf-8")

    where = _run(
        installed / "python",
        "-c",
        "import json, sys, bot, handlers, storage; "
        "print(json.dumps([[m.__file__ for m in (bot, handlers, storage)], sys.path]))",
        cwd=office,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    modules, path = json.loads(where.stdout)
    venv_dir = installed.parent.resolve()
    for module in modules:
        assert Path(module).resolve().is_relative_to(venv_dir), module
    assert not [p for p in path if p and Path(p).resolve() == ROOT]

    migrated = _run(hoadep, "migrate", cwd=office, env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    imported = _run(hoadep, "import", "catalogue", "--example", cwd=office, env=env)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "Đã nạp danh mục thi đua." in imported.stdout  # the CLI speaks the office's language

    tg.core.user(ADMIN, "Trần", "Quản Trị", language_code="vi")
    tg.core.user(3001, "Jane", language_code="en")
    bot = BotProcess(
        tg,
        f"sqlite:///{office / 'hoadep.sqlite3'}",
        office,
        command=[str(hoadep)],
        cwd=office,
        HOADEP_ACCESS__ADMIN_IDS=str(ADMIN),
    )
    await bot.start()
    try:
        await say(tg, ADMIN, "/start", "Xin chào Trần Quản Trị!")
        await say(tg, ADMIN, "/help", "Các chức năng Anh/Chị có thể dùng:")
        # the example catalogue's units, seen through the bot
        await say(tg, ADMIN, "/admin", "Quản trị")
        units = await press(tg, ADMIN, "adm:units:0", "Đơn vị")
        labels = [b["text"] for row in units["reply_markup"]["inline_keyboard"] for b in row]
        assert any("Thống kê tỉnh Nghệ An" in label for label in labels), labels
        # the English catalog is there too: a stranger who reads English gets English
        await say(tg, 3001, "/start", "You are not a member yet.")
    finally:
        code = await bot.stop()
    assert code == 0, bot.log()


def test_a_missing_or_incomplete_catalog_stops_the_installed_bot(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import read_mo, write_mo

    _clean_env(monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOADEP_")} | {
        "HOADEP_CONFIG": str(tmp_path / "config.toml"),
        "HOADEP_TELEGRAM__TOKEN": "123456789:TEST-token-for-hoadep-tests-only-xx",
        "HOADEP_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    (tmp_path / "config.toml").write_text("")
    located = _run(
        installed / "python", "-c", "import bot; print(bot.__file__)", cwd=tmp_path, env=env
    )
    vi = Path(located.stdout.strip()).parent / "data" / mo_name("vi")
    saved = vi.read_bytes()
    try:
        vi.unlink()
        missing = _run(installed / "hoadep", "run", cwd=tmp_path, env=env)
        assert missing.returncode == 2
        assert missing.stderr.strip().splitlines() == [
            "Hoa Đẹp cannot start: no vi message catalog in this installation "
            "(bot/data/locale/vi/LC_MESSAGES/hoadep.mo): install Hoa Đẹp from a wheel, "
            "whose build compiles it"
        ]
        full = read_mo(io.BytesIO(saved))
        partial = Catalog(locale="vi", domain="hoadep")
        for message in list(full)[1:-3]:  # all but the header and three messages
            partial.add(message.id, message.string)
        with vi.open("wb") as handle:
            write_mo(handle, partial)
        incomplete = _run(installed / "hoadep", "migrate", cwd=tmp_path, env=env)
        assert incomplete.returncode == 2
        (line,) = incomplete.stderr.strip().splitlines()
        assert line.startswith("Hoa Đẹp cannot start: the vi message catalog is incomplete: 3 of")
        assert not (tmp_path / "db.sqlite3").exists()  # it stopped before touching anything
    finally:
        vi.write_bytes(saved)
    healthy = _run(installed / "hoadep", "migrate", cwd=tmp_path, env=env)
    assert healthy.returncode == 0, healthy.stderr
    # the catalog tool is for a checkout; an installed copy says so instead of listing every id
    tool = _run(installed / "python", "-m", "bot.i18n_tool", cwd=tmp_path, env=env)
    assert (tool.returncode, tool.stdout.count("\n")) == (2, 1), tool.stdout
