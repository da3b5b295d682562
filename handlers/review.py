"""/review (Duyệt hồ sơ): the queue of submissions waiting for review, oldest first, and a card per
submission with its evidence and the decisions: approve, reject (a canned or typed reason), ask
for changes, or send a nomination to the council's secret ballot.

Every card sent is recorded (ModerationCard) so that after a decision all cards about the item,
in every moderator's chat and in the admin chat, show who decided and when. Content of pending
submissions is only ever shown in private chats: in a group (the admin chat) the "open" button
sends the card to the presser's private chat; every other review button does nothing there."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Update,
)
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler

from bot import voting_jobs
from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, pager, scope_pattern
from bot.services.directory import Role, Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed
from bot.services.flows import Flow
from bot.services.moderation import (
    CANNED_REASONS,
    AttachmentView,
    ItemState,
    ItemType,
    Outcome,
    ReviewItem,
    is_moderator,
)
from bot.texts import HTML, Translator, bold, escape, italic, translator, truncate
from handlers.common import is_private, reply, toast
from handlers.flows import route

log = logging.getLogger("hoadep.review")
S = "rv"
FLOW = "review"
VOTE_DAY_CHOICES = (3, 7, 14)

register(
    Command(
        "review",
        N_("Review submissions waiting for approval"),
        Role.COUNCIL,
        also_unit_officer=True,
    )
)


def _moderator(context: BotContext) -> Viewer:
    viewer = context.require_viewer()
    if not is_moderator(context.services.settings.moderation, viewer):
        raise NotAllowed(N_("Only the council, administrators and unit officers can review."))
    return viewer


# --- rendering -----------------------------------------------------------------------------------


def _when(t: Translator, value: Any) -> str:
    return t.datetime(value) if value is not None else "—"


def render_card(t: Translator, item: ReviewItem, *, limit: int = 1200) -> HTML:
    """The full card of a submission; long texts are cut so that it fits one message."""
    lines: list[str] = []
    if item.type is ItemType.NOMINATION:
        lines.append(bold(t("Nomination #{id}", id=item.id)))
        kind = t("collective") if item.subject_kind == "collective" else t("individual")
        lines.append(t("Nominee: {name} ({kind})", name=item.subject_name, kind=kind))
        lines.append(t("Unit: {unit}", unit=item.unit_name or "—"))
        lines.append(t("Movement: {movement}", movement=item.movement_name or "—"))
        lines.append(t("Title: {title}", title=item.title_name or "—"))
        lines.append(t("Field: {field}", field=item.field_name or "—"))
        lines.append(
            t("Proposed by {name} at {at}.", name=item.author_name, at=_when(t, item.submitted_at))
        )
        lines += ["", bold(t("Achievements")), escape(truncate(item.achievements or "—", limit))]
        lines += [
            "",
            bold(t("Good practice to replicate")),
            escape(truncate(item.good_practices or "—", limit * 2 // 3)),
        ]
        if item.criteria:
            lines += ["", bold(t("Criteria and evidence"))]
            for criterion in item.criteria[:8]:
                text = truncate(criterion.text, 120)
                evidence = truncate(criterion.evidence or "—", limit // 8)
                lines.append(f"• {escape(text)}: {italic(evidence)}")
    else:
        lines.append(bold(t("Good deed #{id}", id=item.id)))
        lines.append(t("Person: {name}", name=item.subject_name))
        lines.append(t("Unit: {unit}", unit=item.unit_name or "—"))
        if item.occurred_on is not None:
            lines.append(t("Date: {date}", date=item.occurred_on))
        if item.place:
            lines.append(t("Place: {place}", place=truncate(item.place, 200)))
        lines.append(
            t("Reported by {name} at {at}.", name=item.author_name, at=_when(t, item.submitted_at))
        )
        lines += ["", escape(truncate(item.description or "—", limit + limit // 2))]
    if item.attachments:
        lines += ["", t("Evidence: {count} file(s), shown above.", count=len(item.attachments))]
    if item.status.value != "submitted":
        lines += ["", escape(_status_line(t, item.status.value))]
    text = HTML("\n".join(lines))
    if len(text) > 4000 and limit > 100:
        return render_card(t, item, limit=limit // 2)
    return text


def _status_line(t: Translator, status: str) -> str:
    return t.raw(STATUS_LINES.get(status, N_("Status: pending.")))


STATUS_LINES = {
    "submitted": N_("Status: pending."),
    "in_review": N_("🗳 The council is voting on this nomination."),
    "approved": N_("Status: approved."),
    "rejected": N_("Status: rejected."),
    "changes_requested": N_("Status: changes requested."),
    "withdrawn": N_("Status: withdrawn by the author."),
}


def render_state(t: Translator, state: ItemState, *, brief: bool = False) -> HTML:
    """Where an item stands after a change. `brief` (the admin chat): no name, no reason."""
    if state.type is ItemType.NOMINATION:
        head = (
            t("Nomination #{id}", id=state.id)
            if brief
            else t("Nomination #{id}: {name}", id=state.id, name=state.subject_name)
        )
    else:
        head = (
            t("Good deed #{id}", id=state.id)
            if brief
            else t("Good deed #{id}: {name}", id=state.id, name=state.subject_name)
        )
    status = state.status.value
    if status == "in_review" and state.ballot_deadline is not None:
        line = t(
            "🗳 Sent to the council's secret ballot; voting closes at {deadline}.",
            deadline=state.ballot_deadline,
        )
    elif state.outcome is not None and state.decided_by is None and state.ballot_size:
        from bot.services.voting import percent

        ratio = f"{state.ballot_agree}/{state.ballot_size}"
        threshold = percent(state.ballot_threshold or 0)
        if status == "approved":
            line = t(
                "✅ Approved by the council's secret ballot ({ratio} agreed; threshold "
                "{threshold}).",
                ratio=ratio,
                threshold=threshold,
            )
        else:
            line = t(
                "❌ Not approved by the council's secret ballot ({ratio} agreed; threshold "
                "{threshold}).",
                ratio=ratio,
                threshold=threshold,
            )
    elif status == "approved":
        line = t(
            "✅ Approved by {name} at {at}.", name=state.decided_by or "—", at=state.decided_at
        )
    elif status == "rejected":
        line = t(
            "❌ Rejected by {name} at {at}.", name=state.decided_by or "—", at=state.decided_at
        )
        if state.reason and not brief:
            line = HTML(line + "\n" + t("Reason: {reason}", reason=t.raw(state.reason)))
    elif status == "changes_requested":
        line = t(
            "✏️ {name} asked for changes at {at}.", name=state.decided_by or "—", at=state.decided_at
        )
        if state.reason and not brief:
            line = HTML(line + "\n" + t("Note: {reason}", reason=state.reason))
    elif status == "withdrawn":
        line = t("The author withdrew this submission.")
    else:
        line = t("Waiting for review.")
    return HTML(f"{bold(head)}\n{line}")


def card_markup(t: Translator, viewer: Viewer, item: ReviewItem) -> InlineKeyboardMarkup | None:
    if item.status.value != "submitted":
        return None
    code, ref = item.type.code, item.id
    layout: list[list[InlineKeyboardButton]] = [
        [
            button(t("✅ Approve"), S, "ok", code, ref, item.version),
            button(t("❌ Reject"), S, "rj", code, ref, item.version),
        ],
        [button(t("✏️ Request changes"), S, "ch", code, ref, item.version)],
    ]
    if item.type is ItemType.NOMINATION and viewer.is_council:
        layout.append([button(t("🗳 Council vote"), S, "vt", ref, item.version)])
    layout.append([button(t("Next ›"), S, "nx", code, ref)])
    return markup(*layout)


def _reasons_markup(t: Translator, code: str, ref: int, version: int) -> InlineKeyboardMarkup:
    layout = [
        [button(t.raw(text), S, "rr", code, ref, version, key)]
        for key, text in CANNED_REASONS.items()
    ]
    layout.append([button(t("Other reason…"), S, "ro", code, ref, version)])
    layout.append([button(t("‹ Back"), S, "bk", code, ref)])
    return markup(*layout)


# --- the queue -----------------------------------------------------------------------------------


async def review_command(update: Update, context: BotContext) -> None:
    _moderator(context)
    if not is_private(update):
        await reply(update, context, context.t("Please use /review in a private chat with me."))
        return
    await _queue(update, context, None, 0)


KIND_CODES: dict[str, ItemType | None] = {
    "a": None,
    "n": ItemType.NOMINATION,
    "g": ItemType.GOOD_DEED,
}


async def _queue(update: Update, context: BotContext, kind: ItemType | None, page: int) -> None:
    viewer = _moderator(context)
    queue = await context.services.moderation.queue(viewer, kind=kind, page=page)
    t = context.t
    lines: list[str] = [
        bold(t("Submissions waiting for review")),
        t(
            "Nominations: {nominations} · Good deeds: {deeds}",
            nominations=queue.nominations,
            deeds=queue.good_deeds,
        ),
    ]
    if not queue.entries:
        lines += ["", t("Nothing is waiting for review. Thank you!")]
    else:
        lines += ["", t("Oldest first. Choose one to open it:")]
    layout: list[list[InlineKeyboardButton]] = []
    for entry in queue.entries:
        icon = "📝" if entry.type is ItemType.NOMINATION else "🌸"
        when = t.date(entry.submitted_at.astimezone(t.tz).date()) if entry.submitted_at else ""
        label = f"{icon} {entry.subject_name} · {entry.unit_name or '—'} · {when}"
        layout.append([button(label[:60], S, "o", entry.type.code, entry.id)])
    code = next(k for k, v in KIND_CODES.items() if v is kind)
    filters = [
        button(("• " if kind is None else "") + t("All"), S, "q", "a", 0),
        button(("• " if kind is ItemType.NOMINATION else "") + t("Nominations"), S, "q", "n", 0),
        button(("• " if kind is ItemType.GOOD_DEED else "") + t("Good deeds"), S, "q", "g", 0),
    ]
    await reply(
        update,
        context,
        "\n".join(lines),
        markup(*layout, pager(S, "q", queue.page, queue.pages, code), filters),
    )


# --- a card --------------------------------------------------------------------------------------


async def send_evidence(
    context: BotContext, chat_id: int, attachments: Sequence[AttachmentView]
) -> int:
    """Photos as an album (or one photo), documents likewise; returns how many failed."""
    failed = 0
    photos = [a for a in attachments if a.kind == "photo"]
    documents = [a for a in attachments if a.kind != "photo"]
    for group, single, media in (
        (photos, context.bot.send_photo, InputMediaPhoto),
        (documents, context.bot.send_document, InputMediaDocument),
    ):
        for start in range(0, len(group), 10):
            chunk = group[start : start + 10]
            captions = [escape(truncate(a.caption, 1000)) if a.caption else None for a in chunk]
            try:
                if len(chunk) == 1:
                    await single(chat_id, chunk[0].file_id, caption=captions[0])  # type: ignore[operator]
                else:
                    await context.bot.send_media_group(
                        chat_id,
                        [media(a.file_id, caption=c) for a, c in zip(chunk, captions, strict=True)],
                    )
            except Forbidden:
                raise
            except TelegramError as exc:
                log.warning("evidence could not be sent to %s: %s", chat_id, exc)
                failed += len(chunk)
    return failed


async def _open(context: BotContext, viewer: Viewer, item_type: ItemType, item_id: int) -> None:
    """Send the evidence and the card to the viewer's private chat, and record the card."""
    item = await context.services.moderation.item(viewer, item_type, item_id)
    chat_id = viewer.telegram_user_id
    t = translator(
        viewer.language or context.language, context.services.settings.organisation.timezone
    )
    failed = await send_evidence(context, chat_id, item.attachments)
    text = render_card(t, item)
    if failed:
        text = HTML(text + "\n" + t("{count} evidence file(s) could not be shown.", count=failed))
    sent = await context.bot.send_message(chat_id, text, reply_markup=card_markup(t, viewer, item))
    await context.services.moderation.record_card(item_type, item_id, chat_id, sent.message_id)


