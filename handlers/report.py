"""/report (Báo cáo sơ kết, tổng kết): administrators and unit officers, private chat.

1. The period, with buttons: a movement (paginated list), the current or the previous year, or
   two dates typed "dd/mm/yyyy - dd/mm/yyyy" (a flow kept in the database, `report`).
2. The scope: administrators choose the whole office or one unit (paginated list); a unit
   officer's report is always of their own unit (the report engine enforces it: a forged button
   for another scope gets its `NotAllowed`).
3. The summary (`render_summary`, already split under Telegram's limit), then buttons for the
   attachments: the XLSX workbook, a CSV of each list, the two PNG charts.

Building a report reads the database and writing files is CPU work: the button handlers run with
`block=False` (other people's updates go on meanwhile), the files are made in threads (the
`*_async` wrappers of `bot.services.report_files`), a chat action is kept alive while the person
waits, and a progress message ("Đang tạo báo cáo…") is updated when the work is done. One report
at a time per person.

Callback data (scope `rp`): a period token is `m<movement id>`, `y<year>` or
`r<yyyymmdd>-<yyyymmdd>`; a scope token `o` (the whole office) or `u<unit id>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import BadCallback, Callback, button, decode, markup, pager, rows, scope_pattern
from bot.services import report_files
from bot.services.catalogue import parse_period
from bot.services.directory import Role, Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed
from bot.services.flows import Flow
from bot.services.reports import (
    MSG_REPORTS_ROLE,
    ReportData,
    ReportPeriod,
    ReportScope,
    ResolvedPeriod,
    build_report,
    label,
    period_label,
    render_summary,
    scope_label,
)
from bot.services.text import fold
from bot.texts import bold, escape
from handlers.common import is_private, reply, toast
from handlers.flows import route

log = logging.getLogger(__name__)

S = "rp"
FLOW = "report"
PER_PAGE = 8
CAPTION_LIMIT = 1024
ACTION_REFRESH = 4.5  # seconds: Telegram shows a chat action for about 5
BUSY = "report_busy"

register(
    Command(
        "report",
        N_("Interim and final review reports"),
        Role.ADMIN,
        also_unit_officer=True,
    )
)


# --- tokens in the callback data ------------------------------------------------------------------

_RANGE = re.compile(r"r(\d{8})-(\d{8})")


def period_token(period: ReportPeriod) -> str:
    if period.kind == "movement":
        return f"m{period.movement_id}"
    if period.kind == "year":
        return f"y{period.year}"
    assert period.start is not None and period.end is not None
    return f"r{period.start:%Y%m%d}-{period.end:%Y%m%d}"


def parse_period_token(token: str) -> ReportPeriod:
    if token[:1] == "m" and token[1:].isdigit() and len(token) <= 13:
        return ReportPeriod.for_movement(int(token[1:]))
    if token[:1] == "y" and token[1:].isdigit() and len(token) == 5:
        return ReportPeriod.for_year(int(token[1:]))
    match = _RANGE.fullmatch(token)
    if match is not None:
        try:
            start, end = (date(int(g[:4]), int(g[4:6]), int(g[6:])) for g in match.groups())
        except ValueError:
            raise BadCallback("not a date") from None
        return ReportPeriod.between(start, end)
    raise BadCallback("not a period")


def scope_token(scope: ReportScope) -> str:
    return "o" if scope.unit_id is None else f"u{scope.unit_id}"


def parse_scope_token(token: str) -> ReportScope:
    if token == "o":
        return ReportScope.office()
    if token[:1] == "u" and token[1:].isdigit() and len(token) <= 13:
        return ReportScope.unit(int(token[1:]))
    raise BadCallback("not a scope")


# --- the files ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileKind:
    code: str  # in the callback data
    button: str  # message ids
    name: str
    suffix: str  # of the file name, after the report's stem
    sheet: str | None = None  # CSV: which list
    chart: str | None = None  # PNG: which chart

    @property
    def needs_lists(self) -> bool:
        return self.chart is None

    @property
    def is_photo(self) -> bool:
        return self.chart is not None


FILES: dict[str, FileKind] = {
    f.code: f
    for f in (
        FileKind("x", N_("📊 Excel workbook (XLSX)"), N_("Excel workbook"), ".xlsx"),
        FileKind(
            "ce", N_("CSV: exemplars"), N_("CSV list of exemplars"), "-dien-hinh.csv", "exemplars"
        ),
        FileKind(
            "cn", N_("CSV: nominations"), N_("CSV list of nominations"), "-de-cu.csv", "nominations"
        ),
        FileKind(
            "cg",
            N_("CSV: good deeds"),
            N_("CSV list of good deeds"),
            "-nguoi-tot-viec-tot.csv",
            "good_deeds",
        ),
        FileKind(
            "cu",
            N_("CSV: statistics by unit"),
            N_("CSV statistics by unit"),
            "-thong-ke-don-vi.csv",
            "units",
        ),
        FileKind(
            "gd",
            N_("📈 Chart: good deeds per unit and month"),
            N_("Chart of good deeds per unit and month"),
            "-bieu-do-viec-tot.png",
            chart="deeds",
        ),
        FileKind(
            "gf",
            N_("📈 Chart: exemplars per field"),
            N_("Chart of exemplars per field"),
            "-bieu-do-linh-vuc.png",
            chart="fields",
        ),
    )
}


def slug(text: str, limit: int = 50) -> str:
    """A file-name part: "Chi cục Thống kê khu vực I" -> "chi-cuc-thong-ke-khu-vuc-i"."""
    words = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return words[:limit].rstrip("-") or "bao-cao"


def file_stem(data: ReportData) -> str:
    """The report's file name without its suffix, in Vietnamese without diacritics:
    bao-cao-tong-ket-2026, bao-cao-<movement>, bao-cao-tu-01-01-2026-den-30-06-2026, followed by
    the unit's name for a unit's report."""
    period = data.period
    if period.kind == "year":
        stem = f"bao-cao-tong-ket-{period.year}"
    elif period.kind == "movement":
        stem = "bao-cao-" + slug(period.movement_name or f"phong-trao-{period.movement_id}")
    else:
        stem = f"bao-cao-tu-{period.start:%d-%m-%Y}-den-{period.end:%d-%m-%Y}"
    if data.scope_unit_id is not None:
        stem += "-" + slug(data.scope_unit_name or f"don-vi-{data.scope_unit_id}", 40)
    return stem


async def make_file(data: ReportData, kind: FileKind, lang: str) -> bytes:
    """The file's bytes, made in a worker thread."""
    if kind.sheet is not None:
        return await report_files.to_csv_async(data, kind.sheet, lang)
    if kind.chart == "deeds":
        return await report_files.chart_deeds_per_unit_month_async(data, lang)
    if kind.chart == "fields":
        return await report_files.chart_exemplars_per_field_async(data, lang)
    return await report_files.to_xlsx_async(data, lang)


