"""The sender of the outbox: a job that delivers due messages and records each outcome.

* sent → ``sent``; a long message is split under 4096 characters and a retry continues after
  the last part that arrived;
* 429 → retried after ``retry_after`` and this sender pauses as long (Telegram's flood wait);
* 403, 400 (blocked, chat not found, a bad request) → ``failed``, never retried;
* ``ChatMigrated`` → re-targeted to the supergroup, with every other message for that chat;
* 5xx, no connection, the token refused → retried with capped exponential backoff
  (``OutboxService.backoff``) for ``delivery.retry_hours``, or until the message expires;
* no answer (read timeout, connection dropped mid-response) → resent or recorded
  ``uncertain``, by the message's kind (``bot/services/outbox.py``).

The first network or server failure ends the pass: the rest of the batch is given back untried,
so an outage costs one request per tick, not one per waiting message. Each pass reports to
``DeliveryService`` (administrators are alerted once, and told once of the recovery); when a
failing run ends, everything waiting out a backoff is sent at once."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ContextTypes

from bot.services.outbox import OutboxService, OutgoingMessage, Policy
from bot.texts import split_html, translator
from bot.wire import WIRE, Taken, Wire, maybe_delivered

log = logging.getLogger("hoadep.outbox")
INTERVAL = 2.0
BALLOT_CHECK_INTERVAL = 60.0
READ_TIMEOUT = 30.0  # a slow answer is waited for: a timeout leaves the outcome in doubt
SETTLE_EVERY = timedelta(seconds=30)  # how often rows a dead process left "sending" are settled
_STATE = "outbox_sender"

App = Application[Any, Any, Any, Any, Any, Any]


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # a network or server failure: tried again after the backoff
    LIMITED = "limited"  # 429
    MOVED = "moved"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    TAKEN = "taken"


STOPS_THE_PASS = (Outcome.RETRY, Outcome.LIMITED, Outcome.UNCERTAIN)
OUTAGE = (Outcome.RETRY, Outcome.UNCERTAIN)  # what counts as delivery failing


@dataclass
class _Sender:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    paused_until: datetime | None = None  # a 429 asked this sender to wait
    settled_at: datetime | None = None


class _OutboxWire(Wire):
    """Marks the row ``sending`` right before each request is written (bot/wire.py)."""

    def __init__(self, outbox: OutboxService, item: OutgoingMessage) -> None:
        self.outbox = outbox
        self.item = item

    async def before(self) -> None:
        self.on_wire = False
        if not await self.outbox.begin_send(self.item):
            raise Taken("the outbox message was taken by another sender")
        self.on_wire = True

    async def refused(self) -> None:
        self.on_wire = False
        await self.outbox.refused(self.item)


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


def _sender(application: App) -> _Sender:
    sender: _Sender = application.bot_data.setdefault(_STATE, _Sender())
    return sender


async def deliver(application: App, *, wait: bool = False) -> int:
    """Send everything due now; returns how many were sent. A delivery already under way is
    left to finish its work, or (wait=True) waited for, so that everything due is sent on
    return."""
    services = application.bot_data["services"]
    sender = _sender(application)
    if sender.lock.locked() and not wait:
        return 0
    sent = 0
    async with sender.lock:
        now = services.clock.now()
        if sender.settled_at is None or now - sender.settled_at >= SETTLE_EVERY:
            sender.settled_at = now
            await services.outbox.settle_in_doubt()
        while True:
            tally = await _pass(application, sender)
            sent += tally[Outcome.SENT]
            failures = sum(tally[o] for o in OUTAGE)
            if not await services.delivery.record(sent=tally[Outcome.SENT], failures=failures):
                return sent


async def _pass(application: App, sender: _Sender) -> Counter[Outcome]:
    services = application.bot_data["services"]
    tally: Counter[Outcome] = Counter()
    while sender.paused_until is None or services.clock.now() >= sender.paused_until:
        batch = await services.outbox.claim_due()
        if not batch:
            break
        for index, item in enumerate(batch):
            outcome = await _send_one(application, item, sender)
            tally[outcome] += 1
            if outcome in STOPS_THE_PASS:
                # the next ones would most likely meet the same failure: they wait for a tick
                await services.outbox.release(batch[index + 1 :])
                return tally
            if outcome is Outcome.MOVED:  # the rest may be re-targeted too: claim afresh
                await services.outbox.release(batch[index + 1 :])
                break
    return tally


async def _send_one(application: App, item: OutgoingMessage, sender: _Sender) -> Outcome:
    services = application.bot_data["services"]
    outbox: OutboxService = services.outbox
    language = item.language or services.settings.organisation.default_language
    t = translator(language, services.settings.organisation.timezone)
    wire = _OutboxWire(outbox, item)
    try:
        chunks = split_html(t(item.message, **item.params))
        message = None
        token = WIRE.set(wire)
        try:
            for index in range(item.parts_sent, len(chunks)):
                last = index == len(chunks) - 1
                message = await application.bot.send_message(
                    item.chat_id,
                    chunks[index],
                    reply_markup=_markup(item, language) if last else None,
                    read_timeout=READ_TIMEOUT,
                )
                if not last:
                    await outbox.part_sent(item, index + 1)
        finally:
            WIRE.reset(token)
        await outbox.sent(item, message.message_id if message else None)
        return Outcome.SENT
    except Taken:
        return Outcome.TAKEN
    except RetryAfter as exc:
        seconds = _seconds(exc) + 1.0
        sender.paused_until = services.clock.now() + timedelta(seconds=seconds)
        log.warning("Telegram asks to wait %.0f s (429): the outbox pauses", seconds)
        await outbox.retry(item, f"rate limited: {exc}", seconds)
        return Outcome.LIMITED
    except ChatMigrated as exc:
        log.info("chat %s became %s; the outbox sends there", item.chat_id, exc.new_chat_id)
        await outbox.moved(item, int(exc.new_chat_id))
        return Outcome.MOVED
    except Forbidden as exc:
        log.info("outbox %s: chat %s unreachable: %s", item.id, item.chat_id, exc)
        await outbox.failed(item, f"forbidden: {exc}")
        return Outcome.FAILED
    except BadRequest as exc:
        log.warning("outbox %s refused by Telegram: %s", item.id, exc)
        await outbox.failed(item, f"refused: {exc}")
        return Outcome.FAILED
    except NetworkError as exc:
        return await _no_delivery(outbox, item, wire, exc)
    except TelegramError as exc:  # e.g. the token was refused: nothing is lost, try later
        log.warning("outbox %s: %s; tried again later", item.id, exc)
        await outbox.retry(item, str(exc))
        return Outcome.RETRY
    except Exception as exc:  # a bad template must not block the others
        log.exception("outbox %s could not be rendered or sent", item.id)
        await outbox.failed(item, repr(exc))
        return Outcome.FAILED


async def _no_delivery(
    outbox: OutboxService, item: OutgoingMessage, wire: _OutboxWire, exc: NetworkError
) -> Outcome:
    if wire.on_wire and maybe_delivered(exc):
        if item.policy is Policy.AT_MOST_ONCE:
            log.warning(
                "outbox %s (%s): no answer from Telegram (%s); it may have arrived and is not "
                "sent again",
                item.id,
                item.kind,
                exc,
            )
            await outbox.uncertain(item, f"no answer from Telegram ({exc})")
            return Outcome.UNCERTAIN
        log.warning(
            "outbox %s (%s): no answer from Telegram (%s); it is sent again (twice is harmless)",
            item.id,
            item.kind,
            exc,
        )
    else:
        log.debug("outbox %s: %s; tried again later", item.id, exc)
    await outbox.retry(item, str(exc))
    return Outcome.RETRY


def _seconds(exc: RetryAfter) -> float:
    raw: Any = getattr(exc, "_retry_after", None)  # a timedelta since PTB 22.2 (no warning)
    if raw is None:
        raw = exc.retry_after
    return raw.total_seconds() if isinstance(raw, timedelta) else float(raw)


async def _job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await deliver(context.application)


async def _ballot_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        if await context.application.bot_data["services"].ballot_delivery.check():
            kick(context.application)
    except Exception:  # the next round tries again
        log.exception("the ballot delivery check failed")


def kick(application: App) -> None:
    """Deliver soon, without waiting for the next tick (after a handler enqueued something).
    Tests that deliver explicitly turn this off with bot_data["outbox_kick"] = False."""
    if application.bot_data.get("outbox_kick", True):
        application.create_task(deliver(application), name="outbox-kick")


def install(application: App) -> None:
    if application.job_queue is not None:
        application.job_queue.run_repeating(_job, interval=INTERVAL, first=1.0, name="outbox")
        application.job_queue.run_repeating(
            _ballot_job, interval=BALLOT_CHECK_INTERVAL, first=30.0, name="ballot-delivery"
        )
