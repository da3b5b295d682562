"""The council's secret ballot (bỏ phiếu kín) on a nomination.

Who votes: the active members whose role is `council` when the vote opens, less those left out
of their own item (the nominator, the nominee, and for a unit its members and those of its
sub-units); administrators moderate but do not vote. A member who leaves the council or is
deactivated during the vote can no longer vote and is not reminded. The threshold is counted on
the members entitled to vote at opening (`Ballot.council_size`): a blank vote or no vote counts
against.

Secrecy by construction (bot/services/ballot_box.py): the database holds who has voted and three
anonymous counts, never anything that pairs a member with a choice, and the files are scrubbed
after every vote. A vote is final once confirmed, like a paper ballot: changing it would need a
link between the voter and their choice. While a ballot is open no tally is shown to anyone,
only how many have voted. The threat model is in docs/SECURITY.md.

Concurrency: the casts and the close of one ballot hold the ballot's lock (`BallotBox.locked`);
a vote after the deadline or the close is refused even before the closing job has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ModerationSettings
from bot.services import audit
from bot.services.ballot_box import BallotBox, Notify, step
from bot.services.ballot_delivery import ballot_key
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, AlreadyDecided, InvalidInput, NotAllowed, NotFound
from bot.services.minutes import MINUTES, BallotResult, passes, percent
from bot.services.moderation import (
    ItemType,
    ModerationService,
    admin_chats,
    check_discipline,
    subject_name,
)
from bot.services.outbox import Kind, button, enqueue
from storage.db import Database, affected
from storage.models import (
    Ballot,
    BallotVoter,
    Decision,
    Member,
    Movement,
    Nomination,
    Role,
    SubmissionStatus,
    Title,
    Unit,
    VoteChoice,
)

REMIND_BEFORE = timedelta(hours=24)
ACHIEVEMENTS_IN_BALLOT = 1500

CHOICE_CODES: dict[str, VoteChoice] = {
    "a": VoteChoice.AGREE,
    "d": VoteChoice.DISAGREE,
    "b": VoteChoice.ABSTAIN,
}
CHOICE_LABELS: dict[VoteChoice, str] = {
    VoteChoice.AGREE: N_("Agree"),
    VoteChoice.DISAGREE: N_("Disagree"),
    VoteChoice.ABSTAIN: N_("Blank vote"),
}
BALLOT_MESSAGE = N_(
    "<b>Secret ballot of the Emulation and Commendation Council</b>\n\n"
    "Nomination: {name}\nTitle: {title}\nMovement: {movement}\nUnit: {unit}\n\n"
    "Achievements: {achievements}\n\n"
    "Please vote by {deadline}. Your choice is secret. You confirm it before it is cast; a "
    "cast vote cannot be changed."
)
REMINDER_MESSAGE = N_(
    "Reminder: you have not voted yet on the nomination of {name} ({title}). The secret "
    "ballot closes at {deadline}."
)
VOTE_LOST_MESSAGE = N_(
    "Your vote on the nomination of {name} ({title}) could not be recorded because of a "
    "technical fault, and it was not counted. Please vote again by {deadline}."
)
VOTE_LOST_CLOSED = N_(
    "Your vote on the nomination of {name} ({title}) could not be recorded because of a "
    "technical fault, and it was not counted. The secret ballot has closed."
)
DETAILS_BUTTON = N_("Details and evidence")
VOTE_OPENED_NOTICE = N_(
    "Your nomination of {name} has been sent to the Emulation and Commendation Council for a "
    "secret ballot, open until {deadline}."
)
RESULT_NOTICE = {
    True: N_(
        "The Emulation and Commendation Council approved your nomination of {name} by secret "
        "ballot ({ratio} of the council agreed)."
    ),
    False: N_(
        "The Emulation and Commendation Council did not approve your nomination of {name}: "
        "{ratio} of the council agreed, {threshold} was needed."
    ),
}
COUNCIL_REASON = N_("Decided by the council's secret ballot")
NOT_ON_BALLOT = N_("You are not on the council for this ballot.")
CLOSED = N_("This secret ballot is closed; votes can no longer be cast.")


def remind_at(opened_at: datetime, deadline: datetime) -> datetime:
    """24 hours before the deadline, but never in the first half of a short vote."""
    return max(deadline - REMIND_BEFORE, opened_at + (deadline - opened_at) / 2)


async def _interested(
    session: AsyncSession, nominator: int, nominee: int | None, nominee_unit: int | None
) -> set[int]:
    """Members left out of the vote on a nomination: its nominator and nominee, and for a unit
    every member of it and of the units below it (or merged into it)."""
    left = {nominator} | ({nominee} if nominee is not None else set())
    if nominee_unit is None:
        return left
    rows = (await session.execute(select(Unit.id, Unit.parent_id, Unit.merged_into_id))).all()
    units, grew = {nominee_unit}, True
    while grew:
        below = {u for u, parent, merged in rows if parent in units or merged in units}
        grew = not below <= units
        units |= below
    members = await session.scalars(select(Member.id).where(Member.unit_id.in_(units)))
    return left | set(members)


def entitled() -> list[Any]:
    """A voter row's member may still vote: active and still on the council."""
    return [Member.active.is_(True), Member.role == Role.COUNCIL.value]


