"""/announce: the scheduled announcements to the group chats, for administrators in private.

The list; each announcement's card with its schedule, its targets and state; a preview in the
private chat before anything goes out; pause, resume, delete; the last runs per group; and a
guided flow (kept in the database) to write a custom announcement: the text, when (once or
recurring, working days only or not), which groups, then a preview to confirm.
"""

from __future__ import annotations

from itertools import groupby

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.broadcast import nothing_text, render
from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, pager, rows, scope_pattern
from bot.services.announcements import (
    CUSTOM,
    MOVEMENT_NOTICES,
    SPOTLIGHT,
    TARGET_ALL,
    TARGET_OFFICE,
    TARGET_UNIT,
    TARGET_UNITS,
    WEEKLY_DIGEST,
    AnnouncementView,
    Content,
    RunStatus,
    RunView,
)
from bot.services.directory import Role, Viewer
from bot.services.errors import N_, NotAllowed
from bot.services.flows import Flow
from bot.services.schedule import describe_rule, parse_rule
from bot.texts import Translator, bold, escape, split_html, translator, truncate
from handlers.common import is_private, reply
from handlers.flows import route

S = "ann"
FLOW = "announce"
PER_PAGE = 8
NAMES = {
    WEEKLY_DIGEST: N_("Weekly digest of good deeds"),
    SPOTLIGHT: N_("Advanced exemplar spotlight"),
    MOVEMENT_NOTICES: N_("Emulation movement notices"),
}
OCCASION_NAMES = {
    "emulation_call": N_("Key date 11/6: the Call for Patriotic Emulation"),
    "statistics_day": N_("Key date 6/5: the statistics sector's day"),
}
TARGETS = {
    TARGET_ALL: N_("all groups"),
    TARGET_OFFICE: N_("the groups of the whole office"),
    TARGET_UNITS: N_("the unit groups"),
}
STATUS_MARKS = {
    RunStatus.SENT: "✅",
    RunStatus.CLAIMED: "🕓",
    RunStatus.SENDING: "📤",
    RunStatus.RETRY: "🔁",
    RunStatus.FAILED: "❌",
    RunStatus.SKIPPED: "➖",
}

register(Command("announce", N_("Scheduled announcements to the groups"), Role.ADMIN))


# --- texts ---------------------------------------------------------------------------------------


def announcement_name(t: Translator, view: AnnouncementView) -> str:
    if view.kind in NAMES:
        return t.raw(NAMES[view.kind])
    if view.occasion in OCCASION_NAMES:
        return t.raw(OCCASION_NAMES[view.occasion or ""])
    return view.title or t.raw("Announcement")


def target_text(t: Translator, view: AnnouncementView) -> str:
    if view.target in TARGETS:
        return t.raw(TARGETS[view.target])
    return t("the groups of {unit}", unit=view.target_unit_name or "?")


def _state(t: Translator, view: AnnouncementView) -> str:
    if not view.enabled:
        return t("⏸ paused")
    if view.finished:
        return t("✔ finished: it has gone out")
    return t("▶ active; next on {when}", when=view.next_run_at)


def _card_text(t: Translator, view: AnnouncementView) -> str:
    lines = [
        bold(announcement_name(t, view)),
        t("Schedule: {rule}", rule=view.describe(t.language)),
        t("Sent to: {target}", target=target_text(t, view)),
        _state(t, view),
    ]
    if view.kind == CUSTOM and view.body:
        lines += ["", escape(truncate(view.body, 600))]
    return "\n".join(lines)


def _known(t: Translator, text: str | None) -> str:
    """A reason the service gave (a message id when it is one of its own)."""
    return t.raw(text) if text else "-"


