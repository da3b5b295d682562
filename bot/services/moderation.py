"""Moderation: the review queue of submitted nominations and good deeds and the decisions on them
(approve, reject, ask for changes).

Who moderates: council members and administrators review everything; a unit officer reviews the
good deeds of their own unit when `settings.moderation.unit_officers_review_good_deeds` is on.
Nobody reviews a submission they made or one about themselves.

A decision is one conditional UPDATE (`status = 'submitted' AND version = :seen`) in the
transaction that also writes the Decision row, the audit entry and the notices: when two
moderators press at once exactly one UPDATE matches; the other gets `AlreadyDecided` saying who
decided and when.

Canned rejection reasons are stored as their English message id (in Decision.reason and the
item's review_note): render them with `t.raw(reason)`, which leaves typed text unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ModerationSettings
from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, AlreadyDecided, InvalidInput, NotAllowed, NotFound
from bot.services.outbox import Kind, button, enqueue
from bot.services.text import clean_text
from storage.db import Database, affected
from storage.models import (
    Attachment,
    Ballot,
    Criterion,
    Decision,
    Field,
    GoodDeed,
    GroupChat,
    Member,
    ModerationCard,
    Movement,
    Nomination,
    NominationCriterion,
    OutboxMessage,
    Role,
    SubmissionStatus,
    Title,
    Unit,
)

QUEUE_PAGE = 8
REASON_LIMIT = 1000

# (language or None, message id, parameters) -> plain text in that language. The bot injects the
# gettext translator (bot/voting_jobs.install); services alone render the English source.
Localize = Callable[[str | None, str, Mapping[str, Any]], str]


def english(language: str | None, message: str, params: Mapping[str, Any]) -> str:
    plain = {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in params.items()}
    return message.format(**plain) if plain else message


class ItemType(StrEnum):
    NOMINATION = "nomination"
    GOOD_DEED = "good_deed"

    @property
    def code(self) -> str:
        return "n" if self is ItemType.NOMINATION else "g"

    @classmethod
    def from_code(cls, code: str) -> ItemType:
        if code == "n":
            return cls.NOMINATION
        if code == "g":
            return cls.GOOD_DEED
        raise InvalidInput(N_("Unknown kind of submission."))


class Outcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"


# code in the button -> message id (stored as the reason, translated where shown)
CANNED_REASONS: dict[str, str] = {
    "e": N_("Not enough evidence"),
    "c": N_("Does not meet the criteria"),
    "d": N_("The achievement was already commended"),
    "u": N_("The facts could not be verified"),
}

_AUTHOR_NOTICE = {
    (ItemType.NOMINATION, Outcome.APPROVED): N_(
        "Your nomination of {name} was approved. Thank you for proposing an exemplar!"
    ),
    (ItemType.NOMINATION, Outcome.REJECTED): N_(
        "Your nomination of {name} was not approved. Reason: {reason}"
    ),
    (ItemType.NOMINATION, Outcome.CHANGES_REQUESTED): N_(
        "Your nomination of {name} needs changes before it can be approved: {reason}\n"
        "Please edit it and submit it again."
    ),
    (ItemType.GOOD_DEED, Outcome.APPROVED): N_(
        "The good deed you reported about {name} was approved and is now in the good deeds feed."
    ),
    (ItemType.GOOD_DEED, Outcome.REJECTED): N_(
        "The good deed you reported about {name} was not approved. Reason: {reason}"
    ),
    (ItemType.GOOD_DEED, Outcome.CHANGES_REQUESTED): N_(
        "The good deed you reported about {name} needs changes: {reason}\n"
        "Please edit it and submit it again."
    ),
}
NOMINEE_NOTICE = N_(
    "Congratulations! You have been recognised as an advanced exemplar: {title} ({movement})."
)
NEW_ITEM_NOTICE = {
    ItemType.NOMINATION: N_(
        "New nomination #{id} is waiting for review ({nominations} nominations and {deeds} good "
        "deeds pending)."
    ),
    ItemType.GOOD_DEED: N_(
        "New good deed #{id} is waiting for review ({nominations} nominations and {deeds} good "
        "deeds pending)."
    ),
}
OPEN_BUTTON = N_("Open for review")


def _model(item_type: ItemType) -> type[Nomination] | type[GoodDeed]:
    return Nomination if item_type is ItemType.NOMINATION else GoodDeed


async def _get(
    session: AsyncSession, item_type: ItemType, item_id: int
) -> Nomination | GoodDeed | None:
    if item_type is ItemType.NOMINATION:
        return await session.get(Nomination, item_id)
    return await session.get(GoodDeed, item_id)


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachmentView:
    kind: str  # photo | document
    file_id: str
    caption: str | None
    file_name: str | None


@dataclass(frozen=True, slots=True)
class CriterionEvidence:
    text: str
    evidence: str | None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A submission as a moderator sees it."""

    type: ItemType
    id: int
    version: int
    status: SubmissionStatus
    author_id: int
    author_name: str
    subject_name: str
    subject_kind: str
    unit_name: str | None
    submitted_at: datetime | None
    attachments: tuple[AttachmentView, ...] = ()
    # nominations
    movement_name: str | None = None
    field_name: str | None = None
    title_name: str | None = None
    achievements: str | None = None
    good_practices: str | None = None
    criteria: tuple[CriterionEvidence, ...] = ()
    # good deeds
    description: str | None = None
    occurred_on: date | None = None
    place: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    type: ItemType
    id: int
    version: int
    subject_name: str
    unit_name: str | None
    submitted_at: datetime | None


