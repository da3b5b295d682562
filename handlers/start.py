"""/start (welcome, invitations, deep links), joining by request, /help, /language, /cancel,
/settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.app import set_menu_for
from bot.commands import for_viewer
from bot.context import BotContext
from bot.keyboards import button, decode, markup, pager, rows, scope_pattern
from bot.outbox import kick
from bot.services.directory import Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed
from bot.services.flows import Flow
from bot.services.text import clean_name
from bot.texts import HTML, bold, escape
from handlers.common import is_private, reply
from handlers.flows import route

# Other features add deep-link payload handlers here: prefix -> handler(update, context, rest).
DeepLink = Callable[[Update, BotContext, str], Awaitable[None]]
DEEP_LINKS: dict[str, DeepLink] = {}
UNITS_PER_PAGE = 8


def deep_link(prefix: str) -> Callable[[DeepLink], DeepLink]:
    def register(func: DeepLink) -> DeepLink:
        DEEP_LINKS[prefix] = func
        return func

    return register


async def start(update: Update, context: BotContext) -> None:
    if not is_private(update) or update.effective_user is None:
        await help_command(update, context)
        return
    user = update.effective_user
    viewer = context.require_viewer()
    payload = (context.args or [""])[0] if context.args else ""
    if payload:
        prefix, _, rest = payload.partition("-")
        if prefix in DEEP_LINKS and viewer.is_member:
            await DEEP_LINKS[prefix](update, context, rest)
            return
        if viewer.is_member:
            await reply(update, context, context.t("You are already a member. Welcome back!"))
            return
        joined = await context.services.directory.redeem_invite(
            payload, user.id, user.language_code
        )
        context.viewer = joined
        await context.services.flows.clear(user.id, "join")
        await set_menu_for(context.application, user.id, joined.role, joined.language)
        await reply(
            update,
            context,
            context.t(
                "Welcome, {name}! You have joined Hoa Đẹp. Send /help to see what you can do.",
                name=joined.full_name,
            ),
        )
        return
    if viewer.is_member:
        await reply(update, context, _welcome(context, viewer))
        return
    pending = await context.services.directory.pending_request_of(user.id)
    if pending is not None:
        await reply(
            update,
            context,
            context.t(
                "Your request to join ({name}, {unit}) is waiting for an administrator. "
                "I will tell you as soon as it is decided.",
                name=pending.full_name,
                unit=pending.unit_name or "—",
            ),
        )
        return
    await reply(
        update,
        context,
        context.t(
            "Hello! Hoa Đẹp serves the staff of {office}: “Mỗi người tốt, việc tốt là một bông "
            "hoa đẹp.”\n\nYou are not a member yet. If you were given an invitation link, open "
            "it. Otherwise you can ask an administrator for access.",
            office=context.services.settings.organisation.name,
        ),
        markup([button(context.t("Ask for access"), "join", "ask")]),
    )


def _welcome(context: BotContext, viewer: Viewer) -> HTML:
    return context.t(
        "Hello, {name}! “Mỗi người tốt, việc tốt là một bông hoa đẹp.”\nSend /help to see "
        "what you can do.",
        name=viewer.full_name or "",
    )


async def help_command(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    group = not is_private(update)
    lines = [bold(context.t("What I can do for you:")), ""]
    for command in for_viewer(viewer, group=group):
        lines.append(f"/{command.name} — {escape(context.t.raw(command.description))}")
    if not viewer.is_member and not group:
        lines += ["", context.t("Send /start to ask for access.")]
    await reply(update, context, "\n".join(lines))


async def language_command(update: Update, context: BotContext) -> None:
    if not is_private(update):  # a person's own setting: not in front of a group
        await reply(update, context, context.t("Please use this in a private chat with me."))
        return
    await reply(
        update,
        context,
        context.t("Choose your language:"),
        markup(
            [
                button("🇻🇳 Tiếng Việt", "lang", "set", "vi"),
                button("🇬🇧 English", "lang", "set", "en"),
            ]
        ),
    )


async def on_language(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    language = data.word(0)
    if language not in ("vi", "en"):
        raise InvalidInput(N_("Unknown language."))
    viewer = context.require_viewer()
    if viewer.is_member:
        await context.services.directory.set_language(viewer, language)
        await set_menu_for(context.application, viewer.telegram_user_id, viewer.role, language)
    else:
        if context.user_data is not None:
            context.user_data["language"] = language
    context.chat_language = language
    await reply(update, context, context.t("Language set: English."))


async def cancel(update: Update, context: BotContext) -> None:
    if update.effective_user is None:
        return
    cleared = await context.services.flows.clear(update.effective_user.id)
    await reply(
        update,
        context,
        context.t("Stopped. Nothing was sent.")
        if cleared
        else context.t("There is nothing to stop."),
    )


async def settings_command(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    if viewer.member_id is None:
        return
    if not is_private(update):  # a person's own setting: not in front of a group
        await reply(update, context, context.t("Please use this in a private chat with me."))
        return
    me = await context.services.directory.get_member(viewer.member_id)
    state = context.t("off") if me.notify_opt_out else context.t("on")
    await reply(
        update,
        context,
        context.t(
            "Messages when you are nominated or your nomination is approved: {state}.",
            state=bold(state),
        ),
        markup(
            [
                button(
                    context.t("Turn on") if me.notify_opt_out else context.t("Turn off"),
                    "set",
                    "notify",
                    "1" if me.notify_opt_out else "0",
                )
            ]
        ),
    )


async def on_settings(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    await context.services.directory.set_notifications(
        context.require_viewer(), opt_out=data.word(0) == "0"
    )
    await settings_command(update, context)


# --- joining by request ------------------------------------------------------------------------


async def on_join(update: Update, context: BotContext) -> None:
    query = update.callback_query
    data = decode(query.data if query else None)
    user = update.effective_user
    assert user is not None
    viewer = context.require_viewer()
    if viewer.is_member:
        await reply(update, context, context.t("You are already a member. Welcome back!"))
        return
    if data.action == "ask":
        await context.services.flows.set(user.id, Flow("join", "name"))
        await reply(
            update,
            context,
            context.t(
                "Please type your full name as it is known at the office (e.g. Nguyễn Thị "
                "Lan). Send /cancel to stop."
            ),
        )
        return
    flow = await context.services.flows.get(user.id)
    if flow is None or flow.name != "join" or "name" not in flow.data:
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    if data.action == "page":
        await _ask_unit(update, context, flow.data["name"], data.num(0))
    elif data.action == "unit":
        await context.services.directory.request_access(
            user.id, flow.data["name"], data.num(0), context.language
        )
        await context.services.flows.clear(user.id, "join")
        await reply(
            update,
            context,
            context.t(
                "Thank you. Your request has been sent to the administrators; I will tell "
                "you when it is decided."
            ),
        )
        kick(context.application)  # the administrators hear of it through the outbox


@route("join")
async def join_text(update: Update, context: BotContext, flow: Flow) -> None:
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    if flow.step != "name" or not message.text:
        await message.reply_text(context.t("Please use the buttons above, or send /cancel."))
        return
    name = clean_name(message.text)
    await context.services.flows.set(update.effective_user.id, Flow("join", "unit", {"name": name}))
    await _ask_unit(update, context, name, 0)


async def _ask_unit(update: Update, context: BotContext, name: str, page: int) -> None:
    units = await context.services.directory.list_units()
    pages = max(1, -(-len(units) // UNITS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = units[page * UNITS_PER_PAGE : (page + 1) * UNITS_PER_PAGE]
    layout = rows(button(u.name[:60], "join", "unit", u.id) for u in shown)
    nav = pager("join", "page", page, pages)
    text = context.t("{name}, which unit do you work in?", name=name)
    if not units:
        text = context.t("No units have been set up yet. Please ask an administrator.")
    await reply(update, context, text, markup(*layout, nav))


async def on_access_decision(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = context.require_viewer()
    if not is_private(update):  # a request shows a person's data: private chats only
        raise NotAllowed(N_("Please use /admin in a private chat with me."))
    request = await context.services.directory.decide_access_request(
        viewer, data.num(0), approve=data.action == "ok"
    )
    approved = data.action == "ok"
    outcome = context.t("approved") if approved else context.t("rejected")
    await reply(
        update,
        context,
        context.t(
            "The request of {name} ({unit}) was {outcome} by {admin}.",
            name=request.full_name,
            unit=request.unit_name or "—",
            outcome=outcome,
            admin=viewer.full_name or "",
        ),
    )
    if approved:
        member = await context.services.directory.identify(request.telegram_user_id)
        await set_menu_for(
            context.application, request.telegram_user_id, member.role, request.language
        )
    kick(context.application)  # the decision reaches them through the outbox


async def on_noop(update: Update, context: BotContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CallbackQueryHandler(on_noop, pattern=scope_pattern("nav")),
        CommandHandler("start", start),
        CommandHandler("help", help_command),
        CommandHandler("language", language_command),
        CommandHandler("cancel", cancel),
        CommandHandler("settings", settings_command),
        CallbackQueryHandler(on_language, pattern=scope_pattern("lang")),
        CallbackQueryHandler(on_settings, pattern=scope_pattern("set")),
        CallbackQueryHandler(on_join, pattern=scope_pattern("join")),
        CallbackQueryHandler(on_access_decision, pattern=scope_pattern("acc")),
    ]
