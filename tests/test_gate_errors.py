"""The paths that run when something goes wrong: the gatekeeper fails closed (a member lookup
that raises, a refusal that cannot be sent: the update stops there), the error handler answers
with the generic localized message and logs the context without what the person typed, an error
after the button was answered reaches the person as a message, and an answer Telegram refuses as
too late does not stop the reply."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select, update
from telegram import Update
from telegram.ext import TypeHandler

from bot.services.clock import FixedClock
from bot.services.errors import InvalidInput
from storage.models import Member
from tests.conftest import TOKEN, make_settings
from tests.fake_telegram import FakeTelegramCore, faults
from tests.harness import ADMIN_ID, BotHarness, make_harness

STRANGER = 9009
GENERIC_VI = "Xin lỗi, đã có lỗi xảy ra. Xin thử lại sau ít phút."
GENERIC_EN = "Sorry, something went wrong. Please try again in a moment."


def spy(h: BotHarness) -> list[Update]:
    """Records every update that gets past the gatekeeper to the last handler group."""
    seen: list[Update] = []

    async def record(update: Update, context: Any) -> None:
        seen.append(update)

    h.app.add_handler(TypeHandler(Update, record), group=99)
    return seen


def texts_of(replies: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("text")) for r in replies]


async def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the database went away")


# --- the gatekeeper ------------------------------------------------------------------------------


async def test_a_failing_member_lookup_stops_the_update(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    seen = spy(h)
    await h.text(ADMIN_ID, "/help")
    assert len(seen) == 1  # the control: a served update reaches the last group
    monkeypatch.setattr(h.services.directory, "identify", broken)
    with caplog.at_level(logging.INFO, logger="hoadep"):
        replies = await h.text(ADMIN_ID, "/help")
        await h.forge_press(ADMIN_ID, "my:l:0")  # the harness checks it is answered once
    assert len(seen) == 1
    assert texts_of(replies) == [GENERIC_VI]
    assert h.core.callback_answers[-1]["text"] == GENERIC_VI
    gate_logs = [r for r in caplog.records if r.name == "hoadep.gate"]
    assert len(gate_logs) == 2 and all(r.exc_info for r in gate_logs)
    assert not [r for r in caplog.records if r.name == "hoadep.errors"]  # stopped, not failed
    # even when the apology cannot be sent
    h.core.inject("sendMessage", faults.ServerError(), times=None)
    await h.text(ADMIN_ID, "/my")
    assert len(seen) == 1


async def test_a_refusal_that_cannot_be_sent_still_stops_the_update(harness: BotHarness) -> None:
    h = harness
    seen = spy(h)
    h.user(STRANGER, "Người Lạ")
    replies = await h.text(STRANGER, "/my")
    assert texts_of(replies)[0].startswith("Bot này phục vụ")  # refused, politely
    assert seen == []
    h.core.inject("sendMessage", faults.Forbidden(), times=None)  # they blocked the bot
    await h.text(STRANGER, "/my")
    assert h.core.errors[-1].request.method == "sendMessage"  # the refusal did not get through
    assert seen == []
    # a press whose refusal cannot be answered either (Telegram down for a moment)
    h.core.inject("answerCallbackQuery", faults.ServerError(), times=None)
    message = {"message_id": 1, "date": 0, "chat": {"id": STRANGER, "type": "private"}, "text": "x"}
    query = {
        "id": "77",
        "from": h.core.users[STRANGER],
        "message": message,
        "chat_instance": "1",
        "data": "my:l:0",
    }
    await h.app.process_update(Update.de_json({"update_id": 5, "callback_query": query}, h.app.bot))
    assert seen == []
    h.core.clear_injections()


# --- the error handler ---------------------------------------------------------------------------


async def test_an_unexpected_error_gets_the_generic_reply_and_a_careful_log(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    monkeypatch.setattr(h.services.submissions, "my_items", broken)
    with caplog.at_level(logging.INFO, logger="hoadep"):
        replies = await h.text(ADMIN_ID, "/my")
    assert texts_of(replies) == [GENERIC_VI]
    [record] = [r for r in caplog.records if r.name == "hoadep.errors"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    message = record.getMessage()
    assert "command /my" in message and f"user {ADMIN_ID}" in message
    assert f"private chat {ADMIN_ID}" in message

    # in the person's language
    async with h.services.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.telegram_user_id == ADMIN_ID).values(language="en")
        )
    assert texts_of(await h.text(ADMIN_ID, "/my")) == [GENERIC_EN]

    # a button: the same text as an alert on the press (answered once: the harness checks)
    await h.forge_press(ADMIN_ID, "my:l:0")
    answer = h.core.callback_answers[-1]
    assert answer["text"] == GENERIC_EN and answer["show_alert"] is True

    # what a person typed stays out of the log; so does the token
    caplog.clear()
    h.user(STRANGER, "Người Lạ")
    await h.text(STRANGER, "/start")
    await h.press(STRANGER, "join:ask")
    monkeypatch.setattr(h.services.directory, "list_units", broken)
    with caplog.at_level(logging.DEBUG):
        replies = await h.text(STRANGER, "Nguyễn Bí Mật")
    assert texts_of(replies) == [GENERIC_VI]
    [record] = [r for r in caplog.records if r.name == "hoadep.errors"]
    assert f"message from user {STRANGER}" in record.getMessage()
    assert "Bí Mật" not in caplog.text and TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


async def test_an_error_after_the_answer_is_written_to_the_person(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review card answers the press before it builds the card; a failure then cannot be a
    second answer (Telegram refuses it), so the person gets a message."""
    h = harness
    await h.text(ADMIN_ID, "/help")
    monkeypatch.setattr(h.services.moderation, "item", broken)
    replies = await h.forge_press(ADMIN_ID, "rv:o:n:1")  # answered exactly once: harness
    assert texts_of(replies) == [GENERIC_VI]
    assert h.core.callback_answers[-1].get("text") is None


