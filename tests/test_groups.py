"""Group chats through process_update (offline Bot API), on SQLite and PostgreSQL: the bot added
by an administrator or by anyone else, removed, moved to a supergroup; /groups and the buttons
that link a group to a unit and set its language."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import ADMIN_ID, BotHarness
from tests.test_announcements_world import STAFF_TG, World, make_world

GROUP = -100500
STRANGER = 3001


@pytest.fixture
async def world(harness: BotHarness) -> World:
    harness.user(STAFF_TG, "Lan")
    harness.user(STRANGER, "Người lạ")
    return await make_world(harness.services.db)


async def add(h: BotHarness, by: int, chat: int = GROUP, **kw: Any) -> list[dict[str, Any]]:
    if chat not in h.core.chats:
        h.core.group(chat, "Phòng Thống kê Kinh tế", bot_status="left", **kw)
    return await h.feed(h.core.add_bot_to_group(by, chat))


async def test_an_administrator_adds_the_bot(harness: BotHarness) -> None:
    """A configured admin who never wrote to the bot: the group is registered all the same."""
    h = harness
    sent = await add(h, ADMIN_ID)
    group = await h.services.groups.find(GROUP)
    assert group is not None and group.active and group.office_wide and group.language == "vi"
    (hello,) = sent
    assert hello["chat_id"] == GROUP and "Xin chào" in hello["text"]
    assert f"grp:units:{group.id}:0" in h.buttons(GROUP)
    assert f"grp:lang:{group.id}:en" in h.buttons(GROUP)
    assert not h.core.calls("leaveChat")


async def test_anyone_else_is_told_why_and_the_bot_leaves(
    harness: BotHarness, world: World
) -> None:
    h = harness
    for who, chat in ((STRANGER, GROUP), (STAFF_TG, GROUP - 1)):
        sent = await add(h, who, chat)
        assert "chỉ quản trị viên" in sent[0]["text"]
        assert h.core.calls("leaveChat")[-1]["chat_id"] == chat
        assert await h.services.groups.find(chat) is None
        assert h.core.chats[chat].bot_status == "left"
        # Telegram then reports that the bot left: nothing to do
        assert await h.feed(h.core.pending_updates[-1]) == []


async def test_removed_or_banned_groups_become_inactive_until_added_again(
    harness: BotHarness, world: World
) -> None:
    h = harness
    await add(h, ADMIN_ID)
    await h.feed(h.core.remove_bot_from_group(ADMIN_ID, GROUP))
    group = await h.services.groups.find(GROUP)
    assert group is not None and not group.active
    assert (await h.services.groups.get(group.id)).inactive_reason == "removed"
    sent = await add(h, ADMIN_ID)
    again = await h.services.groups.get(group.id)
    assert again.active and again.inactive_reason is None and "Xin chào" in sent[0]["text"]

    h.core.group(GROUP - 7, "Siêu nhóm", type="supergroup", bot_status="left")
    await add(h, ADMIN_ID, GROUP - 7)
    await h.feed(h.core.remove_bot_from_group(ADMIN_ID, GROUP - 7))
    banned = await h.services.groups.find(GROUP - 7)
    assert banned is not None
    assert (await h.services.groups.get(banned.id)).inactive_reason == "kicked"


async def test_an_upgrade_to_a_supergroup_keeps_the_group(
    harness: BotHarness, world: World
) -> None:
    h = harness
    await add(h, ADMIN_ID)
    before = await h.services.groups.find(GROUP)
    assert before is not None
    await h.feed(h.core.migrate_group(GROUP, -100_999, ADMIN_ID))
    moved = await h.services.groups.get(before.id)
    assert moved.chat_id == -100_999 and moved.migrated_from_chat_id == GROUP and moved.active
    assert await h.services.groups.find(GROUP) is None
    await h.feed(h.core.pending_updates[-1])  # the message in the new chat: nothing changes
    assert (await h.services.groups.get(before.id)).chat_id == -100_999


async def test_an_administrator_links_the_group_in_the_group(
    harness: BotHarness, world: World
) -> None:
    h = harness
    await add(h, ADMIN_ID)
    group = await h.services.groups.find(GROUP)
    assert group is not None
    await h.press(
        ADMIN_ID, f"grp:units:{group.id}:0", h.message_with_button(GROUP, f"grp:units:{group.id}:0")
    )
    assert "thuộc đơn vị nào" in h.last_text(GROUP)
    unit = world.units["a"]
    await h.press(
        ADMIN_ID,
        f"grp:unit:{group.id}:{unit}",
        h.message_with_button(GROUP, f"grp:unit:{group.id}:{unit}"),
    )
    linked = await h.services.groups.get(group.id)
    assert linked.unit_id == unit and not linked.office_wide
    assert "Phòng Thống kê Kinh tế" in h.last_text(GROUP)
    await h.press(
        ADMIN_ID, f"grp:office:{group.id}", h.message_with_button(GROUP, f"grp:office:{group.id}")
    )
    assert (await h.services.groups.get(group.id)).office_wide


async def test_only_administrators_may_change_a_group(harness: BotHarness, world: World) -> None:
    h = harness
    await add(h, ADMIN_ID)
    group = await h.services.groups.find(GROUP)
    assert group is not None
    message = h.message_with_button(GROUP, f"grp:lang:{group.id}:en")
    await h.feed(h.core.press_button(STAFF_TG, message, f"grp:lang:{group.id}:en"))
    answer = h.core.callback_answers[-1] if h.core.callback_answers else {}
    assert "quản trị viên" in str(answer.get("text"))
    assert (await h.services.groups.get(group.id)).language == "vi"
    await h.forge_press(STAFF_TG, f"grp:unit:{group.id}:{world.units['b']}", GROUP)
    assert (await h.services.groups.get(group.id)).unit_id is None


async def test_each_group_has_its_own_language(harness: BotHarness, world: World) -> None:
    h = harness
    await add(h, ADMIN_ID)
    group = await h.services.groups.find(GROUP)
    assert group is not None
    message = h.message_with_button(GROUP, f"grp:lang:{group.id}:en")
    await h.press(ADMIN_ID, f"grp:lang:{group.id}:en", message)
    assert (await h.services.groups.get(group.id)).language == "en"
    assert "It receives the announcements for the whole office." in h.last_text(GROUP)
    assert f"grp:lang:{group.id}:vi" in h.buttons(GROUP)


async def test_groups_command(harness: BotHarness, world: World) -> None:
    h = harness
    sent = await h.text(ADMIN_ID, "/groups")
    assert "Chưa có nhóm nào" in sent[-1]["text"]
    await add(h, ADMIN_ID)
    h.core.group(GROUP - 1, "Chi cục Đông Anh", bot_status="left")
    await add(h, ADMIN_ID, GROUP - 1)
    await h.feed(h.core.remove_bot_from_group(ADMIN_ID, GROUP - 1))
    sent = await h.text(ADMIN_ID, "/groups")
    text = sent[-1]["text"]
    assert "1 nhóm đang hoạt động / 2" in text
    assert "Phòng Thống kê Kinh tế" in text and "Chi cục Đông Anh" in text
    assert "đã bị xoá khỏi nhóm" in text
    group = await h.services.groups.find(GROUP - 1)
    assert group is not None
    await h.press(ADMIN_ID, f"grp:card:{group.id}")
    assert str(GROUP - 1) in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"grp:units:{group.id}:0")
    await h.press(ADMIN_ID, f"grp:unit:{group.id}:{world.units['b']}")
    assert "Chi cục Thống kê khu vực Đông Anh" in h.last_text(ADMIN_ID)
    # staff may not list the groups; in a group an administrator sees that group's card
    sent = await h.text(STAFF_TG, "/groups")
    assert "quản trị viên" in sent[-1]["text"]
    sent = await h.text(ADMIN_ID, "/groups", chat=GROUP)
    assert "Phòng Thống kê Kinh tế" in sent[-1]["text"] and sent[-1]["chat_id"] == GROUP
