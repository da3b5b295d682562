"""The council's secret ballot in Telegram: the private ballot's buttons (Đồng ý / Không đồng ý /
Phiếu trắng, changeable until the deadline) and /ballots, the open ballots and the latest results
with their minutes (biên bản).

Nothing here ever shows who voted what: a voter sees their own choice on their own ballot only,
tallies appear only once a ballot is closed."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot import voting_jobs
from bot.commands import Command, register
from bot.context import BotContext
from bot.keyboards import Callback, button, decode, markup, scope_pattern
from bot.services.directory import Role, Viewer
from bot.services.errors import N_, NotAllowed
from bot.services.moderation import ItemType
from bot.services.voting import (
    ACHIEVEMENTS_IN_BALLOT,
    BALLOT_MESSAGE,
    CHOICE_LABELS,
    DETAILS_BUTTON,
    MINUTES,
    BallotResult,
    BallotView,
    choice_of,
    percent,
)
from bot.texts import HTML, Translator, bold, truncate
from handlers.common import is_private, reply, toast
from handlers.review import refresh_cards

S = "vt"

register(Command("ballots", N_("Council secret ballots and their minutes"), Role.COUNCIL))


def keyboard(*layout: Sequence[InlineKeyboardButton]) -> InlineKeyboardMarkup | None:
    """An inline keyboard, or None when there is no button at all (Telegram refuses empty)."""
    return markup(*layout) if any(layout) else None


def ballot_text(t: Translator, view: BallotView) -> HTML:
    return t(
        BALLOT_MESSAGE,
        name=view.nominee_name,
        title=view.title_name or "—",
        movement=view.movement_name or "—",
        unit=view.unit_name or "—",
        achievements=truncate(view.achievements or "—", ACHIEVEMENTS_IN_BALLOT),
        deadline=view.deadline,
    )


def ballot_markup(
    t: Translator, view: BallotView, chosen: str | None = None
) -> list[list[InlineKeyboardButton]]:
    def choice(code: str) -> InlineKeyboardButton:
        label = t.raw(CHOICE_LABELS[choice_of(code)])
        return button(("✓ " if code == chosen else "") + label, S, "c", view.id, code)

    return [
        [choice("a"), choice("d")],
        [choice("b")],
        [button(t.raw(DETAILS_BUTTON), "rv", "o", "n", view.nomination_id)],
    ]


def minutes_text(t: Translator, result: BallotResult, movement: str | None) -> HTML:
    ratio = f"{result.agree}/{result.council_size} ({percent(result.ratio)})"
    return t(
        MINUTES[result.approved],
        nomination=result.nomination_id,
        name=result.nominee_name,
        title=result.title_name or "—",
        movement=movement or "—",
        opened=result.opened_at,
        closed=result.closed_at,
        size=result.council_size,
        agree=result.agree,
        disagree=result.disagree,
        abstain=result.abstain,
        not_voted=result.not_voted,
        ratio=ratio,
        threshold=percent(result.threshold),
    )


async def on_vote(update: Update, context: BotContext) -> None:
    data = decode(update.callback_query.data if update.callback_query else None)
    viewer = context.require_viewer()
    action = ACTIONS.get(data.action)
    if action is None:
        await toast(
            update, context.t("This button is no longer valid. Please start again."), alert=True
        )
        return
    if not is_private(update):
        await toast(update, context.t("Please use this in a private chat with me."), alert=True)
        return
    await action(update, context, viewer, data)


async def cast(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    ballot_id, code = data.num(0), data.word(1)
    choice = choice_of(code)
    result = await context.services.voting.cast(viewer, ballot_id, choice)
    view = await context.services.voting.ballot(viewer, ballot_id)
    t = context.t
    text = ballot_text(t, view)
    if result.closed is not None:
        note = t(
            "Your vote was recorded: {choice}. Every council member has voted, so the ballot "
            "is now closed; the administrators receive the minutes.",
            choice=t.raw(CHOICE_LABELS[choice]),
        )
        await reply(update, context, HTML(f"{text}\n\n{bold(note)}"))
        await refresh_cards(context.application, ItemType.NOMINATION, result.nomination_id)
        voting_jobs.kick(context.application)
        return
    note = t(
        "Your vote was recorded: {choice}. You can change it until {deadline}.",
        choice=t.raw(CHOICE_LABELS[choice]),
        deadline=result.deadline,
    )
    await reply(
        update, context, HTML(f"{text}\n\n{bold(note)}"), markup(*ballot_markup(t, view, code))
    )


async def show(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    view = await context.services.voting.ballot(viewer, data.num(0))
    t = context.t
    if view.closed_at is not None or view.i_voted is None:
        await reply(update, context, _summary(t, view), edit=False)
        return
    status = (
        t("You have voted; you can change your vote.")
        if view.i_voted
        else t("You have not voted yet.")
    )
    await reply(
        update,
        context,
        HTML(f"{ballot_text(t, view)}\n\n{bold(status)}"),
        markup(*ballot_markup(t, view)),
        edit=False,
    )


async def minutes(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    result = await context.services.voting.result(viewer, data.num(0))
    view = await context.services.voting.ballot(viewer, data.num(0))
    await reply(update, context, minutes_text(context.t, result, view.movement_name), edit=False)


def _summary(t: Translator, view: BallotView) -> HTML:
    if view.result is None:
        return t(
            "{name} ({title}): voting closes at {deadline}; {voted} of {size} council members "
            "have voted.",
            name=view.nominee_name,
            title=view.title_name or "—",
            deadline=view.deadline,
            voted=view.voted,
            size=view.council_size,
        )
    result = view.result
    ratio = f"{result.agree}/{result.council_size} ({percent(result.ratio)})"
    if result.approved:
        return t(
            "{name} ({title}): approved, {ratio} agreed (threshold {threshold}).",
            name=view.nominee_name,
            title=view.title_name or "—",
            ratio=ratio,
            threshold=percent(result.threshold),
        )
    return t(
        "{name} ({title}): not approved, {ratio} agreed (threshold {threshold}).",
        name=view.nominee_name,
        title=view.title_name or "—",
        ratio=ratio,
        threshold=percent(result.threshold),
    )


async def ballots_command(update: Update, context: BotContext) -> None:
    viewer = context.require_viewer()
    if not viewer.is_council:
        raise NotAllowed(N_("Only council members and administrators can see the ballots."))
    if not is_private(update):
        await reply(update, context, context.t("Please use /ballots in a private chat with me."))
        return
    views = await context.services.voting.ballots(viewer)
    t = context.t
    open_views = [v for v in views if v.closed_at is None]
    closed_views = [v for v in views if v.closed_at is not None]
    lines: list[str] = [bold(t("Council secret ballots"))]
    layout: list[list[InlineKeyboardButton]] = []
    if open_views:
        lines += ["", bold(t("Open"))]
        for v in open_views:
            mine = ""
            if v.i_voted is not None:
                mine = " " + (t("(you have voted)") if v.i_voted else t("(you have not voted)"))
            lines.append("• " + _summary(t, v) + mine)
            if v.i_voted is not None:
                layout.append([button(t("Ballot: {name}", name=v.nominee_name)[:60], S, "s", v.id)])
    else:
        lines += ["", t("No ballot is open.")]
    if closed_views:
        lines += ["", bold(t("Latest results"))]
        for v in closed_views:
            lines.append("• " + _summary(t, v))
            layout.append([button(t("Minutes: {name}", name=v.nominee_name)[:60], S, "m", v.id)])
    await reply(update, context, "\n".join(lines), keyboard(*layout))


ACTIONS = {"c": cast, "s": show, "m": minutes}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("ballots", ballots_command),
        CallbackQueryHandler(on_vote, pattern=scope_pattern(S)),
    ]
