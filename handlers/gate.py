"""Gatekeeping before any feature: flood control, who is this, which chats are served."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from typing import Any, NoReturn

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from bot.context import BotContext
from handlers import chats
from handlers.common import answered, is_private

log = logging.getLogger("hoadep.gate")

# what a stranger may do in a private chat: join, read help, pick a language
PUBLIC_COMMANDS = {"start", "help", "language", "cancel"}
PUBLIC_SCOPES = {"join", "lang", "nav"}
PUBLIC_FLOWS = {"join"}


class Throttle:
    """At most `burst` updates per `window` seconds per person; one warning per window."""

    def __init__(self, burst: int, window: float) -> None:
        self.burst = burst
        self.window = window
        self.hits: dict[int, deque[float]] = {}
        self.warned: dict[int, float] = {}

    def check(self, user_id: int, now: float | None = None) -> str:
        """'ok', 'warn' (first refusal in the window) or 'drop'."""
        now = time.monotonic() if now is None else now
        hits = self.hits.setdefault(user_id, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.burst:
            hits.append(now)
            if len(self.hits) > 10_000:
                self._prune(now)
            return "ok"
        if now - self.warned.get(user_id, -1e9) >= self.window:
            self.warned[user_id] = now
            return "warn"
        return "drop"

    def _prune(self, now: float) -> None:
        for uid in [u for u, h in self.hits.items() if not h or h[-1] <= now - self.window]:
            self.hits.pop(uid, None)
            self.warned.pop(uid, None)


def command_of(update: Update) -> str | None:
    message = update.effective_message
    if message is None or not message.text or not message.text.startswith("/"):
        return None
    word = message.text.split()[0][1:]
    return word.split("@")[0].lower()


async def gate(update: Update, context: BotContext) -> None:
    """Fails closed: whatever goes wrong here, the update goes no further."""
    try:
        await _gate(update, context)
        await chats.enforce(update, context)  # where a button may act
    except ApplicationHandlerStop:
        raise
    except Exception:
        log.exception("gatekeeping failed on update %s; the update is dropped", update.update_id)
        with contextlib.suppress(Exception):
            await _tell(
                update,
                context,
                context.t("Sorry, something went wrong. Please try again in a moment."),
            )
        raise ApplicationHandlerStop from None


async def _tell(update: Update, context: BotContext, text: str) -> None:
    """A refusal: a toast for a button, a message in a private chat; failures are swallowed."""
    chat = update.effective_chat
    try:
        if update.callback_query is not None:
            if not answered(update, context):
                await update.callback_query.answer(text[:200], show_alert=True)
        elif chat is not None and chat.type == ChatType.PRIVATE:
            await context.bot.send_message(chat.id, text)
    except TelegramError as exc:
        log.info("could not send a refusal: %s", exc)


async def _stop(update: Update, context: BotContext) -> NoReturn:
    """Ignore the update; a pressed button still gets its (empty) answer, as Telegram wants."""
    if update.callback_query is not None and not answered(update, context):
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    raise ApplicationHandlerStop


async def _gate(update: Update, context: BotContext) -> None:
    services = context.services
    user = update.effective_user
    chat = update.effective_chat
    if update.my_chat_member is not None or update.chat_member is not None:
        if user is not None:
            context.viewer = await services.directory.identify(user.id)
        return  # membership changes go to the groups feature
    if user is None or (chat is not None and chat.type == ChatType.CHANNEL):
        await _stop(update, context)
    context.user_language_code = (context.user_data or {}).get("language") or user.language_code
    throttle: Throttle = context.application.bot_data["throttle"]
    verdict = throttle.check(user.id)
    if verdict != "ok":
        if verdict == "warn":
            await _tell(
                update,
                context,
                context.t("You are sending messages too fast. Please wait a few seconds."),
            )
        await _stop(update, context)
    viewer = await services.directory.identify(user.id)
    if not viewer.is_member and services.directory.is_bootstrap_admin(user.id):
        viewer = await services.directory.ensure_bootstrap_admin(
            user.id, user.full_name, context.user_language_code
        )
    context.viewer = viewer

    if chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        group = await services.groups.find(chat.id)
        if group is None or not group.active:
            await _stop(update, context)  # not a group an administrator registered
        context.chat_language = group.language
        message = update.effective_message
        if message is not None and message.sender_chat is not None:
            # an anonymous admin or a channel: nobody to authorise, so nothing privileged
            if command_of(update) is not None:
                await message.reply_text(
                    context.t(
                        "I cannot tell who you are when you write as the group or a "
                        "channel. Please write from your own account."
                    )
                )
            raise ApplicationHandlerStop
        return

    if viewer.is_member or not is_private(update):
        return
    if command_of(update) in PUBLIC_COMMANDS:
        return
    query = update.callback_query
    if query is not None and (query.data or "").split(":")[0] in PUBLIC_SCOPES:
        return
    if query is None:
        flow = await services.flows.get(user.id)
        if flow is not None and flow.name in PUBLIC_FLOWS:
            return
    text = context.t(
        "This bot serves the staff of {office}. You are not a member yet: send /start to ask "
        "an administrator for access, or open the invitation link you were given.",
        office=services.settings.organisation.name,
    )
    await _tell(update, context, text)
    raise ApplicationHandlerStop


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    access = application.bot_data["services"].settings.access
    application.bot_data["throttle"] = Throttle(access.throttle_burst, access.throttle_window)
    application.add_handler(TypeHandler(Update, gate), group=-2)
