"""The emulation catalogue from /admin: fields (lĩnh vực), criteria (tiêu chí), titles (danh
hiệu) and movements (phong trào thi đua), in an administrator's private chat. Buttons wherever a
choice is made; typed input goes through the "catalogue" flow. Every press is re-authorised by
the service."""

from __future__ import annotations

from datetime import date

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, pager, rows, scope_pattern
from bot.services.catalogue import (
    AppliesTo,
    CriterionView,
    MovementKind,
    MovementStatus,
    MovementView,
    TitleView,
    parse_deadline,
    parse_period,
    parse_threshold,
)
from bot.services.directory import Viewer
from bot.services.errors import N_, NotAllowed
from bot.services.flows import Flow
from bot.texts import HTML, bold, italic
from handlers.common import is_private, reply
from handlers.flows import route

S = "cat"
FLOW = "catalogue"
PER_PAGE = 8
LABEL = 56  # characters of a name shown on a button

APPLIES = {"i": AppliesTo.INDIVIDUAL, "c": AppliesTo.COLLECTIVE, "b": AppliesTo.BOTH}
APPLIES_NAMES = {
    AppliesTo.INDIVIDUAL: N_("For individuals"),
    AppliesTo.COLLECTIVE: N_("For collectives"),
    AppliesTo.BOTH: N_("For individuals and collectives"),
}
APPLIES_ICONS = {AppliesTo.INDIVIDUAL: "👤", AppliesTo.COLLECTIVE: "👥", AppliesTo.BOTH: "👤👥"}
KINDS = {"r": MovementKind.REGULAR, "c": MovementKind.CAMPAIGN}
KIND_NAMES = {
    MovementKind.REGULAR: N_("Regular (year-round)"),
    MovementKind.CAMPAIGN: N_("Campaign or thematic"),
}
STATUSES = {"o": MovementStatus.OPEN, "c": MovementStatus.CLOSED, "a": MovementStatus.ARCHIVED}
STATUS_NAMES = {
    MovementStatus.DRAFT: N_("Draft: not launched yet"),
    MovementStatus.OPEN: N_("Open: nominations accepted until the deadline"),
    MovementStatus.CLOSED: N_("Closed: no more nominations"),
    MovementStatus.ARCHIVED: N_("Archived"),
}
STATUS_ICONS = {
    MovementStatus.DRAFT: "📝",
    MovementStatus.OPEN: "🟢",
    MovementStatus.CLOSED: "🔒",
    MovementStatus.ARCHIVED: "📦",
}
STALE = N_("This button is no longer valid. Please start again.")


def _code(table: dict[str, object], value: object) -> str:
    return next(k for k, v in table.items() if v == value)


def _admin(context: BotContext) -> Viewer:
    viewer = context.require_viewer()
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))
    return viewer


def _label(text: str, inactive: bool = False) -> str:
    text = text if len(text) <= LABEL else text[: LABEL - 1] + "…"
    return f"{text} ✖" if inactive else text


