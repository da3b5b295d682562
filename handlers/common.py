"""Small helpers every handler uses to answer."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot.context import BotContext
from bot.telegram_bot import HoaBot
from bot.texts import split_html


def is_private(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type == ChatType.PRIVATE


def answered(update: Update, context: BotContext) -> bool:
    """Whether the pressed button has had its one answer already."""
    query, bot = update.callback_query, context.bot
    return query is not None and isinstance(bot, HoaBot) and bot.answered(query.id)


async def reply(
    update: Update,
    context: BotContext,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    *,
    edit: bool = True,
) -> Message | None:
    """Answer where the person is: edit the message whose button was pressed, else send."""
    query = update.callback_query
    if query is not None:
        await query.answer()
        if edit and query.message is not None and len(text) <= 4096:
            try:
                result = await query.edit_message_text(text, reply_markup=markup)
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise
                return None
            return result if isinstance(result, Message) else None
    chat = update.effective_chat
    if chat is None:
        return None
    sent: Message | None = None
    chunks = split_html(text)
    for i, chunk in enumerate(chunks):
        sent = await context.bot.send_message(
            chat.id, chunk, reply_markup=markup if i == len(chunks) - 1 else None
        )
    return sent


async def toast(update: Update, text: str, *, alert: bool = False) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(text[:200], show_alert=alert)
