"""/my through process_update: the list, an item in full, withdrawing, edit and resubmit."""

from __future__ import annotations

from datetime import timedelta

from bot.services.submissions import ItemType, SubmissionStatus
from tests.harness import BotHarness
from tests.test_nominate_handlers import btn, nominations, settle, start
from tests.test_submissions_service import AN_TG, LAN_TG, nominate


async def test_my_list_pages_and_shows_only_ones_own(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    service = h.services.submissions
    replies = await h.text(LAN_TG, "/my")
    assert "chưa gửi đề cử hay báo cáo nào" in replies[-1]["text"]
    ids = []
    for i in range(10):
        h.clock.advance(timedelta(minutes=1))
        ids.append(
            await nominate(service, s, field=s.field if i % 2 else s.field2, movement=s.movement)
        )
        if i < 8:
            await service.withdraw(s.lan, ItemType.NOMINATION, ids[-1])
    await settle(h)  # the confirmations first
    replies = await h.text(LAN_TG, "/my")
    text = replies[-1]["text"]
    assert "(10)" in text and f"số {ids[-1]}" in text and f"số {ids[0]} ·" not in text
    assert "Chờ duyệt" in text and "Đã rút" in text
    replies = await h.press(LAN_TG, "my:l:1")
    assert f"số {ids[0]} ·" in replies[-1]["text"]
    # someone else's pending nomination stays hidden, even with a forged button
    await h.forge_press(AN_TG, f"my:o:n:{ids[-1]}")
    assert "no longer exists" in h.core.calls("answerCallbackQuery")[-1]["text"]
    await h.forge_press(AN_TG, f"my:w:n:{ids[-1]}")
    await h.forge_press(AN_TG, f"my:wy:n:{ids[-1]}")
    assert (await nominations(h))[-1].status == "submitted"
    for data in ("my:o:x:1", "my:o:n", "my:o:n:abc", "my:zz:n:1", "my:l"):
        await h.forge_press(LAN_TG, data)
        assert "không còn hiệu lực" in h.core.calls("answerCallbackQuery")[-1]["text"], data


async def test_edit_and_resubmit_after_changes_were_requested(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    service = h.services.submissions
    item = await nominate(service, s)
    await service.set_status(
        ItemType.NOMINATION,
        item,
        SubmissionStatus.CHANGES_REQUESTED,
        actor=s.hoa,
        note="Xin bổ sung số liệu <cụ thể>",
    )
    await settle(h)
    notice = h.core.sent(LAN_TG)[-1]
    assert "cần bổ sung: Xin bổ sung số liệu <cụ thể>" in notice["text"]
    assert f"my:o:n:{item}" in str(notice["reply_markup"])  # the Open button
    replies = await h.press(LAN_TG, f"my:o:n:{item}")
    assert "Yêu cầu bổ sung" in replies[-1]["text"]
    assert "Ý kiến của người duyệt: Xin bổ sung số liệu &lt;cụ thể&gt;" in replies[-1]["text"]
    assert f"my:w:n:{item}" not in str(replies[-1]["reply_markup"])  # not pending: no withdraw
    replies = await h.press(LAN_TG, f"my:e:n:{item}")
    assert "Xin kiểm tra lại đề cử đã sửa" in replies[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ed:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:es:", ":ach"))
    await h.text(LAN_TG, "Bổ sung: 98% phiếu hợp lệ, sớm 5 ngày")
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:ed:"))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:es:", ":ev"))
    await h.feed(h.core.send_photo(LAN_TG))
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:evd:"))
    replies = await h.press(LAN_TG, btn(h, LAN_TG, "nom:ok:"))
    assert "Chờ duyệt" in replies[-1]["text"]
    await settle(h)
    assert "đã sửa của Anh/Chị đã được gửi lại" in h.last_text(LAN_TG)
    (n,) = await nominations(h)
    assert (n.status, n.achievements) == ("submitted", "Bổ sung: 98% phiếu hợp lệ, sớm 5 ngày")
    # the files can be shown again
    mark = h.core.mark()
    await h.press(LAN_TG, f"my:o:n:{item}")
    await h.press(LAN_TG, f"my:f:n:{item}")
    assert [r.method for r in h.core.requests[mark:]].count("sendPhoto") == 1


async def test_cancel_while_correcting_keeps_the_item(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    service = h.services.submissions
    item = await nominate(service, s)
    await service.set_status(ItemType.NOMINATION, item, SubmissionStatus.CHANGES_REQUESTED)
    await h.text(LAN_TG, "/my")
    await h.press(LAN_TG, f"my:o:n:{item}")
    await h.press(LAN_TG, f"my:e:n:{item}")
    await h.text(LAN_TG, "/cancel")
    (n,) = await nominations(h)
    assert n.status == "changes_requested"
    # /nominate starts a new nomination; the item is corrected again from /my
    replies = await h.text(LAN_TG, "/nominate")
    assert "cá nhân hay tập thể" in replies[-1]["text"]
    replies = await h.press(LAN_TG, f"my:o:n:{item}")
    assert f"my:e:n:{item}" in str(replies[-1]["reply_markup"])
    await h.press(LAN_TG, f"my:e:n:{item}")
    # and while correcting, /nominate offers to continue it
    replies = await h.text(LAN_TG, "/nominate")
    assert "đang chờ được sửa" in replies[-1]["text"]
    await h.press(LAN_TG, btn(h, LAN_TG, "nom:cont:"))
    assert "Gửi lại" in str(h.core.sent(LAN_TG)[-1]["reply_markup"])
    assert len(await nominations(h)) == 2  # the item and the new draft


async def test_good_deed_withdrawn_from_my(harness: BotHarness) -> None:
    h = harness
    s = await start(h)
    service = h.services.submissions
    deed = await service.start_deed(s.an)
    await service.set_deed_member(s.an, deed.id, s.binh_id)
    await service.set_deed_description(s.an, deed.id, "Helped a colleague move house")
    await service.set_deed_day(s.an, deed.id, service.today())
    await service.submit_deed(s.an, deed.id)
    await settle(h)
    replies = await h.text(AN_TG, "/my")
    assert "Pending review" in replies[-1]["text"]  # An reads English
    await h.press(AN_TG, f"my:o:d:{deed.id}")
    await h.press(AN_TG, f"my:w:d:{deed.id}")
    replies = await h.press(AN_TG, f"my:wy:d:{deed.id}")
    assert "Withdrawn" in replies[-1]["text"]
    await settle(h)
    assert "You withdrew your report of a good deed by Trần Văn Bình" in h.last_text(AN_TG)
