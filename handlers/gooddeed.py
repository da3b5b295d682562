"""/gooddeed: report a good person, good deed (người tốt, việc tốt).

who (a colleague by name search, or a unit) → what happened → when (Today / Yesterday / a typed
date) → where (optional) → a photo (optional) → summary → Submit. The common case is five taps and
two typed texts. Drafts and steps are kept in the database like /nominate's (flow "gooddeed",
data {"id": draft}); every button carries the draft id and belongs to one step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import BadCallback, button, decode, markup, pager, rows, scope_pattern
from bot.services.directory import Role
from bot.services.errors import N_, InvalidInput
from bot.services.flows import Flow
from bot.services.submissions import (
    MAX_QUERY_LENGTH,
    PLACE_LIMIT,
    GoodDeedView,
    SubmissionStatus,
)
from bot.texts import HTML, bold
from handlers.common import is_private, reply
from handlers.flows import route
from handlers.my import deed_card, is_current, key, label, new_flow_data, parse_key
from handlers.nominate import attachment_of, private_link
from handlers.start import deep_link

S = "gd"
FLOW = "gooddeed"
PER_PAGE = 8

register(Command("gooddeed", N_("Report a good person, good deed"), Role.STAFF, group=True))

ACTION_STEPS: dict[str, tuple[str, ...] | None] = {
    "pm": ("who",),
    "wp": ("who",),
    "un": ("who",),
    "pu": ("unit",),
    "up": ("unit",),
    "keep": ("what", "where"),
    "dt": ("when",),
    "sk": ("where", "photo"),
    "phx": ("photo",),
    "ok": ("sum",),
    "ed": ("sum",),
    "es": ("edit",),
    "bk": None,
    "x": None,
    "xy": None,
    "xn": None,
    "cont": None,
    "new": None,
}
EDITABLE_STEPS = ("who", "what", "when", "where", "photo")
Layout = list[list[InlineKeyboardButton]]


# --- entry -------------------------------------------------------------------------------------


async def gooddeed_command(update: Update, context: BotContext) -> None:
    if not is_private(update):
        await private_link(update, context, "gooddeed")
        return
    await begin(update, context)


@deep_link("gooddeed")
async def gooddeed_link(update: Update, context: BotContext, rest: str) -> None:
    await begin(update, context)


async def begin(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    submissions = context.services.submissions
    flow = await context.services.flows.get(viewer.telegram_user_id)
    item_id = flow.data.get("id") if flow is not None and flow.name == FLOW else None
    current = await submissions.resumable_deed(
        viewer, item_id if isinstance(item_id, int) else None
    )
    t = context.t
    if current is not None:
        what = (
            t("Your report about {name} is waiting to be corrected.", name=current.subject_name)
            if current.status is SubmissionStatus.CHANGES_REQUESTED
            else t(
                "You have an unfinished good deed report (about {name}).",
                name=current.subject_name or "—",
            )
        )
        await reply(
            update,
            context,
            what + "\n" + t("Continue it, or start a new one?"),
            markup(
                [button(t("Continue draft"), S, "cont", current.id)],
                [button(t("Start over"), S, "new", current.id)],
            ),
        )
        return
    await _start_new(update, context)


async def _start_new(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    draft = await context.services.submissions.start_deed(viewer)
    flow = Flow(FLOW, "who", new_flow_data(draft.id))
    await context.services.flows.set(viewer.telegram_user_id, flow)
    await show(update, context, flow, draft)


# --- showing a step ----------------------------------------------------------------------------


def _nav_row(context: BotContext, ref: str, step: str, *, back: bool = True) -> list[Any]:
    t = context.t
    row = []
    if back:
        row.append(button("‹ " + t("Back"), S, "bk", ref, step))
    row.append(button(t("Cancel"), S, "x", ref))
    return row


async def show(
    update: Update,
    context: BotContext,
    flow: Flow,
    draft: GoodDeedView | None = None,
    *,
    notice: str | None = None,
    edit: bool = True,
) -> None:
    viewer = context.require_viewer()
    if draft is None:
        draft = await context.services.submissions.get_deed(viewer, int(flow.data["id"]))
    text, layout = await RENDERERS[flow.step](context, flow, draft)
    if notice:
        text = HTML(notice + "\n\n" + text)
    await reply(update, context, text, markup(*layout), edit=edit)


async def _who(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    query = flow.data.get("q")
    unit_row = [button(t("It was a unit (tập thể)…"), S, "un", key(flow), 0)]
    back = bool(flow.data.get("ret"))
    if not query:
        text = HTML(
            bold(t("Report a good person, good deed"))
            + "\n"
            + t(
                "Who did the good deed? Type part of the colleague's name (accents are "
                "optional: “nguyen van a”), or choose a unit."
            )
        )
        return text, [unit_row, _nav_row(context, key(flow), "who", back=back)]
    page = await context.services.directory.list_members(
        context.require_viewer(), query=query, page=int(flow.data.get("p", 0)), page_size=PER_PAGE
    )
    if not page.total:
        text = t("Nobody found for “{query}”. Type another part of the name.", query=query)
        return text, [unit_row, _nav_row(context, key(flow), "who", back=back)]
    text = t(
        "Found {count} for “{query}”. Choose the person, or type another name.",
        count=page.total,
        query=query,
    )
    layout: Layout = [
        [button(label(f"{m.full_name} · {m.unit_name or '—'}"), S, "pm", key(flow), m.id)]
        for m in page.items
    ]
    layout.append(pager(S, "wp", page.page, page.pages, key(flow)))
    layout += [unit_row, _nav_row(context, key(flow), "who", back=back)]
    return text, layout


async def _unit(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    units = await context.services.directory.list_units()
    pages = max(1, -(-len(units) // PER_PAGE))
    page = min(max(int(flow.data.get("p", 0)), 0), pages - 1)
    shown = units[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout: Layout = [
        [button(label(("· " * u.depth) + u.name), S, "pu", key(flow), u.id)] for u in shown
    ]
    layout.append(pager(S, "up", page, pages, key(flow)))
    layout.append(_nav_row(context, key(flow), "unit"))
    text = t("Which unit did the good deed?") if units else t("There are no units yet.")
    return text, layout


def _current(context: BotContext, value: str | None) -> str:
    from bot.texts import italic

    if not value:
        return ""
    return "\n\n" + context.t("Current text:") + "\n" + italic(value)


async def _what(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    limit = context.services.settings.submissions.max_text_length
    text = HTML(
        t(
            "What good deed did {name} do? Tell it simply and truthfully (at most {limit} "
            "characters).",
            name=d.subject_name or "—",
            limit=limit,
        )
        + _current(context, d.description)
    )
    layout: Layout = []
    if d.description:
        layout.append([button(t("Keep as is ›"), S, "keep", key(flow))])
    layout.append(_nav_row(context, key(flow), "what"))
    return text, layout


async def _when(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    today = context.services.submissions.today()
    yesterday = today - timedelta(days=1)
    text = t("When did it happen? Press a button, or type the date as dd/mm/yyyy.")
    if d.occurred_on:
        text = HTML(text + "\n" + t("Now: {date}", date=d.occurred_on))
    return text, [
        [
            button(t("Today ({date})", date=today), S, "dt", key(flow), 0),
            button(t("Yesterday ({date})", date=yesterday), S, "dt", key(flow), 1),
        ],
        _nav_row(context, key(flow), "when"),
    ]


async def _where(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    text = HTML(
        t(
            "Where did it happen? Type the place (at most {limit} characters), or press Skip.",
            limit=PLACE_LIMIT,
        )
        + _current(context, d.place)
    )
    layout: Layout = []
    if d.place:
        layout.append([button(t("Keep as is ›"), S, "keep", key(flow))])
    layout.append([button(t("Skip ›"), S, "sk", key(flow))])
    layout.append(_nav_row(context, key(flow), "where"))
    return text, layout


async def _photo(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    if d.attachments:
        text = t("A photo is attached. Send another to replace it, or continue.")
        layout: Layout = [
            [
                button(t("Continue ›"), S, "sk", key(flow)),
                button(t("Remove the photo"), S, "phx", key(flow)),
            ]
        ]
    else:
        text = t("Do you have a photo of it? Send it now (optional), or press Skip.")
        layout = [[button(t("Skip ›"), S, "sk", key(flow))]]
    layout.append(_nav_row(context, key(flow), "photo"))
    return text, layout


async def _sum(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    resubmit = d.status is SubmissionStatus.CHANGES_REQUESTED
    intro = (
        t("Please check your corrected report, then resubmit it.")
        if resubmit
        else t("Please check your report, then submit it.")
    )
    return HTML(intro + "\n\n" + deed_card(t, d)), [
        [button(t("Resubmit ✅") if resubmit else t("Submit ✅"), S, "ok", key(flow))],
        [button(t("Edit a step"), S, "ed", key(flow)), button(t("Cancel"), S, "x", key(flow))],
    ]


async def _edit(context: BotContext, flow: Flow, d: GoodDeedView) -> tuple[HTML, Layout]:
    t = context.t
    names = {
        "who": t("Who"),
        "what": t("What happened"),
        "when": t("When"),
        "where": t("Where"),
        "photo": t("Photo"),
    }
    layout = rows((button(names[s], S, "es", key(flow), s) for s in EDITABLE_STEPS), per_row=2)
    layout.append([button("‹ " + t("Back"), S, "bk", key(flow), "edit")])
    return t("Which step do you want to change?"), layout


RENDERERS = {
    "who": _who,
    "unit": _unit,
    "what": _what,
    "when": _when,
    "where": _where,
    "photo": _photo,
    "sum": _sum,
    "edit": _edit,
}
NEXT = {"who": "what", "unit": "what", "what": "when", "when": "where", "where": "photo"}
PREVIOUS = {
    "unit": "who",
    "what": "who",
    "when": "what",
    "where": "when",
    "photo": "where",
    "sum": "photo",
    "edit": "sum",
}


async def _go(
    update: Update,
    context: BotContext,
    flow: Flow,
    step: str,
    draft: GoodDeedView | None = None,
    *,
    notice: str | None = None,
    edit: bool = True,
) -> None:
    flow.step = step
    flow.data.pop("p", None)
    if step == "sum":
        flow.data.pop("ret", None)
    await context.services.flows.set(context.require_viewer().telegram_user_id, flow)
    await show(update, context, flow, draft, notice=notice, edit=edit)


def _next(flow: Flow, step: str) -> str:
    if flow.data.get("ret") or step == "photo":
        return "sum"
    return NEXT[step]


# --- buttons -----------------------------------------------------------------------------------


async def _stale(update: Update, context: BotContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(
            context.t("This button is no longer valid. Please start again."), show_alert=True
        )


async def on_button(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    if data.action == "go":
        if is_private(update):
            await begin(update, context)
        else:
            await private_link(update, context, "gooddeed")
        return
    if data.action not in ACTION_STEPS:
        raise BadCallback("unknown action")
    ref = data.word(0)
    draft_id, nonce = parse_key(ref)
    viewer = context.require_viewer()
    submissions = context.services.submissions
    if data.action in ("cont", "new"):
        await _resume(update, context, data.action, draft_id)
        return
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if not is_current(flow, FLOW, draft_id, nonce):
        await _stale(update, context)
        return
    steps = ACTION_STEPS[data.action]
    if data.action == "bk":
        steps = (data.word(1),)
    if steps is not None and flow.step not in steps:
        await _stale(update, context)
        return
    action = data.action
    t = context.t
    if action == "x":
        await reply(
            update,
            context,
            t("Stop this report? A draft is deleted; nothing is sent."),
            markup(
                [
                    button(t("Yes, stop"), S, "xy", ref),
                    button(t("No, continue"), S, "xn", ref),
                ]
            ),
        )
    elif action == "xn":
        await show(update, context, flow)
    elif action == "xy":
        await submissions.abandon_deed(viewer, draft_id)
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        await reply(update, context, t("Stopped. Nothing was sent."))
    elif action == "bk":
        previous = "sum" if flow.data.get("ret") and flow.step != "sum" else None
        previous = previous or PREVIOUS.get(flow.step)
        if previous is None:
            await _stale(update, context)
            return
        if previous == "who":
            flow.data.pop("q", None)
        await _go(update, context, flow, previous)
    else:
        await BUTTONS[action](update, context, flow, data)


async def _resume(update: Update, context: BotContext, action: str, draft_id: int) -> None:
    viewer = context.require_viewer()
    submissions = context.services.submissions
    draft = await submissions.get_deed(viewer, draft_id)
    if draft.status not in (SubmissionStatus.DRAFT, SubmissionStatus.CHANGES_REQUESTED):
        await _stale(update, context)
        return
    if action == "new":
        await submissions.abandon_deed(viewer, draft_id)
        await _start_new(update, context)
        return
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != FLOW or flow.data.get("id") != draft_id:
        resub = draft.status is SubmissionStatus.CHANGES_REQUESTED
        flow = Flow(FLOW, _first_missing(draft), new_flow_data(draft_id, resub=resub))
        await context.services.flows.set(viewer.telegram_user_id, flow)
    await show(update, context, flow, draft)


def _first_missing(d: GoodDeedView) -> str:
    if d.status is SubmissionStatus.CHANGES_REQUESTED:
        return "sum"
    if not d.has_subject:
        return "who"
    if not d.description:
        return "what"
    if d.occurred_on is None:
        return "when"
    return "sum"


async def b_pick_member(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_deed_member(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    flow.data.pop("q", None)
    await _go(update, context, flow, _next(flow, "who"), draft)


async def b_units(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await _go(update, context, flow, "unit")


async def b_pick_unit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_deed_unit(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    await _go(update, context, flow, _next(flow, "unit"), draft)


async def b_page(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    flow.data["p"] = data.num(1)
    await context.services.flows.set(context.require_viewer().telegram_user_id, flow)
    await show(update, context, flow)


async def b_keep(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await _go(update, context, flow, _next(flow, flow.step))


async def b_day(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    days_ago = data.num(1)
    if days_ago not in (0, 1):
        raise BadCallback("unknown day")
    submissions = context.services.submissions
    day = submissions.today() - timedelta(days=days_ago)
    await submissions.set_deed_day(context.require_viewer(), flow.data["id"], day)
    await _go(update, context, flow, _next(flow, "when"))


async def b_skip(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    if flow.step == "where":
        await context.services.submissions.set_deed_place(
            context.require_viewer(), flow.data["id"], None
        )
    await _go(update, context, flow, _next(flow, flow.step))


async def b_remove_photo(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await context.services.submissions.set_deed_photo(
        context.require_viewer(), flow.data["id"], None
    )
    await show(update, context, flow)


async def b_submit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    from bot.outbox import kick

    viewer = context.require_viewer()
    submitted = await context.services.submissions.submit_deed(viewer, flow.data["id"])
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    kick(context.application)
    t = context.t
    await reply(
        update,
        context,
        HTML(
            t("Thank you! Your good deed report was sent for review.")
            + "\n\n"
            + deed_card(t, submitted)
        ),
        markup([button(t("My nominations and reports"), "my", "l", 0)]),
    )


async def b_edit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await _go(update, context, flow, "edit")


async def b_edit_step(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    target = data.word(1)
    if target not in EDITABLE_STEPS:
        raise BadCallback("unknown step")
    flow.data["ret"] = True
    flow.data.pop("q", None)
    await _go(update, context, flow, target)


BUTTONS = {
    "pm": b_pick_member,
    "wp": b_page,
    "un": b_units,
    "pu": b_pick_unit,
    "up": b_page,
    "keep": b_keep,
    "dt": b_day,
    "sk": b_skip,
    "phx": b_remove_photo,
    "ok": b_submit,
    "ed": b_edit,
    "es": b_edit_step,
}


# --- typed text and photos ---------------------------------------------------------------------


@route(FLOW)
async def on_input(update: Update, context: BotContext, flow: Flow) -> None:
    message = update.effective_message
    if message is None or not isinstance(flow.data.get("id"), int):
        return
    viewer = context.require_viewer()
    submissions = context.services.submissions
    t = context.t
    draft_id = int(flow.data["id"])
    text = message.text
    step = flow.step
    if step == "photo":
        attachment = attachment_of(update)
        if attachment is None:
            await show(
                update, context, flow, notice=t("Please send a photo, or press Skip."), edit=False
            )
            return
        await submissions.set_deed_photo(viewer, draft_id, attachment)
        await _go(update, context, flow, "sum", edit=False)
        return
    if text is None:
        await show(
            update,
            context,
            flow,
            notice=t("Please type text here; the photo comes at its own step."),
            edit=False,
        )
        return
    if step == "who":
        if len(text) > MAX_QUERY_LENGTH:
            raise InvalidInput(
                N_("That is too long: at most {limit} characters."), limit=MAX_QUERY_LENGTH
            )
        flow.data["q"] = text
        flow.data.pop("p", None)
        await show(update, context, flow, edit=False)  # a query too short raises: not saved
        await context.services.flows.set(viewer.telegram_user_id, flow)
        return
    if step == "what":
        await submissions.set_deed_description(viewer, draft_id, text)
        await _go(update, context, flow, _next(flow, "what"), edit=False)
        return
    if step == "when":
        await submissions.set_deed_day(viewer, draft_id, text)
        await _go(update, context, flow, _next(flow, "when"), edit=False)
        return
    if step == "where":
        await submissions.set_deed_place(viewer, draft_id, text)
        await _go(update, context, flow, _next(flow, "where"), edit=False)
        return
    await show(
        update,
        context,
        flow,
        notice=t("Please use the buttons below, or send /cancel to stop."),
        edit=False,
    )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("gooddeed", gooddeed_command),
        CallbackQueryHandler(on_button, pattern=scope_pattern(S)),
    ]