@dataclass(frozen=True, slots=True)
class Queue:
    nominations: int
    good_deeds: int
    entries: Sequence[QueueEntry]
    page: int
    pages: int

    @property
    def total(self) -> int:
        return self.nominations + self.good_deeds


@dataclass(frozen=True, slots=True)
class ItemState:
    """Where a submission stands, for updating the cards sent about it."""

    type: ItemType
    id: int
    subject_name: str
    status: SubmissionStatus
    outcome: str | None = None  # of the latest decision
    decided_by: str | None = None  # None with an outcome: the council's ballot
    decided_at: datetime | None = None
    reason: str | None = None
    ballot_deadline: datetime | None = None  # an open council vote
    ballot_agree: int | None = None  # a closed one
    ballot_size: int | None = None
    ballot_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class DecisionResult:
    state: ItemState
    author_user_id: int | None


@dataclass(frozen=True, slots=True)
class CardRef:
    chat_id: int
    message_id: int
    language: str
    group: bool  # the admin chat's notice (no content), not a moderator's card


# --- rules shared with the voting service --------------------------------------------------------


def may_review(
    settings: ModerationSettings, viewer: Viewer, item_type: ItemType, unit_id: int | None
) -> bool:
    if viewer.member_id is None:
        return False
    if viewer.is_council:
        return True
    return (
        item_type is ItemType.GOOD_DEED
        and settings.unit_officers_review_good_deeds
        and viewer.is_unit_officer
        and viewer.unit_id is not None
        and viewer.unit_id == unit_id
    )


def is_moderator(settings: ModerationSettings, viewer: Viewer) -> bool:
    if viewer.member_id is None:
        return False
    return viewer.is_council or (
        settings.unit_officers_review_good_deeds
        and viewer.is_unit_officer
        and viewer.unit_id is not None
    )


def require_moderator(settings: ModerationSettings, viewer: Viewer) -> None:
    if not is_moderator(settings, viewer):
        raise NotAllowed(N_("Only the council, administrators and unit officers can review."))


def _own(viewer: Viewer, author_id: int, subject_member_id: int | None) -> bool:
    return viewer.member_id in (author_id, subject_member_id)


async def subject_name(
    session: AsyncSession,
    at_time: str | None,
    member_id: int | None,
    unit_id: int | None,
) -> str:
    if at_time:
        return at_time
    if member_id is not None:
        name = await session.scalar(select(Member.full_name).where(Member.id == member_id))
        if name:
            return str(name)
    if unit_id is not None:
        name = await session.scalar(select(Unit.name).where(Unit.id == unit_id))
        if name:
            return str(name)
    return "—"


