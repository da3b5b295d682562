"""Free text, photos and documents go to the flow the person is in (kept in the database)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.context import BotContext
from bot.services.flows import Flow
from handlers.common import is_private

Route = Callable[[Update, BotContext, Flow], Awaitable[None]]
ROUTES: dict[str, Route] = {}


def route(flow_name: str) -> Callable[[Route], Route]:
    def register(func: Route) -> Route:
        ROUTES[flow_name] = func
        return func

    return register


async def on_input(update: Update, context: BotContext) -> None:
    if not is_private(update) or update.effective_user is None:
        return
    flow = await context.services.flows.get(update.effective_user.id)
    if flow is not None and flow.name in ROUTES:
        await ROUTES[flow.name](update, context, flow)
        return
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            context.t("I did not understand that. Send /help to see what I can do.")
        )


async def on_unknown_command(update: Update, context: BotContext) -> None:
    if is_private(update) and update.effective_message is not None:
        await update.effective_message.reply_text(
            context.t("I do not know that command. Send /help to see what I can do.")
        )


async def on_stale_button(update: Update, context: BotContext) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(
            context.t("This button is no longer valid. Please start again."), show_alert=True
        )


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    media = filters.PHOTO | filters.Document.ALL
    application.add_handler(MessageHandler((filters.TEXT & ~filters.COMMAND) | media, on_input))
    application.add_handler(MessageHandler(filters.COMMAND, on_unknown_command))
    application.add_handler(CallbackQueryHandler(on_stale_button))