# --- who may ask ----------------------------------------------------------------------------------


def _reporter(context: BotContext) -> Viewer:
    """Administrators and unit officers; the report engine re-checks the scope on every build."""
    viewer = context.require_viewer()
    if not (viewer.is_admin or viewer.is_unit_officer) or viewer.member_id is None:
        raise NotAllowed(MSG_REPORTS_ROLE)
    return viewer


def _own_scope(viewer: Viewer) -> ReportScope:
    return ReportScope.office() if viewer.is_admin else ReportScope.unit(viewer.unit_id or 0)


# --- choosing the period --------------------------------------------------------------------------


async def report_command(update: Update, context: BotContext) -> None:
    viewer = _reporter(context)
    if not is_private(update):
        await reply(update, context, context.t("Please use /report in a private chat with me."))
        return
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    await _period_menu(update, context, edit=False)


async def _period_menu(update: Update, context: BotContext, *, edit: bool = True) -> None:
    t = context.t
    settings = context.services.settings
    year = context.services.clock.now().astimezone(settings.organisation.tz).year
    text = "\n".join([bold(t("Interim and final review reports")), "", t("Which period?")])
    await reply(
        update,
        context,
        text,
        markup(
            [button(t("By emulation movement"), S, "ml", 0)],
            [
                button(t("Year {year}", year=year), S, "p", f"y{year}"),
                button(t("Year {year}", year=year - 1), S, "p", f"y{year - 1}"),
            ],
            [button(t("Between two dates"), S, "dates")],
        ),
        edit=edit,
    )