def _page(page: int, total: int) -> tuple[int, int]:
    pages = max(1, -(-total // PER_PAGE))
    return min(max(page, 0), pages - 1), pages


def _back(context: BotContext, action: str, *args: object) -> InlineKeyboardButton:
    return button(context.t("Back"), S, action, *args)


async def on_catalogue(update: Update, context: BotContext) -> None:
    viewer = _admin(context)
    if not is_private(update):
        await reply(update, context, context.t("Please use /admin in a private chat with me."))
        return
    data = decode(update.callback_query.data if update.callback_query else None)
    action = ACTIONS.get(data.action)
    if action is None:
        await reply(update, context, context.t(STALE))
        return
    await action(update, context, viewer, data)


async def menu(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    t = context.t
    await reply(
        update,
        context,
        HTML(
            f"{bold(t('Emulation catalogue'))}\n"
            + t(
                "Fields of work, criteria, emulation titles and movements, used by nominations "
                "and good deeds."
            )
        ),
        markup(
            [button(t("Fields"), S, "fl", 0), button(t("Criteria"), S, "cl", 0)],
            [button(t("Titles"), S, "tl", 0), button(t("Movements"), S, "ml", 0)],
            [button(t("Back"), "adm", "menu")],
        ),
    )


# --- fields --------------------------------------------------------------------------------------


async def field_list(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    fields = await context.services.catalogue.fields(include_inactive=True)
    page, pages = _page(data.num(0), len(fields))
    shown = fields[page * PER_PAGE : (page + 1) * PER_PAGE]
    t = context.t
    await reply(
        update,
        context,
        bold(t("Fields of work")) if fields else t("There are no fields yet."),
        markup(
            *rows(button(_label(f.name, not f.active), S, "f", f.id) for f in shown),
            pager(S, "fl", page, pages),
            [button(t("Add a field"), S, "fadd"), _back(context, "menu")],
        ),
    )


async def field_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _field_card(update, context, data.num(0))


async def _field_card(update: Update, context: BotContext, field_id: int) -> None:
    catalogue = context.services.catalogue
    found = await catalogue.field(field_id)
    criteria = await catalogue.criteria(field_id)
    t = context.t
    lines = [bold(found.name)]
    if found.description:
        lines.append(italic(found.description))
    lines.append(t("Criteria: {count}", count=len(criteria)))
    if not found.active:
        lines.append(t("No longer active."))
    layout: list[list[InlineKeyboardButton]] = [[button(t("Criteria"), S, "cf", found.id, 0)]]
    if found.active:
        layout.append(
            [button(t("Rename"), S, "fren", found.id), button(t("Deactivate"), S, "fdel", found.id)]
        )
    else:
        layout.append([button(t("Reactivate"), S, "fon", found.id)])
    layout.append([_back(context, "fl", 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def field_add(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _ask_text(
        update,
        context,
        Flow(FLOW, "field_name"),
        context.t("Type the name of the new field (e.g. Điều tra thống kê)."),
    )


async def field_rename(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    found = await context.services.catalogue.field(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "field_rename", {"id": found.id}),
        context.t("Type the new name of {name}.", name=found.name),
    )


async def field_deactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.deactivate_field(viewer, data.num(0))
    await _field_card(update, context, data.num(0))


async def field_reactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.reactivate_field(viewer, data.num(0))
    await _field_card(update, context, data.num(0))


# --- criteria ------------------------------------------------------------------------------------


async def criteria_fields(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    """Criteria belong to a field, or are general: choose which list."""
    fields = await context.services.catalogue.fields()
    page, pages = _page(data.num(0), len(fields))
    shown = fields[page * PER_PAGE : (page + 1) * PER_PAGE]
    t = context.t
    await reply(
        update,
        context,
        t("Criteria of which field?"),
        markup(
            [button(t("General criteria (every field)"), S, "cf", 0, 0)],
            *rows(button(_label(f.name), S, "cf", f.id, 0) for f in shown),
            pager(S, "cl", page, pages),
            [_back(context, "menu")],
        ),
    )


def _criterion_label(c: CriterionView) -> str:
    return _label(f"{APPLIES_ICONS[c.applies_to]} {c.text}", not c.active)


async def criteria_list(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await _criteria_list(update, context, data.num(0), data.num(1))


async def _criteria_list(update: Update, context: BotContext, field_id: int, page_no: int) -> None:
    catalogue = context.services.catalogue
    t = context.t
    if field_id:
        owner = (await catalogue.field(field_id)).name
        heading = t("Criteria of {field}", field=owner)
    else:
        heading = t("General criteria (every field)")
    criteria = await catalogue.criteria(field_id or None, include_inactive=True)
    page, pages = _page(page_no, len(criteria))
    shown = criteria[page * PER_PAGE : (page + 1) * PER_PAGE]
    lines = [bold(heading)]
    if not criteria:
        lines.append(t("There are no criteria here yet."))
    await reply(
        update,
        context,
        "\n".join(lines),
        markup(
            *rows(button(_criterion_label(c), S, "c", c.id) for c in shown),
            pager(S, "cf", page, pages, field_id),
            [button(t("Add a criterion"), S, "cadd", field_id), _back(context, "cl", 0)],
        ),
    )


async def criterion_card(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await _criterion_card(update, context, data.num(0))


async def _criterion_card(update: Update, context: BotContext, criterion_id: int) -> None:
    catalogue = context.services.catalogue
    found = await catalogue.criterion(criterion_id)
    t = context.t
    owner = (
        (await catalogue.field(found.field_id)).name
        if found.field_id
        else t.raw("General criteria (every field)")
    )
    lines = [
        bold(found.text),
        t("Field: {field}", field=owner),
        t(APPLIES_NAMES[found.applies_to]),
    ]
    if not found.active:
        lines.append(t("No longer active."))
    applies = [
        button(
            ("• " if value is found.applies_to else "") + t.raw(APPLIES_NAMES[value]),
            S,
            "capp",
            found.id,
            code,
        )
        for code, value in APPLIES.items()
    ]
    layout: list[list[InlineKeyboardButton]] = [[applies[0], applies[1]], [applies[2]]]
    layout.append(
        [
            button(t("Edit the text"), S, "cedit", found.id),
            button(t("Deactivate"), S, "cdel", found.id)
            if found.active
            else button(t("Reactivate"), S, "con", found.id),
        ]
    )
    layout.append([_back(context, "cf", found.field_id or 0, 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def criterion_add(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    field_id = data.num(0)
    if field_id:
        await context.services.catalogue.field(field_id)
    t = context.t
    await reply(
        update,
        context,
        t("Who does the new criterion apply to?"),
        markup(
            *rows(
                (
                    button(t.raw(APPLIES_NAMES[value]), S, "caddk", field_id, code)
                    for code, value in APPLIES.items()
                ),
            ),
            [button(t("Cancel"), S, "cf", field_id, 0)],
        ),
    )


async def criterion_add_kind(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    field_id, code = data.num(0), data.word(1)
    if code not in APPLIES:
        await reply(update, context, context.t(STALE))
        return
    if field_id:
        await context.services.catalogue.field(field_id)
    await _ask_text(
        update,
        context,
        Flow(FLOW, "criterion_text", {"field": field_id, "applies": code}),
        context.t("Type the criterion, in one message."),
    )


async def criterion_edit(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    found = await context.services.catalogue.criterion(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "criterion_edit", {"id": found.id}),
        context.t("Type the new text of this criterion:\n{text}", text=found.text),
    )


async def criterion_applies(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    applies = APPLIES.get(data.word(1))
    if applies is None:
        await reply(update, context, context.t(STALE))
        return
    await context.services.catalogue.edit_criterion(viewer, data.num(0), applies_to=applies)
    await _criterion_card(update, context, data.num(0))


async def criterion_deactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.deactivate_criterion(viewer, data.num(0))
    await _criterion_card(update, context, data.num(0))


async def criterion_reactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.reactivate_criterion(viewer, data.num(0))
    await _criterion_card(update, context, data.num(0))


# --- titles --------------------------------------------------------------------------------------


async def title_list(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    titles = await context.services.catalogue.list_titles(include_inactive=True)
    page, pages = _page(data.num(0), len(titles))
    shown = titles[page * PER_PAGE : (page + 1) * PER_PAGE]
    t = context.t
    await reply(
        update,
        context,
        bold(t("Emulation titles and forms of commendation"))
        if titles
        else t("There are no titles yet."),
        markup(
            *rows(
                button(
                    _label(f"{APPLIES_ICONS[x.applies_to]} {x.name}", not x.active), S, "t", x.id
                )
                for x in shown
            ),
            pager(S, "tl", page, pages),
            [button(t("Add a title"), S, "tadd"), _back(context, "menu")],
        ),
    )


def _threshold(context: BotContext, found: TitleView) -> HTML:
    if found.approval_threshold is None:
        return context.t("Approval threshold: the general setting")
    percent = f"{found.approval_threshold * 100:.4g}%"
    return context.t(
        "Approval threshold: {percent} of the whole council must agree", percent=percent
    )


async def title_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _title_card(update, context, data.num(0))


async def _title_card(update: Update, context: BotContext, title_id: int) -> None:
    found = await context.services.catalogue.title(title_id)
    t = context.t
    lines = [bold(found.name), t(APPLIES_NAMES[found.applies_to]), _threshold(context, found)]
    if found.description:
        lines.append(italic(found.description))
    if not found.active:
        lines.append(t("No longer active."))
    layout: list[list[InlineKeyboardButton]] = []
    if found.active:
        layout += [
            [
                button(t("Rename"), S, "tren", found.id),
                button(t("Approval threshold"), S, "tthr", found.id),
            ],
            [button(t("Deactivate"), S, "tdel", found.id)],
        ]
    else:
        layout.append([button(t("Reactivate"), S, "ton", found.id)])
    layout.append([_back(context, "tl", 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def title_add(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    t = context.t
    await reply(
        update,
        context,
        t("Who can receive the new title?"),
        markup(
            *rows(
                button(t.raw(APPLIES_NAMES[value]), S, "taddk", code)
                for code, value in APPLIES.items()
            ),
            [button(t("Cancel"), S, "tl", 0)],
        ),
    )


async def title_add_kind(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    code = data.word(0)
    if code not in APPLIES:
        await reply(update, context, context.t(STALE))
        return
    await _ask_text(
        update,
        context,
        Flow(FLOW, "title_name", {"applies": code}),
        context.t("Type the name of the title (e.g. Chiến sĩ thi đua cơ sở)."),
    )


async def title_rename(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    found = await context.services.catalogue.title(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "title_rename", {"id": found.id}),
        context.t("Type the new name of {name}.", name=found.name),
    )


async def title_threshold(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    found = await context.services.catalogue.title(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "title_threshold", {"id": found.id}),
        HTML(
            _threshold(context, found)
            + "\n"
            + context.t(
                "Type the share of the whole council that must agree to award {name}, for "
                "example 0.7 or 70%, or - to use the general setting.",
                name=found.name,
            )
        ),
    )


async def title_deactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.deactivate_title(viewer, data.num(0))
    await _title_card(update, context, data.num(0))


async def title_reactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.catalogue.reactivate_title(viewer, data.num(0))
    await _title_card(update, context, data.num(0))


# --- movements -----------------------------------------------------------------------------------


def _movement_label(m: MovementView) -> str:
    return _label(f"{STATUS_ICONS[m.status]} {m.name}")


async def movement_list(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    movements = await context.services.catalogue.movements()
    page, pages = _page(data.num(0), len(movements))
    shown = movements[page * PER_PAGE : (page + 1) * PER_PAGE]
    t = context.t
    await reply(
        update,
        context,
        bold(t("Emulation movements")) if movements else t("There are no movements yet."),
        markup(
            *rows(button(_movement_label(m), S, "m", m.id) for m in shown),
            pager(S, "ml", page, pages),
            [button(t("Add a movement"), S, "madd"), _back(context, "menu")],
        ),
    )


async def movement_card(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await _movement_card(update, context, data.num(0))


async def _movement_card(
    update: Update, context: BotContext, movement_id: int, note: str | None = None
) -> None:
    catalogue = context.services.catalogue
    found = await catalogue.movement(movement_id)
    t = context.t
    lines = [note] if note else []
    lines += [
        bold(found.name),
        t("Kind: {kind}", kind=t.raw(KIND_NAMES[found.kind])),
        t(
            "Status: {icon} {status}",
            icon=STATUS_ICONS[found.status],
            status=t.raw(STATUS_NAMES[found.status]),
        ),
        t("Dates: {start} to {end}", start=found.starts_on, end=found.ends_on),
        t("Nomination deadline: {deadline}", deadline=found.nomination_deadline),
    ]
    if found.parent_id:
        parent = await catalogue.movement(found.parent_id)
        lines.append(t("Part of: {name}", name=parent.name))
    if found.description:
        lines.append(italic(found.description))
    layout: list[list[InlineKeyboardButton]] = []
    if found.status is MovementStatus.DRAFT:
        layout.append([button(t("Launch the movement"), S, "mask", found.id, "o")])
    elif found.status is MovementStatus.OPEN:
        layout.append([button(t("Close nominations"), S, "mask", found.id, "c")])
    elif found.status is MovementStatus.CLOSED:
        layout.append(
            [
                button(t("Reopen"), S, "mask", found.id, "o"),
                button(t("Archive"), S, "mask", found.id, "a"),
            ]
        )
    if found.status is not MovementStatus.ARCHIVED:
        layout += [
            [
                button(t("Change the deadline"), S, "mdl", found.id),
                button(t("Change the dates"), S, "mdt", found.id),
            ],
            [button(t("Rename"), S, "mren", found.id)],
        ]
    layout.append([_back(context, "ml", 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def movement_ask_status(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    status = STATUSES.get(data.word(1))
    if status is None:
        await reply(update, context, context.t(STALE))
        return
    found = await context.services.catalogue.movement(data.num(0))
    t = context.t
    if status is MovementStatus.OPEN:
        question = t(
            "Launch {name}? It will accept nominations until {deadline}.",
            name=found.name,
            deadline=found.nomination_deadline,
        )
    elif status is MovementStatus.CLOSED:
        question = t("Close {name}? No more nominations will be accepted.", name=found.name)
    else:
        question = t("Archive {name}? It can no longer be changed afterwards.", name=found.name)
    await reply(
        update,
        context,
        question,
        markup(
            [
                button(t("Yes"), S, "mst", found.id, data.word(1)),
                button(t("Cancel"), S, "m", found.id),
            ]
        ),
    )


async def movement_set_status(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    status = STATUSES.get(data.word(1))
    if status is None:
        await reply(update, context, context.t(STALE))
        return
    found = await context.services.catalogue.set_movement_status(viewer, data.num(0), status)
    notes = {
        MovementStatus.OPEN: N_("The movement {name} was launched."),
        MovementStatus.CLOSED: N_("The movement {name} was closed."),
        MovementStatus.ARCHIVED: N_("The movement {name} was archived."),
    }
    await _movement_card(update, context, found.id, context.t(notes[status], name=found.name))


async def movement_add(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _ask_text(
        update,
        context,
        Flow(FLOW, "movement_name"),
        context.t("Type the name of the new movement (e.g. Phong trào thi đua năm 2026)."),
    )


async def _flow_at(context: BotContext, viewer: Viewer, step: str) -> Flow | None:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != FLOW or flow.step != step:
        return None
    return flow


async def movement_add_kind(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    flow = await _flow_at(context, viewer, "movement_kind")
    kind = KINDS.get(data.word(0))
    if flow is None or kind is None:
        await reply(update, context, context.t(STALE))
        return
    flow.step, flow.data["kind"] = "movement_parent", kind.value
    await context.services.flows.set(viewer.telegram_user_id, flow)
    await _ask_parent(update, context, flow)


async def _ask_parent(update: Update, context: BotContext, flow: Flow) -> None:
    candidates = [
        m
        for m in await context.services.catalogue.movements()
        if m.status is not MovementStatus.ARCHIVED
    ][:10]
    t = context.t
    await reply(
        update,
        context,
        t("Is {name} part of a larger movement?", name=flow.data["name"]),
        markup(
            [button(t("No, it stands on its own"), S, "maddp", 0)],
            *rows(button(_movement_label(m), S, "maddp", m.id) for m in candidates),
        ),
    )


async def movement_add_parent(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    flow = await _flow_at(context, viewer, "movement_parent")
    if flow is None:
        await reply(update, context, context.t(STALE))
        return
    parent_id = data.num(0)
    if parent_id:
        await context.services.catalogue.movement(parent_id)
    flow.step, flow.data["parent"] = "movement_dates", parent_id or None
    await context.services.flows.set(viewer.telegram_user_id, flow)
    await reply(
        update,
        context,
        context.t(
            "Type the first and the last day of {name} as dd/mm/yyyy - dd/mm/yyyy "
            "(e.g. 01/01/2026 - 31/12/2026).",
            name=flow.data["name"],
        )
        + "\n"
        + context.t("Send /cancel to stop."),
    )


async def movement_deadline(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    found = await context.services.catalogue.movement(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "movement_deadline", {"id": found.id}),
        context.t(
            "The nomination deadline of {name} is {deadline}. Type the new deadline as "
            "dd/mm/yyyy, with a time if needed (17:00 if none), e.g. 20/11/2026 or "
            "20/11/2026 11:00.",
            name=found.name,
            deadline=found.nomination_deadline,
        ),
    )


async def movement_dates(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    found = await context.services.catalogue.movement(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "movement_dates", {"id": found.id}),
        context.t(
            "{name} runs from {start} to {end}. Type the new first and last day as "
            "dd/mm/yyyy - dd/mm/yyyy.",
            name=found.name,
            start=found.starts_on,
            end=found.ends_on,
        ),
    )


async def movement_rename(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    found = await context.services.catalogue.movement(data.num(0))
    await _ask_text(
        update,
        context,
        Flow(FLOW, "movement_rename", {"id": found.id}),
        context.t("Type the new name of {name}.", name=found.name),
    )


# --- typed input ---------------------------------------------------------------------------------


async def _ask_text(update: Update, context: BotContext, flow: Flow, prompt: str) -> None:
    user_id = context.require_viewer().telegram_user_id
    await context.services.flows.set(user_id, flow)
    await reply(update, context, prompt + "\n" + context.t("Send /cancel to stop."))


@route(FLOW)
async def catalogue_text(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = _admin(context)
    message = update.effective_message
    if message is None or not message.text:
        if message is not None:
            await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    step = STEPS.get(flow.step)
    if step is None:
        await message.reply_text(context.t("Please use the buttons above, or send /cancel."))
        return
    await step(update, context, viewer, flow, message.text)


async def _done(context: BotContext, viewer: Viewer) -> None:
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)


async def typed_field_name(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.add_field(viewer, text)
    await _done(context, viewer)
    await reply(update, context, context.t("The field {name} was added.", name=found.name))
    await _field_card(update, context, found.id)


async def typed_field_rename(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.rename_field(viewer, int(flow.data["id"]), text)
    await _done(context, viewer)
    await _field_card(update, context, found.id)


async def typed_criterion(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    field_id = int(flow.data.get("field") or 0) or None
    applies = APPLIES.get(str(flow.data.get("applies")), AppliesTo.BOTH)
    found = await context.services.catalogue.add_criterion(
        viewer, text, field_id=field_id, applies_to=applies
    )
    await _done(context, viewer)
    await reply(update, context, context.t("The criterion was added."))
    await _criteria_list(update, context, found.field_id or 0, 0)


async def typed_criterion_edit(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.edit_criterion(viewer, int(flow.data["id"]), text=text)
    await _done(context, viewer)
    await _criterion_card(update, context, found.id)


async def typed_title_name(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    applies = APPLIES.get(str(flow.data.get("applies")), AppliesTo.INDIVIDUAL)
    found = await context.services.catalogue.add_title(viewer, text, applies_to=applies)
    await _done(context, viewer)
    await reply(update, context, context.t("The title {name} was added.", name=found.name))
    await _title_card(update, context, found.id)


async def typed_title_rename(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.rename_title(viewer, int(flow.data["id"]), text)
    await _done(context, viewer)
    await _title_card(update, context, found.id)


async def typed_title_threshold(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.set_title_threshold(
        viewer, int(flow.data["id"]), parse_threshold(text)
    )
    await _done(context, viewer)
    await _title_card(update, context, found.id)


async def typed_movement_name(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    name = await context.services.catalogue.check_movement_name(text)
    flow.step, flow.data["name"] = "movement_kind", name
    await context.services.flows.set(viewer.telegram_user_id, flow)
    t = context.t
    await reply(
        update,
        context,
        t("What kind of movement is {name}?", name=name),
        markup(
            *rows(button(t.raw(KIND_NAMES[kind]), S, "maddk", code) for code, kind in KINDS.items())
        ),
    )


async def typed_movement_period(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    starts_on, ends_on = parse_period(text)
    catalogue = context.services.catalogue
    if "id" in flow.data:  # changing the dates of an existing movement
        found = await catalogue.change_movement_dates(
            viewer, int(flow.data["id"]), starts_on=starts_on, ends_on=ends_on
        )
        await _done(context, viewer)
        await _movement_card(update, context, found.id)
        return
    parent = flow.data.get("parent")
    await catalogue.check_movement_dates(
        starts_on, ends_on, parent_id=int(parent) if parent else None
    )
    flow.step = "movement_new_deadline"
    flow.data.update(starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat())
    await context.services.flows.set(viewer.telegram_user_id, flow)
    await reply(
        update,
        context,
        context.t(
            "Type the nomination deadline as dd/mm/yyyy, with a time if needed (17:00 if "
            "none), e.g. 20/11/2026 or 20/11/2026 11:00. It must fall between {start} and {end}.",
            start=starts_on,
            end=ends_on,
        ),
    )


async def typed_movement_new_deadline(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    catalogue = context.services.catalogue
    deadline = parse_deadline(text, catalogue.tz)
    parent = flow.data.get("parent")
    found = await catalogue.add_movement(
        viewer,
        str(flow.data["name"]),
        kind=MovementKind(str(flow.data["kind"])),
        parent_id=int(parent) if parent else None,
        starts_on=date.fromisoformat(str(flow.data["starts_on"])),
        ends_on=date.fromisoformat(str(flow.data["ends_on"])),
        nomination_deadline=deadline,
    )
    await _done(context, viewer)
    await _movement_card(
        update,
        context,
        found.id,
        context.t(
            "The movement {name} was created as a draft. Launch it when it is ready.",
            name=found.name,
        ),
    )


async def typed_movement_deadline(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    catalogue = context.services.catalogue
    found = await catalogue.change_deadline(
        viewer, int(flow.data["id"]), parse_deadline(text, catalogue.tz)
    )
    await _done(context, viewer)
    await _movement_card(
        update,
        context,
        found.id,
        context.t("The nomination deadline is now {deadline}.", deadline=found.nomination_deadline),
    )


async def typed_movement_rename(
    update: Update, context: BotContext, viewer: Viewer, flow: Flow, text: str
) -> None:
    found = await context.services.catalogue.rename_movement(viewer, int(flow.data["id"]), text)
    await _done(context, viewer)
    await _movement_card(update, context, found.id)


STEPS = {
    "field_name": typed_field_name,
    "field_rename": typed_field_rename,
    "criterion_text": typed_criterion,
    "criterion_edit": typed_criterion_edit,
    "title_name": typed_title_name,
    "title_rename": typed_title_rename,
    "title_threshold": typed_title_threshold,
    "movement_name": typed_movement_name,
    "movement_dates": typed_movement_period,
    "movement_new_deadline": typed_movement_new_deadline,
    "movement_deadline": typed_movement_deadline,
    "movement_rename": typed_movement_rename,
}

ACTIONS = {
    "menu": menu,
    "fl": field_list,
    "f": field_card,
    "fadd": field_add,
    "fren": field_rename,
    "fdel": field_deactivate,
    "fon": field_reactivate,
    "cl": criteria_fields,
    "cf": criteria_list,
    "c": criterion_card,
    "cadd": criterion_add,
    "caddk": criterion_add_kind,
    "cedit": criterion_edit,
    "capp": criterion_applies,
    "cdel": criterion_deactivate,
    "con": criterion_reactivate,
    "tl": title_list,
    "t": title_card,
    "tadd": title_add,
    "taddk": title_add_kind,
    "tren": title_rename,
    "tthr": title_threshold,
    "tdel": title_deactivate,
    "ton": title_reactivate,
    "ml": movement_list,
    "m": movement_card,
    "mask": movement_ask_status,
    "mst": movement_set_status,
    "madd": movement_add,
    "maddk": movement_add_kind,
    "maddp": movement_add_parent,
    "mdl": movement_deadline,
    "mdt": movement_dates,
    "mren": movement_rename,
}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [CallbackQueryHandler(on_catalogue, pattern=scope_pattern(S))]
