"""Group chats: the bot added, removed or moved to a supergroup; /groups for administrators, and
the buttons that link a group to a unit or change its language (in the group or in private).

Telegram reports membership in ``my_chat_member`` updates, which the gatekeeper passes through
with the person who made the change identified. Every button is re-authorised by the service.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import ChatMember, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, pager, rows, scope_pattern
from bot.services.directory import Role, Viewer
from bot.services.errors import N_
from bot.services.groups import GroupView, InactiveReason
from bot.texts import Translator, bold, code, translator
from handlers.common import is_private, reply

log = logging.getLogger("hoadep.groups")

S = "grp"
PER_PAGE = 8
IN_CHAT = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER)
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
REASONS = {
    InactiveReason.REMOVED: N_("the bot was removed from the group"),
    InactiveReason.KICKED: N_("the bot was banned from the group"),
    InactiveReason.FORBIDDEN: N_("Telegram does not let the bot write there"),
    InactiveReason.NOT_FOUND: N_("Telegram no longer knows the group"),
    InactiveReason.MERGED: N_("it became a supergroup registered on its own"),
}

register(Command("groups", N_("Group chats and their state"), Role.ADMIN, private=True))


def _inside(member: ChatMember) -> bool:
    if member.status in IN_CHAT:
        return True
    return member.status == ChatMemberStatus.RESTRICTED and bool(
        getattr(member, "is_member", False)
    )


# --- Telegram's reports --------------------------------------------------------------------------


async def on_my_chat_member(update: Update, context: BotContext) -> None:
    change = update.my_chat_member
    if change is None or change.chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        return
    was_in, is_in = _inside(change.old_chat_member), _inside(change.new_chat_member)
    if is_in and not was_in:
        await _added(update, context)
    elif was_in and not is_in:
        banned = change.new_chat_member.status == ChatMemberStatus.BANNED
        reason = InactiveReason.KICKED if banned else InactiveReason.REMOVED
        group = await context.services.groups.bot_left(change.chat.id, reason)
        if group is not None:
            log.info("group %s (%s) is inactive: %s", group.chat_id, group.title, reason)


async def _added(update: Update, context: BotContext) -> None:
    change = update.my_chat_member
    assert change is not None
    services = context.services
    user = change.from_user
    viewer = context.require_viewer()
    if not viewer.is_member and services.directory.is_bootstrap_admin(user.id):
        viewer = await services.directory.ensure_bootstrap_admin(
            user.id, user.full_name, user.language_code
        )
    outcome = await services.groups.bot_added(viewer, change.chat.id, change.chat.title)
    if not outcome.accepted or outcome.group is None:
        await _refuse(update, context)
        return
    group = outcome.group
    log.info("group %s (%s) registered by %s", group.chat_id, group.title, user.id)
    t = _group_translator(context, group)
    text: str = t(
        "🌸 Hello! I am Hoa Đẹp, the emulation movement assistant of {office}. This group will "
        "receive the weekly digest of good deeds, the advanced exemplars to learn from and the "
        "notices of the emulation movements.",
        office=services.settings.organisation.name,
    )
    text += "\n" + t("“Every good person, every good deed is a beautiful flower.”")
    text += "\n\n" + t(
        "An administrator can link this group to a unit or change its language with the "
        "buttons below."
    )
    with contextlib.suppress(TelegramError):
        await context.bot.send_message(group.chat_id, text, reply_markup=_setup_keyboard(t, group))


async def _refuse(update: Update, context: BotContext) -> None:
    change = update.my_chat_member
    assert change is not None
    t = translator(
        context.services.settings.organisation.default_language,
        context.services.settings.organisation.timezone,
    )
    log.info(
        "bot added to %s by %s, who is not an administrator: leaving",
        change.chat.id,
        change.from_user.id,
    )
    with contextlib.suppress(TelegramError):
        await context.bot.send_message(
            change.chat.id,
            t(
                "Sorry, only an administrator of Hoa Đẹp can add me to a group, so I am leaving. "
                "If this group should receive the emulation news, please ask an administrator "
                "to add me."
            ),
        )
    try:
        await context.bot.leave_chat(change.chat.id)
    except TelegramError as exc:
        log.warning("could not leave %s: %s", change.chat.id, exc)


async def on_migrate(update: Update, context: BotContext) -> None:
    """A group became a supergroup: the new chat id replaces the old one."""
    message = update.effective_message
    if message is None:
        return
    groups = context.services.groups
    if message.migrate_to_chat_id:
        old, new = message.chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, message.chat.id
    else:
        return
    group = await groups.migrated(old, new)
    if group is not None:
        log.info("group %s became the supergroup %s", old, new)


# --- /groups and the buttons ---------------------------------------------------------------------


def _group_translator(context: BotContext, group: GroupView) -> Translator:
    return translator(group.language, context.services.settings.organisation.timezone)


def _setup_keyboard(t: Translator, group: GroupView, *, back: bool = False) -> InlineKeyboardMarkup:
    other = "en" if group.language == "vi" else "vi"
    return markup(
        [
            button(t("Link to a unit"), S, "units", group.id, 0),
            button(t("Whole office"), S, "office", group.id),
        ],
        [button(LANGUAGE_NAMES[other], S, "lang", group.id, other)],
        [button(t("All groups"), S, "list", 0)] if back else [],
    )


def _title(t: Translator, group: GroupView) -> str:
    return group.title or t.raw("(untitled group)")


def _state_line(t: Translator, group: GroupView) -> str:
    if group.active:
        state = t("active")
    else:
        reason = REASONS.get(group.inactive_reason or "")
        state = t("inactive: {reason}", reason=t.raw(reason)) if reason else t("inactive")
    if group.scope_is_office:
        scope = t("whole office")
    else:
        scope = t("unit {unit}", unit=group.unit_name or "?")
    return f"{state} · {scope} · {LANGUAGE_NAMES.get(group.language, group.language)}"


def group_card(t: Translator, group: GroupView) -> str:
    lines = [bold(_title(t, group)), _state_line(t, group)]
    if group.scope_is_office:
        lines.append(t("It receives the announcements for the whole office."))
    else:
        lines.append(
            t("It receives the announcements for {unit}.", unit=bold(group.unit_name or "?"))
        )
    chat: str = t("Chat id: {id}", id=code(group.chat_id))
    if group.migrated_from_chat_id:
        chat += " " + t(
            "(it was {old} before it became a supergroup)", old=code(group.migrated_from_chat_id)
        )
    lines.append(chat)
    return "\n".join(lines)


async def groups_command(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    chat = update.effective_chat
    if chat is not None and not is_private(update):
        group = await context.services.groups.manage(viewer, chat_id=chat.id)
        t = _group_translator(context, group)
        await reply(update, context, group_card(t, group), _setup_keyboard(t, group))
        return
    await _list(update, context, viewer, 0)


async def _list(update: Update, context: BotContext, viewer: Viewer, page: int) -> None:
    t = context.t
    groups = await context.services.groups.list_groups(viewer)
    if not groups:
        await reply(
            update,
            context,
            t(
                "No group is registered yet. Add me to a group chat (as an administrator of Hoa "
                "Đẹp) and I will register it."
            ),
        )
        return
    pages = max(1, -(-len(groups) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = groups[page * PER_PAGE : (page + 1) * PER_PAGE]
    active = sum(1 for g in groups if g.active)
    lines = [
        bold(t.raw("Group chats")),
        t("{active} active of {total}.", active=active, total=len(groups)),
        "",
    ]
    for group in shown:
        mark = "🟢" if group.active else "⚪"
        lines.append(f"{mark} {bold(_title(t, group))}\n{_state_line(t, group)}")
    layout = rows(
        button(f"{'🟢' if g.active else '⚪'} {_title(t, g)}"[:60], S, "card", g.id) for g in shown
    )
    await reply(update, context, "\n".join(lines), markup(*layout, pager(S, "list", page, pages)))


async def on_group_button(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    data = decode(update.callback_query.data if update.callback_query else None)
    action = ACTIONS.get(data.action)
    if action is None:
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    await action(update, context, viewer, data)


def _where(update: Update, context: BotContext, group: GroupView) -> Translator:
    """In the group itself, the group's language; in private, the administrator's."""
    return context.t if is_private(update) else _group_translator(context, group)


async def _card(update: Update, context: BotContext, group: GroupView) -> None:
    t = _where(update, context, group)
    keyboard = _setup_keyboard(t, group, back=is_private(update))
    await reply(update, context, group_card(t, group), keyboard)


async def act_list(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _list(update, context, viewer, data.num(0))


async def act_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _card(update, context, await context.services.groups.manage(viewer, data.num(0)))


async def act_units(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    group = await context.services.groups.manage(viewer, data.num(0))
    t = _where(update, context, group)
    units = await context.services.directory.list_units()
    if not units:
        await reply(update, context, t("There are no units yet."))
        return
    pages = max(1, -(-len(units) // PER_PAGE))
    page = min(max(data.num(1), 0), pages - 1)
    shown = units[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout = rows(button(("· " * u.depth + u.name)[:60], S, "unit", group.id, u.id) for u in shown)
    back: list[InlineKeyboardButton] = [button(t("Back"), S, "card", group.id)]
    await reply(
        update,
        context,
        t("Which unit does the group {title} belong to?", title=bold(_title(t, group))),
        markup(*layout, pager(S, "units", page, pages, group.id), back),
    )


async def act_unit(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    group = await context.services.groups.link_unit(viewer, data.num(0), data.num(1))
    await _card(update, context, group)


async def act_office(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    group = await context.services.groups.set_office_wide(viewer, data.num(0))
    await _card(update, context, group)


async def act_lang(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    group = await context.services.groups.set_language(viewer, data.num(0), data.word(1))
    await _card(update, context, group)


ACTIONS = {
    "list": act_list,
    "card": act_card,
    "units": act_units,
    "unit": act_unit,
    "office": act_office,
    "lang": act_lang,
}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate),
        CommandHandler("groups", groups_command),
        CallbackQueryHandler(on_group_button, pattern=scope_pattern(S)),
    ]
