"""Input hygiene shared by every service: names, free text, search folding."""

from __future__ import annotations

import unicodedata

from bot.services.errors import N_, InvalidInput

# zero-width and bidi controls are kept in free text (shown literally) but never in names
_INVISIBLE = {
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
}


def fold(text: str) -> str:
    """Lower-case without diacritics: "Nguyễn Văn Ả" -> "nguyen van a" (đ -> d)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def clean_name(raw: str, *, limit: int = 120) -> str:
    """A person's or unit's name: NFC, invisible characters removed, spaces collapsed."""
    text = unicodedata.normalize("NFC", raw or "")
    text = "".join(c for c in text if c not in _INVISIBLE and unicodedata.category(c) != "Cc")
    text = " ".join(text.split())
    if len(text) < 2:
        raise InvalidInput(N_("Please type a name of at least 2 characters."))
    if len(text) > limit:
        raise InvalidInput(N_("That is too long: at most {limit} characters."), limit=limit)
    return text


def clean_text(raw: str, *, limit: int, required: bool = True) -> str:
    """Free text: kept as typed (NFC), only control characters other than newlines removed."""
    text = unicodedata.normalize("NFC", raw or "")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    if required and not text:
        raise InvalidInput(N_("Please type some text."))
    if len(text) > limit:
        raise InvalidInput(
            N_("That is too long ({length} characters): at most {limit} characters."),
            length=len(text),
            limit=limit,
        )
    return text
