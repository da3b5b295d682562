"""/my: the nominations and good-deed reports a person sent, their status, withdrawing a pending
one and correcting one when changes were requested. Also the cards that show a nomination or a
report in full (used by /nominate and /gooddeed for their summaries)."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any, TypeGuard

from telegram import InlineKeyboardButton, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import BadCallback, Callback, button, decode, markup, pager, scope_pattern
from bot.services.directory import Role
from bot.services.errors import N_
from bot.services.flows import Flow
from bot.services.submissions import (
    GoodDeedView,
    ItemType,
    MyItem,
    NominationView,
    NomineeKind,
    SubmissionStatus,
)
from bot.texts import HTML, Translator, bold, escape, truncate
from handlers.common import is_private, reply

S = "my"
NOMINATE_FLOW = "nominate"
GOODDEED_FLOW = "gooddeed"

register(Command("my", N_("Your nominations and good-deed reports"), Role.STAFF))

STATUS_LABELS = {
    SubmissionStatus.DRAFT: N_("Draft"),
    SubmissionStatus.SUBMITTED: N_("Pending review"),
    SubmissionStatus.IN_REVIEW: N_("Being voted on"),
    SubmissionStatus.APPROVED: N_("Approved"),
    SubmissionStatus.REJECTED: N_("Rejected"),
    SubmissionStatus.CHANGES_REQUESTED: N_("Changes requested"),
    SubmissionStatus.WITHDRAWN: N_("Withdrawn"),
}
KIND_LABELS = {
    NomineeKind.INDIVIDUAL: N_("individual"),
    NomineeKind.COLLECTIVE: N_("collective"),
}
ICONS = {ItemType.NOMINATION: "🏅", ItemType.GOOD_DEED: "🌸"}


# --- the flows' button keys --------------------------------------------------------------------
# A flow's buttons carry "<item id>.<nonce>": the nonce is new for every flow, so a button of a
# cancelled flow never matches a later one (SQLite hands a deleted draft's id out again).


def new_flow_data(item_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "n": secrets.token_hex(3), **{k: v for k, v in extra.items() if v}}


def key(flow: Flow) -> str:
    return f"{flow.data['id']}.{flow.data.get('n', '0')}"


def parse_key(word: str) -> tuple[int, str | None]:
    head, _, nonce = word.partition(".")
    if not head.isdigit() or len(head) > 12:
        raise BadCallback("not a flow key")
    return int(head), nonce or None


def is_current(flow: Flow | None, name: str, item_id: int, nonce: str | None) -> TypeGuard[Flow]:
    return (
        flow is not None
        and flow.name == name
        and flow.data.get("id") == item_id
        and flow.data.get("n", "0") == nonce
    )


def status_label(t: Translator, status: SubmissionStatus) -> str:
    return t.raw(STATUS_LABELS[status])


def kind_label(t: Translator, kind: NomineeKind) -> str:
    return t.raw(KIND_LABELS[kind])


def label(text: str, limit: int = 60) -> str:
    """A button label: one line, short."""
    return truncate(" ".join(text.split()), limit)


def _block(title: str, body: str | None) -> list[str]:
    if not body:
        return []
    return [bold(title), escape(body)]


def nomination_card(t: Translator, n: NominationView) -> HTML:
    """A nomination in full; every value typed by a person is escaped."""
    if n.status is SubmissionStatus.DRAFT:
        head = t("Nomination (draft)")
    else:
        head = t("Nomination no. {id}", id=n.id)
    lines: list[str] = [f"🏅 {bold(head)}"]
    if n.status is not SubmissionStatus.DRAFT:
        lines.append(t("Status: {status}", status=bold(status_label(t, n.status))))
    nominee = n.nominee_name or "—"
    if n.kind is NomineeKind.INDIVIDUAL and n.unit_name:
        lines.append(
            t(
                "Nominee ({kind}): {name}, {unit}",
                kind=kind_label(t, n.kind),
                name=nominee,
                unit=n.unit_name,
            )
        )
    else:
        lines.append(t("Nominee ({kind}): {name}", kind=kind_label(t, n.kind), name=nominee))
    lines.append(t("Movement: {name}", name=n.movement_name or "—"))
    lines.append(t("Field: {name}", name=n.field_name or "—"))
    if n.criteria:
        lines.append(bold(t("Criteria met:")))
        lines += [f"• {escape(c.text)}" for c in n.criteria]
    lines += _block(t("Achievements:"), n.achievements)
    lines += _block(t("Good practices worth replicating:"), n.good_practices)
    lines.append(t("Evidence: {count} file(s)", count=len(n.attachments)))
    if n.submitted_at is not None:
        lines.append(t("Sent: {at}", at=n.submitted_at))
    if n.review_note:
        lines.append(t("Reviewer's note: {note}", note=t.raw(n.review_note)))
    return HTML("\n".join(lines))


def deed_card(t: Translator, d: GoodDeedView) -> HTML:
    if d.status is SubmissionStatus.DRAFT:
        head = t("Good deed report (draft)")
    else:
        head = t("Good deed report no. {id}", id=d.id)
    lines: list[str] = [f"🌸 {bold(head)}"]
    if d.status is not SubmissionStatus.DRAFT:
        lines.append(t("Status: {status}", status=bold(status_label(t, d.status))))
    who = d.subject_name or "—"
    if d.kind is NomineeKind.INDIVIDUAL and d.unit_name:
        lines.append(t("Who: {name}, {unit}", name=who, unit=d.unit_name))
    else:
        lines.append(t("Who: {name}", name=who))
    lines += _block(t("What happened:"), d.description)
    lines.append(t("When: {date}", date=d.occurred_on) if d.occurred_on else t("When: —"))
    if d.place:
        lines.append(t("Where: {place}", place=d.place))
    lines.append(t("Photo: attached") if d.attachments else t("Photo: none"))
    if d.submitted_at is not None:
        lines.append(t("Sent: {at}", at=d.submitted_at))
    if d.review_note:
        lines.append(t("Reviewer's note: {note}", note=t.raw(d.review_note)))
    return HTML("\n".join(lines))


# --- /my ---------------------------------------------------------------------------------------


async def my_command(update: Update, context: BotContext) -> None:
    if not is_private(update):
        await reply(update, context, context.t("Please use /my in a private chat with me."))
        return
    await _list(update, context, 0)


def _item_line(t: Translator, item: MyItem) -> str:
    return t(
        "{icon} no. {id} · {name} · {status} · {at}",
        icon=ICONS[item.type],
        id=item.id,
        name=item.name or "—",
        status=status_label(t, item.status),
        at=item.at.astimezone(t.tz).date(),
    )


async def _list(update: Update, context: BotContext, page_no: int) -> None:
    viewer = context.require_viewer()
    page = await context.services.submissions.my_items(viewer, page_no)
    t = context.t
    if not page.total:
        await reply(
            update,
            context,
            t(
                "You have not sent any nomination or good-deed report yet. Send /nominate to "
                "nominate an advanced exemplar or /gooddeed to report a good deed."
            ),
        )
        return
    lines = [bold(t("Your nominations and reports ({count})", count=page.total)), ""]
    lines += [_item_line(t, item) for item in page.items]
    layout = [
        [
            button(
                label(f"{ICONS[i.type]} {i.id} · {i.name or '—'} · {status_label(t, i.status)}"),
                S,
                "o",
                i.type.value,
                i.id,
            )
        ]
        for i in page.items
    ]
    await reply(
        update, context, "\n".join(lines), markup(*layout, pager(S, "l", page.page, page.pages))
    )


def _item_type(data: Callback) -> ItemType:
    if data.word(0) not in ("n", "d"):
        raise BadCallback("unknown item type")
    return ItemType(data.word(0))


async def on_my(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    if data.action == "l":
        await _list(update, context, data.num(0))
        return
    handler = ACTIONS.get(data.action)
    if handler is None:
        raise BadCallback("unknown action")
    await handler(update, context, _item_type(data), data.num(1))


async def open_item(
    update: Update, context: BotContext, item_type: ItemType, item_id: int, *, edit: bool = True
) -> None:
    viewer = context.require_viewer()
    submissions = context.services.submissions
    t = context.t
    layout: list[list[InlineKeyboardButton]] = []
    text: HTML
    if item_type is ItemType.NOMINATION:
        n = await submissions.get_nomination(viewer, item_id)
        text, status, mine, files = nomination_card(t, n), n.status, n.nominator_id, n.attachments
    else:
        d = await submissions.get_deed(viewer, item_id)
        text, status, mine, files = deed_card(t, d), d.status, d.reporter_id, d.attachments
    own = mine == viewer.member_id
    if own and status is SubmissionStatus.SUBMITTED:
        layout.append([button(t("Withdraw"), S, "w", item_type.value, item_id)])
    if own and status is SubmissionStatus.CHANGES_REQUESTED:
        layout.append([button(t("Edit and resubmit"), S, "e", item_type.value, item_id)])
    if files:
        layout.append(
            [
                button(
                    t("Show evidence ({count})", count=len(files)), S, "f", item_type.value, item_id
                )
            ]
        )
    layout.append([button(t("« My list"), S, "l", 0)])
    await reply(update, context, text, markup(*layout), edit=edit)


async def ask_withdraw(
    update: Update, context: BotContext, item_type: ItemType, item_id: int
) -> None:
    t = context.t
    await reply(
        update,
        context,
        t("Withdraw no. {id}? It will no longer be reviewed.", id=item_id),
        markup(
            [
                button(t("Yes, withdraw"), S, "wy", item_type.value, item_id),
                button(t("No"), S, "o", item_type.value, item_id),
            ]
        ),
    )


async def do_withdraw(
    update: Update, context: BotContext, item_type: ItemType, item_id: int
) -> None:
    from bot.outbox import kick

    await context.services.submissions.withdraw(context.require_viewer(), item_type, item_id)
    kick(context.application)
    await open_item(update, context, item_type, item_id)


async def edit_again(
    update: Update, context: BotContext, item_type: ItemType, item_id: int
) -> None:
    """Reopen the nominate / gooddeed flow on an item whose changes were requested."""
    viewer = context.require_viewer()
    await context.services.submissions.reopen(viewer, item_type, item_id)
    flow_name = NOMINATE_FLOW if item_type is ItemType.NOMINATION else GOODDEED_FLOW
    flow = Flow(flow_name, "sum", new_flow_data(item_id, resub=True))
    await context.services.flows.set(viewer.telegram_user_id, flow)
    if item_type is ItemType.NOMINATION:
        from handlers.nominate import show

        await show(update, context, flow)
    else:
        from handlers.gooddeed import show as show_deed

        await show_deed(update, context, flow)


async def send_files(
    update: Update, context: BotContext, item_type: ItemType, item_id: int
) -> None:
    files = await context.services.submissions.attachments(
        context.require_viewer(), item_type, item_id
    )
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is None:
        return
    for f in files:
        # a file Telegram no longer serves must not hide the others
        with contextlib.suppress(TelegramError):
            if f.kind == "photo":
                await context.bot.send_photo(chat.id, f.file_id)
            else:
                await context.bot.send_document(chat.id, f.file_id)


ACTIONS = {
    "o": open_item,
    "w": ask_withdraw,
    "wy": do_withdraw,
    "e": edit_again,
    "f": send_files,
}


# --- leaving a flow with /cancel ---------------------------------------------------------------


async def abandon_on_cancel(update: Update, context: BotContext) -> None:
    """Runs before the shared /cancel (which clears the flow state): a nomination or report that
    is still a draft is deleted so it does not linger; an item being corrected keeps its state."""
    user = update.effective_user
    if user is None or not is_private(update):
        return
    viewer = context.viewer
    if viewer is None or not viewer.is_member:
        return
    flow = await context.services.flows.get(user.id)
    if flow is None or not isinstance(flow.data.get("id"), int):
        return
    submissions = context.services.submissions
    if flow.name == NOMINATE_FLOW:
        await submissions.abandon_nomination(viewer, flow.data["id"])
    elif flow.name == GOODDEED_FLOW:
        await submissions.abandon_deed(viewer, flow.data["id"])


def early_handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    """Handlers that must see an update before the shared ones (group -1)."""
    return [CommandHandler("cancel", abandon_on_cancel)]


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("my", my_command),
        CallbackQueryHandler(on_my, pattern=scope_pattern(S)),
    ]
