"""The sender of the outbox: a job that delivers due messages and records each outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application, ContextTypes

from bot.services.outbox import OutgoingMessage
from bot.texts import split_html, translator

log = logging.getLogger("hoadep.outbox")
INTERVAL = 2.0
_LOCK = "outbox_lock"


def _markup(item: OutgoingMessage, language: str) -> InlineKeyboardMarkup | None:
    if not item.buttons:
        return None
    t = translator(language)
    layout = []
    for row in item.buttons:
        buttons = []
        for spec in row:
            label = t.raw(spec["text"])
            if "url" in spec:
                buttons.append(InlineKeyboardButton(label, url=spec["url"]))
            else:
                buttons.append(InlineKeyboardButton(label, callback_data=spec.get("data")))
        layout.append(buttons)
    return InlineKeyboardMarkup(layout)


async def deliver(
    application: Application[Any, Any, Any, Any, Any, Any], *, wait: bool = False
) -> int:
    """Send everything due now; returns how many were sent. A delivery already under way is
    left to finish its work, or (wait=True) waited for, so that everything due is sent on
    return."""
    services = application.bot_data["services"]
    lock: asyncio.Lock = application.bot_data.setdefault(_LOCK, asyncio.Lock())
    if lock.locked() and not wait:
        return 0
    sent = 0
    async with lock:
        while True:
            batch = await services.outbox.claim_due()
            if not batch:
                return sent
            for item in batch:
                sent += await _send_one(application, item)


async def _send_one(
    application: Application[Any, Any, Any, Any, Any, Any], item: OutgoingMessage
) -> int:
    services = application.bot_data["services"]
    language = item.language or services.settings.organisation.default_language
    t = translator(language, services.settings.organisation.timezone)
    try:
        chunks = split_html(t(item.message, **item.params))
        message = None
        for i, chunk in enumerate(chunks):
            message = await application.bot.send_message(
                item.chat_id,
                chunk,
                reply_markup=_markup(item, language) if i == len(chunks) - 1 else None,
            )
        await services.outbox.sent(item.id, message.message_id if message else None)
        return 1
    except RetryAfter as exc:
        delay = exc.retry_after
        seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
        await services.outbox.retry(item, str(exc), seconds)
    except ChatMigrated as exc:
        await services.outbox.moved(item.id, exc.new_chat_id)
    except Forbidden as exc:
        log.info("outbox %s: chat %s unreachable: %s", item.id, item.chat_id, exc)
        await services.outbox.failed(item.id, str(exc))
    except BadRequest as exc:
        log.warning("outbox %s refused: %s", item.id, exc)
        await services.outbox.failed(item.id, str(exc))
    except NetworkError as exc:
        await services.outbox.retry(item, str(exc))
    except Exception as exc:  # a bad template must not block the others
        log.exception("outbox %s could not be rendered or sent", item.id)
        await services.outbox.failed(item.id, repr(exc))
    return 0


async def _job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await deliver(context.application)


def kick(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Deliver soon, without waiting for the next tick (after a handler enqueued something).
    Tests that deliver explicitly turn this off with bot_data["outbox_kick"] = False."""
    if application.bot_data.get("outbox_kick", True):
        application.create_task(deliver(application), name="outbox-kick")


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(_job, interval=INTERVAL, first=1.0, name="outbox")
