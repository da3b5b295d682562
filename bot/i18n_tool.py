"""Message catalogs: `python -m bot.i18n_tool check` lists messages that lack a translation;
`python -m bot.i18n_tool add FEATURE` appends them to locales/<lang>/FEATURE.po (English filled
with the source text, Vietnamese left empty for a translator)."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.resources import LANGUAGES, checkout_root, po_translations

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "handlers")
KEYWORDS = {"t": None, "N_": None, "raw": None}


def extract(root: Path = ROOT) -> dict[str, list[str]]:
    """Every message id in the code, with where it is used."""
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root / source),
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=(),
            strip_comment_tags=True,
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, []).append(f"{source}/{filename}:{lineno}")
    return found


def translations(language: str, root: Path = ROOT) -> dict[str, str]:
    return po_translations(root / "locales" / language)


def missing(root: Path = ROOT) -> dict[str, list[str]]:
    """Per language, the messages it lacks: used by the code or translated in another language
    (the installed bot refuses to start on catalogs that differ)."""
    known = {lang: set(translations(lang, root)) for lang in LANGUAGES}
    needed = set(extract(root)).union(*known.values())
    return {lang: sorted(needed - known[lang]) for lang in LANGUAGES}


def placeholder_mismatches(root: Path = ROOT) -> list[str]:
    """Translations whose {placeholders} differ from the source's."""
    import string

    def names(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    found = []
    for lang in LANGUAGES:
        for msgid, msgstr in translations(lang, root).items():
            if names(msgid) != names(msgstr):
                found.append(f"{lang}: {msgid!r} -> {msgstr!r}")
    return found


def add(feature: str) -> None:
    messages = extract()
    for lang in LANGUAGES:
        known = translations(lang)
        path = ROOT / "locales" / lang / f"{feature}.po"
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle)
        else:
            catalog = Catalog(locale=lang, project="Hoa Đẹp")
        present = {m.id for m in catalog}
        for msgid in sorted(messages):
            if msgid in known or msgid in present:
                continue
            catalog.add(msgid, msgid if lang == "en" else "", locations=[])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, no_location=True)


def problems(root: Path = ROOT) -> list[str]:
    """Every gap and placeholder mismatch, one line each (the wheel's build refuses them too)."""
    lines = [f"missing {lang}: {msgid!r}" for lang, ids in missing(root).items() for msgid in ids]
    return lines + [f"placeholders differ: {line}" for line in placeholder_mismatches(root)]


def main(argv: list[str]) -> int:
    if checkout_root() is None:
        print("bot.i18n_tool works on a checkout's locales/*.po; this is an installed copy.")
        return 2
    if len(argv) >= 2 and argv[0] == "add":
        add(argv[1])
        return 0
    lines = problems()
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
