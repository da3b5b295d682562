"""The catalogue: fields (lĩnh vực), criteria (tiêu chí), titles (danh hiệu), movements
(phong trào thi đua). Read side here; administration and TOML import extend this module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select

from bot.services.clock import Clock
from bot.services.errors import N_, NotFound
from storage.db import Database
from storage.models import (
    AppliesTo,
    Criterion,
    Field,
    Movement,
    MovementKind,
    MovementStatus,
    NomineeKind,
    Title,
)


@dataclass(frozen=True, slots=True)
class FieldView:
    id: int
    name: str
    description: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class CriterionView:
    id: int
    field_id: int | None
    text: str
    applies_to: AppliesTo
    active: bool


@dataclass(frozen=True, slots=True)
class TitleView:
    id: int
    name: str
    applies_to: AppliesTo
    description: str | None
    approval_threshold: float | None
    active: bool


@dataclass(frozen=True, slots=True)
class MovementView:
    id: int
    name: str
    kind: MovementKind
    description: str | None
    starts_on: date
    ends_on: date
    nomination_deadline: datetime
    status: MovementStatus

    def accepts_nominations(self, now: datetime) -> bool:
        return self.status is MovementStatus.OPEN and now < self.nomination_deadline


def field_view(f: Field) -> FieldView:
    return FieldView(f.id, f.name, f.description, f.active)


def criterion_view(c: Criterion) -> CriterionView:
    return CriterionView(c.id, c.field_id, c.text, AppliesTo(c.applies_to), c.active)


def title_view(t: Title) -> TitleView:
    return TitleView(
        t.id, t.name, AppliesTo(t.applies_to), t.description, t.approval_threshold, t.active
    )


def movement_view(m: Movement) -> MovementView:
    return MovementView(
        m.id,
        m.name,
        MovementKind(m.kind),
        m.description,
        m.starts_on,
        m.ends_on,
        m.nomination_deadline,
        MovementStatus(m.status),
    )


def _applies(kind: NomineeKind) -> list[str]:
    return [AppliesTo.BOTH.value, kind.value]


class CatalogueService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def fields(self, *, include_inactive: bool = False) -> list[FieldView]:
        async with self.db.read() as session:
            stmt = select(Field).order_by(Field.sort_order, Field.name)
            if not include_inactive:
                stmt = stmt.where(Field.active.is_(True))
            return [field_view(f) for f in await session.scalars(stmt)]

    async def field(self, field_id: int) -> FieldView:
        async with self.db.read() as session:
            found = await session.get(Field, field_id)
            if found is None:
                raise NotFound(N_("That field no longer exists."))
            return field_view(found)

    async def criteria_for(self, field_id: int, kind: NomineeKind) -> list[CriterionView]:
        """Active criteria of a field (and the general ones) that apply to this kind of nominee."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(Criterion)
                .where(
                    Criterion.active.is_(True),
                    or_(Criterion.field_id == field_id, Criterion.field_id.is_(None)),
                    Criterion.applies_to.in_(_applies(kind)),
                )
                .order_by(Criterion.field_id.is_(None), Criterion.sort_order, Criterion.id)
            )
            return [criterion_view(c) for c in rows]

    async def titles(self, kind: NomineeKind | None = None) -> list[TitleView]:
        async with self.db.read() as session:
            stmt = select(Title).where(Title.active.is_(True)).order_by(Title.id)
            if kind is not None:
                stmt = stmt.where(Title.applies_to.in_(_applies(kind)))
            return [title_view(t) for t in await session.scalars(stmt)]

    async def movements(self, *, statuses: tuple[MovementStatus, ...] = ()) -> list[MovementView]:
        async with self.db.read() as session:
            stmt = select(Movement).order_by(Movement.starts_on.desc(), Movement.id.desc())
            if statuses:
                stmt = stmt.where(Movement.status.in_([s.value for s in statuses]))
            return [movement_view(m) for m in await session.scalars(stmt)]

    async def open_movements(self) -> list[MovementView]:
        """Movements that accept nominations now (open, before their deadline)."""
        now = self.clock.now()
        return [
            m
            for m in await self.movements(statuses=(MovementStatus.OPEN,))
            if m.accepts_nominations(now)
        ]

    async def movement(self, movement_id: int) -> MovementView:
        async with self.db.read() as session:
            found = await session.get(Movement, movement_id)
            if found is None:
                raise NotFound(N_("That movement no longer exists."))
            return movement_view(found)
