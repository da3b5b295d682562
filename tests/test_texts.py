"""Catalogs are complete, text is escaped, long HTML is split into valid chunks, callback data
is parsed strictly."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import i18n_tool
from bot.keyboards import BadCallback, decode, encode
from bot.texts import HTML, Translator, bold, escape, split_html
from tests.fake_telegram.formatting import EntityParseError, parse_text


def test_every_message_has_both_translations() -> None:
    gaps = i18n_tool.missing()
    assert gaps == {"vi": [], "en": []}, gaps


def test_translations_keep_their_placeholders() -> None:
    assert i18n_tool.placeholder_mismatches() == []


def test_parameters_are_escaped_and_dates_localised() -> None:
    t = Translator("vi")
    text = t("Hello, {name}! Send /help to see what you can do.", name="<b>Lan</b> & Co")
    assert "&lt;b&gt;Lan&lt;/b&gt; &amp; Co" in text
    assert t("Unit: {unit}", unit=bold("A&B")) == "Đơn vị: <b>A&amp;B</b>"
    when = datetime(2026, 6, 10, 17, 30, tzinfo=UTC)  # 00:30 on 11/06 in Hà Nội
    assert t("This request was already decided on {at}.", at=when).endswith("00:30 11/06/2026.")
    assert t("Part of: {name}", name=date(2026, 5, 6)) == "Trực thuộc: 06/05/2026"
    assert Translator("en")("Unit: {unit}", unit="x") == "Unit: x"
    assert Translator("fr").language == "vi"


def _visible(html_text: str) -> str:
    text, _ = parse_text(html_text, "HTML")
    return text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["", "b", "i", "u", "code"]), st.text(min_size=0, max_size=700)),
        min_size=1,
        max_size=40,
    )
)
def test_split_html_gives_valid_chunks_under_the_limit(parts: list[tuple[str, str]]) -> None:
    html = HTML(
        "".join(
            (f"<{tag}>" if tag else "") + escape(body) + (f"</{tag}>" if tag else "") + "\n"
            for tag, body in parts
        )
    )
    chunks = split_html(html, 4096)
    for chunk in chunks:
        assert len(chunk) <= 4096
        try:
            _visible(chunk)
        except EntityParseError as exc:  # pragma: no cover - the failure message matters
            pytest.fail(f"chunk is not valid Telegram HTML: {exc}: {chunk[:200]!r}")
    assert "".join(_visible(c) for c in chunks).replace("\n", "") == _visible(html).replace(
        "\n", ""
    )


def test_callback_codec_is_strict() -> None:
    assert decode(encode("adm", "unit", 42)).num(0) == 42
    for bad in (None, "", "adm", "a" * 65, "adm:unit:1:💥", "adm::1", "adm:unit:1;DROP"):
        with pytest.raises(BadCallback):
            decode(bad)
    with pytest.raises(BadCallback):
        decode("adm:unit:x").num(0)
    with pytest.raises(BadCallback):
        decode("adm:unit:" + "9" * 20).num(0)
    with pytest.raises(ValueError):
        encode("adm", "unit", "x" * 70)
    with pytest.raises(ValueError):
        encode("adm", "unit", "a:b")
