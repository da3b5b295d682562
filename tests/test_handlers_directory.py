"""Joining, help, language and administration through process_update (offline Bot API)."""

from __future__ import annotations

import re

from tests.harness import ADMIN_ID, BotHarness

STRANGER = 2001


async def _setup_units(h: BotHarness) -> dict[str, int]:
    admin = await h.services.directory.identify(ADMIN_ID)
    if not admin.is_member:
        admin = await h.services.directory.ensure_bootstrap_admin(ADMIN_ID, "Trần Quản Trị", "vi")
    a = await h.services.directory.add_unit(admin, "Phòng Tổng hợp")
    b = await h.services.directory.add_unit(admin, "Chi cục Thống kê khu vực I")
    return {"a": a.id, "b": b.id}


async def test_stranger_gets_polite_refusal_and_no_data(harness: BotHarness) -> None:
    h = harness
    await _setup_units(h)
    h.user(STRANGER, "Lạ")
    replies = await h.text(STRANGER, "/admin")
    assert len(replies) == 1
    assert "chưa là thành viên" in replies[0]["text"]
    replies = await h.text(STRANGER, "xin chào")
    assert "chưa là thành viên" in replies[0]["text"]
    await h.forge_press(STRANGER, "adm:units:0")
    answers = h.core.calls("answerCallbackQuery")
    assert answers and "chưa là thành viên" in answers[-1]["text"]