def _run_line(t: Translator, run: RunView) -> str:
    title = escape(run.group_title or str(run.chat_id))
    mark = STATUS_MARKS.get(run.status, "•")
    if run.status is RunStatus.SENT:
        what = t("sent")
    elif run.status is RunStatus.CLAIMED:
        what = t("waiting to be sent")
    elif run.status is RunStatus.SENDING:
        what = t("being sent")
    elif run.status is RunStatus.RETRY:
        what = t("will be tried again ({error})", error=truncate(run.last_error or "", 120))
    elif run.uncertain:
        mark = "❔"
        what = t("uncertain: it may have arrived; it was not sent again")
    elif run.status is RunStatus.FAILED:
        what = t("failed: {error}", error=truncate(run.last_error or "", 160))
    else:
        what = t("skipped: {reason}", reason=_known(t, run.last_error))
    return f"{mark} {title}: {what}"


# --- commands and buttons ------------------------------------------------------------------------


async def _say(
    update: Update,
    context: BotContext,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
    *,
    new: bool = False,
) -> None:
    """Answer in place (`reply`), or as a new message after an answer was given already."""
    chat = update.effective_chat
    if not new or chat is None:
        await reply(update, context, text, keyboard)
        return
    chunks = split_html(text)
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        await context.bot.send_message(chat.id, chunk, reply_markup=keyboard if last else None)


