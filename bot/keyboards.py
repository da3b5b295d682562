"""Inline keyboards and the one callback-data codec: `scope:action[:arg…]`, at most 64 bytes,
parsed strictly here. A button never carries authority: the presser is re-authorised."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit

_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
MAX_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA


class BadCallback(Exception):
    """Callback data that this bot did not make, or that no longer fits."""


@dataclass(frozen=True, slots=True)
class Callback:
    scope: str
    action: str
    args: tuple[str, ...] = ()

    def num(self, index: int) -> int:
        try:
            value = self.args[index]
        except IndexError:
            raise BadCallback(f"missing argument {index}") from None
        if not value.isdigit() or len(value) > 12:
            raise BadCallback(f"argument {index} is not an id")
        return int(value)

    def word(self, index: int) -> str:
        try:
            return self.args[index]
        except IndexError:
            raise BadCallback(f"missing argument {index}") from None


def encode(scope: str, action: str, *args: object) -> str:
    parts = [scope, action, *(str(a) for a in args)]
    for part in parts:
        if not _PART.match(part):
            raise ValueError(f"callback part {part!r} is not codec-safe")
    data = ":".join(parts)
    if len(data.encode()) > MAX_DATA:
        raise ValueError(f"callback data {data!r} is over {MAX_DATA} bytes")
    return data


def decode(data: str | None) -> Callback:
    if not data or len(data.encode()) > MAX_DATA:
        raise BadCallback("empty or oversized")
    parts = data.split(":")
    if len(parts) < 2 or not all(_PART.match(p) for p in parts):
        raise BadCallback("malformed")
    return Callback(parts[0], parts[1], tuple(parts[2:]))


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """A CallbackQueryHandler pattern matching one scope; it names the scope, so the scopes a
    built application handles can be listed (the chat policy and its tests need them all)."""

    scope: str

    def __call__(self, data: object) -> bool:
        return isinstance(data, str) and data.startswith(self.scope + ":")


def scope_pattern(scope: str) -> ScopePattern:
    if not _PART.match(scope):
        raise ValueError(f"scope {scope!r} is not codec-safe")
    return ScopePattern(scope)


def button(text: str, scope: str, action: str, *args: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=encode(scope, action, *args))


def url_button(text: str, url: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, url=url)


def rows(
    buttons: Iterable[InlineKeyboardButton], per_row: int = 1
) -> list[list[InlineKeyboardButton]]:
    out: list[list[InlineKeyboardButton]] = []
    for b in buttons:
        if not out or len(out[-1]) >= per_row:
            out.append([])
        out[-1].append(b)
    return out


def markup(*layout: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([list(r) for r in layout if r])


def pager(
    scope: str, action: str, page: int, pages: int, *args: object, prev: str = "‹", nxt: str = "›"
) -> list[InlineKeyboardButton]:
    """A row of previous / page x of y / next buttons (empty when one page)."""
    if pages <= 1:
        return []
    row: list[InlineKeyboardButton] = []
    if page > 0:
        row.append(button(prev, scope, action, *args, page - 1))
    row.append(button(f"{page + 1}/{pages}", "nav", "noop"))
    if page + 1 < pages:
        row.append(button(nxt, scope, action, *args, page + 1))
    return row
