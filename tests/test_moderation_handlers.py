"""Review, council vote and exemplars through process_update (offline Bot API), on SQLite and
PostgreSQL: the whole path from a submitted nomination to an exemplar in /exemplars."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import voting_jobs
from bot.outbox import deliver
from bot.services.clock import FixedClock
from bot.services.moderation import ItemType
from storage.models import Ballot, Decision, GoodDeed, GroupChat, ModerationCard, Nomination
from tests.conftest import make_settings
from tests.harness import BotHarness, make_harness
from tests.test_moderation_fixtures import (
    ADMIN_TG,
    COUNCIL_TG,
    NOMINEE_TG,
    OFFICER_TG,
    STAFF_TG,
    World,
    add_deed,
    add_nomination,
    seed,
)

GROUP = -100200
ADMIN_CHAT = -100300


async def start(db_url: str, clock: FixedClock, **moderation: Any) -> tuple[BotHarness, Any]:
    settings = make_settings(db_url, moderation=moderation) if moderation else make_settings(db_url)
    return await make_harness(settings, clock)


async def stop(h: BotHarness, app: Any) -> None:
    await app.shutdown()
    if app.post_shutdown:
        await app.post_shutdown(app)
    assert not h.core.unknown_fields, h.core.unknown_fields


@pytest.fixture
async def world_h(db_url: str, clock: FixedClock) -> AsyncIterator[tuple[BotHarness, World]]:
    h, app = await start(db_url, clock)
    world = await seed(h.services.db)
    for key, tg in world.tg.items():
        h.user(tg, key)
    try:
        yield h, world
    finally:
        await stop(h, app)


def photo_ids(h: BotHarness, user: int, count: int) -> list[str]:
    """Photos the fake Telegram knows (as if the author had sent them)."""
    return [h.core.send_photo(user)["message"]["photo"][-1]["file_id"] for _ in range(count)]


def callback_data(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def answers(h: BotHarness) -> list[str]:
    return [str(a.get("text") or "") for a in h.core.calls("answerCallbackQuery")]


async def vote(h: BotHarness, user: int, ballot_id: int, code: str) -> None:
    """Press a choice on the ballot, then Confirm on the confirmation screen."""
    await h.press(user, f"vt:c:{ballot_id}:{code}")
    await h.press(user, f"vt:k:{ballot_id}:{code}")


async def tick(h: BotHarness) -> None:
    await voting_jobs.tick(h.app)
    await deliver(h.app)


@pytest.mark.parametrize(("threshold", "approved"), [(0.5, True), (0.7, False)])
async def test_nomination_to_council_to_exemplar(
    db_url: str, clock: FixedClock, threshold: float, approved: bool
) -> None:
    h, app = await start(db_url, clock, approval_threshold=threshold)
    try:
        w = await seed(h.services.db)
        for key, tg in w.tg.items():
            h.user(tg, key)
        n = await add_nomination(
            h.services.db,
            w,
            photos=photo_ids(h, STAFF_TG, 2),
            achievements="<Thành tích> & kết quả",
        )

        replies = await h.text(ADMIN_TG, "/review")
        assert "Hồ sơ chờ duyệt" in replies[-1]["text"] and "Đề cử: 1" in replies[-1]["text"]
        replies = await h.press(ADMIN_TG, f"rv:o:n:{n}")
        assert [r["method"] for r in replies] == ["sendMediaGroup", "sendMessage"]
        assert "&lt;Thành tích&gt; &amp; kết quả" in replies[-1]["text"]  # escaped on the wire
        card = h.core.sent(ADMIN_TG)[-1]
        assert "<Thành tích> & kết quả" in card["text"]
        assert "Nguyễn Thị Lan" in card["text"]  # the author
        await h.press(ADMIN_TG, f"rv:vt:{n}:1")
        await h.press(ADMIN_TG, f"rv:vd:{n}:1:7")
        assert "bỏ phiếu kín" in h.last_text(ADMIN_TG)
        ballot_id = int(re.search(r"vt:c:(\d+):a", str(h.core.sent(COUNCIL_TG[0])[-1])).group(1))  # type: ignore[union-attr]
        for tg in COUNCIL_TG:
            assert "Phiếu bầu kín" in h.last_text(tg)
        assert not any("Phiếu bầu kín" in t for t in h.texts(ADMIN_TG))

        # two agree, the third does not vote; the second chooses again before confirming
        await vote(h, COUNCIL_TG[0], ballot_id, "a")
        assert "Phiếu của đồng chí đã được ghi nhận" in h.last_text(COUNCIL_TG[0])
        assert "Đồng ý" not in h.last_text(COUNCIL_TG[0]).split("\n")[-1]  # no receipt
        await h.press(COUNCIL_TG[1], f"vt:c:{ballot_id}:d")
        await h.press(COUNCIL_TG[1], f"vt:r:{ballot_id}")
        await vote(h, COUNCIL_TG[1], ballot_id, "a")
        # the administrators see neither choices nor tallies while it is open
        replies = await h.text(ADMIN_TG, "/ballots")
        assert "2/3 thành viên Hội đồng đã bỏ phiếu" in replies[-1]["text"]
        assert "Đồng ý" not in replies[-1]["text"]
        await h.forge_press(ADMIN_TG, f"vt:m:{ballot_id}")
        assert "vẫn đang diễn ra" in answers(h)[-1]

        clock.advance(timedelta(days=7, minutes=1))
        closed = await voting_jobs.tick(h.app)
        await deliver(h.app)
        assert len(closed) == 1 and closed[0].approved is approved
        async with h.services.db.read() as session:
            status = await session.scalar(select(Nomination.status).where(Nomination.id == n))
        assert status == ("approved" if approved else "rejected")
        minutes = h.last_text(ADMIN_TG)
        assert minutes.startswith("BIÊN BẢN KIỂM PHIẾU\n")
        assert "Tổng số thành viên Hội đồng: 3" in minutes and "Số phiếu phát ra: 3" in minutes
        assert "Số thành viên tham gia biểu quyết: 2" in minutes
        assert "Không tham gia biểu quyết: —" in minutes
        assert "từ 09:00 ngày 02/03/2026 đến 09:01 ngày 09/03/2026" in minutes
        assert "Tỷ lệ đồng ý: 2/3 (66,7%)" in minutes
        assert (
            f"Tỷ lệ cần đạt: từ {round(threshold * 100)}% trở lên (tính trên tổng số thành viên "
            "Hội đồng có quyền biểu quyết)" in minutes
        )
        assert ("Kết quả: ĐẠT." in minutes) is approved
        # the card the administrator opened shows the council's result
        card_now = next(m for m in h.core.sent(ADMIN_TG) if m["message_id"] == card["message_id"])
        assert ("Hội đồng đã thông qua" in card_now["text"]) is approved
        assert card_now.get("reply_markup") is None
        author = h.texts(STAFF_TG)
        assert any("Hội đồng Thi đua - Khen thưởng" in t for t in author)
        assert any("Xin chúc mừng" in t for t in h.texts(NOMINEE_TG)) is approved

        # the registry, in private and in a registered group
        replies = await h.text(STAFF_TG, "/exemplars")
        assert ("Trần Văn Được" in replies[-1]["text"]) is approved
        async with h.services.db.transaction() as session:
            session.add(GroupChat(chat_id=GROUP, title="Cơ quan", language="vi"))
        group = h.core.group(GROUP, "Cơ quan")
        replies = await h.feed(h.core.send_text(STAFF_TG, "/exemplars", group))
        markup = replies[-1].get("reply_markup") or {}
        urls = [b.get("url") for row in markup.get("inline_keyboard", []) for b in row]
        assert (f"https://t.me/{h.app.bot.username}?start=ex-{n}" in urls) is approved
        replies = await h.text(STAFF_TG, f"/start ex-{n}")
        if approved:
            assert "Cách làm hay cần nhân rộng" in replies[-1]["text"]
            assert "Số hoá quy trình thu thập phiếu" in replies[-1]["text"]
        else:
            assert "không có trong danh sách" in replies[-1]["text"]
    finally:
        await stop(h, app)


async def test_everybody_votes_closes_at_once(world_h: tuple[BotHarness, World]) -> None:
    h, w = world_h
    n = await add_nomination(h.services.db, w)
    view = await h.services.voting.open_vote(w.viewer("admin"), n)
    await deliver(h.app)
    await vote(h, COUNCIL_TG[0], view.id, "a")
    await vote(h, COUNCIL_TG[1], view.id, "b")
    await vote(h, COUNCIL_TG[2], view.id, "d")
    assert "cuộc bỏ phiếu kết thúc" in h.last_text(COUNCIL_TG[2])
    assert "BIÊN BẢN" in h.last_text(ADMIN_TG) and "KHÔNG ĐẠT" in h.last_text(ADMIN_TG)
    await h.forge_press(COUNCIL_TG[0], f"vt:c:{view.id}:d")
    assert "đã kết thúc" in answers(h)[-1]
    await h.forge_press(COUNCIL_TG[0], f"vt:k:{view.id}:d")
    assert "đã kết thúc" in answers(h)[-1]
    replies = await h.text(COUNCIL_TG[0], "/ballots")
    assert "không đạt, tỷ lệ đồng ý 1/3 (33,3%)" in replies[-1]["text"]
    replies = await h.press(COUNCIL_TG[0], f"vt:m:{view.id}")
    assert "Phiếu trắng: 1" in replies[-1]["text"]


async def test_two_moderators_approve_the_same_good_deed(
    world_h: tuple[BotHarness, World],
) -> None:
    h, w = world_h
    db = h.services.db
    # through the service, at the same moment
    first = await add_deed(db, w)
    from bot.services.moderation import Outcome

    results = await asyncio.gather(
        h.services.moderation.decide(
            w.viewer("council1"), ItemType.GOOD_DEED, first, Outcome.APPROVED
        ),
        h.services.moderation.decide(
            w.viewer("admin"), ItemType.GOOD_DEED, first, Outcome.APPROVED
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BaseException) for r in results) == 1

    # through two cards and two presses at once
    deed = await add_deed(db, w)
    await h.text(COUNCIL_TG[0], "/review")
    await h.press(COUNCIL_TG[0], f"rv:o:g:{deed}")
    await h.text(ADMIN_TG, "/review")
    await h.press(ADMIN_TG, f"rv:o:g:{deed}")
    card_c = h.message_with_button(COUNCIL_TG[0], f"rv:ok:g:{deed}:1")
    card_a = h.message_with_button(ADMIN_TG, f"rv:ok:g:{deed}:1")
    await asyncio.gather(
        h.feed(h.core.press_button(COUNCIL_TG[0], card_c, f"rv:ok:g:{deed}:1")),
        h.feed(h.core.press_button(ADMIN_TG, card_a, f"rv:ok:g:{deed}:1")),
    )
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Decision).where(Decision.good_deed_id == deed)
        )
        cards = await session.scalar(
            select(func.count()).select_from(ModerationCard).where(ModerationCard.item_id == deed)
        )
    assert count == 1 and cards == 2
    told = [a for a in answers(h) if "đã duyệt hồ sơ này lúc" in a]
    assert len(told) == 1  # the slower one was told who decided and when
    # both cards now say who approved, without buttons
    for chat, message in ((COUNCIL_TG[0], card_c), (ADMIN_TG, card_a)):
        now = next(m for m in h.core.sent(chat) if m["message_id"] == message["message_id"])
        assert "đã duyệt lúc" in now["text"]
        assert not any(d.startswith("rv:ok") for d in callback_data(now))
    assert any("đã được duyệt" in t for t in h.texts(STAFF_TG))


async def test_reject_with_reasons_and_request_changes(
    world_h: tuple[BotHarness, World],
) -> None:
    h, w = world_h
    db = h.services.db
    a = await add_deed(db, w)
    b = await add_deed(db, w)
    c = await add_deed(db, w)
    await h.text(OFFICER_TG, "/review")  # a unit officer reviews good deeds of the unit
    await h.press(OFFICER_TG, f"rv:o:g:{a}")
    await h.press(OFFICER_TG, f"rv:rj:g:{a}:1")
    assert f"rv:rr:g:{a}:1:e" in h.buttons(OFFICER_TG)
    await h.press(OFFICER_TG, f"rv:bk:g:{a}")
    await h.press(OFFICER_TG, f"rv:rj:g:{a}:1")
    await h.press(OFFICER_TG, f"rv:rr:g:{a}:1:e")
    assert "Lý do: Chưa đủ minh chứng" in h.last_text(OFFICER_TG)
    assert "Lý do: Chưa đủ minh chứng" in h.last_text(STAFF_TG)

    await h.press(OFFICER_TG, f"rv:nx:g:{a}")
    await h.press(OFFICER_TG, f"rv:rj:g:{b}:1")
    await h.press(OFFICER_TG, f"rv:ro:g:{b}:1")
    await h.text(OFFICER_TG, "Sự việc xảy ra ngoài <giờ> làm việc")
    # shown literally (it was escaped: an unknown <giờ> tag would have been refused)
    assert "Lý do: Sự việc xảy ra ngoài <giờ> làm việc" in h.last_text(STAFF_TG)

    await h.press(OFFICER_TG, f"rv:nx:g:{b}")
    await h.press(OFFICER_TG, f"rv:ch:g:{c}:1")
    await h.text(OFFICER_TG, "Bổ sung ảnh")
    assert "đã yêu cầu bổ sung lúc" in h.last_text(OFFICER_TG)
    assert "cần bổ sung: Bổ sung ảnh" in h.last_text(STAFF_TG)
    async with db.read() as session:
        statuses = dict(list(await session.execute(select(GoodDeed.id, GoodDeed.status))))
    assert statuses == {a: "rejected", b: "rejected", c: "changes_requested"}
    await h.press(OFFICER_TG, f"rv:nx:g:{c}")
    assert "Không còn hồ sơ nào chờ duyệt" in h.last_text(OFFICER_TG)


async def test_admin_chat_notice_opens_the_card_privately(db_url: str, clock: FixedClock) -> None:
    h, app = await start(db_url, clock, admin_chat_id=ADMIN_CHAT)
    try:
        w = await seed(h.services.db)
        for key, tg in w.tg.items():
            h.user(tg, key)
        async with h.services.db.transaction() as session:
            session.add(GroupChat(chat_id=ADMIN_CHAT, title="Tổ thư ký", is_admin_chat=True))
        group = h.core.group(ADMIN_CHAT, "Tổ thư ký")
        deed = await add_deed(h.services.db, w, description="Bí mật chờ duyệt")
        async with h.services.db.transaction() as session:
            item = await session.get(GoodDeed, deed)
            assert item is not None
            await h.services.moderation.announce_new_submission(session, item, now=clock.now())
        await deliver(h.app)
        notice = h.core.sent(ADMIN_CHAT)[-1]
        assert "Có việc tốt mới số" in notice["text"]
        assert "Bí mật" not in notice["text"] and "Trần Văn Được" not in notice["text"]
        # staff in the admin chat cannot open it; a council member gets it privately
        await h.feed(h.core.press_button(STAFF_TG, notice, f"rv:o:g:{deed}"))
        assert "Chỉ Hội đồng" in answers(h)[-1]
        replies = await h.feed(h.core.press_button(COUNCIL_TG[0], notice, f"rv:o:g:{deed}"))
        assert all(r["chat_id"] == COUNCIL_TG[0] for r in replies if r["method"] == "sendMessage")
        assert "Bí mật chờ duyệt" in h.last_text(COUNCIL_TG[0])
        assert all("Bí mật" not in t for t in h.texts(ADMIN_CHAT))
        # deciding from the group is refused; from the private card it works
        await h.forge_press(COUNCIL_TG[0], f"rv:ok:g:{deed}:1", chat_id=ADMIN_CHAT)
        assert "cuộc trò chuyện riêng" in answers(h)[-1]
        await h.press(COUNCIL_TG[0], f"rv:ok:g:{deed}:1")
        edited = h.core.sent(ADMIN_CHAT)[-1]
        assert "Việc tốt số" in edited["text"] and "đã duyệt" in edited["text"]
        assert "Trần Văn Được" not in edited["text"]
        del group
    finally:
        await stop(h, app)


async def test_good_deeds_feed_and_audit(world_h: tuple[BotHarness, World]) -> None:
    h, w = world_h
    deed = await add_deed(h.services.db, w)
    await h.text(ADMIN_TG, "/review")
    await h.press(ADMIN_TG, f"rv:o:g:{deed}")
    await h.press(ADMIN_TG, f"rv:ok:g:{deed}:1")
    replies = await h.text(STAFF_TG, "/gooddeeds")
    assert "Nhặt được ví" in replies[-1]["text"]
    await h.press(STAFF_TG, f"fd:a:{deed}:0")
    assert "👏 1" in str(h.core.sent(STAFF_TG)[-1]["reply_markup"])
    await h.press(STAFF_TG, f"fd:a:{deed}:0")
    assert "👏 0" in str(h.core.sent(STAFF_TG)[-1]["reply_markup"])

    replies = await h.text(ADMIN_TG, f"/audit good_deed {deed}")
    assert "đã duyệt việc tốt" in replies[-1]["text"]
    replies = await h.text(ADMIN_TG, "/audit person tran quan")
    assert "Trần Quản Trị" in replies[-1]["text"] and "đã duyệt việc tốt" in replies[-1]["text"]
    replies = await h.text(STAFF_TG, "/audit")
    assert "Chỉ quản trị viên" in replies[-1]["text"]
    replies = await h.text(ADMIN_TG, "/audit nonsense 1")
    assert "Cú pháp" in replies[-1]["text"]
    async with h.services.db.read() as session:
        assert (await session.scalar(select(func.count()).select_from(Ballot))) == 0


async def test_the_voting_job_reminds_then_closes(world_h: tuple[BotHarness, World]) -> None:
    h, w = world_h
    assert h.app.job_queue is not None and h.app.job_queue.get_jobs_by_name("voting")
    n = await add_nomination(h.services.db, w)
    view = await h.services.voting.open_vote(w.viewer("admin"), n, days=2)
    await deliver(h.app)
    await vote(h, COUNCIL_TG[0], view.id, "a")
    h.clock.advance(timedelta(days=1, hours=1))  # 23 hours left
    await tick(h)
    assert "Nhắc việc" in h.last_text(COUNCIL_TG[1]) and "Nhắc việc" in h.last_text(COUNCIL_TG[2])
    assert "Nhắc việc" not in h.last_text(COUNCIL_TG[0])
    reminder = h.core.sent(COUNCIL_TG[1])[-1]
    await h.feed(h.core.press_button(COUNCIL_TG[1], reminder, f"vt:c:{view.id}:a"))
    await h.press(COUNCIL_TG[1], f"vt:k:{view.id}:a")
    await tick(h)  # once only
    assert sum("Nhắc việc" in t for t in h.texts(COUNCIL_TG[2])) == 1
    h.clock.advance(timedelta(hours=23))
    await tick(h)
    async with h.services.db.read() as session:
        status = await session.scalar(select(Nomination.status).where(Nomination.id == n))
    assert status == "approved"  # 2 of 3 agreed, threshold 50%
    assert "BIÊN BẢN" in h.last_text(ADMIN_TG)
