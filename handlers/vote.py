"""The council's secret ballot in Telegram: the private ballot's buttons (Đồng ý / Không đồng ý /
Phiếu trắng), a confirmation screen (Xác nhận / Chọn lại) after which the vote is final, and
/ballots, the open ballots and the latest results with their minutes (biên bản kiểm phiếu).

The choice lives only in the voter's chat until they confirm, and is never shown again
afterwards: the confirmed ballot says the vote was recorded, not what it was (a paper ballot
leaves no receipt). Tallies appear only once a ballot is closed."""

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
from bot.services.minutes import MINUTES, BallotResult, percent
from bot.services.moderation import ItemType
from bot.services.voting import (
    ACHIEVEMENTS_IN_BALLOT,
    BALLOT_MESSAGE,
    CHOICE_LABELS,
    DETAILS_BUTTON,
    BallotView,
    choice_of,
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


def ballot_markup(t: Translator, view: BallotView) -> list[list[InlineKeyboardButton]]:
    details = [button(t.raw(DETAILS_BUTTON), "rv", "o", "n", view.nomination_id)]
    if not view.may_vote:
        return [details]

    def choice(code: str) -> InlineKeyboardButton:
        return button(t.raw(CHOICE_LABELS[choice_of(code)]), S, "c", view.id, code)

    return [[choice("a"), choice("d")], [choice("b")], details]


def minutes_text(t: Translator, result: BallotResult) -> HTML:
    return t(MINUTES[result.approved], **result.params(t.language, t.tz))


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


async def choose(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    """A choice pressed: the confirmation screen. Nothing is stored."""
    ballot_id, code = data.num(0), data.word(1)
    choice = choice_of(code)
    view = await context.services.voting.choose(viewer, ballot_id)
    t = context.t
    note = t(
        "You chose: {choice}. A cast vote cannot be changed.", choice=t.raw(CHOICE_LABELS[choice])
    )
    layout = [
        [button(t("✅ Confirm"), S, "k", ballot_id, code)],
        [button(t("↩ Choose again"), S, "r", ballot_id)],
    ]
    await reply(update, context, HTML(f"{ballot_text(t, view)}\n\n{bold(note)}"), markup(*layout))


async def again(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    view = await context.services.voting.ballot(viewer, data.num(0))
    await reply(
        update,
        context,
        _ballot_with_status(context.t, view),
        markup(*ballot_markup(context.t, view)),
    )


async def confirm(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    ballot_id, code = data.num(0), data.word(1)
    result = await context.services.voting.cast(viewer, ballot_id, choice_of(code))
    view = await context.services.voting.ballot(viewer, ballot_id)
    t = context.t
    if result.closed is not None:
        note = t(
            "Your vote has been recorded. Every council member entitled to vote has voted, so "
            "the ballot is now closed; the administrators receive the minutes."
        )
    else:
        note = t("Your vote has been recorded. A cast vote cannot be changed.")
    await reply(
        update,
        context,
        HTML(f"{ballot_text(t, view)}\n\n{bold(note)}"),
        markup(*ballot_markup(t, view)),
    )
    if result.closed is not None:
        await refresh_cards(context.application, ItemType.NOMINATION, result.nomination_id)
        voting_jobs.kick(context.application)


def _ballot_with_status(t: Translator, view: BallotView) -> HTML:
    if view.i_voted:
        status = t("You have voted. A cast vote cannot be changed.")
    elif view.may_vote:
        status = t("You have not voted yet.")
    else:
        status = t("You can no longer vote on this ballot.")
    return HTML(f"{ballot_text(t, view)}\n\n{bold(status)}")


async def show(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    view = await context.services.voting.ballot(viewer, data.num(0))
    t = context.t
    if view.closed_at is not None or view.i_voted is None:
        await reply(update, context, _summary(t, view), edit=False)
        return
    await reply(
        update, context, _ballot_with_status(t, view), markup(*ballot_markup(t, view)), edit=False
    )


async def minutes(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    result = await context.services.voting.result(viewer, data.num(0))
    await reply(update, context, minutes_text(context.t, result), edit=False)


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
    ratio = result.ratio_text(t.language)
    if result.approved:
        return t(
            "{name} ({title}): approved, {ratio} agreed (threshold {threshold}).",
            name=view.nominee_name,
            title=view.title_name or "—",
            ratio=ratio,
            threshold=percent(result.threshold, t.language),
        )
    return t(
        "{name} ({title}): not approved, {ratio} agreed (threshold {threshold}).",
        name=view.nominee_name,
        title=view.title_name or "—",
        ratio=ratio,
        threshold=percent(result.threshold, t.language),
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


ACTIONS = {"c": choose, "k": confirm, "r": again, "s": show, "m": minutes}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("ballots", ballots_command),
        CallbackQueryHandler(on_vote, pattern=scope_pattern(S)),
    ]
