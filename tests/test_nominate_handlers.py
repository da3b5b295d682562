"""/nominate through process_update on the offline Bot API: the guided flow, restarts, bad input."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.outbox import deliver
from bot.services.clock import FixedClock
from bot.services.submissions import SubmissionStatus
from storage.models import Attachment, FlowState, GroupChat, Nomination, NominationCriterion
from tests.conftest import make_settings
from tests.harness import BotHarness, make_harness
from tests.test_submissions_service import AN_TG, LAN_TG, Seed, seed

JSON = dict


async def settle(h: BotHarness) -> None:
    """Let the outbox deliveries that handlers kicked off finish."""
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "outbox-kick" and not t.done()]
    await asyncio.gather(*tasks)
    await deliver(h.app)


def btn(h: BotHarness, chat: int, prefix: str, suffix: str = "") -> str:
    """The callback data of the newest button that starts with `prefix` (and ends with
    `suffix`)."""
    for message in reversed(h.core.sent(chat)):
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                data = b.get("callback_data") or ""
                if data.startswith(prefix) and data.endswith(suffix):
                    return str(data)
    raise AssertionError(f"no button {prefix}…{suffix}; recent: {h.buttons(chat)}")


def unthrottle(h: BotHarness) -> None:
    """A test presses faster than any person: the flood control must not drop its updates."""
    h.app.bot_data["throttle"].burst = 100_000


async def start(h: BotHarness) -> Seed:
    unthrottle(h)
    s = await seed(h.services.db, h.clock, h.services.directory)
    h.user(LAN_TG, "Lan")
    h.user(AN_TG, "An", language="en")
    return s


async def nominations(h: BotHarness) -> list[Nomination]:
    async with h.services.db.read() as session:
        return list(await session.scalars(select(Nomination).order_by(Nomination.id)))


async def count(h: BotHarness, model: type) -> int:
    async with h.services.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def walk_to_achievements(h: BotHarness, s: Seed, user: int = LAN_TG) -> None:
    await h.text(user, "/nominate")
    await h.press(user, btn(h, user, "nom:k:", ":i"))
    await h.text(user, "tran van binh")
    await h.press(user, btn(h, user, "nom:pm:", f":{s.binh_id}"))
    await h.press(user, btn(h, user, "nom:mv:", f":{s.movement}"))
    await h.press(user, btn(h, user, "nom:fd:", f":{s.field}"))
    await h.press(user, btn(h, user, "nom:ct:", f":{s.c_general}"))
    await h.press(user, btn(h, user, "nom:cn:"))


async def test_staff_nominates_a_colleague_with_two_criteria_and_a_photo(
    harness: BotHarness,
) -> None:
    h = harness
    s = await start(h)
    replies = await h.text(LAN_TG, "/nominate")
    assert "Đề cử điển hình tiên tiến" in replies[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:k:", ":i"))
    replies = await h.text(LAN_TG, "tran van binh")  # no accents
    assert "Trần Văn Bình" in str(replies[-1]["reply_markup"])
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:pm:", f":{s.binh_id}"))
    assert "Thi đua thường xuyên năm 2026" in h.last_text(LAN_TG)
    assert "Phong trào đã kết thúc" not in str(h.core.sent(LAN_TG)[-1])  # closed: not offered
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:mv:", f":{s.movement}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:fd:", f":{s.field}"))
    assert "Tập thể đoàn kết" not in h.last_text(LAN_TG)  # a collective's criterion
    # "Next" without a criterion is refused
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))
    assert "ít nhất một tiêu chí" in h.core.calls("answerCallbackQuery")[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ct:", f":{s.c_general}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ct:", f":{s.c_person}"))
    assert h.last_text(LAN_TG).count("✅") == 2
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))
    await h.text(LAN_TG, "Hoàn thành 120% kế hoạch <điều tra> & báo cáo 🌸")
    await h.text(LAN_TG, "Số hoá phiếu điều tra")
    replies = await h.feed(h.core.send_photo(LAN_TG))
    assert "Đã nhận (tổng cộng 1 tệp)" in replies[-1]["text"]
    replies = await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    summary = replies[-1]["text"]
    assert "Hoàn thành 120% kế hoạch &lt;điều tra&gt; &amp; báo cáo 🌸" in summary
    assert "Minh chứng: 1 tệp" in summary
    submit = btn(h, LAN_TG, "nom:ok:")
    replies = await h.press(LAN_TG, submit)
    assert "Cảm ơn" in replies[-1]["text"] and "Chờ duyệt" in replies[-1]["text"]
    await settle(h)
    assert "Đã nhận đề cử Trần Văn Bình" in h.last_text(LAN_TG)  # the outbox confirmation
    (n,) = await nominations(h)
    assert n.status == "submitted" and n.achievements == (
        "Hoàn thành 120% kế hoạch <điều tra> & báo cáo 🌸"
    )
    assert n.good_practices == "Số hoá phiếu điều tra"
    assert await count(h, NominationCriterion) == 2 and await count(h, Attachment) == 1
    assert await count(h, FlowState) == 0
    # the summary's buttons are finished: pressing Submit again changes nothing
    await h.forge_press(LAN_TG, submit)
    assert "không còn hiệu lực" in h.core.calls("answerCallbackQuery")[-1]["text"]
    assert len(await nominations(h)) == 1


async def test_another_nominates_a_unit(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await h.text(AN_TG, "/nominate")
    replies = await h.press(AN_TG, btn(h, AN_TG, "nom:k:", ":c"))
    assert "Chi cục Thống kê khu vực I" in str(replies[-1]["reply_markup"])
    await h.press(AN_TG, btn(h, AN_TG, "nom:pu:", f":{s.unit_b}"))
    await h.press(AN_TG, btn(h, AN_TG, "nom:mv:", f":{s.movement}"))
    await h.press(AN_TG, btn(h, AN_TG, "nom:fd:", f":{s.field}"))
    assert "Tập thể đoàn kết" in h.last_text(AN_TG)
    await h.press(AN_TG, btn(h, AN_TG, "nom:ct:", f":{s.c_unit}"))
    await h.press(AN_TG, btn(h, AN_TG, "nom:cn:"))
    await h.text(AN_TG, "The unit led the province in data quality.")
    await h.press(AN_TG, btn(h, AN_TG, "nom:sk:"))  # no good practices
    await h.press(AN_TG, btn(h, AN_TG, "nom:evd:"))  # no evidence
    assert "Please check your nomination" in h.last_text(AN_TG)  # An reads English
    await h.press(AN_TG, btn(h, AN_TG, "nom:ok:"))
    await settle(h)
    assert "was received" in h.last_text(AN_TG)
    (n,) = await nominations(h)
    assert (n.nominee_kind, n.nominee_unit_id, n.nominee_name_at_time) == (
        "collective",
        s.unit_b,
        "Chi cục Thống kê khu vực I",
    )
    assert n.good_practices is None


async def test_the_application_is_rebuilt_mid_nomination(
    harness: BotHarness, db_url: str, clock: FixedClock
) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    await h.text(LAN_TG, "Thành tích trước khi khởi động lại")
    # the bot restarts: a new application on the same database; the user carries on
    h2, app2 = await make_harness(make_settings(db_url), clock, core=h.core)
    unthrottle(h2)
    try:
        replies = await h2.text(LAN_TG, "Cách làm hay sau khi khởi động lại")
        assert "Minh chứng" in replies[-1]["text"]  # the evidence step followed
        replies = await h2.text(LAN_TG, "/nominate")  # or they come back with the command
        assert "chưa hoàn thành" in replies[-1]["text"]
        await h2.press(LAN_TG, btn(h2, LAN_TG, "nom:cont:"))
        assert "Minh chứng" in h2.last_text(LAN_TG)
        await h2.press(LAN_TG, btn(h2, LAN_TG, "nom:evd:"))
        await h2.press(LAN_TG, btn(h2, LAN_TG, "nom:ok:"))
    finally:
        await app2.shutdown()
        await app2.post_shutdown(app2)
    (n,) = await nominations(h)
    assert n.status == "submitted"
    assert n.achievements == "Thành tích trước khi khởi động lại"
    assert n.good_practices == "Cách làm hay sau khi khởi động lại"


async def test_start_over_and_cancel_leave_no_draft(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    first_buttons = btn(h, LAN_TG, "nom:bk:")
    await h.text(LAN_TG, "/nominate")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:new:"))
    assert "cá nhân hay tập thể" in h.last_text(LAN_TG)
    assert len(await nominations(h)) == 1  # the old draft went, a new one started
    # a button of the replaced flow is stale
    await h.forge_press(LAN_TG, first_buttons)
    assert "không còn hiệu lực" in h.core.calls("answerCallbackQuery")[-1]["text"]
    replies = await h.text(LAN_TG, "/cancel")
    assert "Đã dừng" in replies[-1]["text"] or "dừng" in replies[-1]["text"].lower()
    assert await nominations(h) == [] and await count(h, FlowState) == 0
    # the cancel button with its confirmation does the same
    await walk_to_achievements(h, s)
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:x:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:xy:"))
    assert await nominations(h) == [] and await count(h, FlowState) == 0


async def test_back_and_edit_a_step(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:bk:", ":ach"))  # back to the criteria
    assert "✅" in h.last_text(LAN_TG)
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))
    await h.text(LAN_TG, "Thành tích")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ed:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:es:", ":ach"))
    assert "Thành tích" in h.last_text(LAN_TG)  # the current text is shown
    replies = await h.text(LAN_TG, "Thành tích đã sửa")
    assert "Xin kiểm tra lại đề cử" in replies[-1]["text"]  # straight back to the summary
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ed:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:es:", ":field"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:fd:", f":{s.field2}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))  # the general criterion stayed
    assert "Công nghệ thông tin" in h.last_text(LAN_TG)
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    (n,) = await nominations(h)
    assert (n.status, n.field_id, n.achievements) == ("submitted", s.field2, "Thành tích đã sửa")


async def test_a_duplicate_shows_the_existing_one(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    await h.text(LAN_TG, "Lần một")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    first = (await nominations(h))[0].id
    await h.text(LAN_TG, "/nominate")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:k:", ":i"))
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:pm:", f":{s.binh_id}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:mv:", f":{s.movement}"))
    replies = await h.press(LAN_TG, btn(h, LAN_TG, "nom:fd:", f":{s.field}"))
    assert f"hồ sơ số {first}" in replies[-1]["text"]
    assert f"my:o:n:{first}" in str(replies[-1]["reply_markup"])
    replies = await h.press(LAN_TG, f"my:o:n:{first}")
    assert "Lần một" in replies[-1]["text"]


async def test_deadline_passing_mid_flow_and_a_colleague_deactivated(
    harness: BotHarness,
) -> None:
    h = harness
    s = await start(h)
    await h.text(LAN_TG, "/nominate")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:k:", ":i"))
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:pm:", f":{s.binh_id}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:mv:", f":{s.soon_movement}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:fd:", f":{s.field}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ct:", f":{s.c_general}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))
    await h.text(LAN_TG, "Thành tích")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    h.clock.advance(timedelta(hours=3))  # the campaign's deadline passes meanwhile
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    answer = h.core.calls("answerCallbackQuery")[-1]["text"]
    assert "Hạn nhận đề cử" in answer and "Bản nháp" in answer
    assert (await nominations(h))[0].status == "draft"
    # choose the regular movement instead, but the colleague was deactivated meanwhile
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ed:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:es:", ":movement"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:mv:", f":{s.movement}"))
    await h.services.directory.change_member(s.admin, s.binh_id, active=False)
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    assert "không còn hoạt động" in h.core.calls("answerCallbackQuery")[-1]["text"]
    assert (await nominations(h))[0].status == "draft"


async def test_bad_input_is_answered_and_nothing_is_stored_wrongly(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await h.text(LAN_TG, "/nominate")
    # text where a button is expected: the step is shown again with its buttons
    replies = await h.text(LAN_TG, "cá nhân")
    assert "Xin dùng các nút" in replies[-1]["text"] and replies[-1].get("reply_markup")
    # a photo where text is expected
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:k:", ":i"))
    replies = await h.feed(h.core.send_photo(LAN_TG))
    assert "Xin nhập văn bản" in replies[-1]["text"]
    # a one-letter search
    replies = await h.text(LAN_TG, "b")
    assert "ít nhất 2 chữ cái" in replies[-1]["text"]
    # myself
    await h.text(LAN_TG, "le thi lan")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:pm:", f":{s.lan.member_id}"))
    assert "không thể tự đề cử" in h.core.calls("answerCallbackQuery")[-1]["text"]
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:pm:", f":{s.binh_id}"))
    key = btn(h, LAN_TG, "nom:mv:").split(":")[2]
    # forged and malformed buttons: a closed movement, another step, garbage
    for data in (
        f"nom:mv:{key}:{s.closed_movement}",
        f"nom:fd:{key}:{s.field}",  # not the step we are at
        f"nom:mv:{key}:999999",
        "nom:mv:abc:1",
        f"nom:mv:{key}",
        "nom:zz:1.0",
        "nom:k:1.0:i",  # another draft
        "nom",
    ):
        await h.forge_press(LAN_TG, data)
        assert h.core.calls("answerCallbackQuery"), data
    (n,) = await nominations(h)
    assert n.movement_id is None and n.field_id is None and n.status == "draft"
    flow = await h.services.flows.get(LAN_TG)
    assert flow is not None and flow.step == "movement"
    # at the evidence step: a file type that is not allowed, then text
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:mv:", f":{s.movement}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:fd:", f":{s.field}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ct:", f":{s.c_general}"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cn:"))
    limit = h.services.settings.submissions.max_text_length
    replies = await h.text(LAN_TG, "x" * (limit + 1))
    assert f"tối đa {limit} ký tự" in replies[-1]["text"]
    await h.text(LAN_TG, "*đậm* _nghiêng_ <i>html</i> \u202eRTL\u202c a\u200bb")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
    replies = await h.feed(
        h.core.send_document(LAN_TG, "setup.exe", "application/x-msdownload", b"MZ" * 10)
    )
    assert "Không thể đính kèm loại tệp này" in replies[-1]["text"]
    replies = await h.feed(
        h.core.send_document(LAN_TG, "bao-cao.pdf", "application/pdf", b"%PDF-1.4 test")
    )
    assert "1 tệp" in replies[-1]["text"]
    replies = await h.text(LAN_TG, "đây là chữ")
    assert "Xin gửi ảnh hoặc tài liệu" in replies[-1]["text"]
    replies = await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    assert "&lt;i&gt;html&lt;/i&gt;" in replies[-1]["text"]  # escaped on the wire
    shown = "*đậm* _nghiêng_ <i>html</i> ‮RTL‬ a​b"
    assert shown in h.last_text(LAN_TG)  # and shown literally
    (n,) = await nominations(h)
    assert n.achievements == "*đậm* _nghiêng_ <i>html</i> \u202eRTL\u202c a\u200bb"
    assert await count(h, Attachment) == 1


async def test_group_command_answers_with_a_private_link(harness: BotHarness) -> None:
    h = harness
    await start(h)
    group = h.core.group(-100777, "Phòng Tổng hợp")
    async with h.services.db.transaction() as session:
        session.add(GroupChat(chat_id=-100777, title="Phòng Tổng hợp", language="vi"))
    replies = await h.feed(h.core.send_text(LAN_TG, "/nominate", group))
    markup = replies[-1]["reply_markup"]
    assert "?start=nominate" in str(markup)
    assert await nominations(h) == []
    # the link opens the flow in the private chat
    replies = await h.text(LAN_TG, "/start nominate")
    assert "cá nhân hay tập thể" in replies[-1]["text"]
    await h.feed(h.core.send_text(LAN_TG, "/gooddeed", group))
    assert "?start=gooddeed" in str(h.core.sent(-100777)[-1]["reply_markup"])
    # a "Nominate" button on a message in the group answers with the same link
    await h.forge_press(LAN_TG, "nom:go", chat_id=-100777)
    assert h.core.calls("answerCallbackQuery")[-1]["url"].endswith("?start=nominate")
    await h.forge_press(LAN_TG, "gd:go", chat_id=-100777)
    assert h.core.calls("answerCallbackQuery")[-1]["url"].endswith("?start=gooddeed")


async def test_no_open_movement_means_no_draft(harness: BotHarness) -> None:
    h = harness
    await start(h)
    h.clock.advance(timedelta(days=31))  # every deadline has passed
    replies = await h.text(LAN_TG, "/nominate")
    assert "không có phong trào thi đua nào" in replies[-1]["text"]
    assert await nominations(h) == []


async def test_withdrawn_nomination(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    await h.text(LAN_TG, "Thành tích")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    n = (await nominations(h))[0]
    replies = await h.text(LAN_TG, "/my")
    assert "Chờ duyệt" in replies[-1]["text"]
    await h.press(LAN_TG, f"my:o:n:{n.id}")
    await h.press(LAN_TG, f"my:w:n:{n.id}")
    replies = await h.press(LAN_TG, f"my:wy:n:{n.id}")
    assert any("Đã rút" in r.get("text", "") for r in replies)  # the card, updated
    await settle(h)
    assert any("Anh/Chị đã rút đề cử Trần Văn Bình" in t for t in h.texts(LAN_TG)[-2:])
    assert (await nominations(h))[0].status == SubmissionStatus.WITHDRAWN.value
    # the withdraw button of the older card is gone and a forged one is refused
    await h.forge_press(LAN_TG, f"my:wy:n:{n.id}")
    assert "đã rút" in h.core.calls("answerCallbackQuery")[-1]["text"]


async def test_a_submit_is_announced_to_the_moderators_chat(db_url: str, clock: FixedClock) -> None:
    """The moderation service's hook runs in the submit's transaction (no content shown)."""
    h, app = await make_harness(make_settings(db_url, moderation={"admin_chat_id": -100900}), clock)
    try:
        h.core.group(-100900, "Hội đồng Thi đua - Khen thưởng")
        async with h.services.db.transaction() as session:
            session.add(GroupChat(chat_id=-100900, title="Hội đồng", language="vi"))
        s = await start(h)
        await walk_to_achievements(h, s)
        await h.text(LAN_TG, "Thành tích bí mật")
        await h.press(LAN_TG, btn(h, LAN_TG, "nom:sk:"))
        await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
        await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
        await settle(h)
        notices = h.core.sent(-100900)
        assert len(notices) == 1 and "Thành tích bí mật" not in notices[0]["text"]
        n = (await nominations(h))[0]
        assert f":{n.id}" in str(notices[0]["reply_markup"])
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


async def test_switching_to_a_good_deed_midway_loses_nothing(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    await walk_to_achievements(h, s)
    await h.text(LAN_TG, "Thành tích đang viết dở")
    await h.text(LAN_TG, "/gooddeed")  # the nomination draft is parked, not deleted
    await h.text(LAN_TG, "binh")
    await h.press(LAN_TG, btn(h, LAN_TG, "gd:pm:", f":{s.binh_id}"))
    await h.text(LAN_TG, "/cancel")  # ends the good deed only
    replies = await h.text(LAN_TG, "/nominate")
    assert "đề cử chưa hoàn thành" in replies[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cont:"))
    # everything required is there: it resumes at the summary, where a step can be edited
    assert "Thành tích đang viết dở" in h.last_text(LAN_TG)
    assert btn(h, LAN_TG, "nom:ok:")
    (n,) = await nominations(h)
    assert n.achievements == "Thành tích đang viết dở" and n.status == "draft"
