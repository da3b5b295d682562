"""End to end: the real `hoadep run` process over real HTTP against the local Bot API server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.process import BotProcess, free_port
from tests.fake_telegram.server import FakeTelegramServer

pytestmark = pytest.mark.e2e
ADMIN = 1001


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


async def say(
    tg: FakeTelegramServer, user: int, text: str, expect: str, chat: int | None = None
) -> dict[str, Any]:
    """The user writes; wait for the bot's answer (new or edited) that contains `expect`."""
    mark = tg.core.mark()
    tg.core.send_text(user, text)
    return await expect_message(tg, chat or user, expect, mark)


async def press(tg: FakeTelegramServer, user: int, data: str, expect: str) -> dict[str, Any]:
    mark = tg.core.mark()
    for message in reversed(tg.core.sent(user)):
        if data in buttons(message):
            tg.core.press_button(user, message, data)
            return await expect_message(tg, user, expect, mark)
    raise AssertionError(
        f"no button {data} for {user}: {[buttons(m) for m in tg.core.sent(user)[-3:]]}"
    )


async def expect_message(
    tg: FakeTelegramServer, chat: int, expect: str, mark: int
) -> dict[str, Any]:
    message: dict[str, Any] = await tg.core.wait_for_message(
        chat, lambda m: expect in (m.get("text") or ""), timeout=15, after=mark
    )
    return message


async def test_joining_by_invite_and_by_request_with_a_restart(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    tg = telegram
    tg.core.user(ADMIN, "Trần", "Quản Trị")
    bot = BotProcess(tg, e2e_db_url, tmp_path)
    await bot.start()
    try:
        # the admin sets up a unit and a member, and makes an invitation
        await say(tg, ADMIN, "/admin", "Quản trị")
        await press(tg, ADMIN, "adm:units:0", "Chưa có đơn vị")
        await press(tg, ADMIN, "adm:uadd", "Nhập tên đơn vị mới")
        await say(tg, ADMIN, "Phòng Thống kê Kinh tế", "trực thuộc đơn vị nào")
        await press(tg, ADMIN, "adm:upar:0", "Số thành viên: 0")
        await say(tg, ADMIN, "/admin", "Quản trị")
        await press(tg, ADMIN, "adm:madd", "Nhập họ và tên")
        card = await say(tg, ADMIN, "Nguyễn Văn An", "công tác tại đơn vị nào")
        unit_button = next(b for b in buttons(card) if b.startswith("adm:maddu:u:"))
        await press(tg, ADMIN, unit_button, "Vai trò của Nguyễn Văn An")
        card = await press(tg, ADMIN, "adm:maddr:s", "Đã kết nối Telegram")
        invite_button = next(b for b in buttons(card) if b.startswith("adm:minv:"))
        invite = await press(tg, ADMIN, invite_button, "Lời mời cho Nguyễn Văn An")
        token = re.search(r"start=([A-Za-z0-9_-]+)", invite["text"]).group(1)  # type: ignore[union-attr]

        # the invited member joins through the deep link
        tg.core.user(2001, "An")
        await say(tg, 2001, f"/start {token}", "Chào mừng Nguyễn Văn An")

        # a stranger asks for access; the bot is restarted in the middle of the request
        tg.core.user(3001, "Lan")
        await say(tg, 3001, "/start", "chưa là thành viên")
        await press(tg, 3001, "join:ask", "Xin nhập họ và tên")
        await say(tg, 3001, "Lê Thị Lan", "công tác tại đơn vị nào")
        await tg.core.wait_for_updates_consumed()
        await bot.stop()
        await bot.start()
        mark = tg.core.mark()
        await press(
            tg,
            3001,
            unit_button.replace("adm:maddu:u:", "join:unit:"),
            "đã được gửi tới quản trị viên",
        )
        request = await expect_message(tg, ADMIN, "Yêu cầu tham gia mới: Lê Thị Lan", mark)
        mark = tg.core.mark()
        await press(
            tg, ADMIN, next(b for b in buttons(request) if b.startswith("acc:ok:")), "đã được"
        )
        await expect_message(tg, 3001, "đã được chấp thuận", mark)

        # /help differs by role
        staff_help = await say(tg, 3001, "/help", "Các chức năng")
        admin_help = await say(tg, ADMIN, "/help", "Các chức năng")
        assert "/admin" in admin_help["text"] and "/admin" not in staff_help["text"]
    finally:
        await bot.stop()
    log = bot.log()
    assert tg.token not in log and tg.token.split(":")[1] not in log
    assert "Traceback" not in log, log
    assert not tg.core.unknown_fields, tg.core.unknown_fields


async def test_webhook_refuses_requests_without_the_secret(
    telegram: FakeTelegramServer, sqlite_url: str, tmp_path: Path
) -> None:
    tg = telegram
    tg.core.user(ADMIN, "Trần")
    port = free_port()
    secret = "s3cret-For-Webhook_test"
    bot = BotProcess(
        tg,
        sqlite_url,
        tmp_path,
        HOADEP_TELEGRAM__MODE="webhook",
        HOADEP_TELEGRAM__WEBHOOK_PORT=str(port),
        HOADEP_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
        HOADEP_TELEGRAM__WEBHOOK_SECRET=secret,
    )
    await bot.start(wait_for="setWebhook")
    try:
        forged = tg.core.user(4001, "Giả")
        update = {
            "update_id": 99,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": ADMIN, "type": "private"},
                "from": {"id": ADMIN, "is_bot": False, "first_name": "Giả"},
                "text": "/admin",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        url = f"http://127.0.0.1:{port}/telegram"
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                for _ in range(50):  # the listener may need a moment after setWebhook
                    try:
                        async with http.post(url, json=update, headers=headers) as response:
                            status = response.status
                        break
                    except aiohttp.ClientConnectionError:
                        import asyncio

                        await asyncio.sleep(0.2)
                assert status == 403
        assert forged and not tg.core.sent(ADMIN)
        # the real Telegram (here: the local server) delivers with the secret
        tg.core.send_text(ADMIN, "/help")
        message = await tg.core.wait_for_message(ADMIN, timeout=15)
        assert "/admin" in message["text"]
    finally:
        await bot.stop()
    assert secret not in bot.log()
