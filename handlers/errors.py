"""One place where errors become replies: domain errors as friendly localized text, anything
else logged with context and answered without internals."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, NetworkError, TelegramError

from bot.context import BotContext
from bot.keyboards import BadCallback
from bot.services.errors import DomainError
from bot.texts import translator

log = logging.getLogger("hoadep.errors")


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
        text = t(error.message, **error.params)
    elif isinstance(error, BadCallback):
        text = t("This button is no longer valid. Please start again.")
    elif isinstance(error, Forbidden):
        log.info("blocked by %s: %s", user.id if user else "?", error)
        return
    else:
        if isinstance(error, NetworkError):
            log.warning("network trouble on update %s: %s", update.update_id, error)
        else:
            log.error("unexpected error on update %s", update.update_id, exc_info=error)
        text = t("Sorry, something went wrong. Please try again in a moment.")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text[:200], show_alert=True)
        elif update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, text)
    except TelegramError as exc:
        log.warning("could not tell the user about an error: %s", exc)