async def announce_command(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    if not is_private(update):
        if viewer.is_admin:
            await reply(
                update, context, context.t("Please use /announce in a private chat with me.")
            )
        return
    await _list(update, context, viewer, 0)


async def _list(
    update: Update, context: BotContext, viewer: Viewer, page: int, *, edit: bool = True
) -> None:
    t = context.t
    views = await context.services.announcements.list_announcements(viewer)
    pages = max(1, -(-len(views) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = views[page * PER_PAGE : (page + 1) * PER_PAGE]
    lines: list[str] = [bold(t.raw("Scheduled announcements"))]
    if not views:
        lines.append(t("There are no scheduled announcements yet."))
    for view in shown:
        lines.append(f"• {bold(announcement_name(t, view))}: {view.describe(t.language)}")
    layout = rows(
        button(
            (("⏸ " if not view.enabled else "") + announcement_name(t, view))[:60],
            S,
            "card",
            view.id,
        )
        for view in shown
    )
    await _say(
        update,
        context,
        "\n".join(lines),
        markup(*layout, pager(S, "list", page, pages), [button(t("New announcement"), S, "new")]),
        new=not edit,
    )


async def on_announce_button(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    data = decode(update.callback_query.data if update.callback_query else None)
    action = ACTIONS.get(data.action)
    if action is None:
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    await action(update, context, viewer, data)


async def act_list(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _list(update, context, viewer, data.num(0))


async def _card(
    update: Update, context: BotContext, view: AnnouncementView, *, edit: bool = True
) -> None:
    t = context.t
    toggle = (
        button(t("Pause"), S, "pause", view.id)
        if view.enabled
        else button(t("Resume"), S, "resume", view.id)
    )
    await _say(
        update,
        context,
        _card_text(t, view),
        markup(
            [button(t("Preview"), S, "prev", view.id), button(t("Last runs"), S, "runs", view.id)],
            [toggle, button(t("Delete"), S, "del", view.id)],
            [button(t("All announcements"), S, "list", 0)],
        ),
        new=not edit,
    )


async def act_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _card(update, context, await context.services.announcements.get(viewer, data.num(0)))


async def act_pause(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _card(update, context, await context.services.announcements.pause(viewer, data.num(0)))


async def act_resume(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _card(update, context, await context.services.announcements.resume(viewer, data.num(0)))


async def act_delete(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    view = await context.services.announcements.get(viewer, data.num(0))
    t = context.t
    await reply(
        update,
        context,
        t(
            "Delete {name}? Nothing more will be sent; the record of what was sent is kept.",
            name=bold(announcement_name(t, view)),
        ),
        markup(
            [button(t("Yes, delete"), S, "delok", view.id), button(t("No"), S, "card", view.id)]
        ),
    )


async def act_delete_ok(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.announcements.delete(viewer, data.num(0))
    await reply(update, context, context.t("The announcement was deleted."))
    await _list(update, context, viewer, 0, edit=False)


async def act_preview(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    """The announcement as a group of the whole office would see it now, as a new message."""
    view = await context.services.announcements.get(viewer, data.num(0))
    language = data.args[1] if len(data.args) > 1 and data.args[1] in ("vi", "en") else None
    t = (
        translator(language, context.services.settings.organisation.timezone)
        if language
        else context.t
    )
    content = await context.services.announcements.preview(viewer, view.id)
    other = "en" if t.language == "vi" else "vi"
    keyboard = markup(
        [button("English" if other == "en" else "Tiếng Việt", S, "prev", view.id, other)],
        [button(context.t("Back"), S, "card", view.id)],
    )
    await _send_preview(update, context, t, content, keyboard)


async def _send_preview(
    update: Update,
    context: BotContext,
    t: Translator,
    content: Content,
    keyboard: InlineKeyboardMarkup,
) -> None:
    header = context.t("👁 Preview: what a group of the whole office would receive now.")
    text = render(content, t) or nothing_text(t)
    await reply(update, context, f"{header}\n\n{text}", keyboard, edit=False)


async def act_runs(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    t = context.t
    view = await context.services.announcements.get(viewer, data.num(0))
    runs = await context.services.announcements.last_runs(viewer, view.id)
    lines: list[str] = [bold(t("Last runs of {name}", name=announcement_name(t, view)))]
    if not runs:
        lines.append(t("Nothing has gone out yet."))
    for slot, group in groupby(runs, key=lambda r: r.slot_at):
        lines += ["", bold(t("Slot {when}", when=slot))]
        lines += [_run_line(t, run) for run in group]
    await reply(
        update,
        context,
        "\n".join(lines),
        markup([button(t("Back"), S, "card", view.id)]),
        edit=len("\n".join(lines)) <= 4096,
    )


# --- writing a custom announcement ---------------------------------------------------------------


async def act_new(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    context.services.announcements.authorise(viewer)
    await context.services.flows.set(viewer.telegram_user_id, Flow(FLOW, "text", {}))
    t = context.t
    await reply(
        update,
        context,
        t(
            "Send me the text of the announcement (at most 4000 characters). Its first line is "
            "its name in my lists."
        )
        + "\n"
        + t("Send /cancel to stop."),
    )


def _rule_prompt(t: Translator) -> str:
    return "\n".join(
        [
            t("When should it go out? Type a schedule, for example:"),
            t("• once 20/11/2026 08:00 (one time)"),
            t("• weekly mon 08:00 (every Monday)"),
            t("• monthly first-workday 08:00 (the first working day of each month)"),
            t("• yearly 11/06 08:00 (every year on 11 June)"),
            t("Times are in the office's time zone. Send /cancel to stop."),
        ]
    )


@route(FLOW)
async def announce_text(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = context.require_viewer()
    message = update.effective_message
    if message is None or not message.text:
        if message is not None:
            await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    services = context.services
    if flow.step == "text":
        body = services.announcements.check_body(viewer, message.text)
        await services.flows.set(viewer.telegram_user_id, Flow(FLOW, "rule", {"body": body}))
        await reply(update, context, _rule_prompt(context.t))
    elif flow.step == "rule":
        rule, _first = services.announcements.check_rule(viewer, message.text)
        data = {**flow.data, "rule": rule.to_text()}
        if rule.skips_non_working_days:
            await services.flows.set(viewer.telegram_user_id, Flow(FLOW, "workdays", data))
            t = context.t
            await reply(
                update,
                context,
                t(
                    "{rule}. Only on working days? Weekends and public holidays, Tết included, "
                    "are then skipped.",
                    rule=describe_rule(rule, t.language),
                ),
                markup(
                    [button(t("Working days only"), S, "wd", 1)],
                    [button(t("Every day of the schedule"), S, "wd", 0)],
                ),
            )
        else:
            data["workdays"] = False
            await services.flows.set(viewer.telegram_user_id, Flow(FLOW, "target", data))
            await _ask_target(update, context)
    else:
        await message.reply_text(context.t("Please use the buttons above, or send /cancel."))


async def _flow(context: BotContext, viewer: Viewer, step: str) -> Flow:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != FLOW or flow.step != step:
        raise NotAllowed(N_("This button is no longer valid. Please start again."))
    return flow


async def act_workdays(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    flow = await _flow(context, viewer, "workdays")
    values = {**flow.data, "workdays": bool(data.num(0))}
    await context.services.flows.set(viewer.telegram_user_id, Flow(FLOW, "target", values))
    await _ask_target(update, context)


async def _ask_target(update: Update, context: BotContext) -> None:
    t = context.t
    await reply(
        update,
        context,
        t("Which groups should receive it?"),
        markup(
            [button(t.raw(TARGETS[TARGET_ALL]), S, "tg", TARGET_ALL)],
            [button(t.raw(TARGETS[TARGET_OFFICE]), S, "tg", TARGET_OFFICE)],
            [button(t.raw(TARGETS[TARGET_UNITS]), S, "tg", TARGET_UNITS)],
            [button(t("The groups of one unit…"), S, "tgu", 0)],
        ),
    )


async def act_target_units(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await _flow(context, viewer, "target")
    units = await context.services.directory.list_units()
    t = context.t
    if not units:
        await reply(update, context, t("There are no units yet."))
        return
    pages = max(1, -(-len(units) // PER_PAGE))
    page = min(max(data.num(0), 0), pages - 1)
    shown = units[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout = rows(button(("· " * u.depth + u.name)[:60], S, "tgx", u.id) for u in shown)
    await reply(
        update,
        context,
        t("The groups of which unit?"),
        markup(*layout, pager(S, "tgu", page, pages)),
    )


async def act_target(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _choose_target(update, context, viewer, data.word(0))


async def act_target_unit(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await _choose_target(update, context, viewer, f"{TARGET_UNIT}{data.num(0)}")


async def _choose_target(update: Update, context: BotContext, viewer: Viewer, target: str) -> None:
    flow = await _flow(context, viewer, "target")
    target = await context.services.announcements.check_target(viewer, target)
    values = {**flow.data, "target": target}
    await context.services.flows.set(viewer.telegram_user_id, Flow(FLOW, "confirm", values))
    t = context.t
    rule = parse_rule(str(values["rule"]))
    unit_name = None
    if target.startswith(TARGET_UNIT):
        unit_name = (await context.services.directory.get_unit(int(target[5:]))).name
    summary = [
        t(
            "Schedule: {rule}",
            rule=describe_rule(rule, t.language, working_days_only=bool(values.get("workdays"))),
        ),
        t(
            "Sent to: {target}",
            target=t.raw(TARGETS[target])
            if target in TARGETS
            else t("the groups of {unit}", unit=unit_name or "?"),
        ),
    ]
    preview = render(Content("custom", context.services.clock.now(), body=str(values["body"])), t)
    await reply(
        update,
        context,
        "\n".join([bold(t.raw("Check the announcement")), *summary, "", preview or ""]),
        markup([button(t("Save"), S, "save"), button(t("Cancel"), S, "stop")]),
    )


async def act_save(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    flow = await _flow(context, viewer, "confirm")
    view = await context.services.announcements.create_custom(
        viewer,
        body=str(flow.data["body"]),
        rule=str(flow.data["rule"]),
        working_days_only=bool(flow.data.get("workdays")),
        target=str(flow.data["target"]),
    )
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    await reply(update, context, context.t("The announcement was saved."))
    await _card(update, context, view, edit=False)


async def act_stop(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    await reply(update, context, context.t("Stopped. Nothing was saved."))


ACTIONS = {
    "list": act_list,
    "card": act_card,
    "pause": act_pause,
    "resume": act_resume,
    "del": act_delete,
    "delok": act_delete_ok,
    "prev": act_preview,
    "runs": act_runs,
    "new": act_new,
    "wd": act_workdays,
    "tg": act_target,
    "tgu": act_target_units,
    "tgx": act_target_unit,
    "save": act_save,
    "stop": act_stop,
}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("announce", announce_command),
        CallbackQueryHandler(on_announce_button, pattern=scope_pattern(S)),
    ]
