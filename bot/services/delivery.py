"""Whether delivery to Telegram works, shared by every instance through one row
(`delivery_state`), and the administrators' two messages about an outage.

The senders (`bot/outbox.py`, the announcement ticker) report each pass: how many messages
arrived and how many attempts failed with a network or server error. A run of such failures
with no success in between is "failing"; once it has lasted `alert_after_minutes` and a message
has waited that long, the instance that claims the alert (a conditional UPDATE of the row) logs
a WARNING and queues ONE message to every administrator. The first success afterwards ends it:
the instance that claims the recovery logs a WARNING and queues ONE message saying how many
messages were delayed, expired or left uncertain, and every message waiting out a backoff is
made due at once. During a complete outage both messages reach the administrators only when
Telegram is back; the WARNING lines are the real-time signal."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DeliverySettings
from bot.services.announcements import SKIP_EXPIRED, UNCERTAIN
from bot.services.clock import Clock
from bot.services.errors import N_
from bot.services.moderation import admin_chats
from bot.services.outbox import Kind, enqueue
from storage.db import Database, affected
from storage.models import (
    AnnouncementRun,
    DeliveryState,
    OutboxMessage,
    OutboxStatus,
    RunStatus,
)

log = logging.getLogger("hoadep.delivery")

STATE_ID = 1
MIN_FAILURES = 3  # failed attempts in a row before an alert (one failure is no outage)
RECHECK = timedelta(seconds=30)  # a process that saw no failure looks at the row this often

DELIVERY_DOWN = N_(
    "⚠️ <b>Messages cannot be delivered</b>\n\n"
    "Telegram or the network has been failing since {since}. {waiting} message(s) are waiting: "
    "they are retried for up to {hours} hours (a ballot until its deadline), so nothing is lost "
    "meanwhile. You will be told when delivery works again."
)
DELIVERY_UP = N_(
    "✅ <b>Messages are delivered again</b> since {at} (delivery had been failing since "
    "{since}).\n\n"
    "Delayed: {delayed}, being sent now.\n"
    "Expired before they could be sent (their deadline passed): {expired}.\n"
    "No answer from Telegram, so not sent again (they may have arrived): {uncertain}."
)

_WAITING_OUTBOX = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
_WAITING_RUNS = (RunStatus.CLAIMED.value, RunStatus.RETRY.value, RunStatus.SENDING.value)


@dataclass(frozen=True, slots=True)
class Incident:
    """What an outage did, counted from when it began."""

    delayed: int
    expired: int
    uncertain: int


class DeliveryService:
    def __init__(self, db: Database, clock: Clock, settings: DeliverySettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self._saw_failure = True  # look at the row on the first success after a start
        self._checked_at: datetime | None = None

    @property
    def alert_after(self) -> timedelta:
        return timedelta(minutes=self.settings.alert_after_minutes)

    async def record(self, *, sent: int, failures: int) -> bool:
        """The outcome of one pass of a sender: messages that arrived, attempts that failed
        with a network or server error. True when a failing run just ended here (what waited
        is due again: the caller may send it at once)."""
        resumed = await self._succeeded() if sent else False
        if failures:
            await self._failed(failures)
        return resumed

    async def state(self) -> DeliveryState | None:
        async with self.db.read() as session:
            return await session.get(DeliveryState, STATE_ID)

    # --- failures -------------------------------------------------------------------------------

    async def _failed(self, failures: int) -> None:
        now = self.clock.now()
        self._saw_failure = True
        await self._ensure_row(now)
        async with self.db.transaction() as session:
            await session.execute(
                update(DeliveryState)
                .where(DeliveryState.id == STATE_ID)
                .values(
                    failures=DeliveryState.failures + failures,
                    failing_since=func.coalesce(DeliveryState.failing_since, now),
                    updated_at=now,
                )
            )
            state = await session.get(DeliveryState, STATE_ID, populate_existing=True)
            if state is None or state.alerted_at is not None or state.failing_since is None:
                return
            if state.failures < MIN_FAILURES or state.failing_since > now - self.alert_after:
                return
            oldest = await _oldest_waiting(session)
            if oldest is None or oldest > now - self.alert_after:
                return
            won = affected(
                await session.execute(
                    update(DeliveryState)
                    .where(DeliveryState.id == STATE_ID, DeliveryState.alerted_at.is_(None))
                    .values(alerted_at=now)
                )
            )
            if not won:
                return  # another instance alerted
            waiting = await _waiting_count(session)
            told = await self._tell_admins(
                session,
                DELIVERY_DOWN,
                since=state.failing_since,
                waiting=waiting,
                hours=self.settings.retry_hours,
            )
            log.warning(
                "delivery to Telegram has been failing since %s (%d failed attempts in a row); "
                "%d message(s) waiting; %d administrator(s) told",
                state.failing_since.isoformat(),
                state.failures,
                waiting,
                told,
            )

    async def _ensure_row(self, now: datetime) -> None:
        async with self.db.read() as session:
            if await session.get(DeliveryState, STATE_ID) is not None:
                return
        try:
            async with self.db.transaction() as session:
                session.add(DeliveryState(id=STATE_ID, failures=0, updated_at=now))
        except IntegrityError:
            pass  # another instance made it

    # --- recovery -------------------------------------------------------------------------------

    async def _succeeded(self) -> bool:
        now = self.clock.now()
        recent = self._checked_at is not None and now - self._checked_at < RECHECK
        if not self._saw_failure and recent:
            return False
        self._saw_failure = False
        self._checked_at = now
        async with self.db.transaction() as session:
            state = await session.get(DeliveryState, STATE_ID)
            if state is None or (state.failing_since is None and state.alerted_at is None):
                return False
            since, alerted = state.failing_since, state.alerted_at
            won = affected(
                await session.execute(
                    update(DeliveryState)
                    .where(
                        DeliveryState.id == STATE_ID,
                        _same(DeliveryState.failing_since, since),
                        _same(DeliveryState.alerted_at, alerted),
                    )
                    .values(failing_since=None, failures=0, alerted_at=None, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
            if not won:
                return False  # another instance saw the recovery first
            await _resume(session, now)
            if alerted is not None:
                start = since or alerted
                incident = await _incident(session, start, now)
                told = await self._tell_admins(
                    session,
                    DELIVERY_UP,
                    at=now,
                    since=start,
                    delayed=incident.delayed,
                    expired=incident.expired,
                    uncertain=incident.uncertain,
                )
                log.warning(
                    "delivery to Telegram works again (failing since %s): %d message(s) "
                    "delayed, %d expired, %d uncertain; %d administrator(s) told",
                    start.isoformat(),
                    incident.delayed,
                    incident.expired,
                    incident.uncertain,
                    told,
                )
        return True

    async def _tell_admins(self, session: AsyncSession, message: str, **params: Any) -> int:
        now = self.clock.now()
        admins = await admin_chats(session)
        for chat_id, language in admins:
            enqueue(
                session,
                chat_id=chat_id,
                message=message,
                language=language,
                now=now,
                kind=Kind.ALERT,
                **params,
            )
        return len(admins)


def _same(column: Any, value: datetime | None) -> Any:
    return column.is_(None) if value is None else column == value


async def _resume(session: AsyncSession, now: datetime) -> None:
    """Everything waiting out a backoff is due now (a 429's wait included: the sender's own
    pause still honours it)."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING.value,
            OutboxMessage.next_attempt_at > now,
            OutboxMessage.last_error.is_not(None),
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(AnnouncementRun)
        .where(
            AnnouncementRun.status == RunStatus.RETRY.value,
            AnnouncementRun.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


async def _oldest_waiting(session: AsyncSession) -> datetime | None:
    outbox = await session.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(_WAITING_OUTBOX))
    )
    runs = await session.scalar(
        select(func.min(AnnouncementRun.claimed_at)).where(
            AnnouncementRun.status.in_(_WAITING_RUNS)
        )
    )
    found = [t for t in (outbox, runs) if t is not None]
    return min(found) if found else None


