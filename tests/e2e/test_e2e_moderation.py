"""End to end: the real `hoadep run` process over real HTTP against the local Bot API server; an
administrator sends a nomination to a secret council vote, two of three members agree (each
confirming their choice), the voting
job closes the ballot once its deadline has passed, the nominee shows up in /exemplars (private and
group), and two moderators approve the same good deed at the same moment: one decision only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from storage.db import Database
from storage.models import Ballot, Decision, GoodDeed, GroupChat, Nomination
from tests.e2e.process import BotProcess
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_moderation_fixtures import (
    ADMIN_TG,
    COUNCIL_TG,
    add_deed,
    add_nomination,
    seed,
)

pytestmark = pytest.mark.e2e
GROUP = -100777
NAMES = {
    "admin": ("Trần", "Quản Trị"),
    "council1": ("Lê", "Văn Hội"),
    "council2": ("Phạm", "Thị Đồng"),
    "council3": ("Hoàng", "Minh Thi"),
    "officer": ("Đỗ", "Văn Cán"),
    "officer_b": ("Vũ", "Thị Bộ"),
    "staff": ("Nguyễn", "Thị Lan"),
    "staff_b": ("Trịnh", "Văn Bắc"),
    "nominee": ("Trần", "Văn Được"),
}


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def urls(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["url"] for row in rows for b in row if "url" in b]


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text") or message.get("caption") or "")


async def expect_message(
    tg: FakeTelegramServer, chat: int, expect: str, mark: int, timeout: float = 30
) -> dict[str, Any]:
    message: dict[str, Any] = await tg.core.wait_for_message(
        chat, lambda m: expect in text_of(m), timeout=timeout, after=mark
    )
    return message


async def say(
    tg: FakeTelegramServer, user: int, text: str, expect: str, chat: int | None = None
) -> dict[str, Any]:
    mark = tg.core.mark()
    tg.core.send_text(user, text, chat)
    return await expect_message(tg, chat or user, expect, mark)


def find_button(tg: FakeTelegramServer, user: int, data: str) -> dict[str, Any]:
    for message in reversed(tg.core.sent(user)):
        if data in buttons(message):
            return message
    raise AssertionError(
        f"no button {data} for {user}: {[buttons(m) for m in tg.core.sent(user)[-3:]]}"
    )


async def press(tg: FakeTelegramServer, user: int, data: str, expect: str) -> dict[str, Any]:
    mark = tg.core.mark()
    tg.core.press_button(user, find_button(tg, user, data), data)
    return await expect_message(tg, user, expect, mark)


async def test_council_vote_exemplars_and_concurrent_approval(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    tg = telegram
    db = Database(e2e_db_url)
    try:
        w = await seed(db)
        n = await add_nomination(db, w)
        deed = await add_deed(db, w)
        async with db.transaction() as session:
            session.add(GroupChat(chat_id=GROUP, title="Cơ quan Thống kê", language="vi"))
    finally:
        await db.dispose()
    for key, tg_id in w.tg.items():
        if tg_id:
            tg.core.user(tg_id, *NAMES[key])
    tg.core.group(GROUP, "Cơ quan Thống kê")

    bot = BotProcess(tg, e2e_db_url, tmp_path, HOADEP_ACCESS__THROTTLE_BURST="1000")
    await bot.start()
    try:
        # the administrator opens the nomination and sends it to the council
        queue = await say(tg, ADMIN_TG, "/review", "Hồ sơ chờ duyệt")
        assert "Đề cử: 1" in queue["text"]
        card = await press(tg, ADMIN_TG, f"rv:o:n:{n}", "Nguyễn Thị Lan")
        assert f"rv:vt:{n}:1" in buttons(card)
        mark = tg.core.mark()
        tg.core.press_button(ADMIN_TG, card, f"rv:vt:{n}:1")
        await tg.core.wait_for_message(
            ADMIN_TG, lambda m: f"rv:vd:{n}:1:7" in buttons(m), timeout=30, after=mark
        )
        mark = tg.core.mark()
        await press(tg, ADMIN_TG, f"rv:vd:{n}:1:7", "bỏ phiếu kín")

        # each council member receives a private secret ballot
        ballots = [await expect_message(tg, c, "Phiếu bầu kín", mark) for c in COUNCIL_TG]
        found = re.search(r"vt:c:(\d+):a", " ".join(buttons(ballots[0])))
        assert found is not None
        ballot_id = int(found.group(1))
        for ballot in ballots:
            assert f"vt:c:{ballot_id}:a" in buttons(ballot)
        assert not any("Phiếu bầu kín" in text_of(m) for m in tg.core.sent(ADMIN_TG))

        # two agree, each confirming; the third does not vote
        for c in COUNCIL_TG[:2]:
            await press(tg, c, f"vt:c:{ballot_id}:a", "Đồng chí chọn: Đồng ý")
            done = await press(tg, c, f"vt:k:{ballot_id}:a", "Phiếu của đồng chí đã được ghi nhận")
            assert not [d for d in buttons(done) if d.startswith("vt:")]  # nothing to press again
        status = await say(tg, ADMIN_TG, "/ballots", "thành viên Hội đồng đã bỏ phiếu")
        assert "2/3 thành viên Hội đồng đã bỏ phiếu" in status["text"]

        # the deadline passes: the voting job (every 60 s) closes the ballot
        db = Database(e2e_db_url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    update(Ballot)
                    .where(Ballot.id == ballot_id)
                    .values(deadline=datetime.now(UTC) - timedelta(minutes=5))
                )
        finally:
            await db.dispose()
        mark = tg.core.mark()
        minutes = await expect_message(tg, ADMIN_TG, "BIÊN BẢN KIỂM PHIẾU", mark, timeout=100)
        assert "Tổng số thành viên Hội đồng: 3" in minutes["text"]
        assert "Số thành viên tham gia biểu quyết: 2" in minutes["text"]
        assert "Tỷ lệ đồng ý: 2/3 (66,7%)" in minutes["text"]
        assert "Tỷ lệ cần đạt: từ 50% trở lên" in minutes["text"]
        assert "Kết quả: ĐẠT." in minutes["text"]

        # the registry, in private and in the registered group
        private = await say(tg, ADMIN_TG, "/exemplars", "Trần Văn Được")
        assert "Trần Văn Được" in private["text"]
        mark = tg.core.mark()
        tg.core.send_text(ADMIN_TG, "/exemplars", GROUP)
        short = await tg.core.wait_for_message(
            GROUP, lambda m: any(f"start=ex-{n}" in u for u in urls(m)), timeout=30, after=mark
        )
        assert short["chat"]["id"] == GROUP

        # two moderators approve the same good deed at the same moment
        council = COUNCIL_TG[0]
        await say(tg, council, "/review", "Hồ sơ chờ duyệt")
        await press(tg, council, f"rv:o:g:{deed}", "Nhặt được ví")
        await say(tg, ADMIN_TG, "/review", "Hồ sơ chờ duyệt")
        await press(tg, ADMIN_TG, f"rv:o:g:{deed}", "Nhặt được ví")
        ok = f"rv:ok:g:{deed}:1"
        card_c = find_button(tg, council, ok)
        card_a = find_button(tg, ADMIN_TG, ok)
        mark = tg.core.mark()
        tg.core.press_button(council, card_c, ok)
        tg.core.press_button(ADMIN_TG, card_a, ok)
        for chat, message in ((council, card_c), (ADMIN_TG, card_a)):
            now = await tg.core.wait_for_message(
                chat,
                lambda m, mid=message["message_id"]: (
                    m["message_id"] == mid and "đã duyệt lúc" in text_of(m)
                ),
                timeout=30,
                after=mark,
            )
            assert not any(d.startswith("rv:ok") for d in buttons(now))
    finally:
        await bot.stop()

    db = Database(e2e_db_url)
    try:
        async with db.read() as session:
            decisions = await session.scalar(
                select(func.count()).select_from(Decision).where(Decision.good_deed_id == deed)
            )
            deed_status = await session.scalar(select(GoodDeed.status).where(GoodDeed.id == deed))
            nomination_status = await session.scalar(
                select(Nomination.status).where(Nomination.id == n)
            )
            closed = await session.scalar(select(Ballot.closed_at).where(Ballot.id == ballot_id))
    finally:
        await db.dispose()
    assert decisions == 1
    assert deed_status == "approved"
    assert nomination_status == "approved"
    assert closed is not None
    log = bot.log()
    assert "Traceback" not in log, log
    assert not tg.core.unknown_fields, tg.core.unknown_fields
