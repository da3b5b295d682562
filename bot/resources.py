"""Files the bot ships: message catalogs, the example catalogue and the config example.

An installed wheel carries them as package data under `bot/data/` (the build hook in `setup.py`
compiles `locales/<lang>/*.po` into one `.mo` per language and copies the examples); a checkout
or an editable install reads the sources where they are, so an edited `.po` applies at once.
Nothing falls back to English: a missing or incomplete catalog is a `ResourceError`.

Imports nothing but the standard library and Babel: the build hook runs it before the
dependencies are installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

LANGUAGES = ("vi", "en")
DOMAIN = "hoadep"
PACKAGE_DATA = "data"
# name under bot/data/ -> where the file lives in a checkout
EXAMPLES = {
    "config.example.toml": "config.example.toml",
    "examples/catalogue.vi.toml": "examples/catalogue.vi.toml",
}
CONFIG_EXAMPLE = "config.example.toml"
CATALOGUE_EXAMPLE = "examples/catalogue.vi.toml"


class ResourceError(Exception):
    """A shipped file is missing or unusable; the message is one line saying which."""


def checkout_root() -> Path | None:
    """The source tree when the code runs from one (not from an installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "locales").is_dir():
        return root
    return None


def _packaged() -> Traversable:
    return files(__package__ or "bot").joinpath(PACKAGE_DATA)


def mo_name(language: str) -> str:
    """Where a language's compiled catalog sits under bot/data/."""
    return f"locale/{language}/LC_MESSAGES/{DOMAIN}.mo"


def read_example(name: str) -> bytes:
    """An example file by its name under bot/data/ (see EXAMPLES)."""
    root = checkout_root()
    if root is not None:
        source = root / EXAMPLES[name]
        if source.is_file():
            return source.read_bytes()
    packaged = _packaged().joinpath(*name.split("/"))
    if not packaged.is_file():
        raise ResourceError(f"{name} is missing from this installation (reinstall Hoa Đẹp)")
    return packaged.read_bytes()


def config_example() -> str:
    """The commented example configuration (for `hoadep init` and `hoadep example config`)."""
    return read_example(CONFIG_EXAMPLE).decode("utf-8")


def example_catalogue() -> bytes:
    """The example emulation catalogue (`hoadep import catalogue --example`)."""
    return read_example(CATALOGUE_EXAMPLE)


def po_translations(directory: Path) -> dict[str, str]:
    """Every `.po` file of one language merged (one file per feature avoids conflicts); fuzzy
    and empty translations are left out, as gettext would."""
    from babel.messages.pofile import read_po

    merged: dict[str, str] = {}
    for path in sorted(directory.glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle):
                usable = isinstance(message.id, str) and message.id and message.string
                if usable and "fuzzy" not in message.flags:
                    merged[str(message.id)] = str(message.string)
    return merged


def _mo_translations(language: str) -> dict[str, str] | None:
    from babel.messages.mofile import read_mo

    packaged = _packaged().joinpath(*mo_name(language).split("/"))
    if not packaged.is_file():
        return None
    with packaged.open("rb") as handle:
        try:
            catalog = read_mo(handle)
        except Exception as exc:  # a truncated or foreign file
            raise ResourceError(f"the {language} message catalog is unreadable: {exc}") from None
    return {str(m.id): str(m.string) for m in catalog if isinstance(m.id, str) and m.id}


@cache
def catalog(language: str) -> Mapping[str, str]:
    """A language's translations: from locales/<lang>/*.po in a checkout, else the packaged
    .mo. Raises ResourceError when there is none."""
    root = checkout_root()
    if root is not None:
        found = po_translations(root / "locales" / language)
        if not found:
            raise ResourceError(f"no {language} message catalog: locales/{language}/*.po is empty")
        return found
    packaged = _mo_translations(language)
    if not packaged:
        raise ResourceError(
            f"no {language} message catalog in this installation (bot/{PACKAGE_DATA}/"
            f"{mo_name(language)}): install Hoa Đẹp from a wheel, whose build compiles it"
        )
    return packaged


def check_catalogs(languages: tuple[str, ...] = LANGUAGES) -> None:
    """Every language is there and translates the same messages; the build already refused
    catalogs that miss a message of the code (`python -m bot.i18n_tool` lists gaps)."""
    catalogs = {language: catalog(language) for language in languages}
    every = set().union(*catalogs.values())
    for language, messages in catalogs.items():
        lacking = sorted(every - set(messages))
        if lacking:
            raise ResourceError(
                f"the {language} message catalog is incomplete: {len(lacking)} of {len(every)} "
                f"messages are not translated, e.g. {lacking[0]!r} "
                "(python -m bot.i18n_tool lists them in a checkout)"
            )


def compile_catalogs(locales: Path, package: Path) -> list[Path]:
    """Build hook: locales/<lang>/*.po -> <package>/data/locale/<lang>/LC_MESSAGES/hoadep.mo."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    written = []
    for language_dir in sorted(p for p in locales.iterdir() if p.is_dir()):
        compiled = Catalog(locale=language_dir.name, domain=DOMAIN, project="Hoa Đẹp")
        for msgid, msgstr in po_translations(language_dir).items():
            compiled.add(msgid, msgstr)
        target = package / PACKAGE_DATA / mo_name(language_dir.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            write_mo(handle, compiled)
        written.append(target)
    return written


def copy_examples(root: Path, package: Path) -> list[Path]:
    """Build hook: the example files into <package>/data/."""
    written = []
    for name, source in EXAMPLES.items():
        target = package / PACKAGE_DATA / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((root / source).read_bytes())
        written.append(target)
    return written