async def open_item(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_type, item_id = ItemType.from_code(data.word(0)), data.num(1)
    if not is_private(update):
        # from the admin chat's notice: the card goes to the presser's private chat only
        try:
            await _open(context, viewer, item_type, item_id)
        except Forbidden:
            await toast(
                update,
                context.t("Please start a private chat with me first, then press again."),
                alert=True,
            )
            return
        await toast(update, context.t("I sent it to you in a private chat."))
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    await _open(context, viewer, item_type, item_id)


async def next_item(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_type, item_id = ItemType.from_code(data.word(0)), data.num(1)
    entry = await context.services.moderation.next_after(viewer, item_type, item_id)
    if entry is None:
        if update.callback_query is not None:
            await update.callback_query.answer()
        await context.bot.send_message(
            viewer.telegram_user_id, context.t("Nothing else is waiting for review. Thank you!")
        )
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    await _open(context, viewer, entry.type, entry.id)


async def queue_page(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    kind = KIND_CODES.get(data.word(0))
    await _queue(update, context, kind, data.num(1))


# --- deciding ------------------------------------------------------------------------------------


async def after_change(
    update: Update, context: BotContext, item_type: ItemType, item_id: int, *, edit: bool = True
) -> None:
    """Show the outcome on the pressed card, update every other card, send the notices."""
    state = await context.services.moderation.state(item_type, item_id)
    skip: tuple[int, int] | None = None
    query = update.callback_query
    if edit and query is not None and query.message is not None:
        skip = (query.message.chat.id, query.message.message_id)
        await reply(
            update,
            context,
            render_state(context.t, state),
            markup([button(context.t("Next ›"), S, "nx", item_type.code, item_id)]),
        )
    await refresh_cards(context.application, item_type, item_id, skip=skip)
    voting_jobs.kick(context.application)


async def refresh_cards(
    application: Application[Any, Any, Any, Any, Any, Any],
    item_type: ItemType,
    item_id: int,
    *,
    skip: tuple[int, int] | None = None,
) -> None:
    """Edit every card sent about the item to show where it stands now."""
    services = application.bot_data["services"]
    state = await services.moderation.state(item_type, item_id)
    tz = services.settings.organisation.timezone
    for ref in await services.moderation.cards(item_type, item_id):
        if skip == (ref.chat_id, ref.message_id):
            continue
        t = translator(ref.language, tz)
        with contextlib.suppress(TelegramError):  # deleted, too old, unchanged: no matter
            await application.bot.edit_message_text(
                render_state(t, state, brief=ref.group),
                chat_id=ref.chat_id,
                message_id=ref.message_id,
                reply_markup=None,
            )


async def approve(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_type, item_id = ItemType.from_code(data.word(0)), data.num(1)
    await context.services.moderation.decide(
        viewer, item_type, item_id, Outcome.APPROVED, version=data.num(2)
    )
    await after_change(update, context, item_type, item_id)


async def reject_menu(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_type, item_id, version = ItemType.from_code(data.word(0)), data.num(1), data.num(2)
    item = await context.services.moderation.item(viewer, item_type, item_id)  # re-authorised
    text = HTML(render_card(context.t, item) + "\n\n" + bold(context.t("Why is it not approved?")))
    await reply(update, context, text, _reasons_markup(context.t, item_type.code, item_id, version))


async def reject_canned(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    item_type, item_id = ItemType.from_code(data.word(0)), data.num(1)
    await context.services.moderation.decide(
        viewer,
        item_type,
        item_id,
        Outcome.REJECTED,
        version=data.num(2),
        reason_code=data.word(3),
    )
    await after_change(update, context, item_type, item_id)


async def back(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_type, item_id = ItemType.from_code(data.word(0)), data.num(1)
    item = await context.services.moderation.item(viewer, item_type, item_id)
    await reply(
        update,
        context,
        render_card(context.t, item),
        card_markup(context.t, viewer, item),
    )


async def ask_text(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    """ "Other reason…" and "Request changes": the next text typed is the reason."""
    item_type, item_id, version = ItemType.from_code(data.word(0)), data.num(1), data.num(2)
    await context.services.moderation.item(viewer, item_type, item_id)  # re-authorised
    step = "reject" if data.action == "ro" else "changes"
    await context.services.flows.set(
        viewer.telegram_user_id,
        Flow(FLOW, step, {"t": item_type.code, "id": item_id, "v": version}),
    )
    prompt = (
        context.t("Type the reason for not approving it; the author will read it.")
        if step == "reject"
        else context.t("Type what the author should change or add.")
    )
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(
        viewer.telegram_user_id, prompt + "\n" + context.t("Send /cancel to stop.")
    )


@route(FLOW)
async def review_text(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = _moderator(context)
    message = update.effective_message
    if message is None:
        return
    if not message.text:
        await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    try:
        item_type = ItemType.from_code(str(flow.data.get("t")))
        item_id, version = int(flow.data["id"]), int(flow.data["v"])
    except (KeyError, TypeError, ValueError, InvalidInput):
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        await message.reply_text(context.t("This button is no longer valid. Please start again."))
        return
    outcome = Outcome.REJECTED if flow.step == "reject" else Outcome.CHANGES_REQUESTED
    try:
        await context.services.moderation.decide(
            viewer, item_type, item_id, outcome, version=version, reason=message.text
        )
    except InvalidInput:
        raise  # too long, empty: the flow stays so they can type again
    except Exception:
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        raise
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    state = await context.services.moderation.state(item_type, item_id)
    await message.reply_text(
        render_state(context.t, state),
        reply_markup=markup([button(context.t("Next ›"), S, "nx", item_type.code, item_id)]),
    )
    await refresh_cards(context.application, item_type, item_id)
    voting_jobs.kick(context.application)


# --- the council vote ----------------------------------------------------------------------------


async def vote_menu(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_id, version = data.num(0), data.num(1)
    if not viewer.is_council:
        raise NotAllowed(N_("Only council members and administrators can open a council vote."))
    item = await context.services.moderation.item(viewer, ItemType.NOMINATION, item_id)
    settings = context.services.settings.moderation
    days = sorted(
        {settings.vote_default_days} | {d for d in VOTE_DAY_CHOICES if d <= settings.vote_max_days}
    )
    t = context.t
    layout = [
        [
            button(
                t("{days} days", days=d) + (" •" if d == settings.vote_default_days else ""),
                S,
                "vd",
                item_id,
                version,
                d,
            )
            for d in days
        ],
        [button(t("‹ Back"), S, "bk", "n", item_id)],
    ]
    text = HTML(render_card(t, item) + "\n\n" + bold(t("How long should the council vote last?")))
    await reply(update, context, text, markup(*layout))


async def vote_open(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    item_id = data.num(0)
    await context.services.voting.open_vote(viewer, item_id, version=data.num(1), days=data.num(2))
    await after_change(update, context, ItemType.NOMINATION, item_id)


# --- dispatch ------------------------------------------------------------------------------------

ACTIONS = {
    "q": queue_page,
    "o": open_item,
    "nx": next_item,
    "ok": approve,
    "rj": reject_menu,
    "rr": reject_canned,
    "ro": ask_text,
    "ch": ask_text,
    "bk": back,
    "vt": vote_menu,
    "vd": vote_open,
}


async def on_review(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = _moderator(context)
    action = ACTIONS.get(data.action)
    if action is None:
        await toast(
            update, context.t("This button is no longer valid. Please start again."), alert=True
        )
        return
    if data.action != "o" and not is_private(update):
        await toast(update, context.t("Please use this in a private chat with me."), alert=True)
        return
    await action(update, context, viewer, data)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("review", review_command),
        CallbackQueryHandler(on_review, pattern=scope_pattern(S)),
    ]
