"""The council's secret ballot (bỏ phiếu kín) on a nomination.

Who votes: the active members whose role is `council` when the vote opens; administrators
moderate but are not members of the council and do not vote. The council's size is fixed at
opening and the result is `agree / council_size >= threshold` (the ratio is counted on the
council's whole membership: a blank vote or no vote counts against).

Secrecy: BallotVoter records only whether a member voted; the choice is stored under a seal,
HMAC(ballot.seal_key, member id), so a member can change their vote while it is open. At closing
the key is erased and the sealed choices are deleted once counted, so nobody (administrators
included, with the database in hand) can tell afterwards who voted what. While a ballot is open
no tally is shown to anyone; only how many have voted.

Concurrency: casting and closing both begin by updating the ballot's row (`closed_at IS NULL`),
which serialises them; a vote that arrives after the close finds the ballot closed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ModerationSettings
from bot.services import audit
from bot.services.ballot_delivery import ballot_key
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, AlreadyDecided, InvalidInput, NotAllowed, NotFound
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
    BallotChoice,
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
EPSILON = 1e-9

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
    "Please vote by {deadline}. Your choice is secret and you can change it until then."
)
REMINDER_MESSAGE = N_(
    "Reminder: you have not voted yet on the nomination of {name} ({title}). The secret "
    "ballot closes at {deadline}."
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
MINUTES = {
    True: N_(
        "MINUTES OF THE SECRET BALLOT\nEmulation and Commendation Council\n\n"
        "Nomination #{nomination}: {name}\nTitle: {title}\nMovement: {movement}\n"
        "Voting opened at {opened} and closed at {closed}.\n"
        "Council members: {size}\nAgree: {agree}\nDisagree: {disagree}\nBlank votes: {abstain}\n"
        "Did not vote: {not_voted}\n"
        "Approval ratio (agree / whole council): {ratio}\nThreshold: {threshold}\n"
        "Result: APPROVED."
    ),
    False: N_(
        "MINUTES OF THE SECRET BALLOT\nEmulation and Commendation Council\n\n"
        "Nomination #{nomination}: {name}\nTitle: {title}\nMovement: {movement}\n"
        "Voting opened at {opened} and closed at {closed}.\n"
        "Council members: {size}\nAgree: {agree}\nDisagree: {disagree}\nBlank votes: {abstain}\n"
        "Did not vote: {not_voted}\n"
        "Approval ratio (agree / whole council): {ratio}\nThreshold: {threshold}\n"
        "Result: NOT APPROVED."
    ),
}
COUNCIL_REASON = N_("Decided by the council's secret ballot")


def percent(value: float) -> str:
    """0.5 -> "50%", 2/3 -> "66.7%"."""
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def passes(agree: int, council_size: int, threshold: float) -> bool:
    return council_size > 0 and agree / council_size >= threshold - EPSILON


def seal(seal_key: str, member_id: int) -> str:
    return hmac.new(seal_key.encode(), str(member_id).encode(), hashlib.sha256).hexdigest()


def remind_at(opened_at: datetime, deadline: datetime) -> datetime:
    """24 hours before the deadline, but never in the first half of a short vote."""
    return max(deadline - REMIND_BEFORE, opened_at + (deadline - opened_at) / 2)


@dataclass(frozen=True, slots=True)
class BallotResult:
    ballot_id: int
    nomination_id: int
    nominee_name: str
    title_name: str | None
    opened_at: datetime
    closed_at: datetime
    council_size: int
    agree: int
    disagree: int
    abstain: int
    threshold: float
    approved: bool
    minutes: str | None

    @property
    def not_voted(self) -> int:
        return max(0, self.council_size - self.agree - self.disagree - self.abstain)

    @property
    def ratio(self) -> float:
        return self.agree / self.council_size if self.council_size else 0.0


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
    result: BallotResult | None


@dataclass(frozen=True, slots=True)
class CastResult:
    ballot_id: int
    nomination_id: int
    choice: VoteChoice
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
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.moderation = moderation
        self.default_language = default_language

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
                    select(Member.id, Member.telegram_user_id, Member.language)
                    .where(Member.role == Role.COUNCIL.value, Member.active.is_(True))
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
                council_size=len(council),
                threshold=threshold,
                seal_key=secrets.token_hex(32),
            )
            session.add(ballot)
            await session.flush()
            session.add_all(
                BallotVoter(ballot_id=ballot.id, member_id=m.id, voted=False) for m in council
            )
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
                council_size=len(council),
                threshold=threshold,
            )
            view = await self._view(session, ballot.id, viewer)
            for member in council:
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
            # resent when in doubt, pointless after the deadline; keyed for the delivery check
            kind=Kind.BALLOT_REMINDER if reminder else Kind.BALLOT,
            expires_at=view.deadline,
            dedupe_key=ballot_key(view.id, chat_id, reminder=reminder),
            buttons=ballot_buttons(view.id, view.nomination_id),
            name=view.nominee_name,
            title=view.title_name or "—",
            movement=view.movement_name or "—",
            unit=view.unit_name or "—",
            achievements=achievements,
            deadline=view.deadline,
        )

    # --- casting -------------------------------------------------------------------------------

    async def cast(self, viewer: Viewer, ballot_id: int, choice: VoteChoice) -> CastResult:
        if viewer.member_id is None:
            raise NotAllowed(N_("You are not on the council for this ballot."))
        now = self.clock.now()
        async with self.db.transaction() as session:
            on_ballot = await session.scalar(
                select(func.count())
                .select_from(BallotVoter)
                .where(
                    BallotVoter.ballot_id == ballot_id, BallotVoter.member_id == viewer.member_id
                )
            )
            if not on_ballot:
                raise NotAllowed(N_("You are not on the council for this ballot."))
            # lock the ballot's row: serialises votes with each other and with the closing
            row = (
                await session.execute(
                    update(Ballot)
                    .where(
                        Ballot.id == ballot_id,
                        Ballot.closed_at.is_(None),
                        Ballot.deadline > now,
                    )
                    .values(council_size=Ballot.council_size)
                    .returning(Ballot.seal_key, Ballot.deadline, Ballot.nomination_id)
                    .execution_options(synchronize_session=False)
                )
            ).first()
            if row is None or not row.seal_key:
                raise AlreadyDecided(
                    N_("This secret ballot is closed; votes can no longer change.")
                )
            sealed = seal(row.seal_key, viewer.member_id)
            changed = affected(
                await session.execute(
                    update(BallotChoice)
                    .where(BallotChoice.ballot_id == ballot_id, BallotChoice.seal == sealed)
                    .values(choice=choice.value)
                    .execution_options(synchronize_session=False)
                )
            )
            if not changed:
                session.add(BallotChoice(ballot_id=ballot_id, seal=sealed, choice=choice.value))
            await session.execute(
                update(BallotVoter)
                .where(
                    BallotVoter.ballot_id == ballot_id, BallotVoter.member_id == viewer.member_id
                )
                .values(voted=True)
                .execution_options(synchronize_session=False)
            )
            await session.flush()
            waiting = await session.scalar(
                select(func.count())
                .select_from(BallotVoter)
                .where(BallotVoter.ballot_id == ballot_id, BallotVoter.voted.is_(False))
            )
            closed = None
            if not waiting:
                closed = await self._close(session, ballot_id, now)
        return CastResult(ballot_id, int(row.nomination_id), choice, row.deadline, closed)

    # --- closing -------------------------------------------------------------------------------

    async def close_due(self) -> list[BallotResult]:
        """Close every open ballot whose deadline has passed (the job calls this)."""
        now = self.clock.now()
        async with self.db.read() as session:
            due = list(
                await session.scalars(
                    select(Ballot.id)
                    .where(Ballot.closed_at.is_(None), Ballot.deadline <= now)
                    .order_by(Ballot.deadline)
                )
            )
        results = []
        for ballot_id in due:
            async with self.db.transaction() as session:
                result = await self._close(session, ballot_id, now)
            if result is not None:
                results.append(result)
        return results

    async def _close(
        self, session: AsyncSession, ballot_id: int, now: datetime
    ) -> BallotResult | None:
        claimed = affected(
            await session.execute(
                update(Ballot)
                .where(Ballot.id == ballot_id, Ballot.closed_at.is_(None))
                .values(closed_at=now, seal_key=None)
                .execution_options(synchronize_session=False)
            )
        )
        if not claimed:
            return None  # closed by someone else meanwhile
        ballot = (
            await session.execute(
                select(
                    Ballot.nomination_id,
                    Ballot.opened_at,
                    Ballot.council_size,
                    Ballot.threshold,
                ).where(Ballot.id == ballot_id)
            )
        ).one()
        counts = dict(
            (str(choice), int(n))
            for choice, n in await session.execute(
                select(BallotChoice.choice, func.count())
                .where(BallotChoice.ballot_id == ballot_id)
                .group_by(BallotChoice.choice)
            )
        )
        agree = counts.get(VoteChoice.AGREE.value, 0)
        disagree = counts.get(VoteChoice.DISAGREE.value, 0)
        abstain = counts.get(VoteChoice.ABSTAIN.value, 0)
        # counted: the sealed choices go, so no key kept anywhere could ever open them
        await session.execute(delete(BallotChoice).where(BallotChoice.ballot_id == ballot_id))
        approved = passes(agree, ballot.council_size, ballot.threshold)
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
        size = ballot.council_size
        ratio = agree / size if size else 0.0
        params: dict[str, Any] = {
            "nomination": ballot.nomination_id,
            "name": name,
            "title": title or "—",
            "movement": movement or "—",
            "opened": ballot.opened_at,
            "closed": now,
            "size": size,
            "agree": agree,
            "disagree": disagree,
            "abstain": abstain,
            "not_voted": max(0, size - agree - disagree - abstain),
            "ratio": f"{agree}/{size} ({percent(ratio)})",
            "threshold": percent(ballot.threshold),
        }
        minutes = self.moderation.localize(self.default_language, MINUTES[approved], params)
        await session.execute(
            update(Ballot)
            .where(Ballot.id == ballot_id)
            .values(
                agree=agree, disagree=disagree, abstain=abstain, approved=approved, minutes=minutes
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
            council_size=size,
            agree=agree,
            disagree=disagree,
            abstain=abstain,
            not_voted=params["not_voted"],
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
                **params,
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
                    ratio=params["ratio"],
                    threshold=params["threshold"],
                )
            if approved:
                await self.moderation.tell_nominee(
                    session, ballot.nomination_id, nomination.nominator_id, now
                )
        return BallotResult(
            ballot_id=ballot_id,
            nomination_id=ballot.nomination_id,
            nominee_name=name,
            title_name=title,
            opened_at=ballot.opened_at,
            closed_at=now,
            council_size=size,
            agree=agree,
            disagree=disagree,
            abstain=abstain,
            threshold=ballot.threshold,
            approved=approved,
            minutes=minutes,
        )

    # --- reminders -----------------------------------------------------------------------------

    async def send_reminders(self) -> int:
        """Once per ballot, shortly before its deadline, remind those who have not voted."""
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
                        Member.active.is_(True),
                        Member.telegram_user_id.is_not(None),
                    )
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
        voted = int(
            await session.scalar(
                select(func.count())
                .select_from(BallotVoter)
                .where(BallotVoter.ballot_id == ballot_id, BallotVoter.voted.is_(True))
            )
            or 0
        )
        i_voted: bool | None = None
        if viewer is not None and viewer.member_id is not None:
            mine = await session.scalar(
                select(BallotVoter.voted).where(
                    BallotVoter.ballot_id == ballot_id, BallotVoter.member_id == viewer.member_id
                )
            )
            i_voted = None if mine is None else bool(mine)
        result = None
        if ballot.closed_at is not None and ballot.agree is not None:
            result = BallotResult(
                ballot_id=ballot.id,
                nomination_id=ballot.nomination_id,
                nominee_name=name,
                title_name=title,
                opened_at=ballot.opened_at,
                closed_at=ballot.closed_at,
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
            result=result,
        )

    async def ballot(self, viewer: Viewer, ballot_id: int) -> BallotView:
        """A ballot for one of its voters, a council member or an administrator. While it is
        open the view carries no tally, only how many have voted."""
        if viewer.member_id is None:
            raise NotAllowed(N_("You are not on the council for this ballot."))
        async with self.db.read() as session:
            view = await self._view(session, ballot_id, viewer)
        if view.i_voted is None and not viewer.is_council:
            raise NotAllowed(N_("You are not on the council for this ballot."))
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
    "seal",
)