async def test_a_domain_error_toast_is_plain_text_a_message_is_escaped(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await h.text(ADMIN_ID, "/help")

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidInput("Unknown {name}.", name="<A & B>")

    monkeypatch.setattr(h.services.submissions, "my_items", refuse)
    await h.forge_press(ADMIN_ID, "my:l:0")
    assert h.core.callback_answers[-1]["text"] == "Unknown <A & B>."
    await h.text(ADMIN_ID, "/my")
    assert h.core.calls("sendMessage")[-1]["text"] == "Unknown &lt;A &amp; B&gt;."
    assert h.last_text(ADMIN_ID) == "Unknown <A & B>."


# --- an answer Telegram refuses as too late ------------------------------------------------------


async def test_a_press_answered_too_late_still_gets_its_reply(
    db_url: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After the bot was down, a press waiting in the queue cannot be answered any more; the
    change and the edited message still happen, and no error is shown."""
    now = [1000.0]
    core = FakeTelegramCore(TOKEN, clock=lambda: now[0])
    h, app = await make_harness(make_settings(db_url), clock, core)
    try:
        h.user(ADMIN_ID, "Trần", "Quản Trị")
        await h.text(ADMIN_ID, "/settings")
        message = h.message_with_button(ADMIN_ID, "set:notify:0")
        pressed = core.press_button(ADMIN_ID, message, "set:notify:0")
        now[0] += 60
        with caplog.at_level(logging.INFO, logger="hoadep"):
            await app.process_update(Update.de_json(pressed, app.bot))
        query_id = str(pressed["callback_query"]["id"])
        assert core.callback_problems([query_id]) == [
            f"no answer to callback query {query_id} succeeded (too late?)"
        ]
        assert "tắt" in h.last_text(ADMIN_ID)  # the card shows the new state
        assert GENERIC_VI not in h.texts(ADMIN_ID)
        assert not [r for r in caplog.records if r.name == "hoadep.errors"]
        async with h.services.db.read() as session:
            assert await session.scalar(
                select(Member.notify_opt_out).where(Member.telegram_user_id == ADMIN_ID)
            )
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
