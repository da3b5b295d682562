"""A request to join and its decision go through the outbox: a Telegram failure when they are made
delays them, it does not lose them (offline Bot API, SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.outbox import deliver
from tests.fake_telegram import faults
from tests.harness import ADMIN_ID, BotHarness
from tests.test_handlers_directory import _setup_units

STRANGER = 2001


async def test_a_request_and_its_decision_survive_server_errors(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    h.user(STRANGER, "Lan", language="vi")
    await h.text(STRANGER, "/start")
    await h.press(STRANGER, "join:ask")
    await h.text(STRANGER, "Nguyễn Thị Lan")
    h.core.inject("sendMessage", faults.ServerError(502), chat_id=ADMIN_ID, times=2)
    await h.press(STRANGER, f"join:unit:{units['a']}")
    assert not any("Yêu cầu tham gia mới" in t for t in h.texts(ADMIN_ID))
    for _ in range(2):
        h.clock.advance(timedelta(seconds=30))
        await deliver(h.app, wait=True)
    requests = [m for m in h.core.sent(ADMIN_ID) if "Yêu cầu tham gia mới" in str(m["text"])]
    assert len(requests) == 1
    request_id = re.search(r"acc:ok:(\d+)", str(requests[0]["reply_markup"])).group(1)  # type: ignore[union-attr]

    h.core.inject("sendMessage", faults.ServerError(503), chat_id=STRANGER, times=1)
    await h.press(ADMIN_ID, f"acc:ok:{request_id}")
    assert not any("đã được chấp thuận" in t for t in h.texts(STRANGER))
    h.clock.advance(timedelta(seconds=5))
    await deliver(h.app, wait=True)
    assert sum("đã được chấp thuận" in t for t in h.texts(STRANGER)) == 1