async def movements(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    t = context.t
    found = [m for m in await context.services.catalogue.movements() if m.status.value != "draft"]
    pages = max(1, -(-len(found) // PER_PAGE))
    page = min(max(data.num(0), 0), pages - 1)
    shown = found[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout = rows(button(f"{m.name} ({m.starts_on.year})"[:60], S, "p", f"m{m.id}") for m in shown)
    text = t("Report on which emulation movement?") if found else t("There is no movement yet.")
    await reply(
        update,
        context,
        text,
        markup(*layout, pager(S, "ml", page, pages), [button(t("‹ Back"), S, "menu")]),
    )


async def ask_dates(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await context.services.flows.set(viewer.telegram_user_id, Flow(FLOW, "dates"))
    t = context.t
    await reply(
        update,
        context,
        t(
            "Type the first and the last day of the period as dd/mm/yyyy - dd/mm/yyyy, for "
            "example 01/01/2026 - 30/06/2026."
        )
        + "\n"
        + t("Send /cancel to stop."),
    )


@route(FLOW)
async def typed_dates(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = _reporter(context)
    message = update.effective_message
    if message is None:
        return
    if not message.text or flow.step != "dates":
        await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    start, end = parse_period(message.text)
    if end < start:
        raise InvalidInput(
            N_("The last day ({end}) cannot be before the first day ({start})."),
            start=start,
            end=end,
        )
    await context.services.flows.clear(viewer.telegram_user_id, FLOW)
    period = ReportPeriod.between(start, end)
    if viewer.is_admin:
        await _scope_menu(update, context, period)
        return
    # a unit officer's report is of their own unit: build it now, without holding up the
    # other updates (this text handler is a blocking one)
    context.application.create_task(
        _summary(update, context, viewer, period, _own_scope(viewer)),
        update=update,
        name=f"report:summary:{viewer.telegram_user_id}",
    )


async def chose_period(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    period = parse_period_token(data.word(0))
    if viewer.is_admin:
        await _scope_menu(update, context, period)
    else:
        await _summary(update, context, viewer, period, _own_scope(viewer))


async def _describe_period(context: BotContext, period: ReportPeriod) -> str:
    """The period as the report will name it (a movement's dates read from the catalogue)."""
    lang = context.language
    if period.kind == "movement":
        assert period.movement_id is not None
        m = await context.services.catalogue.movement(period.movement_id)
        resolved = ResolvedPeriod("movement", m.starts_on, m.ends_on, m.id, m.name)
    elif period.kind == "year":
        assert period.year is not None
        y = period.year
        resolved = ResolvedPeriod("year", date(y, 1, 1), date(y, 12, 31), year=y)
    else:
        assert period.start is not None and period.end is not None
        resolved = ResolvedPeriod("range", period.start, period.end)
    return period_label(resolved, lang)


# --- choosing the scope (administrators) ----------------------------------------------------------


async def _scope_menu(update: Update, context: BotContext, period: ReportPeriod) -> None:
    t = context.t
    p = period_token(period)
    described = await _describe_period(context, period)
    await reply(
        update,
        context,
        "\n".join([t("Period: {period}", period=described), "", t("Which scope?")]),
        markup(
            [button(t("The whole office"), S, "go", p, "o")],
            [button(t("One unit…"), S, "ul", p, 0)],
            [button(t("‹ Back"), S, "menu")],
        ),
    )


async def units(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))
    period = parse_period_token(data.word(0))
    p = period_token(period)
    all_units = await context.services.directory.list_units()
    pages = max(1, -(-len(all_units) // PER_PAGE))
    page = min(max(data.num(1), 0), pages - 1)
    shown = all_units[page * PER_PAGE : (page + 1) * PER_PAGE]
    t = context.t
    layout = rows(button(("· " * u.depth + u.name)[:60], S, "go", p, f"u{u.id}") for u in shown)
    await reply(
        update,
        context,
        t("Report of which unit? Its sub-units and the units merged into it are included."),
        markup(*layout, pager(S, "ul", page, pages, p), [button(t("‹ Back"), S, "p", p)]),
    )


# --- building: the summary and the files ----------------------------------------------------------


@contextlib.asynccontextmanager
async def _chat_action(context: BotContext, chat_id: int, action: str) -> AsyncIterator[None]:
    """Keep "sending a file…" (or "typing…") on screen while the work goes on."""

    async def keep() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, action)
            await asyncio.sleep(ACTION_REFRESH)

    task = asyncio.create_task(keep(), name=f"report:action:{chat_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _one_at_a_time(
    update: Update, context: BotContext, viewer: Viewer, work: Callable[[], Awaitable[None]]
) -> None:
    busy: set[int] = context.application.bot_data.setdefault(BUSY, set())
    user = viewer.telegram_user_id
    if user in busy:
        await toast(
            update,
            context.t("Your report is still being prepared. Please wait a moment."),
            alert=True,
        )
        return
    busy.add(user)
    try:
        await work()
    finally:
        busy.discard(user)


async def _answer(update: Update) -> None:
    """Stop the button's spinner once the report is built: a refusal (raised while building)
    is answered by the error handler with an alert instead."""
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()


async def _progress(context: BotContext, chat_id: int, text: str) -> Message:
    return await context.bot.send_message(chat_id, text)


async def _drop(message: Message) -> None:
    with contextlib.suppress(TelegramError):
        await message.delete()


async def _build(
    context: BotContext,
    viewer: Viewer,
    period: ReportPeriod,
    scope: ReportScope,
    *,
    include_lists: bool,
) -> ReportData:
    assert viewer.member_id is not None
    services = context.services
    return await build_report(
        services.db,
        viewer.member_id,
        period,
        scope,
        services.settings.organisation.tz,
        include_lists=include_lists,
        clock=services.clock,
    )


def _files_keyboard(
    context: BotContext, period: ReportPeriod, scope: ReportScope
) -> list[list[InlineKeyboardButton]]:
    t = context.t
    p, s = period_token(period), scope_token(scope)

    def b(code: str) -> InlineKeyboardButton:
        return button(t(FILES[code].button), S, "f", p, s, code)

    return [
        [b("x")],
        [b("ce"), b("cn")],
        [b("cg"), b("cu")],
        [b("gd")],
        [b("gf")],
        [button(t("Another report"), S, "new")],
    ]


async def _summary(
    update: Update,
    context: BotContext,
    viewer: Viewer,
    period: ReportPeriod,
    scope: ReportScope,
) -> None:
    chat_id = viewer.telegram_user_id
    built: dict[str, Any] = {}

    async def work() -> None:
        async with _chat_action(context, chat_id, ChatAction.TYPING):
            progress = await _progress(context, chat_id, context.t("⏳ Preparing the report…"))
            try:
                data = await _build(context, viewer, period, scope, include_lists=False)
                await _answer(update)
                built["chunks"] = await asyncio.to_thread(render_summary, data, context.language)
                built["progress"] = progress
            except BaseException:
                await _drop(progress)  # a refused or failed report leaves nothing behind
                raise

    await _one_at_a_time(update, context, viewer, work)
    if not built:
        return
    # shown after the one-at-a-time slot is free, so its buttons work as soon as they appear
    chunks: list[str] = built["chunks"]
    keyboard = InlineKeyboardMarkup(_files_keyboard(context, period, scope))
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        kb = keyboard if i == last else None
        if i == 0:
            await built["progress"].edit_text(chunk, reply_markup=kb)
        else:
            await context.bot.send_message(chat_id, chunk, reply_markup=kb)


def _caption(context: BotContext, data: ReportData, kind: FileKind) -> str:
    lang = context.language
    lines = [
        bold(context.t(kind.name)),
        escape(label(lang, "title")),
        escape(period_label(data.period, lang)),
        escape(scope_label(data, lang)),
    ]
    text = "\n".join(lines)
    if len(text) > CAPTION_LIMIT:  # a very long unit or movement name
        text = "\n".join(lines[:2])
    return text


async def send_file(
    update: Update,
    context: BotContext,
    viewer: Viewer,
    period: ReportPeriod,
    scope: ReportScope,
    kind: FileKind,
) -> None:
    chat_id = viewer.telegram_user_id
    t = context.t

    async def work() -> None:
        action = ChatAction.UPLOAD_PHOTO if kind.is_photo else ChatAction.UPLOAD_DOCUMENT
        async with _chat_action(context, chat_id, action):
            progress = await _progress(
                context, chat_id, t("⏳ Preparing the file: {name}…", name=t(kind.name))
            )
            try:
                data = await _build(context, viewer, period, scope, include_lists=kind.needs_lists)
                await _answer(update)
                content = await make_file(data, kind, context.language)
                filename = file_stem(data) + kind.suffix
                caption = _caption(context, data, kind)
                if kind.is_photo:
                    await context.bot.send_photo(
                        chat_id, content, caption=caption, filename=filename
                    )
                else:
                    await context.bot.send_document(
                        chat_id, content, filename=filename, caption=caption
                    )
            except BaseException:
                await _drop(progress)
                raise
        with contextlib.suppress(TelegramError):
            await progress.edit_text(t("✅ Sent: {name}", name=filename))

    await _one_at_a_time(update, context, viewer, work)


# --- buttons --------------------------------------------------------------------------------------


async def menu(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _period_menu(update, context)


async def new_report(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    """Under a summary: start again in a new message (the summary keeps its buttons)."""
    await _period_menu(update, context, edit=False)


async def go(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _summary(
        update, context, viewer, parse_period_token(data.word(0)), parse_scope_token(data.word(1))
    )


async def file(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    kind = FILES.get(data.word(2))
    if kind is None:
        raise BadCallback("unknown file")
    period, scope = parse_period_token(data.word(0)), parse_scope_token(data.word(1))
    await send_file(update, context, viewer, period, scope, kind)


Action = Callable[[Update, BotContext, Viewer, Callback], Awaitable[None]]
ACTIONS: dict[str, Action] = {
    "menu": menu,
    "new": new_report,
    "ml": movements,
    "dates": ask_dates,
    "p": chose_period,
    "ul": units,
    "go": go,
    "f": file,
}


async def on_report(update: Update, context: BotContext) -> None:
    """Every `rp:` button; registered with block=False (a report may take a while)."""
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = _reporter(context)
    if not is_private(update):
        await toast(update, context.t("Please use this in a private chat with me."), alert=True)
        return
    action = ACTIONS.get(data.action)
    if action is None:
        raise BadCallback("unknown action")
    await action(update, context, viewer, data)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("report", report_command),
        CallbackQueryHandler(on_report, pattern=scope_pattern(S), block=False),
    ]
