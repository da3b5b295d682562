"""/nominate: propose an advanced exemplar (đề cử điển hình tiên tiến) in a guided flow.

kind → nominee (a colleague by name search, or a unit) → movement → field → criteria → achievements
→ good practices (optional) → evidence (optional) → summary → Submit. The draft is a nominations
row saved at every step and the step is in `flow_states` (flow "nominate", data {"id": draft}), so
a restart or a day's pause loses nothing. Every button carries the draft id and belongs to one
step: a button of another draft or another step is answered as stale and changes nothing.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import (
    BadCallback,
    button,
    decode,
    markup,
    pager,
    rows,
    scope_pattern,
    url_button,
)
from bot.services.directory import Role
from bot.services.errors import N_, InvalidInput
from bot.services.flows import Flow
from bot.services.submissions import (
    ALLOWED_EXTENSIONS,
    MAX_FILE_BYTES,
    MAX_QUERY_LENGTH,
    AttachmentInput,
    NominationView,
    NomineeKind,
    SubmissionStatus,
)
from bot.texts import HTML, bold, escape, italic
from handlers.common import is_private, reply
from handlers.flows import route
from handlers.my import (
    is_current,
    key,
    label,
    new_flow_data,
    nomination_card,
    parse_key,
    status_label,
)
from handlers.start import deep_link

S = "nom"
FLOW = "nominate"
PER_PAGE = 8

register(Command("nominate", N_("Nominate an advanced exemplar"), Role.STAFF, group=True))

# which step each button belongs to (None: valid on any step of the same draft)
ACTION_STEPS: dict[str, tuple[str, ...] | None] = {
    "k": ("kind",),
    "pm": ("who",),
    "wp": ("who",),
    "pu": ("unit",),
    "up": ("unit",),
    "mv": ("movement",),
    "fd": ("field",),
    "ct": ("criteria",),
    "cn": ("criteria",),
    "keep": ("ach", "prac"),
    "sk": ("prac",),
    "evd": ("ev",),
    "evx": ("ev",),
    "ok": ("sum",),
    "ed": ("sum",),
    "es": ("edit",),
    "bk": None,  # carries its step
    "x": None,
    "xy": None,
    "xn": None,
    "cont": None,
    "new": None,
}
EDITABLE_STEPS = {
    "kind": "kind",
    "nominee": "nominee",
    "movement": "movement",
    "field": "field",
    "criteria": "criteria",
    "ach": "ach",
    "prac": "prac",
    "ev": "ev",
}


def _nominee_step(kind: NomineeKind | str) -> str:
    return "who" if str(kind) == NomineeKind.INDIVIDUAL.value else "unit"


# --- entry -------------------------------------------------------------------------------------


async def nominate_command(update: Update, context: BotContext) -> None:
    if not is_private(update):
        await private_link(update, context, "nominate")
        return
    await begin(update, context)


async def private_link(update: Update, context: BotContext, payload: str) -> None:
    """In a group: a button that opens the flow in the private chat with the bot."""
    url = f"https://t.me/{context.bot.username}?start={payload}"
    query = update.callback_query
    if query is not None:
        await query.answer(url=url)
        return
    t = context.t
    text = (
        t("Nominations are made in a private chat with me. Press the button to start.")
        if payload == "nominate"
        else t("Good deeds are reported in a private chat with me. Press the button to start.")
    )
    await reply(update, context, text, markup([url_button(t("Open the private chat"), url)]))


@deep_link("nominate")
async def nominate_link(update: Update, context: BotContext, rest: str) -> None:
    await begin(update, context)


async def begin(update: Update, context: BotContext) -> None:
    """Continue a draft (after asking) or start a new one."""
    viewer = context.require_viewer()
    submissions = context.services.submissions
    flow = await context.services.flows.get(viewer.telegram_user_id)
    item_id = flow.data.get("id") if flow is not None and flow.name == FLOW else None
    current = await submissions.resumable_nomination(
        viewer, item_id if isinstance(item_id, int) else None
    )
    t = context.t
    if current is not None:
        what = (
            t("Your nomination of {name} is waiting to be corrected.", name=current.nominee_name)
            if current.status is SubmissionStatus.CHANGES_REQUESTED
            else t(
                "You have an unfinished nomination (of {name}).",
                name=current.nominee_name or "—",
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
    if not await context.services.catalogue.open_movements():
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        await reply(
            update,
            context,
            context.t(
                "No emulation movement is accepting nominations at the moment. You will be "
                "able to nominate when one is launched."
            ),
        )
        return
    draft = await context.services.submissions.start_nomination(viewer)
    flow = Flow(FLOW, "kind", new_flow_data(draft.id))
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
    draft: NominationView | None = None,
    *,
    notice: str | None = None,
    edit: bool = True,
) -> None:
    """Render the step the flow is at (a fresh message for typed input, else an edit)."""
    viewer = context.require_viewer()
    draft_id = int(flow.data["id"])
    if draft is None:
        draft = await context.services.submissions.get_nomination(viewer, draft_id)
    renderer = RENDERERS[flow.step]
    text, layout = await renderer(context, flow, draft)
    if notice:
        text = HTML(notice + "\n\n" + text)
    await reply(update, context, text, markup(*layout), edit=edit)


Layout = list[list[InlineKeyboardButton]]


async def _kind(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    text = HTML(bold(t("Nominate an advanced exemplar")) + "\n" + t("Whom do you nominate?"))
    return text, [
        [
            button(t("An individual (cá nhân)"), S, "k", key(flow), "i"),
            button(t("A collective (tập thể)"), S, "k", key(flow), "c"),
        ],
        _nav_row(context, key(flow), "kind", back=False),
    ]


async def _who(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    query = flow.data.get("q")
    if not query:
        text = t("Type part of your colleague's name (accents are optional: “nguyen van a”).")
        return text, [_nav_row(context, key(flow), "who")]
    page = await context.services.directory.list_members(
        context.require_viewer(), query=query, page=int(flow.data.get("p", 0)), page_size=PER_PAGE
    )
    if not page.total:
        text = t("Nobody found for “{query}”. Type another part of the name.", query=query)
        return text, [_nav_row(context, key(flow), "who")]
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
    layout.append(_nav_row(context, key(flow), "who"))
    return text, layout


async def _unit(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
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
    text = t("Which unit (collective) do you nominate?") if units else t("There are no units yet.")
    return text, layout


async def _movement(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    movements = await context.services.catalogue.open_movements()
    lines = [t("Nominee: {name}", name=d.nominee_name or "—"), ""]
    if not movements:
        lines.append(t("No emulation movement is accepting nominations at the moment."))
    else:
        lines.append(t("Which emulation movement is this nomination for?"))
        for m in movements:
            lines.append(
                t(
                    "• {name} — nominations until {deadline}",
                    name=m.name,
                    deadline=m.nomination_deadline,
                )
            )
    layout: Layout = [
        [button(label(("• " if m.id == d.movement_id else "") + m.name), S, "mv", key(flow), m.id)]
        for m in movements
    ]
    layout.append(_nav_row(context, key(flow), "movement"))
    return HTML("\n".join(lines)), layout


async def _field(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    fields = await context.services.catalogue.fields()
    layout: Layout = rows(
        (
            button(label(("• " if f.id == d.field_id else "") + f.name), S, "fd", key(flow), f.id)
            for f in fields
        ),
        per_row=2,
    )
    lines: list[str] = [t("Which field of work (lĩnh vực) are the achievements in?")]
    duplicate = flow.data.get("dup")
    if isinstance(duplicate, int):
        existing = await context.services.submissions.get_nomination(
            context.require_viewer(), duplicate
        )
        lines = [
            t(
                "You have already nominated {name} in this movement and field: no. {id} "
                "({status}). A second nomination for the same movement and field is not "
                "accepted; choose another field or movement, or open the existing one.",
                name=existing.nominee_name or "—",
                id=existing.id,
                status=status_label(t, existing.status),
            ),
            "",
            *lines,
        ]
        layout.insert(0, [button(t("Open no. {id}", id=existing.id), "my", "o", "n", existing.id)])
    layout.append(_nav_row(context, key(flow), "field"))
    return HTML("\n".join(lines)), layout


async def _criteria(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    criteria = await context.services.catalogue.criteria_for(d.field_id or 0, d.kind)
    chosen = {c.id for c in d.criteria}
    lines = [
        t(
            "Which criteria has {name} met? Tap to tick several, then press Next.",
            name=d.nominee_name or "—",
        ),
        "",
    ]
    layout: Layout = []
    for i, c in enumerate(criteria, start=1):
        mark = "✅" if c.id in chosen else "▫️"
        lines.append(f"{mark} {i}. {escape(c.text)}")
        layout.append([button(label(f"{mark} {i}. {c.text}"), S, "ct", key(flow), c.id)])
    layout.append([button(t("Next ›"), S, "cn", key(flow))])
    layout.append(_nav_row(context, key(flow), "criteria"))
    return HTML("\n".join(lines)), layout


def _current(context: BotContext, value: str | None) -> str:
    if not value:
        return ""
    return "\n\n" + context.t("Current text:") + "\n" + italic(value)


async def _ach(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    limit = context.services.settings.submissions.max_text_length
    text = HTML(
        t(
            "Describe the achievements of {name}: what was done, the results, figures "
            "(at most {limit} characters).",
            name=d.nominee_name or "—",
            limit=limit,
        )
        + _current(context, d.achievements)
    )
    layout: Layout = []
    if d.achievements:
        layout.append([button(t("Keep as is ›"), S, "keep", key(flow))])
    layout.append(_nav_row(context, key(flow), "ach"))
    return text, layout


async def _prac(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    limit = context.services.settings.submissions.max_text_length
    text = HTML(
        t(
            "Good practices worth replicating (kinh nghiệm, cách làm hay): what could other "
            "units learn from this? Type them (at most {limit} characters), or press Skip.",
            limit=limit,
        )
        + _current(context, d.good_practices)
    )
    layout: Layout = []
    if d.good_practices:
        layout.append([button(t("Keep as is ›"), S, "keep", key(flow))])
    layout.append([button(t("Skip ›"), S, "sk", key(flow))])
    layout.append(_nav_row(context, key(flow), "prac"))
    return text, layout


async def _ev(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    limit = context.services.settings.submissions.max_attachments
    text = t(
        "Evidence (minh chứng), optional: send photos, or documents ({types}), up to {mb} MB "
        "each, at most {limit} files. Attached so far: {count}.",
        types=", ".join(sorted(ALLOWED_EXTENSIONS)),
        mb=MAX_FILE_BYTES // 1024 // 1024,
        limit=limit,
        count=len(d.attachments),
    )
    layout: Layout = []
    if d.attachments:
        layout.append(
            [
                button(t("Done ›"), S, "evd", key(flow)),
                button(t("Remove all files"), S, "evx", key(flow)),
            ]
        )
    else:
        layout.append([button(t("Skip ›"), S, "evd", key(flow))])
    layout.append(_nav_row(context, key(flow), "ev"))
    return text, layout


async def _sum(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    resubmit = d.status is SubmissionStatus.CHANGES_REQUESTED
    intro = (
        t("Please check your corrected nomination, then resubmit it.")
        if resubmit
        else t("Please check your nomination, then submit it.")
    )
    text = HTML(intro + "\n\n" + nomination_card(t, d))
    return text, [
        [button(t("Resubmit ✅") if resubmit else t("Submit ✅"), S, "ok", key(flow))],
        [button(t("Edit a step"), S, "ed", key(flow)), button(t("Cancel"), S, "x", key(flow))],
    ]


async def _edit(context: BotContext, flow: Flow, d: NominationView) -> tuple[HTML, Layout]:
    t = context.t
    choices = [
        ("nominee", t("Nominee")),
        ("kind", t("Individual / collective")),
        ("movement", t("Movement")),
        ("field", t("Field")),
        ("criteria", t("Criteria")),
        ("ach", t("Achievements")),
        ("prac", t("Good practices")),
        ("ev", t("Evidence")),
    ]
    layout = rows((button(text, S, "es", key(flow), code) for code, text in choices), per_row=2)
    layout.append([button("‹ " + t("Back"), S, "bk", key(flow), "edit")])
    return t("Which step do you want to change?"), layout


RENDERERS = {
    "kind": _kind,
    "who": _who,
    "unit": _unit,
    "movement": _movement,
    "field": _field,
    "criteria": _criteria,
    "ach": _ach,
    "prac": _prac,
    "ev": _ev,
    "sum": _sum,
    "edit": _edit,
}


# --- moving between steps ----------------------------------------------------------------------


async def _go(
    update: Update,
    context: BotContext,
    flow: Flow,
    step: str,
    draft: NominationView | None = None,
    *,
    notice: str | None = None,
    edit: bool = True,
) -> None:
    if step == "criteria" and draft is not None:
        # nothing to tick: the catalogue has no criterion for this field and kind
        criteria = await context.services.catalogue.criteria_for(draft.field_id or 0, draft.kind)
        if not criteria:
            step = "sum" if flow.data.get("ret") else "ach"
    flow.step = step
    flow.data.pop("p", None)
    if step != "field":
        flow.data.pop("dup", None)
    if step == "sum":
        flow.data.pop("ret", None)
    await context.services.flows.set(context.require_viewer().telegram_user_id, flow)
    await show(update, context, flow, draft, notice=notice, edit=edit)


def _next(flow: Flow, step: str, draft: NominationView) -> str:
    """The step after `step` (back to the summary when a step was changed from there)."""
    if flow.data.get("ret") and step not in ("kind", "field"):
        return "sum"
    following = {
        "kind": _nominee_step(draft.kind),
        "who": "movement",
        "unit": "movement",
        "movement": "field",
        "field": "criteria",
        "criteria": "ach",
        "ach": "prac",
        "prac": "ev",
        "ev": "sum",
    }
    return following[step]


def _previous(flow: Flow, step: str, draft: NominationView) -> str | None:
    if step == "edit" or (flow.data.get("ret") and step != "sum"):
        return "sum"
    previous = {
        "who": "kind",
        "unit": "kind",
        "movement": _nominee_step(draft.kind),
        "field": "movement",
        "criteria": "field",
        "ach": "criteria",
        "prac": "ach",
        "ev": "prac",
        "sum": "ev",
    }
    return previous.get(step)


async def _after_pick(
    update: Update, context: BotContext, flow: Flow, step: str, draft: NominationView
) -> None:
    """After the nominee, movement or field changed: refuse a second live nomination early."""
    if draft.field_id is not None:
        existing = await context.services.submissions.live_duplicate(
            context.require_viewer(), draft.id
        )
        if existing is not None:
            flow.data["dup"] = existing.id
            await _go(update, context, flow, "field", draft)
            return
    await _go(update, context, flow, _next(flow, step, draft), draft)


# --- buttons -----------------------------------------------------------------------------------


async def _stale(update: Update, context: BotContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(
            context.t("This button is no longer valid. Please start again."), show_alert=True
        )


async def on_button(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    if data.action == "go":  # a "Nominate" button, in a group or here
        if is_private(update):
            await begin(update, context)
        else:
            await private_link(update, context, "nominate")
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
    if action == "x":
        t = context.t
        await reply(
            update,
            context,
            t("Stop this nomination? A draft is deleted; nothing is sent."),
            markup(
                [
                    button(t("Yes, stop"), S, "xy", ref),
                    button(t("No, continue"), S, "xn", ref),
                ]
            ),
        )
        return
    if action == "xn":
        await show(update, context, flow)
        return
    if action == "xy":
        await submissions.abandon_nomination(viewer, draft_id)
        await context.services.flows.clear(viewer.telegram_user_id, FLOW)
        await reply(update, context, context.t("Stopped. Nothing was sent."))
        return
    if action == "bk":
        draft = await submissions.get_nomination(viewer, draft_id)
        previous = _previous(flow, flow.step, draft)
        if previous is None:
            await _stale(update, context)
            return
        if previous in ("who", "unit"):
            flow.data.pop("q", None)
        await _go(update, context, flow, previous, draft)
        return
    await BUTTONS[action](update, context, flow, data)


async def _resume(update: Update, context: BotContext, action: str, draft_id: int) -> None:
    viewer = context.require_viewer()
    submissions = context.services.submissions
    draft = await submissions.get_nomination(viewer, draft_id)
    if draft.status not in (SubmissionStatus.DRAFT, SubmissionStatus.CHANGES_REQUESTED):
        await _stale(update, context)
        return
    if action == "new":
        await submissions.abandon_nomination(viewer, draft_id)  # a draft only
        await _start_new(update, context)
        return
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != FLOW or flow.data.get("id") != draft_id:
        resub = draft.status is SubmissionStatus.CHANGES_REQUESTED
        flow = Flow(FLOW, _first_missing(draft), new_flow_data(draft_id, resub=resub))
        await context.services.flows.set(viewer.telegram_user_id, flow)
    await show(update, context, flow, draft)


def _first_missing(d: NominationView) -> str:
    if d.status is SubmissionStatus.CHANGES_REQUESTED:
        return "sum"
    if not d.has_nominee:
        return _nominee_step(d.kind)
    if d.movement_id is None:
        return "movement"
    if d.field_id is None:
        return "field"
    if not d.criteria:
        return "criteria"
    if not d.achievements:
        return "ach"
    return "sum"


async def b_kind(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    kind = {"i": NomineeKind.INDIVIDUAL, "c": NomineeKind.COLLECTIVE}.get(data.word(1))
    if kind is None:
        raise BadCallback("unknown kind")
    draft = await context.services.submissions.set_nominee_kind(
        context.require_viewer(), flow.data["id"], kind
    )
    flow.data.pop("q", None)
    await _go(update, context, flow, _nominee_step(kind), draft)


async def b_pick_member(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_nominee_member(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    flow.data.pop("q", None)
    await _after_pick(update, context, flow, "who", draft)


async def b_pick_unit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_nominee_unit(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    await _after_pick(update, context, flow, "unit", draft)


async def b_page(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    flow.data["p"] = data.num(1)
    await context.services.flows.set(context.require_viewer().telegram_user_id, flow)
    await show(update, context, flow)


async def b_movement(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_movement(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    await _after_pick(update, context, flow, "movement", draft)


async def b_field(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.set_field(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    flow.data.pop("dup", None)
    existing = await context.services.submissions.live_duplicate(context.require_viewer(), draft.id)
    if existing is not None:
        flow.data["dup"] = existing.id
        await _go(update, context, flow, "field", draft)
        return
    await _go(update, context, flow, "criteria", draft)


async def b_toggle(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.toggle_criterion(
        context.require_viewer(), flow.data["id"], data.num(1)
    )
    await show(update, context, flow, draft)


async def b_criteria_next(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.check_criteria(
        context.require_viewer(), flow.data["id"]
    )
    await _go(update, context, flow, _next(flow, "criteria", draft), draft)


async def b_keep(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    draft = await context.services.submissions.get_nomination(
        context.require_viewer(), flow.data["id"]
    )
    await _go(update, context, flow, _next(flow, flow.step, draft), draft)


async def b_skip(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    viewer = context.require_viewer()
    await context.services.submissions.set_good_practices(viewer, flow.data["id"], None)
    draft = await context.services.submissions.get_nomination(viewer, flow.data["id"])
    await _go(update, context, flow, _next(flow, "prac", draft), draft)


async def b_evidence_done(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await _go(update, context, flow, "sum")


async def b_evidence_clear(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await context.services.submissions.clear_nomination_attachments(
        context.require_viewer(), flow.data["id"]
    )
    await show(update, context, flow)


async def b_submit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    from bot.outbox import kick

    viewer = context.require_viewer()
    submitted = await context.services.submissions.submit_nomination(viewer, flow.data["id"])
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    kick(context.application)
    t = context.t
    await reply(
        update,
        context,
        HTML(
            t("Thank you! Your nomination was sent for review.")
            + "\n\n"
            + nomination_card(t, submitted)
        ),
        markup([button(t("My nominations and reports"), "my", "l", 0)]),
    )


async def b_edit(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    await _go(update, context, flow, "edit")


async def b_edit_step(update: Update, context: BotContext, flow: Flow, data: Any) -> None:
    target = EDITABLE_STEPS.get(data.word(1))
    if target is None:
        raise BadCallback("unknown step")
    draft = await context.services.submissions.get_nomination(
        context.require_viewer(), flow.data["id"]
    )
    flow.data["ret"] = True
    if target == "nominee":
        target = _nominee_step(draft.kind)
        flow.data.pop("q", None)
    await _go(update, context, flow, target, draft)


BUTTONS = {
    "k": b_kind,
    "pm": b_pick_member,
    "wp": b_page,
    "pu": b_pick_unit,
    "up": b_page,
    "mv": b_movement,
    "fd": b_field,
    "ct": b_toggle,
    "cn": b_criteria_next,
    "keep": b_keep,
    "sk": b_skip,
    "evd": b_evidence_done,
    "evx": b_evidence_clear,
    "ok": b_submit,
    "ed": b_edit,
    "es": b_edit_step,
}


# --- typed text, photos and documents ----------------------------------------------------------


def attachment_of(update: Update) -> AttachmentInput | None:
    message = update.effective_message
    if message is None:
        return None
    if message.photo:
        biggest = message.photo[-1]
        return AttachmentInput(
            kind="photo",
            file_id=biggest.file_id,
            file_unique_id=biggest.file_unique_id,
            file_size=biggest.file_size,
            caption=message.caption,
        )
    if message.document is not None:
        doc = message.document
        return AttachmentInput(
            kind="document",
            file_id=doc.file_id,
            file_unique_id=doc.file_unique_id,
            file_name=doc.file_name,
            mime_type=doc.mime_type,
            file_size=doc.file_size,
            caption=message.caption,
        )
    return None


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
    attachment = attachment_of(update)
    step = flow.step
    if step == "ev":
        if attachment is None:
            await show(
                update,
                context,
                flow,
                notice=t("Please send a photo or a document, or press Done."),
                edit=False,
            )
            return
        count = await submissions.add_nomination_attachment(viewer, draft_id, attachment)
        await show(
            update,
            context,
            flow,
            notice=t("Received ({count} file(s)).", count=count),
            edit=False,
        )
        return
    if text is None:
        await show(
            update,
            context,
            flow,
            notice=t("Please type text here; photos and documents come at the evidence step."),
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
    if step == "ach":
        await submissions.set_achievements(viewer, draft_id, text)
        draft = await submissions.get_nomination(viewer, draft_id)
        await _go(update, context, flow, _next(flow, "ach", draft), draft, edit=False)
        return
    if step == "prac":
        await submissions.set_good_practices(viewer, draft_id, text)
        draft = await submissions.get_nomination(viewer, draft_id)
        await _go(update, context, flow, _next(flow, "prac", draft), draft, edit=False)
        return
    # a step that wants a button: say so, and show the step again with fresh buttons
    await show(
        update,
        context,
        flow,
        notice=t("Please use the buttons below, or send /cancel to stop."),
        edit=False,
    )


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("nominate", nominate_command),
        CallbackQueryHandler(on_button, pattern=scope_pattern(S)),
    ]
