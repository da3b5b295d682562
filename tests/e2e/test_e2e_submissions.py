"""End to end: the real `hoadep run` process over real HTTP against the local Bot API server;
staff nominate a colleague and a unit, report a good deed, finish a nomination across a restart
of the process and withdraw one through /my."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.services.clock import FixedClock
from storage.db import Database
from storage.models import Attachment, GoodDeed, Nomination, NominationCriterion
from tests.e2e.process import BotProcess
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_submissions_service import AN_TG, LAN_TG, Seed, seed

pytestmark = pytest.mark.e2e
TIMEOUT = 30

Message = dict[str, Any]
Predicate = Callable[[Message], bool]


def buttons(message: Message) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def has_button(prefix: str, suffix: str = "") -> Predicate:
    return lambda m: any(b.startswith(prefix) and b.endswith(suffix) for b in buttons(m))


def has_text(expect: str) -> Predicate:
    return lambda m: expect in (m.get("text") or m.get("caption") or "")


def anything(m: Message) -> bool:
    return True


def btn(tg: FakeTelegramServer, user: int, prefix: str, suffix: str = "") -> str:
    """The callback data of the newest button that starts with `prefix` (and ends with
    `suffix`)."""
    for message in reversed(tg.core.sent(user)):
        for data in buttons(message):
            if data.startswith(prefix) and data.endswith(suffix):
                return data
    raise AssertionError(
        f"no button {prefix}…{suffix} for {user}: {[buttons(m) for m in tg.core.sent(user)[-3:]]}"
    )


async def wait(tg: FakeTelegramServer, user: int, until: Predicate, mark: int) -> Message:
    message: Message = await tg.core.wait_for_message(user, until, timeout=TIMEOUT, after=mark)
    return message


async def say(tg: FakeTelegramServer, user: int, text: str, until: Predicate) -> Message:
    """The user writes; wait for the bot's answer (new or edited) that matches `until`."""
    mark = tg.core.mark()
    tg.core.send_text(user, text)
    return await wait(tg, user, until, mark)


async def photo(tg: FakeTelegramServer, user: int, until: Predicate, **kw: Any) -> Message:
    mark = tg.core.mark()
    tg.core.send_photo(user, **kw)
    return await wait(tg, user, until, mark)


async def press(
    tg: FakeTelegramServer, user: int, prefix: str, until: Predicate, suffix: str = ""
) -> Message:
    data = btn(tg, user, prefix, suffix)
    mark = tg.core.mark()
    for message in reversed(tg.core.sent(user)):
        if data in buttons(message):
            tg.core.press_button(user, message, data)
            return await wait(tg, user, until, mark)
    raise AssertionError(f"no button {data}")  # pragma: no cover


async def nominations(db: Database) -> list[Nomination]:
    async with db.read() as session:
        return list(await session.scalars(select(Nomination).order_by(Nomination.id)))


async def deeds(db: Database) -> list[GoodDeed]:
    async with db.read() as session:
        return list(await session.scalars(select(GoodDeed).order_by(GoodDeed.id)))


async def attachments(db: Database, **where: int) -> list[Attachment]:
    async with db.read() as session:
        query = select(Attachment).filter_by(**where)
        return list(await session.scalars(query))


async def criteria(db: Database, nomination: int) -> list[int]:
    async with db.read() as session:
        query = select(NominationCriterion.criterion_id).where(
            NominationCriterion.nomination_id == nomination
        )
        return sorted(await session.scalars(query))


