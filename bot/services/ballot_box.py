"""The ballot box: a vote is counted so that nothing stored ever links a voter to a choice.

The database holds who may vote and whether they have (`ballot_voters`), and three anonymous
counts per open ballot (`ballot_tallies`); never a row, key, id, timestamp or order per choice.
A cast is three transactions on one connection that holds the ballot's lock
(`Database.exclusive`), so the casts and the close of one ballot never interleave:

- T1 (`mark_pending`): the voter becomes `pending` (the caller has checked they may vote);
- T2 (`count`): every tally row of the ballot is rewritten by one statement whose text does
  not depend on the choice (`count + CASE WHEN choice = :c THEN 1 ELSE 0 END`);
- T3 (`mark_voted`): the pending voter becomes `voted`, by a statement naming nobody.

T1 and T3 rewrite every voter row of the ballot and T2 every tally row, so PostgreSQL's `xmin`
says only "all written then". A choice is never in the same transaction as a voter's id.

Recovery (`recover`, at the start of every cast and at the close, under the same lock): a
voter left `pending` by a crash was counted if the tallies add up to one more than those marked
`voted`, and becomes `voted`; otherwise they are back to not voted and are told to vote again.

After each cast and each close the caller scrubs the files (`Database.scrub`): the SQLite WAL is
truncated (secure_delete zeroes freed space), PostgreSQL's ballot tables are rewritten, so that
no earlier version of a voter row or a tally survives to be compared with the current one. A
reader on an older snapshot (a backup under way) can hold old rows alive; the box then stays
`dirty` and the voting job scrubs again until it succeeds (and once after every start).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.db import Database
from storage.models import BallotTally, BallotVoter, VoteChoice

log = logging.getLogger("hoadep.ballot")

# Stored counts are offset so that every value takes the same six bytes in a SQLite record
# (0 and 1 take none, up to 127 one byte...): a count that grows never moves a row in its page,
# so the page's layout cannot tell which count grew at which vote.
TALLY_BASE = 1 << 40
LOCK_SPACE = 0x4844  # the PostgreSQL advisory locks of the ballots: (LOCK_SPACE, ballot id)
BALLOT_TABLES = ("ballot_voters", "ballot_tallies")

_COUNT = (
    update(BallotTally)
    .where(BallotTally.ballot_id == bindparam("ballot"))
    .values(count=BallotTally.count + case((BallotTally.choice == bindparam("chosen"), 1), else_=0))
    .execution_options(synchronize_session=False)
)


@dataclass(frozen=True, slots=True)
class Counts:
    agree: int
    disagree: int
    abstain: int

    @property
    def cast(self) -> int:
        return self.agree + self.disagree + self.abstain


Notify = Callable[[AsyncSession, int], Awaitable[None]]


@asynccontextmanager
async def step(conn: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """One transaction on the locked connection."""
    async with AsyncSession(bind=conn, expire_on_commit=False) as session, session.begin():
        yield session


class BallotBox:
    def __init__(self, db: Database) -> None:
        self.db = db
        # until a scrub succeeds in this process: a crash may have left old rows behind
        self.dirty = True

    def locked(self, ballot_id: int) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.db.exclusive(LOCK_SPACE, ballot_id)

    @staticmethod
    def open(session: AsyncSession, ballot_id: int) -> None:
        session.add_all(
            BallotTally(ballot_id=ballot_id, choice=c.value, count=TALLY_BASE) for c in VoteChoice
        )

    @staticmethod
    async def mark_pending(session: AsyncSession, ballot_id: int, member_id: int) -> None:
        """T1, in the transaction that checked the voter may vote."""
        await session.execute(
            update(BallotVoter)
            .where(BallotVoter.ballot_id == ballot_id)
            .values(pending=BallotVoter.member_id == member_id)
            .execution_options(synchronize_session=False)
        )

    async def count(self, conn: AsyncConnection, ballot_id: int, choice: VoteChoice) -> None:
        async with step(conn) as session:
            result = await session.execute(_COUNT, {"ballot": ballot_id, "chosen": choice.value})
            if result.rowcount != len(VoteChoice):  # type: ignore[attr-defined]
                raise RuntimeError(f"ballot {ballot_id} has no tallies")

    async def mark_voted(self, conn: AsyncConnection, ballot_id: int) -> None:
        async with step(conn) as session:
            await self._settle(session, ballot_id, counted=True)

    @staticmethod
    async def _settle(session: AsyncSession, ballot_id: int, *, counted: bool) -> None:
        await session.execute(
            update(BallotVoter)
            .where(BallotVoter.ballot_id == ballot_id)
            .values(
                voted=or_(BallotVoter.voted, BallotVoter.pending) if counted else BallotVoter.voted,
                pending=False,
            )
            .execution_options(synchronize_session=False)
        )

    async def counts(self, session: AsyncSession, ballot_id: int) -> Counts:
        rows = dict(
            (
                await session.execute(
                    select(BallotTally.choice, BallotTally.count).where(
                        BallotTally.ballot_id == ballot_id
                    )
                )
            ).all()
        )
        n = {c: int(rows.get(c.value, TALLY_BASE)) - TALLY_BASE for c in VoteChoice}
        return Counts(n[VoteChoice.AGREE], n[VoteChoice.DISAGREE], n[VoteChoice.ABSTAIN])

    @staticmethod
    async def turnout(session: AsyncSession, ballot_id: int) -> int:
        """How many have voted (a pending voter not yet)."""
        return int(
            await session.scalar(
                select(func.count())
                .select_from(BallotVoter)
                .where(BallotVoter.ballot_id == ballot_id, BallotVoter.voted.is_(True))
            )
            or 0
        )

    async def recover(self, conn: AsyncConnection, ballot_id: int, notify: Notify) -> int | None:
        """Settle a voter a crash left pending; returns the member put back to not voted
        (after `notify(session, member_id)` ran in the same transaction), if any."""
        async with step(conn) as session:
            pending = await session.scalar(
                select(BallotVoter.member_id).where(
                    BallotVoter.ballot_id == ballot_id, BallotVoter.pending.is_(True)
                )
            )
            if pending is None:
                return None
            voted = await self.turnout(session, ballot_id)
            counted = (await self.counts(session, ballot_id)).cast
            if counted not in (voted, voted + 1):
                raise RuntimeError(f"ballot {ballot_id}: tallies and voters disagree")
            await self._settle(session, ballot_id, counted=counted == voted + 1)
            if counted == voted + 1:
                return None
            await notify(session, int(pending))
            return int(pending)

    async def take(self, session: AsyncSession, ballot_id: int) -> Counts:
        """At the close: the final counts; the tallies go and the voter rows are rewritten."""
        counts = await self.counts(session, ballot_id)
        await session.execute(delete(BallotTally).where(BallotTally.ballot_id == ballot_id))
        await self._settle(session, ballot_id, counted=False)
        return counts

    async def scrub(self) -> bool:
        """After a vote or a close, and from the voting job while `dirty`. A failure must not
        turn a recorded vote into an error for the voter: it is logged, and the job or the
        next vote scrubs again. True when nothing older is left."""
        try:
            clean = await self.db.scrub(*BALLOT_TABLES)
        except Exception as exc:
            log.warning("the ballot tables could not be scrubbed yet: %s", exc)
            clean = False
        else:
            if not clean:
                log.warning("the ballot tables could not be scrubbed yet: an older reader")
        self.dirty = not clean
        return clean
