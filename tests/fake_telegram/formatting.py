"""Telegram's text formatting: HTML, MarkdownV2 and legacy Markdown parsed into entities.

Modelled on tdlib's parsers (``td/telegram/MessageEntity.cpp``): the same set of supported
tags, the same error texts (``Unsupported start tag "div" at byte offset 0`` ...), entity
offsets and lengths in UTF-16 code units, leading and trailing whitespace trimmed afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]


class EntityParseError(ValueError):
    """The text cannot be parsed; ``str(exc)`` is the part after ``can't parse entities: ``."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0  # UTF-16 offset of the end of the visible text
        self.entities: list[JSONDict] = []

    def append(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.offset += utf16_len(chunk)

    def add(self, entity_type: str, start: int, **extra: Any) -> None:
        length = self.offset - start
        if length <= 0:
            return
        entity: JSONDict = {"type": entity_type, "offset": start, "length": length}
        entity.update({k: v for k, v in extra.items() if v is not None})
        self.entities.append(entity)

    def result(self) -> tuple[str, list[JSONDict]]:
        return "".join(self.parts), self.entities


# --------------------------------------------------------------------------- HTML

HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
        "tg-time",
    }
)
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the visible text
    attrs: dict[str, str] = field(default_factory=dict)
    language: str | None = None  # for <pre>, from an inner <code class="language-...">


def _decode_entity(text: str, i: int) -> tuple[str | None, int]:
    match = _HTML_ENTITY_RE.match(text, i)
    if not match:
        return None, i
    dec, hexa, name = match.groups()
    if name is not None:
        ch = _NAMED_ENTITIES.get(name)
        return (ch, match.end()) if ch is not None else (None, i)
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None, i
    return chr(code), match.end()


