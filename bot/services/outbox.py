"""Messages to people, written with the change they report and delivered afterwards.

A service calls `enqueue(session, …)` inside its own transaction; the bot's sender job claims due
rows, sends them and records the outcome. Two instances never send one row twice: a row is
claimed by moving its next attempt into the future with a conditional UPDATE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.clock import Clock
from storage.db import Database, affected
from storage.models import OutboxMessage, OutboxStatus

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 12


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
    **params: Any,
) -> None:
    session.add(
        OutboxMessage(
            chat_id=chat_id,
            message=message,
            params={k: _encode(v) for k, v in params.items()},
            language=language,
            buttons=buttons,
            dedupe_key=dedupe_key,
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
    attempts: int


class OutboxService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def add(self, **kwargs: Any) -> bool:
        """Enqueue on its own; False when the dedupe key was used already."""
        try:
            async with self.db.transaction() as session:
                enqueue(session, now=self.clock.now(), **kwargs)
        except IntegrityError:
            return False
        return True

    async def claim_due(self, limit: int = 50) -> list[OutgoingMessage]:
        now = self.clock.now()
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
            claimed: list[OutgoingMessage] = []
            for row in rows:
                won = affected(
                    await session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.id == row.id,
                            OutboxMessage.status == OutboxStatus.PENDING.value,
                            OutboxMessage.next_attempt_at == row.next_attempt_at,
                        )
                        .values(next_attempt_at=now + LEASE, attempts=row.attempts + 1)
                        .execution_options(synchronize_session=False)
                    )
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
                        )
                    )
        return claimed

    async def sent(self, item_id: int, message_id: int | None) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == item_id)
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=self.clock.now(),
                    message_id=message_id,
                    last_error=None,
                )
            )

    async def retry(self, item: OutgoingMessage, error: str, delay: float | None = None) -> None:
        if item.attempts >= MAX_ATTEMPTS:
            await self.failed(item.id, error)
            return
        wait = delay if delay is not None else min(3600.0, 5.0 * 2 ** (item.attempts - 1))
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == item.id)
                .values(
                    next_attempt_at=self.clock.now() + timedelta(seconds=wait),
                    last_error=error[:500],
                )
            )

    async def moved(self, item_id: int, new_chat_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == item_id)
                .values(chat_id=new_chat_id, next_attempt_at=self.clock.now())
            )

    async def failed(self, item_id: int, error: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == item_id)
                .values(status=OutboxStatus.FAILED.value, last_error=error[:500])
            )

    async def pending_count(self) -> int:
        from sqlalchemy import func

        async with self.db.read() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING.value)
                )
                or 0
            )
