"""End to end: the real `hoadep run` process while the Bot API fails — first answering 502 to
every message, then refusing connections altogether — and recovers. Queued notices of every
delivery policy and a scheduled announcement arrive once each, and the administrator is told once
that delivery fails and once that it works again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import DeliverySettings
from bot.services.clock import Clock
from bot.services.outbox import Kind, OutboxService
from storage.db import Database
from storage.models import GroupChat
from tests.e2e.process import BotProcess
from tests.e2e.test_e2e_announcements import add_custom, eventually
from tests.fake_telegram import faults
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_moderation_fixtures import ADMIN_TG, COUNCIL_TG, STAFF_TG, seed

pytestmark = pytest.mark.e2e
GROUP = -1009001
BODY = "Kính mời các đơn vị dự hội nghị sơ kết"
NOTICES = {
    COUNCIL_TG[0]: (Kind.BALLOT, "Phiếu bầu kín: đề cử Trần Văn Được"),
    COUNCIL_TG[1]: (Kind.BALLOT_REMINDER, "Nhắc việc: đồng chí chưa bỏ phiếu"),
    STAFF_TG: (Kind.RECOGNITION, "Chúc mừng đồng chí được công nhận"),
    COUNCIL_TG[2]: (Kind.NOTICE, "Biên bản kiểm phiếu"),
}


def count(tg: FakeTelegramServer, chat: int, text: str) -> int:
    return sum(1 for m in tg.core.sent(chat) if text in str(m.get("text") or ""))


async def test_notices_and_an_announcement_arrive_once_after_an_outage(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    tg = telegram
    db = Database(e2e_db_url)
    try:
        world = await seed(db)
        for user in (ADMIN_TG, *COUNCIL_TG, STAFF_TG):
            tg.core.user(user, f"Người {user}")
        tg.core.group(GROUP, "Cả cơ quan", type="supergroup")
        async with db.transaction() as session:
            session.add(
                GroupChat(
                    chat_id=GROUP,
                    title="Cả cơ quan",
                    office_wide=True,
                    registered_by=world.members["admin"],
                )
            )
        outbox = OutboxService(db, Clock(), DeliverySettings())
        for chat, (kind, text) in NOTICES.items():
            assert await outbox.add(chat_id=chat, message=text, kind=kind)
        tg.core.inject("sendMessage", faults.ServerError(502), times=None)
        await add_custom(db, BODY)
    finally:
        await db.dispose()

    bot = BotProcess(
        tg,
        e2e_db_url,
        tmp_path,
        HOADEP_DELIVERY__MAX_BACKOFF_SECONDS="2",
        HOADEP_DELIVERY__ALERT_AFTER_MINUTES="0.05",
    )
    back: FakeTelegramServer | None = None
    try:
        async with bot:
            await eventually(
                lambda: sum(e.request.method == "sendMessage" for e in tg.core.errors) >= 4,
                what="sendMessage refused with 502",
            )
            port = tg.port
            await tg.stop()  # now the connection itself is refused
            await eventually(
                lambda: "has been failing since" in bot.log(), what="the WARNING of the outage"
            )
            await asyncio.sleep(2)
            tg.core.clear_injections()
            back = await FakeTelegramServer(tg.core, port=port).start()

            def everything_arrived() -> bool:
                return (
                    all(count(tg, chat, text) >= 1 for chat, (_, text) in NOTICES.items())
                    and count(tg, GROUP, BODY) >= 1
                    and count(tg, ADMIN_TG, "gửi được trở lại") >= 1
                )

            await eventually(everything_arrived, timeout=60, what="every message after recovery")
            await asyncio.sleep(4)  # a few more rounds of both senders: nothing is sent twice
            for chat, (_, text) in NOTICES.items():
                assert count(tg, chat, text) == 1, (chat, tg.core.sent(chat))
            assert count(tg, GROUP, BODY) == 1
            assert count(tg, ADMIN_TG, "Không gửi được tin nhắn") == 1
            assert count(tg, ADMIN_TG, "gửi được trở lại") == 1
            log = bot.log()
            assert log.count("has been failing since") == 1 and log.count("works again") == 1
            # the senders log one WARNING each way, no error (the polling loop's own errors
            # while the connection is refused are PTB's updater, not delivery)
            senders = ("hoadep.outbox", "hoadep.broadcast", "hoadep.delivery", "hoadep.scheduler")
            errors = [line.split() for line in log.splitlines() if " ERROR " in line]
            assert not [words for words in errors if words[3].rstrip(":") in senders]
    finally:
        if back is not None:
            await back.stop()