def _decode_attr(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            ch, j = _decode_entity(value, i)
            if ch is not None:
                out.append(ch)
                i = j
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML. Raises :class:`EntityParseError` with tdlib's messages."""
    out = _Builder()
    stack: list[_OpenTag] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            ch, j = _decode_entity(text, i)
            if ch is not None:
                out.append(ch)
                i = j
                continue
            out.append("&")
            i += 1
            continue
        if c != "<":
            j = i + 1
            while j < n and text[j] not in "<&":
                j += 1
            out.append(text[i:j])
            i = j
            continue
        begin = i
        i += 1
        if i < n and text[i] != "/":
            j = i
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            if j >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            tag = text[i:j].lower()
            if tag not in HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            attrs, i = _parse_attributes(text, j, tag, begin)
            if tag == "span" and attrs.get("class") != "tg-spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            if tag == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
                raise EntityParseError(
                    f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            if tag == "code" and stack and stack[-1].name == "pre":
                cls = attrs.get("class", "")
                if cls.startswith("language-"):
                    stack[-1].language = cls[len("language-") :]
            stack.append(_OpenTag(tag, out.offset, attrs))
            continue
        # end tag, or a lone "<" at the end of the text
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        j = i + 1
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        end_tag = text[i + 1 : j].lower()
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        expected = stack[-1].name
        if end_tag != expected:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{expected}>", found "</{end_tag}>"'
            )
        i = j + 1
        _close_html_tag(out, stack.pop(), stack)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _parse_attributes(text: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    n = len(text)
    attrs: dict[str, str] = {}
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[i] == ">":
            return attrs, i + 1
        j = i
        while j < n and not text[j].isspace() and text[j] not in "=>":
            j += 1
        name = text[i:j].lower()
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != "=":
            attrs[name] = ""
            i = j
            continue
        j += 1
        while j < n and text[j].isspace():
            j += 1
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        if text[j] in "\"'":
            quote = text[j]
            end = text.find(quote, j + 1)
            if end < 0:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            attrs[name] = _decode_attr(text[j + 1 : end])
            i = end + 1
        else:
            end = j
            while end < n and not text[end].isspace() and text[end] != ">":
                end += 1
            attrs[name] = _decode_attr(text[j:end])
            i = end


def _close_html_tag(out: _Builder, tag: _OpenTag, stack: list[_OpenTag]) -> None:
    name = tag.name
    if name in _SIMPLE_TAG_TYPES:
        out.add(_SIMPLE_TAG_TYPES[name], tag.start)
    elif name == "a":
        href = tag.attrs.get("href", "")
        user_match = re.fullmatch(r"tg://user\?id=(\d+)", href)
        if user_match:
            user = {"id": int(user_match.group(1)), "is_bot": False, "first_name": ""}
            out.add("text_mention", tag.start, user=user)
        elif href:
            out.add("text_link", tag.start, url=href)
    elif name == "code":
        if not (stack and stack[-1].name == "pre"):
            out.add("code", tag.start)
    elif name == "pre":
        out.add("pre", tag.start, language=tag.language)
    elif name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
        out.add(kind, tag.start)
    elif name == "tg-emoji":
        out.add("custom_emoji", tag.start, custom_emoji_id=tag.attrs["emoji-id"])
    elif name == "tg-time":
        unix = tag.attrs.get("unix", "")
        out.add(
            "date_time",
            tag.start,
            unix_time=int(unix) if unix.isdigit() else None,
            date_time_format=tag.attrs.get("format"),
        )


# --------------------------------------------------------------------------- MarkdownV2

MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "code": "Code",
    "pre": "Pre",
}


@dataclass
class _MdOpen:
    kind: str
    start: int
    byte_offset: int
    language: str | None = None


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2. Raises :class:`EntityParseError` with tdlib's messages."""
    out = _Builder()
    stack: list[_MdOpen] = []
    quote_start: int | None = None
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        top = stack[-1].kind if stack else None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.append(text[i + 1])
            i += 2
            continue
        if top in ("code", "pre"):
            if c == "`":
                if top == "pre" and text.startswith("```", i):
                    opened = stack.pop()
                    out.add("pre", opened.start, language=opened.language)
                    i += 3
                    continue
                if top == "code":
                    out.add("code", stack.pop().start)
                    i += 1
                    continue
            out.append(c)
            i += 1
            continue
        at_line_start = i == 0 or text[i - 1] == "\n"
        if c == ">" and at_line_start:
            if quote_start is None:
                quote_start = out.offset
            i += 1
            continue
        if c == "\n" and quote_start is not None and not text.startswith(">", i + 1):
            out.add("blockquote", quote_start)
            quote_start = None
        if c not in MARKDOWN_V2_RESERVED:
            out.append(c)
            i += 1
            continue
        # closing the innermost entity?
        if top == "underline" and text.startswith("__", i):
            out.add("underline", stack.pop().start)
            i += 2
            continue
        if top == "italic" and c == "_":
            out.add("italic", stack.pop().start)
            i += 1
            continue
        if top == "bold" and c == "*":
            out.add("bold", stack.pop().start)
            i += 1
            continue
        if top == "strikethrough" and c == "~":
            out.add("strikethrough", stack.pop().start)
            i += 1
            continue
        if top == "spoiler" and text.startswith("||", i):
            out.add("spoiler", stack.pop().start)
            i += 2
            continue
        if top in ("text_link", "custom_emoji") and c == "]":
            opened = stack.pop()
            i = _close_md_link(text, i + 1, out, opened)
            continue
        # opening a new one
        byte_offset = _byte_offset(text, i)
        if c == "_":
            if text.startswith("__", i):
                stack.append(_MdOpen("underline", out.offset, byte_offset))
                i += 2
            else:
                stack.append(_MdOpen("italic", out.offset, byte_offset))
                i += 1
            continue
        if c == "*":
            stack.append(_MdOpen("bold", out.offset, byte_offset))
            i += 1
            continue
        if c == "~":
            stack.append(_MdOpen("strikethrough", out.offset, byte_offset))
            i += 1
            continue
        if c == "|" and text.startswith("||", i):
            stack.append(_MdOpen("spoiler", out.offset, byte_offset))
            i += 2
            continue
        if c == "[":
            stack.append(_MdOpen("text_link", out.offset, byte_offset))
            i += 1
            continue
        if c == "!" and text.startswith("![", i):
            stack.append(_MdOpen("custom_emoji", out.offset, byte_offset))
            i += 2
            continue
        if c == "`":
            if text.startswith("```", i):
                end_of_line = text.find("\n", i + 3)
                language: str | None = None
                j = i + 3
                if end_of_line >= 0:
                    candidate = text[i + 3 : end_of_line]
                    if candidate and not any(ch.isspace() for ch in candidate):
                        language = candidate
                        j = end_of_line + 1
                    elif not candidate:
                        j = end_of_line + 1
                stack.append(_MdOpen("pre", out.offset, byte_offset, language))
                i = j
            else:
                stack.append(_MdOpen("code", out.offset, byte_offset))
                i += 1
            continue
        raise EntityParseError(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )
    if stack:
        opened = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_NAMES[opened.kind]} entity at byte offset "
            f"{opened.byte_offset}"
        )
    if quote_start is not None:
        out.add("blockquote", quote_start)
    return out.result()


