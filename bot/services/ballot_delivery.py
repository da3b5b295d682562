"""A council vote whose ballots did not reach every member tells the administrators, once per
ballot and before its deadline, naming who has not received it.

A member has received the ballot when their invitation or their reminder was delivered (the
outbox rows the voting service queues under `ballot_key`). The others are named with why: they
blocked the bot or cannot be reached (403, chat not found), have no Telegram account linked,
or their ballot is still failing (Telegram or the network). The warning goes out as soon as
every invitation has a final outcome, or — while some are still being retried — at
`ballot_warning_hours` before the deadline (in the second half of a short vote). Kept apart from
`bot/services/voting.py` on purpose: the ballot itself is none of its business."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import DeliverySettings
from bot.services.clock import Clock
from bot.services.errors import N_
from bot.services.moderation import admin_chats, subject_name
from bot.services.outbox import Kind, enqueue
from storage.db import Database
from storage.models import Ballot, BallotVoter, Member, Nomination, OutboxMessage, OutboxStatus

log = logging.getLogger("hoadep.delivery")

BALLOT_NOT_RECEIVED = N_(
    "⚠️ <b>Ballot not received</b>\n\n"
    "The secret ballot on the nomination of {name} closes at {deadline}, but {count} council "
    "member(s) have not received it:\n"
    "Blocked the bot or cannot be reached: {blocked}\n"
    "No Telegram account linked: {unlinked}\n"
    "Still failing (Telegram or the network): {failing}\n\n"
    "Please contact them: a council member votes in a private chat with the bot."
)
NOBODY = "—"
_WAITING = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
_RECEIVED = (OutboxStatus.SENT.value, OutboxStatus.UNCERTAIN.value)


def ballot_key(ballot_id: int, chat_id: int, *, reminder: bool = False) -> str:
    """The dedupe key of a member's ballot (invitation or reminder) in the outbox."""
    return f"ballot:{ballot_id}:{'r' if reminder else 'i'}:{chat_id}"


@dataclass(frozen=True, slots=True)
class Missing:
    """Council members (names) who have not received a ballot, by reason."""

    blocked: tuple[str, ...] = ()
    unlinked: tuple[str, ...] = ()
    failing: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.blocked) + len(self.unlinked) + len(self.failing)


class BallotDeliveryService:
    def __init__(self, db: Database, clock: Clock, settings: DeliverySettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings

    def warn_at(self, opened_at: datetime, deadline: datetime) -> datetime:
        """When a ballot still being retried is reported: `ballot_warning_hours` before the
        deadline, but never in the first half of a short vote."""
        before = timedelta(hours=self.settings.ballot_warning_hours)
        return max(deadline - before, opened_at + (deadline - opened_at) / 2)

    async def check(self) -> list[int]:
        """Report the open ballots that are due for it; returns their ids."""
        now = self.clock.now()
        async with self.db.read() as session:
            ballots = list(
                await session.execute(
                    select(Ballot.id, Ballot.opened_at, Ballot.deadline).where(
                        Ballot.closed_at.is_(None), Ballot.deadline > now
                    )
                )
            )
        reported = []
        for ballot_id, opened_at, deadline in ballots:
            if await self._check_one(ballot_id, now >= self.warn_at(opened_at, deadline)):
                reported.append(ballot_id)
        return reported

    async def missing(self, session: AsyncSession, ballot_id: int) -> tuple[Missing, bool]:
        """Who has not received the ballot, and whether some of them are still retried.
        A ballot queued before its invitations were keyed reports nobody."""
        members = list(
            await session.execute(
                select(Member.full_name, Member.telegram_user_id)
                .join(BallotVoter, BallotVoter.member_id == Member.id)
                .where(BallotVoter.ballot_id == ballot_id, Member.active.is_(True))
                .order_by(Member.full_name, Member.id)
            )
        )
        rows = list(
            await session.execute(
                select(OutboxMessage.chat_id, OutboxMessage.status).where(
                    OutboxMessage.dedupe_key.like(f"ballot:{ballot_id}:%")
                )
            )
        )
        if not rows and any(chat is not None for _, chat in members):
            return Missing(), False
        statuses: dict[int, set[str]] = {}
        for chat, status in rows:
            statuses.setdefault(int(chat), set()).add(status)
        blocked: list[str] = []
        unlinked: list[str] = []
        failing: list[str] = []
        for name, chat_id in members:
            seen = statuses.get(int(chat_id), set()) if chat_id is not None else set()
            if chat_id is None:
                unlinked.append(name)
            elif seen & set(_RECEIVED):
                continue
            elif seen & set(_WAITING):
                failing.append(name)
            else:
                blocked.append(name)
        return Missing(tuple(blocked), tuple(unlinked), tuple(failing)), bool(failing)

    async def _check_one(self, ballot_id: int, due: bool) -> bool:
        try:
            async with self.db.transaction() as session:
                missing, retrying = await self.missing(session, ballot_id)
                if missing.count == 0 or (retrying and not due):
                    return False
                if await session.scalar(
                    select(OutboxMessage.id).where(
                        OutboxMessage.dedupe_key.like(f"ballot-missing:{ballot_id}:%")
                    )
                ):
                    return False  # told already
                ballot = await session.get(Ballot, ballot_id)
                nomination = await session.get(Nomination, ballot.nomination_id) if ballot else None
                if ballot is None or nomination is None:
                    return False
                name = await subject_name(
                    session,
                    nomination.nominee_name_at_time,
                    nomination.nominee_member_id,
                    nomination.nominee_unit_id,
                )
                admins = await admin_chats(session)
                for chat_id, language in admins:
                    enqueue(
                        session,
                        chat_id=chat_id,
                        message=BALLOT_NOT_RECEIVED,
                        language=language,
                        now=self.clock.now(),
                        kind=Kind.ALERT,
                        expires_at=ballot.deadline,
                        # one per ballot and administrator, whichever instance gets there first
                        dedupe_key=f"ballot-missing:{ballot_id}:{chat_id}",
                        name=name,
                        deadline=ballot.deadline,
                        count=missing.count,
                        blocked=", ".join(missing.blocked) or NOBODY,
                        unlinked=", ".join(missing.unlinked) or NOBODY,
                        failing=", ".join(missing.failing) or NOBODY,
                    )
        except IntegrityError:
            return False  # another instance told them in the meantime
        if not admins:
            return False
        log.warning(
            "ballot %s: %d council member(s) have not received it; administrators are told",
            ballot_id,
            missing.count,
        )
        return True