async def test_access_request_approved_by_admin(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    h.user(STRANGER, "Lan", language="vi")
    replies = await h.text(STRANGER, "/start")
    assert "Đề nghị tham gia" in str(replies[-1]["reply_markup"])
    await h.press(STRANGER, "join:ask")
    replies = await h.text(STRANGER, "<b>Nguyễn</b> Thị Lan 🌸")
    assert "&lt;b&gt;Nguyễn&lt;/b&gt; Thị Lan 🌸" in replies[-1]["text"]  # escaped
    replies = await h.press(STRANGER, f"join:unit:{units['a']}")
    assert any("đã được gửi tới quản trị viên" in r["text"] for r in replies)
    admin_msg = h.core.sent(ADMIN_ID)[-1]
    assert "Yêu cầu tham gia mới" in admin_msg["text"]
    request_id = re.search(r"acc:ok:(\d+)", str(admin_msg["reply_markup"])).group(1)  # type: ignore[union-attr]

    # a second press of /start while pending says so
    replies = await h.text(STRANGER, "/start")
    assert "đang chờ" in replies[-1]["text"]

    await h.press(ADMIN_ID, f"acc:ok:{request_id}")
    assert "chấp thuận" in h.last_text(ADMIN_ID)
    assert "đã được chấp thuận" in h.last_text(STRANGER)
    member = await h.services.directory.identify(STRANGER)
    assert member.is_member and member.unit_id == units["a"]
    assert member.full_name == "<b>Nguyễn</b> Thị Lan 🌸"
    # the approval cannot be replayed
    await h.forge_press(ADMIN_ID, f"acc:no:{request_id}")
    assert "đã được xử lý" in h.core.calls("answerCallbackQuery")[-1]["text"]


async def test_admin_invites_member_who_joins_by_deep_link(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    await h.text(ADMIN_ID, "/admin")
    await h.press(ADMIN_ID, "adm:madd")
    await h.text(ADMIN_ID, "Phạm Văn Đức")
    await h.press(ADMIN_ID, f"adm:maddu:u:{units['b']}")
    replies = await h.press(ADMIN_ID, "adm:maddr:c")
    assert any("Phạm Văn Đức" in r.get("text", "") for r in replies)
    member_button = next(b for b in h.buttons(ADMIN_ID) if b.startswith("adm:minv:"))
    await h.press(ADMIN_ID, member_button)
    link = re.search(r"start=([A-Za-z0-9_-]+)", h.last_text(ADMIN_ID))
    assert link, h.last_text(ADMIN_ID)
    token = link.group(1)

    newcomer = 3001
    h.user(newcomer, "Đức")
    replies = await h.text(newcomer, f"/start {token}")
    assert "Chào mừng Phạm Văn Đức" in replies[-1]["text"]
    viewer = await h.services.directory.identify(newcomer)
    assert viewer.role is not None and viewer.role.value == "council"
    # their menu was set for their role
    scoped = [
        c
        for c in h.core.calls("setMyCommands")
        if '"chat_id": 3001' in str(c.get("scope"))
        or (isinstance(c.get("scope"), dict) and c["scope"].get("chat_id") == newcomer)
    ]
    assert scoped

    other = 3002
    h.user(other, "Khác")
    replies = await h.text(other, f"/start {token}")
    assert "đã được sử dụng" in replies[-1]["text"]
    assert not (await h.services.directory.identify(other)).is_member


async def test_bad_invite_tokens_are_answered(harness: BotHarness) -> None:
    h = harness
    await _setup_units(h)
    h.user(STRANGER, "Lạ")
    for payload in ("abc", "x" * 200, "AAAAAAAAAAAAAAAAAAAAAAAA", "<b>hi</b>"):
        replies = await h.text(STRANGER, f"/start {payload}")
        assert "không hợp lệ" in replies[-1]["text"], payload
    assert not (await h.services.directory.identify(STRANGER)).is_member


async def test_help_differs_by_role(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    admin = await h.services.directory.identify(ADMIN_ID)
    await h.services.directory.add_member(admin, "Cán Bộ", units["a"], telegram_user_id=4001)
    h.user(4001, "Cán")
    h.user(STRANGER, "Lạ")
    staff_help = (await h.text(4001, "/help"))[-1]["text"]
    admin_help = (await h.text(ADMIN_ID, "/help"))[-1]["text"]
    stranger_help = (await h.text(STRANGER, "/help"))[-1]["text"]
    assert "/admin" in admin_help and "/admin" not in staff_help
    assert "/settings" in staff_help and "/settings" not in stranger_help
    assert "/start" in stranger_help


async def test_language_switch(harness: BotHarness) -> None:
    h = harness
    await _setup_units(h)
    await h.text(ADMIN_ID, "/language")
    await h.press(ADMIN_ID, "lang:set:en")
    assert h.last_text(ADMIN_ID) == "Language set: English."
    replies = await h.text(ADMIN_ID, "/help")
    assert "What I can do for you" in replies[-1]["text"]
    await h.forge_press(ADMIN_ID, "lang:set:xx")
    assert (await h.services.directory.identify(ADMIN_ID)).language == "en"


async def test_units_are_managed_with_buttons(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    await h.text(ADMIN_ID, "/admin")
    await h.press(ADMIN_ID, "adm:units:0")
    await h.press(ADMIN_ID, f"adm:unit:{units['a']}")
    await h.press(ADMIN_ID, f"adm:uren:{units['a']}")
    replies = await h.text(ADMIN_ID, "Phòng Tổng hợp & Hành chính")
    assert "Tên cũ" in h.last_text(ADMIN_ID)
    assert "Phòng Tổng hợp &amp; Hành chính" in replies[-1]["text"]  # escaped on the wire
    assert "Phòng Tổng hợp & Hành chính" in h.last_text(ADMIN_ID)  # shown literally
    await h.press(ADMIN_ID, "adm:units:0")
    await h.press(ADMIN_ID, f"adm:unit:{units['b']}")
    await h.press(ADMIN_ID, f"adm:umg:{units['b']}:0")
    await h.press(ADMIN_ID, f"adm:umgask:{units['b']}:{units['a']}")
    await h.press(ADMIN_ID, f"adm:umgok:{units['b']}:{units['a']}")
    remaining = await h.services.directory.list_units()
    assert [u.id for u in remaining] == [units["a"]]
    # adding a unit takes a name, then a place in the tree
    await h.press(ADMIN_ID, "adm:units:0")
    await h.press(ADMIN_ID, "adm:uadd")
    await h.text(ADMIN_ID, "Phòng Dân số")
    await h.press(ADMIN_ID, f"adm:upar:{units['a']}")
    tree = await h.services.directory.list_units()
    assert [(u.name, u.depth) for u in tree] == [
        ("Phòng Tổng hợp & Hành chính", 0),
        ("Phòng Dân số", 1),
    ]


async def test_forged_and_malformed_buttons_change_nothing(harness: BotHarness) -> None:
    h = harness
    units = await _setup_units(h)
    admin = await h.services.directory.identify(ADMIN_ID)
    await h.services.directory.add_member(admin, "Cán Bộ", units["a"], telegram_user_id=4001)
    h.user(4001, "Cán")
    for data in (f"adm:udel:{units['a']}", "adm:mrole:1:a", "adm:umgok:2:1", "acc:ok:1"):
        await h.forge_press(4001, data)
        assert "Chỉ quản trị viên" in h.core.calls("answerCallbackQuery")[-1]["text"], data
    for data in (
        "adm",
        "adm:unit:notanumber",
        "adm:unit:" + "9" * 40,
        "💥:x",
        "adm:zzz:1",
        "x" * 64,
        "unknown:thing",
    ):
        await h.forge_press(ADMIN_ID, data)
        assert h.core.calls("answerCallbackQuery"), data
    assert len(await h.services.directory.list_units()) == 2
    staff = await h.services.directory.identify(4001)
    assert staff.role is not None and staff.role.value == "staff"


async def test_unregistered_group_is_ignored_and_anonymous_admin_refused(
    harness: BotHarness,
) -> None:
    h = harness
    await _setup_units(h)
    group = h.core.group(-100500, "Nhóm lạ")
    mark = h.core.mark()
    await h.feed(h.core.send_text(ADMIN_ID, "/help", group))
    assert not h.replies_since(mark)
    # once registered (the groups feature does that), an anonymous admin cannot act
    from storage.models import GroupChat

    async with h.services.db.transaction() as session:
        session.add(GroupChat(chat_id=-100500, title="Nhóm", language="vi"))
    replies = await h.feed(h.core.send_as_anonymous_admin(group, "/admin"))
    assert "tài khoản cá nhân" in replies[-1]["text"]


async def test_flood_is_answered_once(harness: BotHarness) -> None:
    h = harness
    await _setup_units(h)
    h.user(4002, "Nhanh")
    answers = []
    for _ in range(30):
        answers += await h.text(4002, "/help")
    slow = [a for a in answers if "quá nhanh" in a.get("text", "")]
    assert len(slow) == 1
