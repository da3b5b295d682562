"""The documentation stands alone: every relative link in the repository's Markdown resolves to a
file of the repository (and a #heading to a heading of it), and every Markdown file the code or
the docs name exists here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "dist", ".mypy_cache", ".ruff_cache"}


def repository_files(suffix: str) -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob(f"*{suffix}")
        if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts) and p.is_file()
    )


MARKDOWN = repository_files(".md")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)


def prose(path: Path) -> str:
    """The Markdown without its code (a link-like text in code is not a link)."""
    return CODE.sub("", path.read_text(encoding="utf-8"))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(path), re.M):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        out.add(text.replace(" ", "-"))
    return out


def links(path: Path) -> list[str]:
    text = prose(path)
    return LINK.findall(text) + REFERENCE.findall(text)


def test_the_docs_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in MARKDOWN}
    assert {"README.md", "docs/DEVELOPING.md", "docs/ARCHITECTURE.md", "docs/GLOSSARY.md"} <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, tg:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or ROOT not in (linked, *linked.parents):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and linked.suffix == ".md" and anchor.lower() not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, broken


def test_every_markdown_file_named_exists() -> None:
    """A name like ARCHITECTURE.md in a docstring, a comment or a doc is a file of the repository:
    by its path from the root, from the naming file, or (a bare name) anywhere in it."""
    present = {p.name for p in MARKDOWN}
    sources = [*MARKDOWN, *repository_files(".py"), *repository_files(".toml")]
    sources += [p for p in (ROOT / "deploy").rglob("*") if p.is_file()]
    missing = []
    for source in sources:
        for name in set(re.findall(r"[\w./-]*\b[A-Za-z_-]+\.md\b", source.read_text("utf-8"))):
            name = name.lstrip("./")
            if "/" not in name and name in present:
                continue
            if not ((ROOT / name).exists() or (source.parent / name).exists()):
                missing.append(f"{source.relative_to(ROOT)}: {name}")
    assert not missing, missing