async def _waiting_count(session: AsyncSession) -> int:
    outbox = await session.scalar(
        select(func.count()).where(OutboxMessage.status.in_(_WAITING_OUTBOX))
    )
    runs = await session.scalar(
        select(func.count()).where(AnnouncementRun.status.in_(_WAITING_RUNS))
    )
    return int(outbox or 0) + int(runs or 0)


async def _incident(session: AsyncSession, since: datetime, now: datetime) -> Incident:
    delayed_outbox = await session.scalar(
        select(func.count()).where(
            OutboxMessage.created_at <= now,
            OutboxMessage.kind != Kind.ALERT.value,
            or_(
                OutboxMessage.status.in_(_WAITING_OUTBOX),
                (OutboxMessage.status == OutboxStatus.SENT.value)
                & (OutboxMessage.sent_at >= since),
            ),
        )
    )
    delayed_runs = await session.scalar(
        select(func.count()).where(
            or_(
                AnnouncementRun.status.in_(_WAITING_RUNS),
                (AnnouncementRun.status == RunStatus.SENT.value)
                & (AnnouncementRun.updated_at >= since)
                & (AnnouncementRun.attempts > 1),
            ),
        )
    )
    expired_outbox = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status == OutboxStatus.EXPIRED.value,
            OutboxMessage.updated_at >= since,
        )
    )
    expired_runs = await session.scalar(
        select(func.count()).where(
            AnnouncementRun.status == RunStatus.SKIPPED.value,
            AnnouncementRun.last_error == SKIP_EXPIRED,
            AnnouncementRun.updated_at >= since,
        )
    )
    uncertain_outbox = await session.scalar(
        select(func.count()).where(
            OutboxMessage.status == OutboxStatus.UNCERTAIN.value,
            OutboxMessage.updated_at >= since,
        )
    )
    uncertain_runs = await session.scalar(
        select(func.count()).where(
            AnnouncementRun.status == RunStatus.FAILED.value,
            AnnouncementRun.last_error.like(f"{UNCERTAIN}%"),
            AnnouncementRun.updated_at >= since,
        )
    )
    return Incident(
        delayed=int(delayed_outbox or 0) + int(delayed_runs or 0),
        expired=int(expired_outbox or 0) + int(expired_runs or 0),
        uncertain=int(uncertain_outbox or 0) + int(uncertain_runs or 0),
    )