async def nominate_colleague(tg: FakeTelegramServer, s: Seed) -> None:
    u = LAN_TG
    await say(tg, u, "/nominate", has_button("nom:k:", ":i"))
    await press(tg, u, "nom:k:", anything, ":i")
    await say(tg, u, "tran van binh", has_button("nom:pm:", f":{s.binh_id}"))
    await press(tg, u, "nom:pm:", has_button("nom:mv:", f":{s.movement}"), f":{s.binh_id}")
    await press(tg, u, "nom:mv:", has_button("nom:fd:", f":{s.field}"), f":{s.movement}")
    await press(tg, u, "nom:fd:", has_button("nom:ct:", f":{s.c_person}"), f":{s.field}")
    await press(
        tg, u, "nom:ct:", lambda m: (m.get("text") or "").count("✅") == 1, f":{s.c_general}"
    )
    await press(
        tg, u, "nom:ct:", lambda m: (m.get("text") or "").count("✅") == 2, f":{s.c_person}"
    )
    await press(tg, u, "nom:cn:", anything)
    await say(tg, u, "Hoàn thành 120% kế hoạch <điều tra> & báo cáo 🌸", has_button("nom:sk:"))
    await say(tg, u, "Số hoá phiếu điều tra", has_button("nom:evd:"))
    await photo(tg, u, has_text("Đã nhận (tổng cộng 1 tệp)"))
    summary = await press(tg, u, "nom:evd:", has_button("nom:ok:"))
    assert "Minh chứng: 1 tệp" in summary["text"]
    mark = tg.core.mark()
    await press(tg, u, "nom:ok:", has_text("Chờ duyệt"))
    await wait(tg, u, has_text("Đã nhận đề cử Trần Văn Bình"), mark)


async def nominate_unit(tg: FakeTelegramServer, s: Seed) -> None:
    u = AN_TG  # reads English
    await say(tg, u, "/nominate", has_button("nom:k:", ":c"))
    await press(tg, u, "nom:k:", has_button("nom:pu:", f":{s.unit_b}"), ":c")
    await press(tg, u, "nom:pu:", has_button("nom:mv:", f":{s.movement}"), f":{s.unit_b}")
    await press(tg, u, "nom:mv:", has_button("nom:fd:", f":{s.field}"), f":{s.movement}")
    await press(tg, u, "nom:fd:", has_button("nom:ct:", f":{s.c_unit}"), f":{s.field}")
    await press(tg, u, "nom:ct:", has_text("✅"), f":{s.c_unit}")
    await press(tg, u, "nom:cn:", anything)
    await say(tg, u, "The unit led the province in data quality.", has_button("nom:sk:"))
    await press(tg, u, "nom:sk:", has_button("nom:evd:"))
    await press(tg, u, "nom:evd:", has_text("Please check your nomination"))
    mark = tg.core.mark()
    await press(tg, u, "nom:ok:", anything)
    await wait(tg, u, has_text("was received"), mark)


async def report_good_deed(tg: FakeTelegramServer, s: Seed) -> None:
    u = LAN_TG
    await say(tg, u, "/gooddeed", has_text("Ai đã làm việc tốt"))
    await say(tg, u, "binh", has_button("gd:pm:", f":{s.binh_id}"))
    await press(tg, u, "gd:pm:", anything, f":{s.binh_id}")
    await say(tg, u, "Nhặt được ví, trả lại cho người đánh rơi.", has_button("gd:dt:", ":0"))
    await press(tg, u, "gd:dt:", has_button("gd:sk:"), ":0")
    await press(tg, u, "gd:sk:", anything)
    summary = await photo(tg, u, has_text("Xin kiểm tra lại báo cáo"), caption="Ảnh trao ví")
    assert "Ảnh: có" in summary["text"]
    mark = tg.core.mark()
    await press(tg, u, "gd:ok:", anything)
    await wait(tg, u, has_text("Đã nhận báo cáo việc tốt của Trần Văn Bình"), mark)


