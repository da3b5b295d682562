"""Where a button may act (handlers/chats.py): the presses of a person's own things refused in
groups with a toast in the presser's language, the group setup buttons bound to their group, and
a scope without a declared policy refused at build time. The whole matrix of scopes, roles and
chats is in test_authz_matrix.py."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from telegram import Update
from telegram.ext import CallbackQueryHandler

from bot.keyboards import scope_pattern
from bot.texts import translator
from handlers.chats import POLICIES, Where, check_declared, policy
from storage.models import GroupChat, Member, Nomination
from tests.conftest import make_settings
from tests.harness import BotHarness
from tests.test_moderation_fixtures import ADMIN_TG, STAFF_TG, World, add_nomination, seed

GROUP = -100800
OTHER_GROUP = -100801
REFUSAL_VI = translator("vi").raw("Please use this in a private chat with me.")


async def world(h: BotHarness) -> World:
    w = await seed(h.services.db)
    for key, tg in w.tg.items():
        h.user(tg, key)
    async with h.services.db.transaction() as session:
        session.add(GroupChat(chat_id=GROUP, title="Cơ quan", language="vi"))
        session.add(GroupChat(chat_id=OTHER_GROUP, title="Chi bộ", language="vi"))
    for chat_id, title in ((GROUP, "Cơ quan"), (OTHER_GROUP, "Chi bộ")):
        await h.feed(h.core.send_text(ADMIN_TG, "/help", h.core.group(chat_id, title)))
    return w


def last_answer(h: BotHarness) -> dict[str, object]:
    return h.core.callback_answers[-1]


async def test_my_buttons_pressed_in_a_group_show_nothing_there(harness: BotHarness) -> None:
    """The reported leak: /my's buttons on a bot message in a group turned it into the pending
    nomination's card and posted its evidence photo there."""
    h = harness
    w = await world(h)
    photo = h.core.send_photo(STAFF_TG)["message"]["photo"][-1]["file_id"]
    n = await add_nomination(h.services.db, w, achievements="Thành tích chờ duyệt", photos=[photo])
    in_group = h.core.sent(GROUP)[-1]
    before = h.core.mark()
    for data in (f"my:o:n:{n}", f"my:f:n:{n}", f"my:w:n:{n}", f"my:wy:n:{n}", "my:l:0"):
        await h.forge_press(STAFF_TG, data, chat_id=GROUP)  # on the bot's /help answer
        answer = last_answer(h)
        assert answer["text"] == REFUSAL_VI and answer["show_alert"] is True
    assert h.replies_since(before) == []  # nothing sent, nothing edited, anywhere
    assert h.core.sent(GROUP)[-1] == in_group
    async with h.services.db.read() as session:
        assert await session.scalar(select(Nomination.status).where(Nomination.id == n)) == (
            "submitted"
        )
    # the same buttons in the author's private chat work
    await h.text(STAFF_TG, "/my")
    await h.press(STAFF_TG, f"my:o:n:{n}")
    assert "Thành tích chờ duyệt" in h.last_text(STAFF_TG)
    await h.press(STAFF_TG, f"my:f:n:{n}")
    assert "photo" in h.core.sent(STAFF_TG)[-1]


async def test_the_refusal_speaks_the_pressers_language(harness: BotHarness) -> None:
    h = harness
    await world(h)
    async with h.services.db.transaction() as session:
        staff = await session.scalar(select(Member).where(Member.telegram_user_id == STAFF_TG))
        assert staff is not None
        staff.language = "en"  # the group speaks Vietnamese; the toast is for the presser alone
    await h.forge_press(STAFF_TG, "set:notify:0", chat_id=GROUP)
    assert last_answer(h)["text"] == "Please use this in a private chat with me."
    async with h.services.db.read() as session:
        assert (
            await session.scalar(
                select(Member.notify_opt_out).where(Member.telegram_user_id == STAFF_TG)
            )
            is False
        )
    # /settings and /language are not answered in front of the group either
    replies = await h.feed(h.core.send_text(STAFF_TG, "/settings", GROUP))
    assert [r["text"] for r in replies] == [
        translator("vi").raw("Please use this in a private chat with me.")
    ]
    replies = await h.feed(h.core.send_text(STAFF_TG, "/language", GROUP))
    assert "reply_markup" not in replies[-1]


async def test_group_setup_buttons_act_only_on_their_own_group(harness: BotHarness) -> None:
    h = harness
    await world(h)
    async with h.services.db.read() as session:
        ids = dict(list(await session.execute(select(GroupChat.chat_id, GroupChat.id))))

    async def language(chat_id: int) -> str | None:
        async with h.services.db.read() as session:
            return await session.scalar(
                select(GroupChat.language).where(GroupChat.chat_id == chat_id)
            )

    # another group's button, replayed here: refused, neither group changes
    await h.forge_press(ADMIN_TG, f"grp:lang:{ids[OTHER_GROUP]}:en", chat_id=GROUP)
    assert last_answer(h)["text"] == REFUSAL_VI
    assert (await language(GROUP), await language(OTHER_GROUP)) == ("vi", "vi")
    # the list of all groups (their chat ids) is not shown in a group
    mark = h.core.mark()
    await h.forge_press(ADMIN_TG, "grp:list:0", chat_id=GROUP)
    assert last_answer(h)["text"] == REFUSAL_VI and h.replies_since(mark) == []
    # the group's own card works in the group, for an administrator
    await h.forge_press(ADMIN_TG, f"grp:lang:{ids[GROUP]}:en", chat_id=GROUP)
    assert (await language(GROUP), await language(OTHER_GROUP)) == ("en", "vi")


async def test_a_scope_without_a_declared_policy_stops_the_build() -> None:
    from bot.app import build_application

    app = build_application(make_settings())
    check_declared(app)  # every scope of the bot has its policy
    app.add_handler(CallbackQueryHandler(_nothing, pattern=scope_pattern("zz")))
    with pytest.raises(RuntimeError, match="zz"):
        check_declared(app)
    # and at run time an undeclared scope is private-only
    assert policy("zz").of("x") is Where.PRIVATE
    assert "zz" not in POLICIES


async def _nothing(update: Update, context: object) -> None:
    return None
