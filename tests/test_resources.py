"""Shipped files from a checkout: catalogs read from locales/*.po, examples where they are; a
language that lacks a message another one has is an error, never an English fallback. (The
installed wheel is tested in tests/e2e/test_e2e_wheel.py.)"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import resources

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the catalogs that the test may break, read as the checkout's."""
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    monkeypatch.setattr(resources, "checkout_root", lambda: tmp_path)
    resources.catalog.cache_clear()
    yield tmp_path
    resources.catalog.cache_clear()


def test_a_checkout_reads_the_po_files_and_the_examples_where_they_are() -> None:
    assert resources.checkout_root() == ROOT
    assert resources.catalog("vi")["What I can do for you:"] == "Các chức năng Anh/Chị có thể dùng:"
    resources.check_catalogs()
    example = ROOT / "config.example.toml"
    assert resources.config_example() == example.read_text(encoding="utf-8")
    assert resources.example_catalogue() == (ROOT / "examples" / "catalogue.vi.toml").read_bytes()


def test_an_untranslated_message_is_an_error_not_english(checkout: Path) -> None:
    core = checkout / "locales" / "vi" / "core.po"
    text = core.read_text(encoding="utf-8")
    core.write_text(
        text.replace('msgstr "Các chức năng Anh/Chị có thể dùng:"', 'msgstr ""', 1),
        encoding="utf-8",
    )
    with pytest.raises(resources.ResourceError) as raised:
        resources.check_catalogs()
    message = str(raised.value)
    assert message.startswith("the vi message catalog is incomplete: 1 of ")
    assert "'What I can do for you:'" in message and "\n" not in message


def test_a_language_without_catalog_is_an_error(checkout: Path) -> None:
    shutil.rmtree(checkout / "locales" / "en")
    with pytest.raises(resources.ResourceError, match=r"no en message catalog: locales/en/\*\.po"):
        resources.check_catalogs()
