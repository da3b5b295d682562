"""The exemplar registry (điển hình tiên tiến) and the good deeds feed (người tốt, việc tốt).

An exemplar is an approved, non-revoked nomination. "Current" exemplars are those of movements
that are not archived; filtering by a movement or a year (the year the movement starts), or
asking for everything, includes archived movements too (and, with "everything", a nomination
that belongs to no movement). Units: an exemplar belongs to the unit of the item (the nominee's
unit, or the nominated unit), and a unit's filter includes the units merged into it. Pending,
rejected, withdrawn and revoked nominations never appear here.

Good deeds appear in the feed once approved. A member applauds a deed once; pressing again takes
the applause back (a toggle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Page, Viewer
from bot.services.errors import N_, AlreadyDecided, InvalidInput, NotAllowed, NotFound
from bot.services.outbox import Kind, enqueue
from bot.services.text import clean_text, fold
from storage.db import Database, affected
from storage.models import (
    Applause,
    Field,
    GoodDeed,
    Member,
    Movement,
    MovementStatus,
    Nomination,
    SubmissionStatus,
    Title,
    Unit,
)

PAGE_SIZE = 8
FEED_PAGE = 5
REASON_LIMIT = 1000
REVOKED_NOTICE = N_("The exemplar {name} was revoked by an administrator. Reason: {reason}")


@dataclass(frozen=True, slots=True)
class ExemplarFilter:
    """What /exemplars shows; 0 means "any". `everything` includes archived movements; `search`
    applies the name the person typed (kept by the handler)."""

    unit_id: int = 0
    field_id: int = 0
    movement_id: int = 0
    year: int = 0
    everything: bool = False
    search: bool = False

    def encode(self) -> str:
        return ".".join(
            str(v)
            for v in (
                self.unit_id,
                self.field_id,
                self.movement_id,
                self.year,
                int(self.everything),
                int(self.search),
            )
        )

    @classmethod
    def decode(cls, text: str) -> ExemplarFilter:
        parts = text.split(".")
        if len(parts) != 6 or not all(p.isdigit() and len(p) <= 9 for p in parts):
            raise InvalidInput(N_("This button is no longer valid. Please start again."))
        unit, field, movement, year, everything, search = (int(p) for p in parts)
        if everything > 1 or search > 1 or (year and not 1900 <= year <= 2999):
            raise InvalidInput(N_("This button is no longer valid. Please start again."))
        return cls(unit, field, movement, year, bool(everything), bool(search))

    def with_(self, **changes: Any) -> ExemplarFilter:
        return replace(self, **changes)

    @property
    def narrowed(self) -> bool:
        return bool(self.unit_id or self.field_id or self.movement_id or self.year or self.search)


@dataclass(frozen=True, slots=True)
class ExemplarRow:
    id: int
    name: str
    kind: str
    unit_name: str | None
    title_name: str | None
    movement_name: str | None
    field_name: str | None
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExemplarCard:
    id: int
    name: str
    kind: str
    unit_name: str | None
    title_name: str | None
    movement_name: str | None
    field_name: str | None
    achievements: str | None
    good_practices: str | None
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class GoodDeedRow:
    id: int
    subject_name: str
    unit_name: str | None
    description: str | None
    occurred_on: date | None
    place: str | None
    decided_at: datetime | None
    applause: int
    applauded: bool


def _like(folded: str) -> str:
    return "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _require_member(viewer: Viewer) -> None:
    if viewer.member_id is None:
        raise NotAllowed(N_("You are not a member yet."))


NomineeMember = aliased(Member, name="nominee_member")
NomineeUnit = aliased(Unit, name="nominee_unit")
ItemUnit = aliased(Unit, name="item_unit")


class ExemplarService:
    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo | None = None) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")

    # --- the registry --------------------------------------------------------------------------

    async def _conditions(self, session: Any, filt: ExemplarFilter, query: str | None) -> list[Any]:
        """WHERE clauses on nominations alone (movements and members in sub-selects): the
        filtering needs no join, and the page's details are fetched for its ids only."""
        conditions: list[Any] = [
            Nomination.status == SubmissionStatus.APPROVED.value,
            Nomination.revoked_at.is_(None),
        ]
        if filt.movement_id:
            conditions.append(Nomination.movement_id == filt.movement_id)
        if filt.year:
            start, end = date(filt.year, 1, 1), date(filt.year + 1, 1, 1)
            conditions.append(
                Nomination.movement_id.in_(
                    select(Movement.id).where(Movement.starts_on >= start, Movement.starts_on < end)
                )
            )
        if not (filt.everything or filt.movement_id or filt.year):
            conditions.append(
                Nomination.movement_id.in_(
                    select(Movement.id).where(Movement.status != MovementStatus.ARCHIVED.value)
                )
            )
        if filt.unit_id:
            units = list(await session.execute(select(Unit.id, Unit.merged_into_id)))
            wanted = {filt.unit_id}
            grew = True
            while grew:  # units merged into it (and into those) keep their exemplars here
                more = {uid for uid, into in units if into in wanted} - wanted
                grew = bool(more)
                wanted |= more
            # unit_id is the unit the item belongs to: the nominee's, or the nominated unit
            conditions.append(Nomination.unit_id.in_(sorted(wanted)))
        if filt.field_id:
            conditions.append(Nomination.field_id == filt.field_id)
        if filt.search:
            folded = fold(query or "")
            if len(folded) < 2:
                raise InvalidInput(N_("Type at least 2 letters of the name."))
            people = select(Member.id).where(Member.name_folded.like(_like(folded), escape="\\"))
            unit_ids = [
                uid
                for uid, name in await session.execute(select(Unit.id, Unit.name))
                if folded in fold(name)
            ]
            matches: list[Any] = [Nomination.nominee_member_id.in_(people)]
            if unit_ids:
                matches.append(Nomination.nominee_unit_id.in_(unit_ids))
            conditions.append(or_(*matches))
        return conditions

    async def search(
        self,
        viewer: Viewer,
        filt: ExemplarFilter | None = None,
        *,
        query: str | None = None,
        page: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> Page[ExemplarRow]:
        """Exemplars newest first (by the day they were approved): current ones by default,
        narrowed by the filter."""
        _require_member(viewer)
        filt = filt or ExemplarFilter()
        async with self.db.read() as session:
            conditions = await self._conditions(session, filt, query)
            total = int(
                await session.scalar(
                    select(func.count()).select_from(Nomination).where(*conditions)
                )
                or 0
            )
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            ids = list(
                await session.scalars(
                    select(Nomination.id)
                    .where(*conditions)
                    .order_by(Nomination.decided_at.desc(), Nomination.id.desc())
                    .offset(page * page_size)
                    .limit(page_size)
                )
            )
            found: dict[int, ExemplarRow] = {}
            if ids:
                rows = await session.execute(
                    select(
                        Nomination.id,
                        Nomination.nominee_kind,
                        Nomination.nominee_name_at_time,
                        NomineeMember.full_name,
                        NomineeUnit.name,
                        Nomination.unit_name_at_time,
                        ItemUnit.name,
                        Title.name,
                        Movement.name,
                        Field.name,
                        Nomination.decided_at,
                    )
                    .outerjoin(Movement, Movement.id == Nomination.movement_id)
                    .outerjoin(NomineeMember, NomineeMember.id == Nomination.nominee_member_id)
                    .outerjoin(NomineeUnit, NomineeUnit.id == Nomination.nominee_unit_id)
                    .outerjoin(ItemUnit, ItemUnit.id == Nomination.unit_id)
                    .outerjoin(Title, Title.id == Nomination.title_id)
                    .outerjoin(Field, Field.id == Nomination.field_id)
                    .where(Nomination.id.in_(ids))
                )
                for r in rows:
                    found[r[0]] = ExemplarRow(
                        id=r[0],
                        kind=r[1],
                        name=r[2] or r[3] or r[4] or "—",
                        unit_name=r[5] or r[6],
                        title_name=r[7],
                        movement_name=r[8],
                        field_name=r[9],
                        decided_at=r[10],
                    )
        return Page([found[i] for i in ids if i in found], page, pages, total)

    async def card(self, viewer: Viewer, nomination_id: int) -> ExemplarCard:
        _require_member(viewer)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(
                        Nomination,
                        NomineeMember.full_name,
                        NomineeUnit.name,
                        ItemUnit.name,
                        Title.name,
                        Movement.name,
                        Field.name,
                    )
                    .outerjoin(Movement, Movement.id == Nomination.movement_id)
                    .outerjoin(NomineeMember, NomineeMember.id == Nomination.nominee_member_id)
                    .outerjoin(NomineeUnit, NomineeUnit.id == Nomination.nominee_unit_id)
                    .outerjoin(ItemUnit, ItemUnit.id == Nomination.unit_id)
                    .outerjoin(Title, Title.id == Nomination.title_id)
                    .outerjoin(Field, Field.id == Nomination.field_id)
                    .where(
                        Nomination.id == nomination_id,
                        Nomination.status == SubmissionStatus.APPROVED.value,
                        Nomination.revoked_at.is_(None),
                    )
                )
            ).first()
        if row is None:
            raise NotFound(N_("That exemplar is not in the registry."))
        n, member_name, unit_name, item_unit, title, movement, field = row
        return ExemplarCard(
            id=n.id,
            name=n.nominee_name_at_time or member_name or unit_name or "—",
            kind=n.nominee_kind,
            unit_name=n.unit_name_at_time or item_unit,
            title_name=title,
            movement_name=movement,
            field_name=field,
            achievements=n.achievements,
            good_practices=n.good_practices,
            decided_at=n.decided_at,
        )

    async def revoke(self, viewer: Viewer, nomination_id: int, reason: str) -> ExemplarCard:
        """An administrator withdraws an exemplar from the registry, with a reason."""
        if not viewer.is_admin:
            raise NotAllowed(N_("Only administrators can do that."))
        text = clean_text(reason, limit=REASON_LIMIT)
        card = await self.card(viewer, nomination_id)
        now = self.clock.now()
        async with self.db.transaction() as session:
            won = affected(
                await session.execute(
                    update(Nomination)
                    .where(
                        Nomination.id == nomination_id,
                        Nomination.status == SubmissionStatus.APPROVED.value,
                        Nomination.revoked_at.is_(None),
                    )
                    .values(revoked_at=now, revoke_reason=text, version=Nomination.version + 1)
                    .execution_options(synchronize_session=False)
                )
            )
            if won != 1:
                raise AlreadyDecided(N_("That exemplar was revoked already."))
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                actor_user_id=viewer.telegram_user_id,
                action="exemplar.revoke",
                target_type="nomination",
                target_id=nomination_id,
                at=now,
                reason=text,
            )
            author = (
                await session.execute(
                    select(Member.telegram_user_id, Member.language, Member.active)
                    .join(Nomination, Nomination.nominator_id == Member.id)
                    .where(Nomination.id == nomination_id)
                )
            ).first()
            if author is not None and author.telegram_user_id and author.active:
                enqueue(
                    session,
                    chat_id=author.telegram_user_id,
                    message=REVOKED_NOTICE,
                    language=author.language,
                    now=now,
                    kind=Kind.DECISION,
                    name=card.name,
                    reason=text,
                )
        return card

    async def years(self) -> list[int]:
        """Years that have movements, newest first (for the year filter)."""
        async with self.db.read() as session:
            starts = await session.scalars(select(Movement.starts_on).distinct())
            return sorted({d.year for d in starts if d is not None}, reverse=True)

    # --- the good deeds feed -------------------------------------------------------------------

    async def feed(
        self, viewer: Viewer, *, page: int = 0, page_size: int = FEED_PAGE
    ) -> Page[GoodDeedRow]:
        _require_member(viewer)
        approved = GoodDeed.status == SubmissionStatus.APPROVED.value
        async with self.db.read() as session:
            total = int(
                await session.scalar(select(func.count()).select_from(GoodDeed).where(approved))
                or 0
            )
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            claps = (
                select(func.count())
                .select_from(Applause)
                .where(Applause.good_deed_id == GoodDeed.id)
                .scalar_subquery()
            )
            mine = (
                select(func.count())
                .select_from(Applause)
                .where(Applause.good_deed_id == GoodDeed.id, Applause.member_id == viewer.member_id)
                .scalar_subquery()
            )
            rows = await session.execute(
                select(GoodDeed, Member.full_name, Unit.name, claps, mine)
                .outerjoin(Member, Member.id == GoodDeed.subject_member_id)
                .outerjoin(Unit, Unit.id == GoodDeed.subject_unit_id)
                .where(approved)
                .order_by(GoodDeed.decided_at.desc(), GoodDeed.id.desc())
                .offset(page * page_size)
                .limit(page_size)
            )
            items = [
                GoodDeedRow(
                    id=deed.id,
                    subject_name=deed.subject_name_at_time or member or unit or "—",
                    unit_name=deed.unit_name_at_time,
                    description=deed.description,
                    occurred_on=deed.occurred_on,
                    place=deed.place,
                    decided_at=deed.decided_at,
                    applause=int(count or 0),
                    applauded=bool(me),
                )
                for deed, member, unit, count, me in rows
            ]
        return Page(items, page, pages, total)

    async def applaud(self, viewer: Viewer, good_deed_id: int) -> tuple[bool, int]:
        """One 👏 per person; pressing again takes it back. Returns (applauded now, count)."""
        _require_member(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            status = await session.scalar(
                select(GoodDeed.status).where(GoodDeed.id == good_deed_id)
            )
            if status != SubmissionStatus.APPROVED.value:
                raise NotFound(N_("That good deed is not in the feed."))
            removed = affected(
                await session.execute(
                    delete(Applause).where(
                        Applause.good_deed_id == good_deed_id,
                        Applause.member_id == viewer.member_id,
                    )
                )
            )
            applauded = False
            if not removed:
                try:
                    async with session.begin_nested():
                        session.add(
                            Applause(good_deed_id=good_deed_id, member_id=viewer.member_id, at=now)
                        )
                        await session.flush()
                    applauded = True
                except IntegrityError:  # a double press: the other one applauded
                    applauded = True
            count = int(
                await session.scalar(
                    select(func.count())
                    .select_from(Applause)
                    .where(Applause.good_deed_id == good_deed_id)
                )
                or 0
            )
        return applauded, count


__all__: Sequence[str] = (
    "ExemplarCard",
    "ExemplarFilter",
    "ExemplarRow",
    "ExemplarService",
    "GoodDeedRow",
)
