"""/audit (administrators, private chat): the audit log, newest first, filtered by item
("/audit nomination 12", "/audit good_deed 5", "/audit member 7") or by person ("/audit person
Nguyễn Văn A" or "/audit person 7"), with page buttons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import button, decode, markup, pager, scope_pattern
from bot.services.audit_view import AuditRow
from bot.services.directory import Page, Role, Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed
from bot.texts import HTML, Translator, bold, code, escape, truncate
from handlers.common import is_private, reply, toast

S = "au"
ALIASES = {
    "nomination": "nomination",
    "n": "nomination",
    "de-cu": "nomination",
    "good_deed": "good_deed",
    "gooddeed": "good_deed",
    "deed": "good_deed",
    "g": "good_deed",
    "member": "member",
    "m": "member",
    "unit": "unit",
    "u": "unit",
}
PERSON = {"person", "p", "who", "nguoi"}
ACTION_NAMES = {
    "nomination.approved": N_("approved the nomination"),
    "nomination.rejected": N_("rejected the nomination"),
    "nomination.changes_requested": N_("asked for changes to the nomination"),
    "good_deed.approved": N_("approved the good deed"),
    "good_deed.rejected": N_("rejected the good deed"),
    "good_deed.changes_requested": N_("asked for changes to the good deed"),
    "ballot.open": N_("opened the council's secret ballot"),
    "ballot.close": N_("the council's secret ballot closed"),
    "exemplar.revoke": N_("revoked the exemplar"),
}
TARGET_NAMES = {
    "nomination": N_("nomination"),
    "good_deed": N_("good deed"),
    "member": N_("member"),
    "unit": N_("unit"),
}
# details worth a line; anything secret never reaches the log (no vote choices are recorded)
SHOWN_DETAILS = (
    "reason",
    "ballot",
    "deadline",
    "council_size",
    "agree",
    "disagree",
    "abstain",
    "not_voted",
    "threshold",
    "approved",
)

register(Command("audit", N_("The audit log: who did what, and when"), Role.ADMIN))


def keyboard(*layout: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup | None:
    """An inline keyboard, or None when there is no button at all (Telegram refuses empty)."""
    return markup(*layout) if any(layout) else None


def _admin(context: BotContext) -> Viewer:
    viewer = context.require_viewer()
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))
    return viewer


def render_row(t: Translator, row: AuditRow) -> str:
    action = ACTION_NAMES.get(row.action)
    what = escape(t.raw(action)) if action else code(row.action)
    target = t.raw(TARGET_NAMES.get(row.target_type, row.target_type))
    ref = f"{escape(target)} #{row.target_id}" if row.target_id is not None else escape(target)
    who = escape(row.actor_name) if row.actor_name else escape(t("the system"))
    line = f"{escape(t.datetime(row.at))} · {bold(who)} · {what} · {ref}"
    extras = []
    for key in SHOWN_DETAILS:
        if key in row.details and row.details[key] not in (None, ""):
            value = row.details[key]
            if key == "reason":
                value = t.raw(str(value))
            extras.append(f"{key}={truncate(str(value), 120)}")
    if extras:
        line += "\n    " + escape("; ".join(extras))
    return line


async def audit_command(update: Update, context: BotContext) -> None:
    viewer = _admin(context)
    if not is_private(update):
        await reply(update, context, context.t("Please use /audit in a private chat with me."))
        return
    args = list(context.args or [])
    if not args:
        await _show(update, context, viewer, "all", 0, 0)
        return
    head = args[0].lower()
    if head in PERSON:
        rest = " ".join(args[1:]).strip()
        if rest.isdigit() and len(rest) <= 12:
            await _show_person(update, context, viewer, int(rest), 0)
            return
        people = await context.services.audit_view.find_people(viewer, rest)
        if len(people) == 1:
            await _show_person(update, context, viewer, people[0].id, 0)
            return
        if not people:
            await reply(update, context, context.t("Nobody found."))
            return
        layout = [[button(p.name[:60], S, "p", p.id, 0)] for p in people]
        await reply(update, context, context.t("Whose history?"), markup(*layout))
        return
    target = ALIASES.get(head)
    if target is None:
        raise InvalidInput(
            N_(
                "Write /audit, /audit nomination 12, /audit good_deed 5, /audit member 7 or "
                "/audit person <name>."
            )
        )
    target_id = 0
    if len(args) > 1:
        if not args[1].isdigit() or len(args[1]) > 12:
            raise InvalidInput(N_("The number “{value}” is not valid."), value=args[1][:20])
        target_id = int(args[1])
    await _show(update, context, viewer, target, target_id, 0)


async def _render(
    update: Update,
    context: BotContext,
    title: str,
    page: Page[AuditRow],
    action: str,
    args: tuple[Any, ...],
) -> None:
    t = context.t
    lines: list[str] = [bold(title)]
    if not page.items:
        lines.append(t("Nothing recorded."))
    lines += [render_row(t, row) for row in page.items]
    layout: list[list[InlineKeyboardButton]] = [pager(S, action, page.page, page.pages, *args)]
    await reply(update, context, HTML("\n".join(lines)), keyboard(*layout))


async def _show(
    update: Update, context: BotContext, viewer: Viewer, target: str, target_id: int, page: int
) -> None:
    result = await context.services.audit_view.entries(
        viewer,
        target_type=None if target == "all" else target,
        target_id=target_id or None,
        page=page,
    )
    t = context.t
    if target == "all":
        title = t("Audit log")
    elif target_id:
        title = t(
            "Audit log: {target} #{id}",
            target=t.raw(TARGET_NAMES.get(target, target)),
            id=target_id,
        )
    else:
        title = t("Audit log: {target}", target=t.raw(TARGET_NAMES.get(target, target)))
    await _render(update, context, title, result, "l", (target, target_id))


async def _show_person(
    update: Update, context: BotContext, viewer: Viewer, member_id: int, page: int
) -> None:
    person = await context.services.audit_view.person(viewer, member_id)
    if person is None:
        await reply(update, context, context.t("Nobody found."))
        return
    result = await context.services.audit_view.entries(viewer, person_id=member_id, page=page)
    title = context.t("Audit log: {name}", name=person.name)
    await _render(update, context, title, result, "p", (member_id,))


async def on_audit(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = _admin(context)
    if not is_private(update):
        await toast(update, context.t("Please use this in a private chat with me."), alert=True)
        return
    if data.action == "l":
        target = data.word(0)
        if target != "all" and target not in ALIASES.values():
            raise InvalidInput(N_("Unknown kind of item."))
        await _show(update, context, viewer, target, data.num(1), data.num(2))
    elif data.action == "p":
        await _show_person(update, context, viewer, data.num(0), data.num(1))
    else:
        await toast(
            update, context.t("This button is no longer valid. Please start again."), alert=True
        )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("audit", audit_command),
        CallbackQueryHandler(on_audit, pattern=scope_pattern(S)),
    ]