def _close_md_link(text: str, i: int, out: _Builder, opened: _MdOpen) -> int:
    if not text.startswith("(", i):
        if opened.kind == "custom_emoji":
            raise EntityParseError(
                f"Can't find end of CustomEmoji entity at byte offset {opened.byte_offset}"
            )
        return i  # "[text]" without a URL: plain text
    url_chars: list[str] = []
    j = i + 1
    while j < len(text) and text[j] != ")":
        if text[j] == "\\" and j + 1 < len(text):
            url_chars.append(text[j + 1])
            j += 2
            continue
        url_chars.append(text[j])
        j += 1
    if j >= len(text):
        raise EntityParseError(f"Can't find end of a url at byte offset {_byte_offset(text, i)}")
    url = "".join(url_chars)
    if opened.kind == "custom_emoji":
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if not match:
            raise EntityParseError("Custom emoji URL must have an emoji identifier")
        out.add("custom_emoji", opened.start, custom_emoji_id=match.group(1))
    else:
        user_match = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if user_match:
            user = {"id": int(user_match.group(1)), "is_bot": False, "first_name": ""}
            out.add("text_mention", opened.start, user=user)
        else:
            out.add("text_link", opened.start, url=url)
    return j + 1


# --------------------------------------------------------------------------- Markdown (legacy)


def parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Parse legacy Markdown (``*bold*``, ``_italic_``, ```code```, ``[text](url)``)."""
    out = _Builder()
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            i += 1
            continue
        begin = _byte_offset(text, i)
        start = out.offset
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {begin}"
                )
            out.append(text[i + 1 : close])
            if text.startswith("(", close + 1):
                end = text.find(")", close + 2)
                if end < 0:
                    raise EntityParseError(
                        f"Can't find end of the entity starting at byte offset {begin}"
                    )
                out.add("text_link", start, url=text[close + 2 : end])
                i = end + 1
            else:
                i = close + 1
            continue
        if c == "`" and text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {begin}"
                )
            out.append(text[i + 3 : end])
            out.add("pre", start)
            i = end + 3
            continue
        end = text.find(c, i + 1)
        if end < 0:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {begin}")
        out.append(text[i + 1 : end])
        out.add({"*": "bold", "_": "italic", "`": "code"}[c], start)
        i = end + 1
    return out.result()


# --------------------------------------------------------------------------- entry point


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    stripped_left = text.lstrip()
    left = utf16_len(text) - utf16_len(stripped_left)
    stripped = stripped_left.rstrip()
    total = utf16_len(stripped)
    result: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - left, 0)
        end = min(entity["offset"] + entity["length"] - left, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def parse_text(
    text: str, parse_mode: str | None, entities: list[JSONDict] | None = None
) -> tuple[str, list[JSONDict]]:
    """Visible text and entities, as Telegram would store them.

    Raises :class:`EntityParseError` for malformed markup, ``ValueError`` for an unknown
    ``parse_mode`` (Telegram: ``Bad Request: unsupported parse_mode``).
    """
    mode = (parse_mode or "").strip().lower()
    if entities:
        parsed_text, parsed = text, [dict(e) for e in entities]
    elif not mode:
        parsed_text, parsed = text, []
    elif mode == "html":
        parsed_text, parsed = parse_html(text)
    elif mode == "markdownv2":
        parsed_text, parsed = parse_markdown_v2(text)
    elif mode == "markdown":
        parsed_text, parsed = parse_markdown(text)
    else:
        raise ValueError(parse_mode)
    parsed.sort(key=lambda e: (e["offset"], -e["length"]))
    return _trim(parsed_text, parsed)


def html_to_text(text: str) -> str:
    """Visible text of Telegram HTML (raises :class:`EntityParseError` when malformed)."""
    return parse_html(text)[0]
