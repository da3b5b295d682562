"""One place where errors become replies: domain errors as friendly localized text, anything
else logged with context and answered without internals."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError

from bot.context import BotContext
from bot.keyboards import BadCallback
from bot.services.errors import DomainError
from bot.texts import Translator, translator
from handlers.common import answered
from handlers.gate import command_of

log = logging.getLogger("hoadep.errors")

GENERIC = "Sorry, something went wrong. Please try again in a moment."


def describe(update: Update) -> str:
    """What the update was, for the log: its kind, the command or the button's scope and action,
    who and where; never what the person typed."""
    user = update.effective_user
    chat = update.effective_chat
    query = update.callback_query
    if query is not None:
        parts = (query.data or "").split(":")
        what = "button " + ":".join(p[:12] for p in parts[:2])
    elif (command := command_of(update)) is not None:
        what = f"command /{command[:32]}"
    elif update.effective_message is not None:
        what = "message"
    else:
        what = "update"
    where = f"{chat.type} chat {chat.id}" if chat is not None else "no chat"
    return f"update {update.update_id} ({what} from user {user.id if user else '?'} in {where})"


async def on_error(update: object, context: BotContext) -> None:
    error = context.error
    if not isinstance(update, Update):
        log.error("error outside an update: %r", error, exc_info=error)
        return
    language: str = context.services.settings.organisation.default_language
    user = update.effective_user
    if user is not None:
        try:
            viewer = await context.services.directory.identify(user.id)
            language = viewer.language or language
        except Exception:  # the database itself may be what failed
            log.debug("could not identify %s for an error reply", user.id)
    t = translator(language, context.services.settings.organisation.timezone)
    if isinstance(error, DomainError):
        message, params = error.message, error.params
    elif isinstance(error, BadCallback):
        message, params = "This button is no longer valid. Please start again.", {}
    elif isinstance(error, Forbidden):
        log.info("blocked by %s: %s", user.id if user else "?", error)
        return
    else:
        if isinstance(error, NetworkError):
            log.warning("network trouble on %s: %s", describe(update), error)
        else:
            log.error("unexpected error on %s", describe(update), exc_info=error)
        message, params = GENERIC, {}
    try:
        await _tell(update, context, t, message, params)
    except TelegramError as exc:
        log.warning("could not tell the user about an error: %s", exc)


async def _tell(
    update: Update, context: BotContext, t: Translator, message: str, params: dict[str, object]
) -> None:
    """A toast on the pressed button; a message when there is no button, or when the press was
    answered already (the error came after the handler's answer): to the person, privately."""
    query = update.callback_query
    if query is not None and not answered(update, context):
        await query.answer(t.plain(message, **params)[:200], show_alert=True)
        return
    user, chat = update.effective_user, update.effective_chat
    if query is not None and user is not None:
        await context.bot.send_message(user.id, t(message, **params))
    elif chat is not None:
        await context.bot.send_message(chat.id, t(message, **params))
