"""/gooddeed through process_update on the offline Bot API."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from bot.services.submissions import PLACE_LIMIT
from storage.models import Attachment, FlowState, GoodDeed
from tests.harness import BotHarness
from tests.test_nominate_handlers import btn, count, settle, start
from tests.test_submissions_service import LAN_TG, TRICKY


async def deeds(h: BotHarness) -> list[GoodDeed]:
    async with h.services.db.read() as session:
        return list(await session.scalars(select(GoodDeed).order_by(GoodDeed.id)))


async def test_good_deed_with_a_photo_in_five_taps(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    replies = await h.text(LAN_TG, "/gooddeed")
    assert "Ai đã làm việc tốt" in replies[-1]["text"]
    mark = h.core.mark()
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:pm:", f":{s.binh_id}"))  # 1
    await h.text(LAN_TG, "Nhặt được ví, trả lại cho người đánh rơi <ngay>.")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:dt:", ":0"))  # 2 today
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:sk:"))  # 3 no place
    replies = await h.feed(h.core.send_photo(LAN_TG, caption="Ảnh trao lại ví"))
    assert "Xin kiểm tra lại báo cáo" in replies[-1]["text"]  # a photo goes straight on
    assert "Ảnh: có" in replies[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:ok:"))  # 4
    taps = [r for r in h.core.requests[mark:] if r.method == "answerCallbackQuery"]
    assert len(taps) <= 5
    await settle(h)
    assert "Đã nhận báo cáo việc tốt của Trần Văn Bình" in h.last_text(LAN_TG)
    (deed,) = await deeds(h)
    assert deed.status == "submitted" and deed.occurred_on == date(2026, 3, 2)
    assert deed.description == "Nhặt được ví, trả lại cho người đánh rơi <ngay>."
    assert (deed.subject_name_at_time, deed.unit_name_at_time) == (
        "Trần Văn Bình",
        "Chi cục Thống kê khu vực I",
    )
    assert await count(h, Attachment) == 1 and await count(h, FlowState) == 0


async def test_good_deed_of_a_unit_typed_date_and_place(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await h.text(LAN_TG, "/gooddeed")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:un:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:pu:", f":{s.unit_b}"))
    await h.text(LAN_TG, "Cả chi cục hiến máu nhân đạo")
    replies = await h.text(LAN_TG, "03/03/2026")  # tomorrow
    assert "chưa tới" in replies[-1]["text"]
    replies = await h.text(LAN_TG, "01/01/2025")
    assert "quá một năm" in replies[-1]["text"]
    replies = await h.text(LAN_TG, "hôm kia")
    assert "dd/mm/yyyy" in replies[-1]["text"]
    replies = await h.text(LAN_TG, "28/2/2026")
    assert "Việc tốt diễn ra ở đâu" in replies[-1]["text"]
    replies = await h.text(LAN_TG, "p" * (PLACE_LIMIT + 1))
    assert f"tối đa {PLACE_LIMIT} ký tự" in replies[-1]["text"]
    await h.text(LAN_TG, "Bệnh viện tỉnh")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:sk:"))  # no photo
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:ok:"))
    (deed,) = await deeds(h)
    assert (deed.status, deed.subject_kind, deed.occurred_on, deed.place) == (
        "submitted",
        "collective",
        date(2026, 2, 28),
        "Bệnh viện tỉnh",
    )


async def test_good_deed_bad_input(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await h.text(LAN_TG, "/gooddeed")
    await h.text(LAN_TG, "le thi lan")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:pm:", f":{s.lan.member_id}"))  # oneself
    assert "không thể tự báo cáo" in h.core.calls("answerCallbackQuery")[-1]["text"]
    replies = await h.feed(h.core.send_photo(LAN_TG))  # a photo where a name is expected
    assert "Xin nhập văn bản" in replies[-1]["text"]
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:pm:", f":{s.binh_id}"))
    key = btn(h, LAN_TG, "gd:bk:").split(":")[2]
    for data in (f"gd:dt:{key}:0", f"gd:dt:{key}:7", f"gd:ok:{key}", "gd:pm:1:x", "gd:sk"):
        await h.forge_press(LAN_TG, data)  # another step's buttons or garbage
    (deed,) = await deeds(h)
    assert deed.occurred_on is None and deed.status == "draft"
    await h.text(LAN_TG, "Giúp đỡ đồng nghiệp")
    await h.forge_press(LAN_TG, f"gd:dt:{key}:7")  # not today or yesterday
    assert (await deeds(h))[0].occurred_on is None
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:dt:", ":1"))
    replies = await h.text(LAN_TG, "Sảnh")
    await h.feed(h.core.send_document(LAN_TG, "a.pdf", "application/pdf", b"%PDF"))
    assert "Xin gửi ảnh" in h.core.calls("sendMessage")[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:sk:"))
    await h.services.directory.change_member(s.admin, s.binh_id, active=False)
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:ok:"))
    assert "không còn hoạt động" in h.core.calls("answerCallbackQuery")[-1]["text"]
    (deed,) = await deeds(h)
    assert deed.status == "draft" and deed.occurred_on == date(2026, 3, 1)
    replies = await h.text(LAN_TG, "/cancel")
    assert await deeds(h) == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TRICKY)
async def test_any_text_typed_into_the_flow_is_refused_or_kept(
    harness: BotHarness, text: str
) -> None:
    """Whatever is typed at the "what happened" step: an answer, and either the exact text
    (NFC) in the draft or nothing changed."""
    import unicodedata

    h = harness
    if not h.core.users.get(LAN_TG):
        await start(h)
    flow = await h.services.flows.get(LAN_TG)
    if flow is None or flow.step != "what":
        if flow is None:
            await h.text(LAN_TG, "/gooddeed")
            await h.text(LAN_TG, "binh")
            await h.press(LAN_TG, btn(h, LAN_TG, "gd:pm:"))
        else:
            await h.press(LAN_TG, btn(h, LAN_TG, "gd:bk:", ":when"))
    if not text or text.startswith("/"):
        return  # Telegram sends no empty message; a command is not flow input
    before = (await deeds(h))[0].description
    replies = await h.text(LAN_TG, text)
    assert replies, "every message is answered"
    after = (await deeds(h))[0].description
    assert after in (before, unicodedata.normalize("NFC", text))
    for reply in replies:
        from tests.fake_telegram.formatting import parse_text

        parse_text(reply["text"], "HTML")  # valid HTML whatever was typed


def test_deed_day_buttons_are_office_local() -> None:
    """Today at 23:30 UTC is tomorrow in Hà Nội: the Today button uses the office's day."""
    from datetime import UTC, datetime

    from bot.config import SubmissionSettings
    from bot.services.clock import FixedClock
    from bot.services.submissions import SubmissionService
    from storage.db import Database

    clock = FixedClock(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    service = SubmissionService(Database("sqlite:///:memory:"), clock, SubmissionSettings())
    assert service.today() == date(2026, 3, 2)
    assert service.check_deed_day(date(2026, 3, 2)) == date(2026, 3, 2)
    assert service.check_deed_day(date(2026, 3, 2) - timedelta(days=366))