async def test_nominations_good_deed_restart_and_withdrawal(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    tg = telegram
    db = Database(e2e_db_url)
    try:
        s = await seed(db, FixedClock(datetime.now(UTC)))
        tg.core.user(LAN_TG, "Lan")
        tg.core.user(AN_TG, "An", language_code="en")
        bot = BotProcess(tg, e2e_db_url, tmp_path, HOADEP_ACCESS__THROTTLE_BURST="1000")
        await bot.start()
        try:
            # (1) a colleague, two criteria, a photo
            await nominate_colleague(tg, s)
            (n1,) = await nominations(db)
            assert (n1.status, n1.nominee_member_id) == ("submitted", s.binh_id)
            assert n1.achievements == "Hoàn thành 120% kế hoạch <điều tra> & báo cáo 🌸"
            assert n1.good_practices == "Số hoá phiếu điều tra"
            assert await criteria(db, n1.id) == sorted([s.c_general, s.c_person])
            (a1,) = await attachments(db, nomination_id=n1.id)
            assert a1.kind == "photo"

            # (2) another member nominates a unit
            await nominate_unit(tg, s)
            n2 = (await nominations(db))[-1]
            assert (n2.status, n2.nominee_kind, n2.nominee_unit_id) == (
                "submitted",
                "collective",
                s.unit_b,
            )
            assert n2.good_practices is None
            assert await attachments(db, nomination_id=n2.id) == []

            # (3) a good deed with a photo
            await report_good_deed(tg, s)
            (deed,) = await deeds(db)
            assert (deed.status, deed.subject_member_id) == ("submitted", s.binh_id)
            (a3,) = await attachments(db, good_deed_id=deed.id)
            assert (a3.kind, a3.caption) == ("photo", "Ảnh trao ví")

            # (4) the process stops in the middle of a nomination and starts again
            u = LAN_TG
            await say(tg, u, "/nominate", has_button("nom:k:", ":i"))
            await press(tg, u, "nom:k:", anything, ":i")
            await say(tg, u, "binh", has_button("nom:pm:", f":{s.binh_id}"))
            await press(tg, u, "nom:pm:", has_button("nom:mv:"), f":{s.binh_id}")
            await press(tg, u, "nom:mv:", has_button("nom:fd:", f":{s.field2}"), f":{s.movement}")
            await press(tg, u, "nom:fd:", has_button("nom:ct:", f":{s.c_field2}"), f":{s.field2}")
            await press(tg, u, "nom:ct:", has_text("✅"), f":{s.c_field2}")
            await press(tg, u, "nom:cn:", anything)
            await say(tg, u, "Thành tích trước khi khởi động lại", has_button("nom:sk:"))
            await tg.core.wait_for_updates_consumed()
            await bot.stop()
            await bot.start()
            await say(tg, u, "Cách làm hay sau khi khởi động lại", has_button("nom:evd:"))
            await press(tg, u, "nom:evd:", has_button("nom:ok:"))
            mark = tg.core.mark()
            await press(tg, u, "nom:ok:", has_text("Chờ duyệt"))
            await wait(tg, u, has_text("Đã nhận đề cử Trần Văn Bình"), mark)
            n3 = (await nominations(db))[-1]
            assert (n3.status, n3.field_id) == ("submitted", s.field2)
            assert n3.achievements == "Thành tích trước khi khởi động lại"
            assert n3.good_practices == "Cách làm hay sau khi khởi động lại"
            assert await criteria(db, n3.id) == [s.c_field2]
            assert bot.starts == 2

            # (5) withdrawn through /my
            await say(tg, u, "/my", has_button("my:o:n:", f":{n3.id}"))
            await press(tg, u, f"my:o:n:{n3.id}", has_button(f"my:w:n:{n3.id}"))
            await press(tg, u, f"my:w:n:{n3.id}", has_button(f"my:wy:n:{n3.id}"))
            await press(tg, u, f"my:wy:n:{n3.id}", has_text("Đã rút"))
        finally:
            await bot.stop()

        statuses = {n.id: n.status for n in await nominations(db)}
        assert statuses == {n1.id: "submitted", n2.id: "submitted", n3.id: "withdrawn"}
        assert [d.status for d in await deeds(db)] == ["submitted"]
    finally:
        await db.dispose()
    log = bot.log()
    assert "Traceback" not in log, log
    assert not tg.core.unknown_fields, tg.core.unknown_fields
