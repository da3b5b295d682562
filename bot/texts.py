"""All user-facing text: gettext catalogs (locales/<lang>/*.po, English source ids; compiled into
the wheel, see bot.resources) rendered as Telegram HTML with every parameter escaped unless it is
marked as HTML already."""

from __future__ import annotations

import html
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from telegram.constants import MessageLimit

from bot.resources import LANGUAGES, catalog

DEFAULT_LANGUAGE = "vi"


class HTML(str):
    """Text that is already safe Telegram HTML (not escaped again)."""

    __slots__ = ()


def escape(value: object) -> HTML:
    if isinstance(value, HTML):
        return value
    return HTML(html.escape(str(value), quote=False))


def bold(value: object) -> HTML:
    return HTML(f"<b>{escape(value)}</b>")


def italic(value: object) -> HTML:
    return HTML(f"<i>{escape(value)}</i>")


def code(value: object) -> HTML:
    return HTML(f"<code>{escape(value)}</code>")


def link(url: str, label: object) -> HTML:
    return HTML(f'<a href="{html.escape(url, quote=True)}">{escape(label)}</a>')


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


def normalise_language(code: str | None) -> str:
    if not code:
        return DEFAULT_LANGUAGE
    short = code.split("-")[0].lower()
    return short if short in LANGUAGES else DEFAULT_LANGUAGE


class Translator:
    """Translates and renders for one language: `t("Hello, {name}", name=user_text)`."""

    __slots__ = ("_catalog", "language", "tz")

    def __init__(self, language: str, tz: ZoneInfo | None = None) -> None:
        self.language = normalise_language(language)
        self._catalog = catalog(self.language)
        self.tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")

    def raw(self, message: str) -> str:
        return self._catalog.get(message, message)

    def __call__(self, message: str, /, **params: Any) -> HTML:
        template = self.raw(message)
        if not params:
            return HTML(template)
        return HTML(template.format(**{k: self._render(v) for k, v in params.items()}))

    def plain(self, message: str, /, **params: Any) -> str:
        """For text Telegram shows as typed (a toast): the parameters are not escaped."""
        template = self.raw(message)
        if not params:
            return template
        return template.format(**{k: self._render(v, html=False) for k, v in params.items()})

    def _render(self, value: Any, *, html: bool = True) -> str:
        if isinstance(value, HTML):
            return value
        if isinstance(value, datetime):
            return self.datetime(value)
        if isinstance(value, date):
            return self.date(value)
        return escape(value) if html else str(value)

    def date(self, value: date) -> str:
        return value.strftime("%d/%m/%Y")

    def datetime(self, value: datetime) -> str:
        return value.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")


@cache
def translator(language: str, timezone: str = "Asia/Ho_Chi_Minh") -> Translator:
    return Translator(language, ZoneInfo(timezone))


def truncate(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> str:
    """Cut plain text to a limit with an ellipsis (for text that is escaped afterwards)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def split_html(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split Telegram HTML into chunks under the limit, at line breaks, re-opening the tags that
    span a cut so that every chunk is well-formed."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    open_tags: list[tuple[str, str]] = []  # (name, full opening tag)
    for line in _lines_within(text, limit // 2):
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        if current and len(current) + len(line) + len(closing) > limit:
            chunks.append(current + closing)
            current = "".join(tag for _, tag in open_tags)
        current += line
        open_tags = _track_tags(line, open_tags)
    if current:
        chunks.append(current)
    return chunks


def _lines_within(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        while len(line) > width:
            cut = _safe_cut(line, width)
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _safe_cut(line: str, width: int) -> int:
    """A cut position that is not inside a tag or an entity, preferring a space."""
    cut = width
    lt, gt = line.rfind("<", 0, cut), line.rfind(">", 0, cut)
    if lt > gt:
        cut = lt
    amp, semi = line.rfind("&", 0, cut), line.rfind(";", 0, cut)
    if amp > semi:
        cut = amp
    space = line.rfind(" ", 0, cut)
    if space > cut // 2:
        cut = space + 1
    return max(cut, 1)


def _track_tags(fragment: str, open_tags: list[tuple[str, str]]) -> list[tuple[str, str]]:
    import re

    tags = list(open_tags)
    for match in re.finditer(r"<(/?)([a-zA-Z-]+)([^>]*)>", fragment):
        closing, name = match.group(1), match.group(2).lower()
        if closing:
            for i in range(len(tags) - 1, -1, -1):
                if tags[i][0] == name:
                    del tags[i]
                    break
        else:
            tags.append((name, match.group(0)))
    return tags
