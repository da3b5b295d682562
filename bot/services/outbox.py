"""Messages to people, written with the change they report and delivered afterwards.

A service calls `enqueue(session, …)` inside its own transaction; the bot's sender
(`bot/outbox.py`) claims due rows, sends them and records the outcome here. A row's life::

    pending ──claim (a lease)──begin_send──> sending ──> sent
       ^ ^                                     │ ├──> failed (403, chat not found, 400)
       │ └──── retry (429, 5xx, no connection) ┘ ├──> uncertain (no answer; at-most-once kind)
       └──────────── no answer (at-least-once kind) ┘
    pending ──> expired (expires_at passed) or failed (no expires_at, retry_hours passed)

Every transition of an attempt is a conditional UPDATE on the row's `attempts`, the token a
claim hands out: a late outcome never overwrites a newer one, and two instances never send one
row twice. `begin_send` is called from inside the HTTP layer (`bot/wire.py`) right before the
request is written, so only the request itself is ever in doubt.

**Duplicates versus misses.** When a request gets no answer (read timeout, connection dropped
mid-response, the process killed while "sending"), the message may have arrived. What happens
then depends on the message's `kind` (`KINDS`, documented in docs/DEVELOPING.md, "Delivery"):
kinds that are harmless to repeat are sent again (at least once); the others are recorded
`uncertain` and never sent again (at most once). A kind not listed is at most once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DeliverySettings
from bot.services.clock import Clock
from storage.db import Database, affected
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger("hoadep.outbox")

LEASE = timedelta(seconds=60)  # a claimed row is ours this long before its request goes out
DOUBT_AFTER = timedelta(minutes=2)  # a row left "sending" this long: its process died
FIRST_BACKOFF = 5.0  # seconds before the second attempt; doubles up to the configured cap


class Policy(StrEnum):
    AT_LEAST_ONCE = "at_least_once"  # resent when in doubt: a duplicate is harmless
    AT_MOST_ONCE = "at_most_once"  # never resent when in doubt: a duplicate would do harm


class Kind(StrEnum):
    BALLOT = "ballot"  # a ballot invitation to a council member
    BALLOT_REMINDER = "ballot_reminder"  # "you have not voted yet"
    REVIEW = "review"  # a new item waiting for the moderators
    ACCESS_REQUEST = "access_request"  # a request to join, to the administrators
    ALERT = "alert"  # delivery alerts and undelivered-ballot warnings, to administrators
    DECISION = "decision"  # a decision on a person's submission or access request
    RECOGNITION = "recognition"  # congratulations to a recognised nominee
    NOTICE = "notice"  # anything else (minutes, results, status notices…)


KINDS: dict[str, Policy] = {
    Kind.BALLOT: Policy.AT_LEAST_ONCE,
    Kind.BALLOT_REMINDER: Policy.AT_LEAST_ONCE,
    Kind.REVIEW: Policy.AT_LEAST_ONCE,
    Kind.ACCESS_REQUEST: Policy.AT_LEAST_ONCE,
    Kind.ALERT: Policy.AT_LEAST_ONCE,
    Kind.DECISION: Policy.AT_MOST_ONCE,
    Kind.RECOGNITION: Policy.AT_MOST_ONCE,
    Kind.NOTICE: Policy.AT_MOST_ONCE,
}
RESENDABLE = tuple(str(k) for k, p in KINDS.items() if p is Policy.AT_LEAST_ONCE)


def policy(kind: str) -> Policy:
    return KINDS.get(kind, Policy.AT_MOST_ONCE)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    return value


def decode_param(value: Any) -> Any:
    if isinstance(value, dict):
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
        if "__date__" in value:
            return date.fromisoformat(value["__date__"])
    return value


def button(text: str, data: str | None = None, url: str | None = None) -> dict[str, str]:
    """A button of an outgoing message: `text` is a message id, translated when sent."""
    out = {"text": text}
    if data is not None:
        out["data"] = data
    if url is not None:
        out["url"] = url
    return out


def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    message: str,
    now: datetime,
    language: str | None = None,
    buttons: list[list[dict[str, str]]] | None = None,
    dedupe_key: str | None = None,
    kind: str = Kind.NOTICE,
    expires_at: datetime | None = None,
    **params: Any,
) -> None:
    """Queue a message. `kind` decides whether a send in doubt is repeated (see `KINDS`);
    `expires_at`: when it stops meaning anything (it is then never sent)."""
    session.add(
        OutboxMessage(
            chat_id=chat_id,
            message=message,
            params={k: _encode(v) for k, v in params.items()},
            language=language,
            buttons=buttons,
            dedupe_key=dedupe_key,
            kind=str(kind),
            expires_at=expires_at,
            status=OutboxStatus.PENDING.value,
            next_attempt_at=now,
            created_at=now,
        )
    )


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    id: int
    chat_id: int
    message: str
    params: dict[str, Any]
    language: str | None
    buttons: list[list[dict[str, str]]] | None
    attempts: int  # the claim token
    kind: str = Kind.NOTICE
    parts_sent: int = 0
    lease_until: datetime | None = None

    @property
    def policy(self) -> Policy:
        return policy(self.kind)


class OutboxService:
    def __init__(self, db: Database, clock: Clock, settings: DeliverySettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    @property
    def give_up_after(self) -> timedelta:
        return timedelta(hours=self.settings.retry_hours)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: 5, 10, 20… capped."""
        exponent = min(max(0, attempts - 1), 30)
        return min(self.settings.max_backoff_seconds, FIRST_BACKOFF * 2.0**exponent)

    async def add(self, **kwargs: Any) -> bool:
        """Enqueue on its own; False when the dedupe key was used already."""
        try:
            async with self.db.transaction() as session:
                enqueue(session, now=self.clock.now(), **kwargs)
        except IntegrityError:
            return False
        return True

    # --- claiming -------------------------------------------------------------------------------

    async def claim_due(self, limit: int = 50) -> list[OutgoingMessage]:
        """Lease due rows to this sender (oldest first). Rows past their expiry are marked
        expired; rows without one are given up (failed) once older than the retry window.
        Neither is returned."""
        now = self.clock.now()
        lease_until = now + LEASE
        claimed: list[OutgoingMessage] = []
        async with self.db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.status == OutboxStatus.PENDING.value,
                        OutboxMessage.next_attempt_at <= now,
                    )
                    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                    .limit(limit)
                )
            )
            for row in rows:
                current = (
                    OutboxMessage.id == row.id,
                    OutboxMessage.status == OutboxStatus.PENDING.value,
                    OutboxMessage.attempts == row.attempts,
                )
                if row.expires_at is not None and row.expires_at <= now:
                    if await self._set(session, current, status=OutboxStatus.EXPIRED.value):
                        log.warning(
                            "outbox %s (%s, chat %s) expired at %s before it could be sent; "
                            "not sent",
                            row.id,
                            row.kind,
                            row.chat_id,
                            row.expires_at.isoformat(),
                        )
                    continue
                if row.expires_at is None and row.created_at <= now - self.give_up_after:
                    error = f"gave up after {self.settings.retry_hours} hours: {row.last_error}"
                    if await self._set(
                        session, current, status=OutboxStatus.FAILED.value, last_error=error
                    ):
                        log.warning("outbox %s (chat %s): %s", row.id, row.chat_id, error)
                    continue
                won = await self._set(
                    session, current, next_attempt_at=lease_until, attempts=row.attempts + 1
                )
                if won:
                    claimed.append(
                        OutgoingMessage(
                            row.id,
                            row.chat_id,
                            row.message,
                            {k: decode_param(v) for k, v in (row.params or {}).items()},
                            row.language,
                            row.buttons,
                            row.attempts + 1,
                            row.kind,
                            row.parts_sent,
                            lease_until,
                        )
                    )
        return claimed

    async def release(self, items: list[OutgoingMessage]) -> None:
        """Give back leased rows that were not tried (the pass stopped): due again at once,
        their attempt not counted."""
        if not items:
            return
        async with self.db.transaction() as session:
            for item in items:
                await self._set(
                    session,
                    self._token(item, OutboxStatus.PENDING),
                    attempts=item.attempts - 1,
                    next_attempt_at=self.clock.now(),
                )

    # --- one attempt ----------------------------------------------------------------------------

    async def begin_send(self, item: OutgoingMessage) -> bool:
        """Right before a request goes on the wire: pending (ours) → sending. False: the row
        is not ours any more (another instance re-claimed it after the lease); send nothing."""
        now = self.clock.now()
        return await self._move(
            item, (OutboxStatus.PENDING,), status=OutboxStatus.SENDING.value, next_attempt_at=now
        )

    async def refused(self, item: OutgoingMessage) -> None:
        """Telegram answered with an error: nothing was delivered; still ours until the
        outcome is recorded."""
        await self._move(
            item,
            (OutboxStatus.SENDING,),
            status=OutboxStatus.PENDING.value,
            next_attempt_at=self.clock.now() + LEASE,
        )

    async def part_sent(self, item: OutgoingMessage, parts: int) -> None:
        """Part `parts` of a long message arrived: a later attempt continues after it."""
        await self._move(
            item,
            (OutboxStatus.SENDING,),
            status=OutboxStatus.PENDING.value,
            parts_sent=parts,
            next_attempt_at=self.clock.now() + LEASE,
        )

    async def sent(self, item: OutgoingMessage, message_id: int | None) -> None:
        now = self.clock.now()
        await self._move(
            item,
            (OutboxStatus.SENDING, OutboxStatus.PENDING),
            status=OutboxStatus.SENT.value,
            sent_at=now,
            message_id=message_id,
            last_error=None,
        )

    async def retry(self, item: OutgoingMessage, error: str, delay: float | None = None) -> float:
        """Try again later: after `delay` seconds (429), else the capped backoff. Returns the
        delay."""
        wait = delay if delay is not None else self.backoff(item.attempts)
        await self._move(
            item,
            (OutboxStatus.SENDING, OutboxStatus.PENDING),
            status=OutboxStatus.PENDING.value,
            next_attempt_at=self.clock.now() + timedelta(seconds=wait),
            last_error=error[:500],
        )
        return wait

    async def moved(self, item: OutgoingMessage, new_chat_id: int) -> None:
        """The group became a supergroup: this row, due again, and every other one waiting for
        the old chat go to the new one."""
        async with self.db.transaction() as session:
            await self._set(
                session,
                self._token(item, OutboxStatus.SENDING, OutboxStatus.PENDING),
                status=OutboxStatus.PENDING.value,
                next_attempt_at=self.clock.now(),
            )
            await self._set(
                session,
                (
                    OutboxMessage.chat_id == item.chat_id,
                    OutboxMessage.status == OutboxStatus.PENDING.value,
                ),
                chat_id=new_chat_id,
            )

    async def failed(self, item: OutgoingMessage, error: str) -> None:
        await self._move(
            item,
            (OutboxStatus.SENDING, OutboxStatus.PENDING),
            status=OutboxStatus.FAILED.value,
            last_error=error[:500],
        )

    async def uncertain(self, item: OutgoingMessage, error: str) -> None:
        """No answer to a request that may have arrived: never sent again."""
        await self._move(
            item,
            (OutboxStatus.SENDING, OutboxStatus.PENDING),
            status=OutboxStatus.UNCERTAIN.value,
            last_error=f"uncertain: {error}"[:500],
        )

    # --- after a crash --------------------------------------------------------------------------

    async def settle_in_doubt(self) -> tuple[int, int]:
        """Rows a dead process left "sending": at-least-once kinds are due again, the others
        are recorded uncertain. Returns (resent, uncertain)."""
        now = self.clock.now()
        stale = (
            OutboxMessage.status == OutboxStatus.SENDING.value,
            OutboxMessage.next_attempt_at < now - DOUBT_AFTER,
        )
        async with self.db.transaction() as session:
            again = await session.execute(
                update(OutboxMessage)
                .where(*stale, OutboxMessage.kind.in_(RESENDABLE))
                .values(
                    status=OutboxStatus.PENDING.value,
                    next_attempt_at=now,
                    updated_at=now,
                    last_error="the process stopped while sending; sent again",
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            resent = sorted(int(i) for i in again.scalars())
            doubt = await session.execute(
                update(OutboxMessage)
                .where(*stale, OutboxMessage.kind.not_in(RESENDABLE))
                .values(
                    status=OutboxStatus.UNCERTAIN.value,
                    updated_at=now,
                    last_error="uncertain: the process stopped while sending; not sent again",
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            uncertain = sorted(int(i) for i in doubt.scalars())
        for row_id in resent:
            log.warning("outbox %s was being sent when a process stopped: sent again", row_id)
        for row_id in uncertain:
            log.warning(
                "outbox %s was being sent when a process stopped: it may have arrived and is "
                "not sent again",
                row_id,
            )
        return len(resent), len(uncertain)

    async def pending_count(self) -> int:
        async with self.db.read() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING.value)
                )
                or 0
            )

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _token(item: OutgoingMessage, *statuses: OutboxStatus) -> tuple[Any, ...]:
        return (
            OutboxMessage.id == item.id,
            OutboxMessage.attempts == item.attempts,
            OutboxMessage.status.in_([s.value for s in statuses]),
        )

    async def _move(
        self, item: OutgoingMessage, sources: tuple[OutboxStatus, ...], **values: Any
    ) -> bool:
        async with self.db.transaction() as session:
            return bool(await self._set(session, self._token(item, *sources), **values))

    async def _set(self, session: AsyncSession, where: tuple[Any, ...], **values: Any) -> int:
        values.setdefault("updated_at", self.clock.now())
        return affected(
            await session.execute(
                update(OutboxMessage)
                .where(*where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
