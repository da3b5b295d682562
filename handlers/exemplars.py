"""/exemplars (Điển hình tiên tiến): the registry of approved nominations, with filters (unit,
field, movement, year, a name with or without accents), a card per exemplar with its
achievements and the good practice to replicate; administrators can revoke one. In a group it
answers with a short list whose buttons open the details in a private chat (`/start ex-<id>`).

/gooddeeds (Người tốt, việc tốt): approved good deeds, newest first, with one 👏 per person."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot import voting_jobs
from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, pager, rows, scope_pattern, url_button
from bot.services.directory import Role, Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed, NotFound
from bot.services.exemplars import FEED_PAGE, PAGE_SIZE, ExemplarCard, ExemplarFilter
from bot.services.flows import Flow
from bot.texts import HTML, Translator, bold, escape, italic, truncate
from handlers.common import is_private, reply, toast
from handlers.flows import route
from handlers.start import deep_link

S = "ex"
G = "fd"
FLOW = "exemplars"
PICK_PAGE = 8
GROUP_LIST = 5

register(
    Command(
        "exemplars",
        N_("Advanced exemplars: who to learn from"),
        Role.STAFF,
        private=True,
        group=True,
    )
)
register(Command("gooddeeds", N_("Good deeds: read and applaud"), Role.STAFF, group=True))


def keyboard(*layout: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup | None:
    """An inline keyboard, or None when there is no button at all (Telegram refuses empty)."""
    return markup(*layout) if any(layout) else None


def _require_member(context: BotContext) -> Viewer:
    viewer = context.require_viewer()
    if not viewer.is_member:
        raise NotAllowed(N_("You are not a member yet."))
    return viewer


def _kind(t: Translator, kind: str) -> str:
    return t("collective") if kind == "collective" else t("individual")


# --- the list ------------------------------------------------------------------------------------


async def exemplars_command(update: Update, context: BotContext) -> None:
    viewer = _require_member(context)
    query = " ".join(context.args or []).strip()
    if not is_private(update):
        await _group_list(update, context, viewer, query)
        return
    filt = ExemplarFilter()
    if query:
        await context.services.flows.set(
            viewer.telegram_user_id, Flow(FLOW, "results", {"query": query[:100]})
        )
        filt = filt.with_(search=True)
    await _list(update, context, viewer, filt, 0)


async def _describe(context: BotContext, filt: ExemplarFilter, query: str | None) -> list[str]:
    t = context.t
    parts: list[str] = []
    if filt.unit_id:
        try:
            unit = await context.services.directory.get_unit(filt.unit_id)
            parts.append(t("unit: {name}", name=unit.name))
        except NotFound:
            pass
    if filt.field_id:
        try:
            field = await context.services.catalogue.field(filt.field_id)
            parts.append(t("field: {name}", name=field.name))
        except NotFound:
            pass
    if filt.movement_id:
        try:
            movement = await context.services.catalogue.movement(filt.movement_id)
            parts.append(t("movement: {name}", name=movement.name))
        except NotFound:
            pass
    if filt.year:
        parts.append(t("year: {year}", year=filt.year))
    if filt.search and query:
        parts.append(t("name: “{query}”", query=query))
    if not (filt.everything or filt.movement_id or filt.year):
        parts.insert(0, t("current movements"))
    return parts


async def _stored_query(context: BotContext, viewer: Viewer) -> str | None:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != FLOW:
        return None
    query = flow.data.get("query")
    return str(query) if query else None


async def _list(
    update: Update, context: BotContext, viewer: Viewer, filt: ExemplarFilter, page: int
) -> None:
    query = await _stored_query(context, viewer) if filt.search else None
    if filt.search and not query:
        filt = filt.with_(search=False)
    result = await context.services.exemplars.search(viewer, filt, query=query, page=page)
    t = context.t
    state = filt.encode()
    lines: list[str] = [bold(t("Advanced exemplars"))]
    described = await _describe(context, filt, query)
    if described:
        lines.append(italic(t("Showing: {filters}", filters=HTML(", ".join(described)))))
    if not result.items:
        lines += ["", t("No exemplar matches. Try other filters.")]
    else:
        lines.append(t("{count} exemplar(s).", count=result.total))
        lines.append("")
        start = result.page * PAGE_SIZE
        for i, row in enumerate(result.items, start=start + 1):
            detail = ", ".join(x for x in (row.title_name, row.unit_name) if x)
            lines.append(f"{i}. {bold(row.name)}" + (f" — {escape(detail)}" if detail else ""))
    layout: list[list[InlineKeyboardButton]] = rows(
        (
            button(f"{i}. {row.name}"[:60], S, "v", row.id, state, result.page)
            for i, row in enumerate(result.items, start=result.page * PAGE_SIZE + 1)
        ),
        per_row=2,
    )
    layout.append(pager(S, "l", result.page, result.pages, state))
    layout.append(
        [
            button(t("Unit"), S, "fu", state, 0),
            button(t("Field"), S, "ff", state),
            button(t("Movement"), S, "fm", state, 0),
            button(t("Year"), S, "fy", state),
        ]
    )
    toggle = t("Current movements only") if filt.everything else t("Include archived movements")
    layout.append(
        [
            button(t("🔎 Name"), S, "s", state),
            button(toggle, S, "l", filt.with_(everything=not filt.everything).encode(), 0),
        ]
    )
    if filt.narrowed or filt.everything:
        layout.append([button(t("Clear filters"), S, "l", ExemplarFilter().encode(), 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def _group_list(update: Update, context: BotContext, viewer: Viewer, query: str) -> None:
    filt = ExemplarFilter(search=bool(query))
    result = await context.services.exemplars.search(
        viewer, filt, query=query or None, page=0, page_size=GROUP_LIST
    )
    t = context.t
    username = context.bot.username
    lines: list[str] = [bold(t("Advanced exemplars"))]
    layout: list[list[InlineKeyboardButton]] = []
    if not result.items:
        lines.append(t("No exemplar matches."))
    for row in result.items:
        detail = ", ".join(x for x in (row.title_name, row.unit_name) if x)
        lines.append(f"• {bold(row.name)}" + (f" — {escape(detail)}" if detail else ""))
        layout.append([url_button(row.name[:60], f"https://t.me/{username}?start=ex-{row.id}")])
    if result.total > len(result.items):
        lines.append(t("…and {count} more.", count=result.total - len(result.items)))
    layout.append(
        [
            url_button(
                t("Open the registry in a private chat"), f"https://t.me/{username}?start=ex-all"
            )
        ]
    )
    await reply(update, context, "\n".join(lines), markup(*layout))


# --- one exemplar --------------------------------------------------------------------------------


def render_exemplar(t: Translator, card: ExemplarCard) -> HTML:
    lines = [
        bold(card.name) + f" ({_kind(t, card.kind)})",
        t("Unit: {unit}", unit=card.unit_name or "—"),
        t("Title: {title}", title=card.title_name or "—"),
        t("Movement: {movement}", movement=card.movement_name or "—"),
        t("Field: {field}", field=card.field_name or "—"),
    ]
    if card.decided_at is not None:
        lines.append(t("Recognised on {date}.", date=card.decided_at.astimezone(t.tz).date()))
    lines += ["", bold(t("Achievements")), escape(truncate(card.achievements or "—", 1600))]
    lines += [
        "",
        bold(t("Good practice to replicate")),
        escape(truncate(card.good_practices or "—", 1600)),
    ]
    return HTML("\n".join(lines))


async def _card(
    update: Update,
    context: BotContext,
    viewer: Viewer,
    nomination_id: int,
    state: str,
    page: int,
    *,
    edit: bool = True,
) -> None:
    card = await context.services.exemplars.card(viewer, nomination_id)
    t = context.t
    layout = [[button(t("‹ Back"), S, "l", state, page)]]
    if viewer.is_admin and is_private(update):
        layout.append([button(t("Revoke this exemplar"), S, "rv", card.id)])
    await reply(update, context, render_exemplar(t, card), markup(*layout), edit=edit)


@deep_link("ex")
async def exemplar_link(update: Update, context: BotContext, rest: str) -> None:
    viewer = _require_member(context)
    if rest in ("", "all"):
        await _list(update, context, viewer, ExemplarFilter(), 0)
        return
    if not rest.isdigit() or len(rest) > 12:
        raise InvalidInput(N_("That exemplar is not in the registry."))
    await _card(update, context, viewer, int(rest), ExemplarFilter().encode(), 0)


# --- buttons -------------------------------------------------------------------------------------


async def list_page(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _list(update, context, viewer, ExemplarFilter.decode(data.word(0)), data.num(1))


async def view(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    state = ExemplarFilter.decode(data.word(1)).encode()
    await _card(update, context, viewer, data.num(0), state, data.num(2))


async def _pick(
    update: Update,
    context: BotContext,
    prompt: str,
    choices: list[tuple[str, ExemplarFilter]],
    any_choice: ExemplarFilter,
    page: int,
    again: tuple[str, str] | None,
    back: ExemplarFilter,
) -> None:
    t = context.t
    pages = max(1, -(-len(choices) // PICK_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = choices[page * PICK_PAGE : (page + 1) * PICK_PAGE]
    layout: list[list[InlineKeyboardButton]] = [[button(t("Any"), S, "l", any_choice.encode(), 0)]]
    layout += rows(button(label[:60], S, "l", f.encode(), 0) for label, f in shown)
    if again is not None:
        layout.append(pager(S, again[0], page, pages, again[1]))
    layout.append([button(t("‹ Back"), S, "l", back.encode(), 0)])
    await reply(update, context, prompt, markup(*layout))


async def pick_unit(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    filt = ExemplarFilter.decode(data.word(0))
    units = await context.services.directory.list_units()
    choices = [("· " * u.depth + u.name, filt.with_(unit_id=u.id)) for u in units]
    await _pick(
        update,
        context,
        context.t("Exemplars of which unit?"),
        choices,
        filt.with_(unit_id=0),
        data.num(1),
        ("fu", filt.encode()),
        filt,
    )


async def pick_field(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    filt = ExemplarFilter.decode(data.word(0))
    fields = await context.services.catalogue.fields(include_inactive=True)
    choices = [(f.name, filt.with_(field_id=f.id)) for f in fields]
    await _pick(
        update,
        context,
        context.t("Exemplars of which field of work?"),
        choices,
        filt.with_(field_id=0),
        0,
        None,
        filt,
    )


async def pick_movement(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    filt = ExemplarFilter.decode(data.word(0))
    movements = await context.services.catalogue.movements()
    choices = [
        (f"{m.name} ({m.starts_on.year})", filt.with_(movement_id=m.id))
        for m in movements
        if m.status.value != "draft"
    ]
    await _pick(
        update,
        context,
        context.t("Exemplars of which movement?"),
        choices,
        filt.with_(movement_id=0),
        data.num(1),
        ("fm", filt.encode()),
        filt,
    )


async def pick_year(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    filt = ExemplarFilter.decode(data.word(0))
    years = await context.services.exemplars.years()
    choices = [(str(y), filt.with_(year=y)) for y in years]
    await _pick(
        update,
        context,
        context.t("Exemplars of which year?"),
        choices,
        filt.with_(year=0),
        0,
        None,
        filt,
    )


async def ask_name(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    filt = ExemplarFilter.decode(data.word(0))
    await context.services.flows.set(
        viewer.telegram_user_id, Flow(FLOW, "query", {"f": filt.with_(search=True).encode()})
    )
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(
        viewer.telegram_user_id,
        context.t("Type a name, or part of it (accents are optional: “nguyen van a”).")
        + "\n"
        + context.t("Send /cancel to stop."),
    )


async def ask_revoke(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))
    card = await context.services.exemplars.card(viewer, data.num(0))
    await context.services.flows.set(viewer.telegram_user_id, Flow(FLOW, "revoke", {"id": card.id}))
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(
        viewer.telegram_user_id,
        context.t(
            "Type the reason for revoking the exemplar {name}. It will no longer appear in "
            "the lists.",
            name=card.name,
        )
        + "\n"
        + context.t("Send /cancel to stop."),
    )


@route(FLOW)
async def exemplars_text(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = _require_member(context)
    message = update.effective_message
    if message is None:
        return
    if not message.text:
        await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    if flow.step == "revoke":
        card = await context.services.exemplars.revoke(
            viewer, int(flow.data.get("id", 0)), message.text
        )
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        await message.reply_text(
            context.t(
                "The exemplar {name} was revoked; it no longer appears in the lists.",
                name=card.name,
            )
        )
        voting_jobs.kick(context.application)
        return
    # a name to search for (after "🔎 Name", or typed again while looking at results)
    try:
        filt = ExemplarFilter.decode(str(flow.data.get("f", ""))).with_(search=True)
    except InvalidInput:
        filt = ExemplarFilter(search=True)
    await context.services.flows.set(
        viewer.telegram_user_id,
        Flow(FLOW, "results", {"query": message.text.strip()[:100], "f": filt.encode()}),
    )
    await _list(update, context, viewer, filt, 0)


ACTIONS = {
    "l": list_page,
    "v": view,
    "fu": pick_unit,
    "ff": pick_field,
    "fm": pick_movement,
    "fy": pick_year,
    "s": ask_name,
    "rv": ask_revoke,
}


async def on_exemplars(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = _require_member(context)
    action = ACTIONS.get(data.action)
    if action is None:
        await toast(
            update, context.t("This button is no longer valid. Please start again."), alert=True
        )
        return
    if data.action in ("s", "rv") and not is_private(update):
        await toast(update, context.t("Please use this in a private chat with me."), alert=True)
        return
    await action(update, context, viewer, data)


# --- the good deeds feed -------------------------------------------------------------------------


async def gooddeeds_command(update: Update, context: BotContext) -> None:
    viewer = _require_member(context)
    await _feed(update, context, viewer, 0)


async def _feed(update: Update, context: BotContext, viewer: Viewer, page: int) -> None:
    text, keyboard = await _feed_page(context, viewer, page, is_private(update))
    await reply(update, context, text, keyboard)


async def _feed_page(
    context: BotContext, viewer: Viewer, page: int, personal: bool
) -> tuple[str, InlineKeyboardMarkup | None]:
    """`personal`: marks the deeds the viewer applauded (not in a group, where all see it)."""
    result = await context.services.exemplars.feed(viewer, page=page)
    t = context.t
    lines: list[str] = [bold(t("Good people, good deeds"))]
    layout: list[list[InlineKeyboardButton]] = []
    if not result.items:
        lines += ["", t("No good deed has been published yet.")]
    for i, deed in enumerate(result.items, start=result.page * FEED_PAGE + 1):
        where = " · ".join(
            x
            for x in (
                t.date(deed.occurred_on) if deed.occurred_on else None,
                deed.place,
                deed.unit_name,
            )
            if x
        )
        lines += [
            "",
            f"{i}. {bold(deed.subject_name)}" + (f" — {escape(where)}" if where else ""),
            escape(truncate(deed.description or "—", 300)),
        ]
        mark = "✓ " if deed.applauded and personal else ""
        label = f"{mark}👏 {deed.applause} · {i}. {deed.subject_name}"[:60]
        layout.append([button(label, G, "a", deed.id, result.page)])
    layout.append(pager(G, "p", result.page, result.pages))
    return "\n".join(lines), keyboard(*layout)


async def on_gooddeeds(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = _require_member(context)
    if data.action == "p":
        await _feed(update, context, viewer, data.num(0))
        return
    if data.action != "a":
        await toast(
            update, context.t("This button is no longer valid. Please start again."), alert=True
        )
        return
    deed_id, page = data.num(0), data.num(1)
    applauded, count = await context.services.exemplars.applaud(viewer, deed_id)
    query = update.callback_query
    assert query is not None
    await query.answer(
        context.t("👏 Thank you! ({count})", count=count)
        if applauded
        else context.t("Applause taken back ({count}).", count=count)
    )
    text, keyboard = await _feed_page(context, viewer, page, is_private(update))
    if query.message is not None:
        with contextlib.suppress(BadRequest):  # unchanged
            await query.edit_message_text(text, reply_markup=keyboard)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("exemplars", exemplars_command),
        CommandHandler("gooddeeds", gooddeeds_command),
        CallbackQueryHandler(on_exemplars, pattern=scope_pattern(S)),
        CallbackQueryHandler(on_gooddeeds, pattern=scope_pattern(G)),
    ]