async def check_discipline(session: AsyncSession, nomination_id: int) -> None:
    """No commendation while the nominee is under discipline or investigation."""
    row = (
        await session.execute(
            select(Member.full_name)
            .join(Nomination, Nomination.nominee_member_id == Member.id)
            .where(Nomination.id == nomination_id, Member.under_discipline.is_(True))
        )
    ).first()
    if row is not None:
        raise InvalidInput(
            N_(
                "{name} is under discipline or investigation: no commendation can be approved "
                "for now."
            ),
            name=row[0],
        )


async def admin_chats(session: AsyncSession) -> list[tuple[int, str]]:
    """(Telegram id, language) of every active, linked administrator."""
    rows = await session.execute(
        select(Member.telegram_user_id, Member.language).where(
            Member.role == Role.ADMIN.value,
            Member.active.is_(True),
            Member.telegram_user_id.is_not(None),
        )
    )
    return [(int(uid), lang) for uid, lang in rows if uid is not None]


class ModerationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: ModerationSettings,
        *,
        default_language: str = "vi",
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.default_language = default_language
        self.localize: Localize = english

    # --- the queue -----------------------------------------------------------------------------

    def _queue_conditions(self, viewer: Viewer) -> tuple[list[Any], list[Any], bool]:
        """WHERE clauses for nominations and good deeds the viewer may review; False if the
        viewer reviews no nominations."""
        me = viewer.member_id
        nominations: list[Any] = [
            Nomination.status == SubmissionStatus.SUBMITTED.value,
            Nomination.nominator_id != me,
            (Nomination.nominee_member_id.is_(None)) | (Nomination.nominee_member_id != me),
        ]
        deeds: list[Any] = [
            GoodDeed.status == SubmissionStatus.SUBMITTED.value,
            GoodDeed.reporter_id != me,
            (GoodDeed.subject_member_id.is_(None)) | (GoodDeed.subject_member_id != me),
        ]
        if viewer.is_council:
            return nominations, deeds, True
        deeds.append(GoodDeed.unit_id == viewer.unit_id)
        return nominations, deeds, False

    async def queue(self, viewer: Viewer, *, kind: ItemType | None = None, page: int = 0) -> Queue:
        """Submitted items the viewer may review, oldest first, with the counts of each kind."""
        require_moderator(self.settings, viewer)
        n_where, g_where, sees_nominations = self._queue_conditions(viewer)
        async with self.db.read() as session:
            n_count = (
                int(
                    await session.scalar(
                        select(func.count()).select_from(Nomination).where(*n_where)
                    )
                    or 0
                )
                if sees_nominations
                else 0
            )
            g_count = int(
                await session.scalar(select(func.count()).select_from(GoodDeed).where(*g_where))
                or 0
            )
            parts = []
            if sees_nominations and kind in (None, ItemType.NOMINATION):
                parts.append(
                    select(
                        literal(ItemType.NOMINATION.value).label("kind"),
                        Nomination.id.label("id"),
                        Nomination.version.label("version"),
                        Nomination.nominee_name_at_time.label("name"),
                        Nomination.unit_name_at_time.label("unit"),
                        Nomination.submitted_at.label("at"),
                    ).where(*n_where)
                )
            if kind in (None, ItemType.GOOD_DEED):
                parts.append(
                    select(
                        literal(ItemType.GOOD_DEED.value).label("kind"),
                        GoodDeed.id.label("id"),
                        GoodDeed.version.label("version"),
                        GoodDeed.subject_name_at_time.label("name"),
                        GoodDeed.unit_name_at_time.label("unit"),
                        GoodDeed.submitted_at.label("at"),
                    ).where(*g_where)
                )
            total = (n_count if kind in (None, ItemType.NOMINATION) else 0) + (
                g_count if kind in (None, ItemType.GOOD_DEED) else 0
            )
            pages = max(1, -(-total // QUEUE_PAGE))
            page = min(max(page, 0), pages - 1)
            entries: list[QueueEntry] = []
            if parts:
                combined = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
                rows = await session.execute(
                    select(combined)
                    .order_by(combined.c.at, combined.c.kind, combined.c.id)
                    .offset(page * QUEUE_PAGE)
                    .limit(QUEUE_PAGE)
                )
                for row in rows:
                    at = row.at
                    if at is not None and at.tzinfo is None:  # a union loses the column type
                        from datetime import UTC

                        at = at.replace(tzinfo=UTC)
                    elif isinstance(at, str):
                        at = datetime.fromisoformat(at)
                    entries.append(
                        QueueEntry(
                            ItemType(row.kind),
                            int(row.id),
                            int(row.version),
                            row.name or f"#{row.id}",
                            row.unit,
                            at,
                        )
                    )
        return Queue(n_count, g_count, entries, page, pages)

    async def next_after(
        self, viewer: Viewer, item_type: ItemType, item_id: int
    ) -> QueueEntry | None:
        """The oldest item still waiting other than this one (the "next" button)."""
        queue = await self.queue(viewer)
        for entry in queue.entries:
            if (entry.type, entry.id) != (item_type, item_id):
                return entry
        return None

    # --- one item ------------------------------------------------------------------------------

    async def item(self, viewer: Viewer, item_type: ItemType, item_id: int) -> ReviewItem:
        """A submission (submitted or under a council vote) for a moderator who may review it."""
        require_moderator(self.settings, viewer)
        async with self.db.read() as session:
            return await self._load(session, viewer, item_type, item_id)

    async def _load(
        self, session: AsyncSession, viewer: Viewer, item_type: ItemType, item_id: int
    ) -> ReviewItem:
        found = await _get(session, item_type, item_id)
        if found is None or found.status == SubmissionStatus.DRAFT.value:
            raise NotFound(N_("That submission no longer exists."))
        if not may_review(self.settings, viewer, item_type, found.unit_id):
            raise NotAllowed(N_("You cannot review this submission."))
        attachments = tuple(
            AttachmentView(a.kind, a.file_id, a.caption, a.file_name)
            for a in await session.scalars(
                select(Attachment)
                .where(
                    (Attachment.nomination_id == item_id)
                    if item_type is ItemType.NOMINATION
                    else (Attachment.good_deed_id == item_id)
                )
                .order_by(Attachment.id)
            )
        )
        if isinstance(found, Nomination):
            author = await session.get(Member, found.nominator_id)
            name = await subject_name(
                session,
                found.nominee_name_at_time,
                found.nominee_member_id,
                found.nominee_unit_id,
            )
            criteria = tuple(
                CriterionEvidence(text, evidence)
                for text, evidence in await session.execute(
                    select(Criterion.text, NominationCriterion.evidence)
                    .join(Criterion, Criterion.id == NominationCriterion.criterion_id)
                    .where(NominationCriterion.nomination_id == item_id)
                    .order_by(Criterion.sort_order, Criterion.id)
                )
            )
            movement = (
                await session.scalar(select(Movement.name).where(Movement.id == found.movement_id))
                if found.movement_id
                else None
            )
            field = (
                await session.scalar(select(Field.name).where(Field.id == found.field_id))
                if found.field_id
                else None
            )
            title = (
                await session.scalar(select(Title.name).where(Title.id == found.title_id))
                if found.title_id
                else None
            )
            return ReviewItem(
                type=item_type,
                id=found.id,
                version=found.version,
                status=SubmissionStatus(found.status),
                author_id=found.nominator_id,
                author_name=author.full_name if author else "—",
                subject_name=name,
                subject_kind=found.nominee_kind,
                unit_name=found.unit_name_at_time,
                submitted_at=found.submitted_at,
                attachments=attachments,
                movement_name=movement,
                field_name=field,
                title_name=title,
                achievements=found.achievements,
                good_practices=found.good_practices,
                criteria=criteria,
            )
        assert isinstance(found, GoodDeed)
        author = await session.get(Member, found.reporter_id)
        name = await subject_name(
            session, found.subject_name_at_time, found.subject_member_id, found.subject_unit_id
        )
        return ReviewItem(
            type=item_type,
            id=found.id,
            version=found.version,
            status=SubmissionStatus(found.status),
            author_id=found.reporter_id,
            author_name=author.full_name if author else "—",
            subject_name=name,
            subject_kind=found.subject_kind,
            unit_name=found.unit_name_at_time,
            submitted_at=found.submitted_at,
            attachments=attachments,
            description=found.description,
            occurred_on=found.occurred_on,
            place=found.place,
        )

    async def state(self, item_type: ItemType, item_id: int) -> ItemState:
        """Where an item stands now (no permission check: used to update cards already sent to
        moderators, whose text only names the subject and the outcome)."""
        async with self.db.read() as session:
            return await self._state(session, item_type, item_id)

    async def _state(self, session: AsyncSession, item_type: ItemType, item_id: int) -> ItemState:
        found = await _get(session, item_type, item_id)
        if found is None:
            raise NotFound(N_("That submission no longer exists."))
        if isinstance(found, Nomination):
            name = await subject_name(
                session, found.nominee_name_at_time, found.nominee_member_id, found.nominee_unit_id
            )
        else:
            assert isinstance(found, GoodDeed)
            name = await subject_name(
                session, found.subject_name_at_time, found.subject_member_id, found.subject_unit_id
            )
        owner = (
            Decision.nomination_id == item_id
            if item_type is ItemType.NOMINATION
            else Decision.good_deed_id == item_id
        )
        decision = (
            await session.execute(
                select(Decision.outcome, Decision.at, Decision.reason, Member.full_name)
                .outerjoin(Member, Member.id == Decision.decided_by)
                .where(owner)
                .order_by(Decision.at.desc(), Decision.id.desc())
                .limit(1)
            )
        ).first()
        ballot = None
        if item_type is ItemType.NOMINATION:
            ballot = await session.scalar(
                select(Ballot)
                .where(Ballot.nomination_id == item_id)
                .order_by(Ballot.id.desc())
                .limit(1)
            )
        status = SubmissionStatus(found.status)
        state = ItemState(type=item_type, id=item_id, subject_name=name, status=status)
        kwargs: dict[str, Any] = {}
        if decision is not None and status is not SubmissionStatus.SUBMITTED:
            kwargs.update(
                outcome=decision.outcome,
                decided_by=decision.full_name,
                decided_at=decision.at,
                reason=decision.reason,
            )
        if ballot is not None:
            if ballot.closed_at is None and status is SubmissionStatus.IN_REVIEW:
                kwargs["ballot_deadline"] = ballot.deadline
            elif ballot.closed_at is not None and ballot.agree is not None:
                kwargs.update(
                    ballot_agree=ballot.agree,
                    ballot_size=ballot.council_size,
                    ballot_threshold=ballot.threshold,
                )
        if kwargs:
            state = ItemState(
                type=item_type, id=item_id, subject_name=name, status=status, **kwargs
            )
        return state

    async def already(
        self, session: AsyncSession, item_type: ItemType, item_id: int
    ) -> AlreadyDecided:
        """The error for a moderator who acted second: who decided, and when."""
        state = await self._state(session, item_type, item_id)
        if state.status is SubmissionStatus.IN_REVIEW and state.ballot_deadline is not None:
            return AlreadyDecided(
                N_("A council vote on this nomination is open until {deadline}."),
                deadline=state.ballot_deadline,
            )
        if state.status is SubmissionStatus.WITHDRAWN:
            return AlreadyDecided(N_("The author withdrew this submission."))
        if state.status is SubmissionStatus.SUBMITTED:
            return AlreadyDecided(
                N_(
                    "This submission was changed after this card was sent. Open it again "
                    "with /review."
                )
            )
        at = state.decided_at or self.clock.now()
        if state.outcome is not None and state.decided_by is None:
            return AlreadyDecided(N_("The council already decided on this on {at}."), at=at)
        who = state.decided_by or "—"
        if state.status is SubmissionStatus.APPROVED:
            return AlreadyDecided(N_("{name} already approved this on {at}."), name=who, at=at)
        if state.status is SubmissionStatus.REJECTED:
            return AlreadyDecided(N_("{name} already rejected this on {at}."), name=who, at=at)
        return AlreadyDecided(N_("{name} already asked for changes on {at}."), name=who, at=at)

    # --- deciding ------------------------------------------------------------------------------

    async def decide(
        self,
        viewer: Viewer,
        item_type: ItemType,
        item_id: int,
        outcome: Outcome,
        *,
        version: int | None = None,
        reason_code: str | None = None,
        reason: str | None = None,
    ) -> DecisionResult:
        """Approve, reject (a canned `reason_code` or a typed `reason`) or ask for changes (a
        typed `reason`). `version` is the one the moderator saw on the card."""
        require_moderator(self.settings, viewer)
        note: str | None = None
        if outcome is Outcome.REJECTED:
            if reason_code is not None:
                if reason_code not in CANNED_REASONS:
                    raise InvalidInput(N_("Unknown reason."))
                note = CANNED_REASONS[reason_code]
            else:
                note = clean_text(reason or "", limit=REASON_LIMIT)
        elif outcome is Outcome.CHANGES_REQUESTED:
            note = clean_text(reason or "", limit=REASON_LIMIT)
        now = self.clock.now()
        model = _model(item_type)
        async with self.db.transaction() as session:
            row = (
                await session.execute(
                    select(
                        model.status,
                        model.version,
                        model.unit_id,
                        *(
                            (Nomination.nominator_id, Nomination.nominee_member_id)
                            if item_type is ItemType.NOMINATION
                            else (GoodDeed.reporter_id, GoodDeed.subject_member_id)
                        ),
                    ).where(model.id == item_id)
                )
            ).first()
            if row is None or row[0] == SubmissionStatus.DRAFT.value:
                raise NotFound(N_("That submission no longer exists."))
            status, seen, unit_id, author_id, subject_id = row
            if not may_review(self.settings, viewer, item_type, unit_id):
                raise NotAllowed(N_("You cannot review this submission."))
            if _own(viewer, author_id, subject_id):
                raise NotAllowed(
                    N_("You cannot review a submission you made or one about yourself.")
                )
            if status != SubmissionStatus.SUBMITTED.value:
                raise await self.already(session, item_type, item_id)
            if version is not None and version != seen:
                raise await self.already(session, item_type, item_id)
            if item_type is ItemType.NOMINATION and outcome is Outcome.APPROVED:
                await check_discipline(session, item_id)
            won = affected(
                await session.execute(
                    update(model)
                    .where(
                        model.id == item_id,
                        model.status == SubmissionStatus.SUBMITTED.value,
                        model.version == seen,
                    )
                    .values(
                        status=outcome.value,
                        version=model.version + 1,
                        decided_at=now,
                        review_note=note,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if won != 1:
                raise await self.already(session, item_type, item_id)
            session.add(
                Decision(
                    nomination_id=item_id if item_type is ItemType.NOMINATION else None,
                    good_deed_id=item_id if item_type is ItemType.GOOD_DEED else None,
                    decided_by=viewer.member_id,
                    outcome=outcome.value,
                    reason=note,
                    at=now,
                )
            )
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                actor_user_id=viewer.telegram_user_id,
                action=f"{item_type.value}.{outcome.value}",
                target_type=item_type.value,
                target_id=item_id,
                at=now,
                reason=note,
                version=seen,
            )
            author = await session.get(Member, author_id)
            state = await self._state(session, item_type, item_id)
            if author is not None and author.telegram_user_id and author.active:
                enqueue(
                    session,
                    chat_id=author.telegram_user_id,
                    message=_AUTHOR_NOTICE[(item_type, outcome)],
                    language=author.language,
                    now=now,
                    kind=Kind.DECISION,
                    name=state.subject_name,
                    reason=self.localize(author.language, note, {}) if note else "",
                )
            if item_type is ItemType.NOMINATION and outcome is Outcome.APPROVED:
                await self.tell_nominee(session, item_id, author_id, now)
            return DecisionResult(state, author.telegram_user_id if author is not None else None)

    async def tell_nominee(
        self, session: AsyncSession, nomination_id: int, author_id: int, now: datetime
    ) -> None:
        """The nominee of an approved nomination hears of it (unless they opted out)."""
        found = await session.get(Nomination, nomination_id)
        if found is None or found.nominee_member_id is None:
            return
        if found.nominee_member_id == author_id:
            return  # the author was told already
        nominee = await session.get(Member, found.nominee_member_id)
        if (
            nominee is None
            or not nominee.telegram_user_id
            or not nominee.active
            or nominee.notify_opt_out
        ):
            return
        title = (
            await session.scalar(select(Title.name).where(Title.id == found.title_id))
            if found.title_id
            else None
        )
        movement = (
            await session.scalar(select(Movement.name).where(Movement.id == found.movement_id))
            if found.movement_id
            else None
        )
        enqueue(
            session,
            chat_id=nominee.telegram_user_id,
            message=NOMINEE_NOTICE,
            language=nominee.language,
            now=now,
            kind=Kind.RECOGNITION,
            dedupe_key=f"nominee:{nomination_id}",
            title=title or "—",
            movement=movement or "—",
        )

    # --- cards ---------------------------------------------------------------------------------

    async def record_card(
        self, item_type: ItemType, item_id: int, chat_id: int, message_id: int
    ) -> None:
        async with self.db.transaction() as session:
            session.add(
                ModerationCard(
                    item_type=item_type.value,
                    item_id=item_id,
                    chat_id=chat_id,
                    message_id=message_id,
                    created_at=self.clock.now(),
                )
            )

    async def cards(self, item_type: ItemType, item_id: int) -> list[CardRef]:
        """Every card sent about the item (moderators' private chats) and the admin chat's
        notices, each with the language to render it in."""
        default = self.default_language
        async with self.db.read() as session:
            rows = await session.execute(
                select(ModerationCard.chat_id, ModerationCard.message_id, Member.language)
                .outerjoin(Member, Member.telegram_user_id == ModerationCard.chat_id)
                .where(
                    ModerationCard.item_type == item_type.value,
                    ModerationCard.item_id == item_id,
                )
                .order_by(ModerationCard.id)
            )
            refs = [
                CardRef(int(chat), int(message or 0), language or default, False)
                for chat, message, language in rows
            ]
            notices = await session.execute(
                select(OutboxMessage.chat_id, OutboxMessage.message_id, GroupChat.language)
                .outerjoin(GroupChat, GroupChat.chat_id == OutboxMessage.chat_id)
                .where(
                    OutboxMessage.dedupe_key.like(f"modnew:{item_type.code}:{item_id}:%"),
                    OutboxMessage.message_id.is_not(None),
                )
            )
            refs += [
                CardRef(int(chat), int(message or 0), language or default, True)
                for chat, message, language in notices
            ]
        return refs

    # --- the admin chat --------------------------------------------------------------------------

    async def announce_new_submission(
        self, session: AsyncSession, item: Nomination | GoodDeed, *, now: datetime
    ) -> None:
        """Hook for the submissions feature: call inside the transaction that moves an item to
        `submitted` (after a flush, so it has an id). Posts a notice without any content of the
        submission to `settings.moderation.admin_chat_id` (a registered group of moderators),
        with a button that opens the card in the presser's private chat. No-op when unset."""
        chat_id = self.settings.admin_chat_id
        if chat_id is None:
            return
        item_type = ItemType.NOMINATION if isinstance(item, Nomination) else ItemType.GOOD_DEED
        key = f"modnew:{item_type.code}:{item.id}:{item.version or 1}"
        if await session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
            return  # announced already (a repeated call must not break the caller's transaction)
        pending = SubmissionStatus.SUBMITTED.value
        nominations = int(
            await session.scalar(
                select(func.count()).select_from(Nomination).where(Nomination.status == pending)
            )
            or 0
        )
        deeds = int(
            await session.scalar(
                select(func.count()).select_from(GoodDeed).where(GoodDeed.status == pending)
            )
            or 0
        )
        language = await session.scalar(
            select(GroupChat.language).where(GroupChat.chat_id == chat_id)
        )
        enqueue(
            session,
            chat_id=chat_id,
            message=NEW_ITEM_NOTICE[item_type],
            language=language,
            now=now,
            kind=Kind.REVIEW,
            buttons=[[button(OPEN_BUTTON, data=f"rv:o:{item_type.code}:{item.id}")]],
            dedupe_key=key,
            id=item.id,
            nominations=nominations,
            deeds=deeds,
        )