@dataclass(frozen=True, slots=True)
class BallotView:
    id: int
    nomination_id: int
    nominee_name: str
    title_name: str | None
    movement_name: str | None
    unit_name: str | None
    achievements: str | None
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    council_size: int
    threshold: float
    voted: int  # how many have voted; never what
    i_voted: bool | None  # None: the viewer is not on this ballot
    may_vote: bool  # the viewer can cast a vote now
    result: BallotResult | None


@dataclass(frozen=True, slots=True)
class CastResult:
    ballot_id: int
    nomination_id: int
    deadline: datetime
    closed: BallotResult | None  # the vote closed because everybody had voted


class VotingService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: ModerationSettings,
        moderation: ModerationService,
        *,
        default_language: str = "vi",
        tz: ZoneInfo | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.moderation = moderation
        self.default_language = default_language
        self.tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")
        self.box = BallotBox(db)

    # --- opening -------------------------------------------------------------------------------

    async def open_vote(
        self,
        viewer: Viewer,
        nomination_id: int,
        *,
        version: int | None = None,
        days: int | None = None,
    ) -> BallotView:
        if viewer.member_id is None or not viewer.is_council:
            raise NotAllowed(N_("Only council members and administrators can open a council vote."))
        days = days or self.settings.vote_default_days
        if not 1 <= days <= self.settings.vote_max_days:
            raise InvalidInput(
                N_("A vote lasts from 1 to {max} days."), max=self.settings.vote_max_days
            )
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(
                        Nomination.status,
                        Nomination.version,
                        Nomination.nominator_id,
                        Nomination.nominee_member_id,
                        Nomination.nominee_unit_id,
                        Nomination.title_id,
                    ).where(Nomination.id == nomination_id)
                )
            ).first()
            if row is None or row.status == SubmissionStatus.DRAFT.value:
                raise NotFound(N_("That submission no longer exists."))
            if viewer.member_id in (row.nominator_id, row.nominee_member_id):
                raise NotAllowed(
                    N_("You cannot review a submission you made or one about yourself.")
                )
            if row.status != SubmissionStatus.SUBMITTED.value or (
                version is not None and version != row.version
            ):
                raise await self.moderation.already(session, ItemType.NOMINATION, nomination_id)
            await check_discipline(session, nomination_id)
            council = list(
                await session.execute(
                    select(Member.id, Member.telegram_user_id, Member.language, Member.full_name)
                    .where(*entitled())
                    .order_by(Member.id)
                )
            )
            if not council:
                raise InvalidInput(
                    N_(
                        "There are no council members to vote. An administrator can give "
                        "members the council role."
                    )
                )
            excluded = await _interested(
                session, row.nominator_id, row.nominee_member_id, row.nominee_unit_id
            )
            voters = [m for m in council if m.id not in excluded]
            left_out = [m.full_name for m in council if m.id in excluded]
            if not voters:
                raise InvalidInput(
                    N_(
                        "Nobody on the council may vote on this nomination: every member is its "
                        "nominator, its nominee or a member of the nominated unit."
                    )
                )
            title_threshold = (
                await session.scalar(
                    select(Title.approval_threshold).where(Title.id == row.title_id)
                )
                if row.title_id
                else None
            )
            threshold = float(title_threshold or self.settings.approval_threshold)
            won = affected(
                await session.execute(
                    update(Nomination)
                    .where(
                        Nomination.id == nomination_id,
                        Nomination.status == SubmissionStatus.SUBMITTED.value,
                        Nomination.version == row.version,
                    )
                    .values(status=SubmissionStatus.IN_REVIEW.value, version=Nomination.version + 1)
                    .execution_options(synchronize_session=False)
                )
            )
            if won != 1:
                raise await self.moderation.already(session, ItemType.NOMINATION, nomination_id)
            deadline = now + timedelta(days=days)
            ballot = Ballot(
                nomination_id=nomination_id,
                opened_by=viewer.member_id,
                opened_at=now,
                deadline=deadline,
                council_size=len(voters),
                council_total=len(council),
                left_out=left_out,
                threshold=threshold,
            )
            session.add(ballot)
            await session.flush()
            session.add_all(
                BallotVoter(ballot_id=ballot.id, member_id=m.id, voted=False, pending=False)
                for m in voters
            )
            self.box.open(session, ballot.id)
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                actor_user_id=viewer.telegram_user_id,
                action="ballot.open",
                target_type=ItemType.NOMINATION.value,
                target_id=nomination_id,
                at=now,
                ballot=ballot.id,
                deadline=deadline.isoformat(),
                council_size=len(voters),
                council_total=len(council),
                left_out=len(left_out),
                threshold=threshold,
            )
            view = await self._view(session, ballot.id, viewer)
            for member in voters:
                if member.telegram_user_id:
                    self._send_ballot(
                        session, view, member.telegram_user_id, member.language, now, BALLOT_MESSAGE
                    )
            author = await session.get(Member, row.nominator_id)
            if author is not None and author.telegram_user_id and author.active:
                enqueue(
                    session,
                    chat_id=author.telegram_user_id,
                    message=VOTE_OPENED_NOTICE,
                    language=author.language,
                    now=now,
                    name=view.nominee_name,
                    deadline=deadline,
                )
        return view

    def _send_ballot(
        self,
        session: AsyncSession,
        view: BallotView,
        chat_id: int,
        language: str | None,
        now: datetime,
        message: str,
    ) -> None:
        achievements = view.achievements or "—"
        if len(achievements) > ACHIEVEMENTS_IN_BALLOT:
            achievements = achievements[: ACHIEVEMENTS_IN_BALLOT - 1] + "…"
        reminder = message == REMINDER_MESSAGE
        enqueue(
            session,
            chat_id=chat_id,
            message=message,
            language=language,
            now=now,
            # resent when in doubt, pointless after the deadline; the invitation and the reminder
            # are keyed for the delivery check (a "vote again" may be needed more than once)
            kind=Kind.BALLOT_REMINDER if reminder else Kind.BALLOT,
            expires_at=view.deadline,
            dedupe_key=(
                ballot_key(view.id, chat_id, reminder=reminder)
                if message in (BALLOT_MESSAGE, REMINDER_MESSAGE)
                else None
            ),
            buttons=ballot_buttons(view.id, view.nomination_id),
            name=view.nominee_name,
            title=view.title_name or "—",
            movement=view.movement_name or "—",
            unit=view.unit_name or "—",
            achievements=achievements,
            deadline=view.deadline,
        )

    # --- casting -------------------------------------------------------------------------------

    async def _check_voter(
        self, session: AsyncSession, viewer: Viewer, ballot_id: int, now: datetime
    ) -> Any:
        """The ballot's row if the viewer may cast a vote on it now; else the error why not."""
        row = (
            await session.execute(
                select(
                    Ballot.nomination_id,
                    Ballot.deadline,
                    Ballot.closed_at,
                    BallotVoter.voted,
                    Member.active,
                    Member.role,
                )
                .join(BallotVoter, BallotVoter.ballot_id == Ballot.id)
                .join(Member, Member.id == BallotVoter.member_id)
                .where(Ballot.id == ballot_id, BallotVoter.member_id == viewer.member_id)
            )
        ).first()
        if row is None:
            raise NotAllowed(NOT_ON_BALLOT)
        if row.closed_at is not None or row.deadline <= now:
            raise AlreadyDecided(CLOSED)
        if row.voted:
            raise AlreadyDecided(
                N_("You have already voted on this ballot; a cast vote cannot be changed.")
            )
        if not row.active or row.role != Role.COUNCIL.value:
            raise NotAllowed(
                N_("You are no longer a member of the council, so you cannot vote on this ballot.")
            )
        return row

    async def choose(self, viewer: Viewer, ballot_id: int) -> BallotView:
        """Before the confirmation screen: the ballot, if the viewer may vote on it. Nothing is
        written and the choice is not even asked for: it stays in the voter's chat until they
        confirm (`cast`)."""
        if viewer.member_id is None:
            raise NotAllowed(NOT_ON_BALLOT)
        async with self.db.read() as session:
            await self._check_voter(session, viewer, ballot_id, self.clock.now())
            return await self._view(session, ballot_id, viewer)

    async def cast(self, viewer: Viewer, ballot_id: int, choice: VoteChoice) -> CastResult:
        """Cast a confirmed vote: final. See bot/services/ballot_box.py for the protocol."""
        if viewer.member_id is None:
            raise NotAllowed(NOT_ON_BALLOT)
        member_id = viewer.member_id
        now = self.clock.now()
        async with self.box.locked(ballot_id) as conn:
            await self.box.recover(conn, ballot_id, self._lost(ballot_id, now, caster=member_id))
            async with step(conn) as session:  # T1
                row = await self._check_voter(session, viewer, ballot_id, now)
                await self.box.mark_pending(session, ballot_id, member_id)
            await self.box.count(conn, ballot_id, choice)  # T2
            await self.box.mark_voted(conn, ballot_id)  # T3
            async with step(conn) as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(BallotVoter)
                    .join(Member, Member.id == BallotVoter.member_id)
                    .where(
                        BallotVoter.ballot_id == ballot_id,
                        BallotVoter.voted.is_(False),
                        *entitled(),
                    )
                )
                closed = None if waiting else await self._close(session, ballot_id, now)
            await self.box.scrub()
        return CastResult(ballot_id, int(row.nomination_id), row.deadline, closed)

    def _lost(
        self, ballot_id: int, now: datetime, *, caster: int | None = None, closing: bool = False
    ) -> Notify:
        """Tell a member whose vote a crash left uncounted to vote again (the one voting
        right now needs no message)."""

        async def notify(session: AsyncSession, member_id: int) -> None:
            member = await session.get(Member, member_id)
            if member_id == caster or member is None or not member.telegram_user_id:
                return
            if not member.active:
                return
            view = await self._view(session, ballot_id, None)
            if closing or member.role != Role.COUNCIL.value:
                enqueue(
                    session,
                    chat_id=member.telegram_user_id,
                    message=VOTE_LOST_CLOSED,
                    language=member.language,
                    now=now,
                    name=view.nominee_name,
                    title=view.title_name or "—",
                )
                return
            self._send_ballot(
                session, view, member.telegram_user_id, member.language, now, VOTE_LOST_MESSAGE
            )

        return notify

    # --- closing -------------------------------------------------------------------------------

    async def close_due(self) -> list[BallotResult]:
        """Close every open ballot whose deadline has passed, and settle any voter a crash left
        pending on an open one (the job calls this)."""
        now = self.clock.now()
        async with self.db.read() as session:
            due = list(
                await session.scalars(
                    select(Ballot.id)
                    .where(Ballot.closed_at.is_(None), Ballot.deadline <= now)
                    .order_by(Ballot.deadline)
                )
            )
            stuck = list(
                await session.scalars(
                    select(BallotVoter.ballot_id)
                    .join(Ballot, Ballot.id == BallotVoter.ballot_id)
                    .where(
                        BallotVoter.pending.is_(True),
                        Ballot.closed_at.is_(None),
                        Ballot.deadline > now,
                    )
                )
            )
        for ballot_id in stuck:
            async with self.box.locked(ballot_id) as conn:
                await self.box.recover(conn, ballot_id, self._lost(ballot_id, now))
        results = []
        for ballot_id in due:
            async with self.box.locked(ballot_id) as conn:
                await self.box.recover(conn, ballot_id, self._lost(ballot_id, now, closing=True))
                async with step(conn) as session:
                    result = await self._close(session, ballot_id, now)
                if result is not None:
                    await self.box.scrub()
                    results.append(result)
        return results

    async def _close(
        self, session: AsyncSession, ballot_id: int, now: datetime
    ) -> BallotResult | None:
        claimed = affected(
            await session.execute(
                update(Ballot)
                .where(Ballot.id == ballot_id, Ballot.closed_at.is_(None))
                .values(closed_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if not claimed:
            return None  # closed by someone else meanwhile
        counts = await self.box.take(session, ballot_id)
        ballot = await session.get(Ballot, ballot_id, populate_existing=True)
        assert ballot is not None
        nomination = await session.get(Nomination, ballot.nomination_id)
        assert nomination is not None
        name = await subject_name(
            session,
            nomination.nominee_name_at_time,
            nomination.nominee_member_id,
            nomination.nominee_unit_id,
        )
        title = (
            await session.scalar(select(Title.name).where(Title.id == nomination.title_id))
            if nomination.title_id
            else None
        )
        movement = (
            await session.scalar(select(Movement.name).where(Movement.id == nomination.movement_id))
            if nomination.movement_id
            else None
        )
        approved = passes(counts.agree, ballot.council_size, ballot.threshold)
        result = BallotResult(
            ballot_id=ballot_id,
            nomination_id=ballot.nomination_id,
            nominee_name=name,
            title_name=title,
            movement_name=movement,
            opened_at=ballot.opened_at,
            closed_at=now,
            council_total=ballot.council_total,
            left_out=tuple(ballot.left_out or ()),
            council_size=ballot.council_size,
            agree=counts.agree,
            disagree=counts.disagree,
            abstain=counts.abstain,
            threshold=ballot.threshold,
            approved=approved,
            minutes=None,
        )
        outcome = SubmissionStatus.APPROVED if approved else SubmissionStatus.REJECTED
        decided = affected(
            await session.execute(
                update(Nomination)
                .where(
                    Nomination.id == ballot.nomination_id,
                    Nomination.status == SubmissionStatus.IN_REVIEW.value,
                )
                .values(
                    status=outcome.value,
                    version=Nomination.version + 1,
                    decided_at=now,
                    review_note=COUNCIL_REASON,
                )
                .execution_options(synchronize_session=False)
            )
        )
        minutes = self.moderation.localize(
            self.default_language,
            MINUTES[approved],
            result.params(self.default_language, self.tz),
        )
        await session.execute(
            update(Ballot)
            .where(Ballot.id == ballot_id)
            .values(
                agree=counts.agree,
                disagree=counts.disagree,
                abstain=counts.abstain,
                approved=approved,
                minutes=minutes,
            )
            .execution_options(synchronize_session=False)
        )
        if decided:
            session.add(
                Decision(
                    nomination_id=ballot.nomination_id,
                    decided_by=None,
                    outcome=outcome.value,
                    reason=COUNCIL_REASON,
                    at=now,
                )
            )
        audit.record(
            session,
            actor_member_id=None,
            action="ballot.close",
            target_type=ItemType.NOMINATION.value,
            target_id=ballot.nomination_id,
            at=now,
            ballot=ballot_id,
            council_size=ballot.council_size,
            agree=counts.agree,
            disagree=counts.disagree,
            abstain=counts.abstain,
            not_voted=result.not_voted,
            threshold=ballot.threshold,
            approved=approved,
            applied=bool(decided),
        )
        for chat_id, language in await admin_chats(session):
            enqueue(
                session,
                chat_id=chat_id,
                message=MINUTES[approved],
                language=language,
                now=now,
                dedupe_key=f"minutes:{ballot_id}:{chat_id}",
                **result.params(language, self.tz),
            )
        if decided:
            author = await session.get(Member, nomination.nominator_id)
            if author is not None and author.telegram_user_id and author.active:
                enqueue(
                    session,
                    chat_id=author.telegram_user_id,
                    message=RESULT_NOTICE[approved],
                    language=author.language,
                    now=now,
                    name=name,
                    ratio=result.ratio_text(author.language),
                    threshold=percent(ballot.threshold, author.language),
                )
            if approved:
                await self.moderation.tell_nominee(
                    session, ballot.nomination_id, nomination.nominator_id, now
                )
        return replace(result, minutes=minutes)

    # --- reminders -----------------------------------------------------------------------------

    async def scrub_if_needed(self) -> bool:
        """The voting job's turn: scrub again what an older reader kept alive (and once after
        a start). True when the ballot tables hold nothing older than their current rows."""
        return True if not self.box.dirty else await self.box.scrub()

    async def send_reminders(self) -> int:
        """Once per ballot, shortly before its deadline, remind those who have not voted and
        still may."""
        now = self.clock.now()
        async with self.db.read() as session:
            candidates = list(
                await session.execute(
                    select(Ballot.id, Ballot.opened_at, Ballot.deadline).where(
                        Ballot.closed_at.is_(None),
                        Ballot.reminded_at.is_(None),
                        Ballot.deadline > now,
                    )
                )
            )
        reminded = 0
        for ballot_id, opened_at, deadline in candidates:
            if now < remind_at(opened_at, deadline):
                continue
            async with self.db.transaction() as session:
                won = affected(
                    await session.execute(
                        update(Ballot)
                        .where(
                            Ballot.id == ballot_id,
                            Ballot.reminded_at.is_(None),
                            Ballot.closed_at.is_(None),
                        )
                        .values(reminded_at=now)
                        .execution_options(synchronize_session=False)
                    )
                )
                if not won:
                    continue
                view = await self._view(session, ballot_id, None)
                waiting = await session.execute(
                    select(Member.telegram_user_id, Member.language)
                    .join(BallotVoter, BallotVoter.member_id == Member.id)
                    .where(
                        BallotVoter.ballot_id == ballot_id,
                        BallotVoter.voted.is_(False),
                        Member.telegram_user_id.is_not(None),
                        *entitled(),
                    )
                    .order_by(Member.id)
                )
                for chat_id, language in waiting:
                    self._send_ballot(
                        session, view, int(chat_id or 0), language, now, REMINDER_MESSAGE
                    )
                    reminded += 1
        return reminded

    # --- reading -------------------------------------------------------------------------------

    async def _view(
        self, session: AsyncSession, ballot_id: int, viewer: Viewer | None
    ) -> BallotView:
        ballot = await session.get(Ballot, ballot_id, populate_existing=True)
        if ballot is None:
            raise NotFound(N_("That ballot no longer exists."))
        row = (
            await session.execute(
                select(Nomination, Title.name, Movement.name)
                .outerjoin(Title, Title.id == Nomination.title_id)
                .outerjoin(Movement, Movement.id == Nomination.movement_id)
                .where(Nomination.id == ballot.nomination_id)
            )
        ).one()
        nomination, title, movement = row
        name = await subject_name(
            session,
            nomination.nominee_name_at_time,
            nomination.nominee_member_id,
            nomination.nominee_unit_id,
        )
        unit = nomination.unit_name_at_time
        if unit is None and nomination.unit_id is not None:
            unit = await session.scalar(select(Unit.name).where(Unit.id == nomination.unit_id))
        voted = await self.box.turnout(session, ballot_id)
        i_voted: bool | None = None
        may_vote = False
        if viewer is not None and viewer.member_id is not None:
            mine = (
                await session.execute(
                    select(BallotVoter.voted, Member.active, Member.role)
                    .join(Member, Member.id == BallotVoter.member_id)
                    .where(
                        BallotVoter.ballot_id == ballot_id,
                        BallotVoter.member_id == viewer.member_id,
                    )
                )
            ).first()
            i_voted = None if mine is None else bool(mine.voted)
            may_vote = (
                mine is not None
                and not mine.voted
                and bool(mine.active)
                and mine.role == Role.COUNCIL.value
                and ballot.closed_at is None
                and ballot.deadline > self.clock.now()
            )
        result = None
        if ballot.closed_at is not None and ballot.agree is not None:
            result = BallotResult(
                ballot_id=ballot.id,
                nomination_id=ballot.nomination_id,
                nominee_name=name,
                title_name=title,
                movement_name=movement,
                opened_at=ballot.opened_at,
                closed_at=ballot.closed_at,
                council_total=ballot.council_total,
                left_out=tuple(ballot.left_out or ()),
                council_size=ballot.council_size,
                agree=ballot.agree or 0,
                disagree=ballot.disagree or 0,
                abstain=ballot.abstain or 0,
                threshold=ballot.threshold,
                approved=bool(ballot.approved),
                minutes=ballot.minutes,
            )
        return BallotView(
            id=ballot.id,
            nomination_id=ballot.nomination_id,
            nominee_name=name,
            title_name=title,
            movement_name=movement,
            unit_name=unit,
            achievements=nomination.achievements,
            opened_at=ballot.opened_at,
            deadline=ballot.deadline,
            closed_at=ballot.closed_at,
            council_size=ballot.council_size,
            threshold=ballot.threshold,
            voted=voted,
            i_voted=i_voted,
            may_vote=may_vote,
            result=result,
        )

    async def ballot(self, viewer: Viewer, ballot_id: int) -> BallotView:
        """A ballot for one of its voters, a council member or an administrator. While it is
        open the view carries no tally, only how many have voted."""
        if viewer.member_id is None:
            raise NotAllowed(NOT_ON_BALLOT)
        async with self.db.read() as session:
            view = await self._view(session, ballot_id, viewer)
        if view.i_voted is None and not viewer.is_council:
            raise NotAllowed(NOT_ON_BALLOT)
        return view

    async def ballots(self, viewer: Viewer, *, closed_limit: int = 5) -> list[BallotView]:
        """Open ballots the viewer votes on (and, for the council and administrators, every open
        ballot and the latest closed ones), newest first."""
        if viewer.member_id is None:
            raise NotAllowed(N_("You are not a member yet."))
        async with self.db.read() as session:
            if viewer.is_council:
                open_ids = list(
                    await session.scalars(
                        select(Ballot.id)
                        .where(Ballot.closed_at.is_(None))
                        .order_by(Ballot.deadline)
                    )
                )
                closed_ids = list(
                    await session.scalars(
                        select(Ballot.id)
                        .where(Ballot.closed_at.is_not(None))
                        .order_by(Ballot.closed_at.desc(), Ballot.id.desc())
                        .limit(closed_limit)
                    )
                )
            else:
                open_ids = list(
                    await session.scalars(
                        select(Ballot.id)
                        .join(BallotVoter, BallotVoter.ballot_id == Ballot.id)
                        .where(
                            Ballot.closed_at.is_(None),
                            BallotVoter.member_id == viewer.member_id,
                        )
                        .order_by(Ballot.deadline)
                    )
                )
                closed_ids = []
            return [await self._view(session, i, viewer) for i in [*open_ids, *closed_ids]]

    async def result(self, viewer: Viewer, ballot_id: int) -> BallotResult:
        """The result and minutes of a closed ballot (council members and administrators)."""
        if viewer.member_id is None or not viewer.is_council:
            raise NotAllowed(N_("Only council members and administrators can see the minutes."))
        async with self.db.read() as session:
            view = await self._view(session, ballot_id, viewer)
        if view.result is None:
            raise InvalidInput(
                N_("The secret ballot is still open; results are shown after it closes.")
            )
        return view.result


def ballot_buttons(ballot_id: int, nomination_id: int) -> list[list[dict[str, str]]]:
    return [
        [
            button(CHOICE_LABELS[VoteChoice.AGREE], data=f"vt:c:{ballot_id}:a"),
            button(CHOICE_LABELS[VoteChoice.DISAGREE], data=f"vt:c:{ballot_id}:d"),
        ],
        [button(CHOICE_LABELS[VoteChoice.ABSTAIN], data=f"vt:c:{ballot_id}:b")],
        [button(DETAILS_BUTTON, data=f"rv:o:n:{nomination_id}")],
    ]


def choice_of(code: str) -> VoteChoice:
    try:
        return CHOICE_CODES[code]
    except KeyError:
        raise InvalidInput(N_("Unknown choice.")) from None


__all__: Sequence[str] = (
    "BallotResult",
    "BallotView",
    "CastResult",
    "VotingService",
    "ballot_buttons",
    "choice_of",
    "passes",
    "percent",
    "remind_at",
)
