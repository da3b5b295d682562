"""The catalogue: fields (lĩnh vực), criteria (tiêu chí), titles (danh hiệu), movements
(phong trào thi đua). The read side is used by every feature; administration (admins only,
every change audited) and the TOML import live here too.

Dates are calendar dates in the office's time zone, typed dd/mm/yyyy; a nomination deadline is
stored in UTC and typed as an office-local date with an optional time (17:00 when none).
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, AlreadyDecided, Conflict, InvalidInput, NotAllowed, NotFound
from bot.services.text import clean_name, clean_text, fold
from storage.db import Database, affected
from storage.models import (
    AppliesTo,
    Criterion,
    Field,
    Movement,
    MovementKind,
    MovementStatus,
    NomineeKind,
    Title,
    Unit,
    UnitKind,
    UnitName,
)

OFFICE_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_DEADLINE_TIME = time(17, 0)
NAME_LIMIT = 200
MOVEMENT_NAME_LIMIT = 300
CRITERION_LIMIT = 1000
DESCRIPTION_LIMIT = 2000
YEARS = (2000, 2100)

# the only status changes there are: draft → open → closed → archived, and closed → open again
TRANSITIONS: frozenset[tuple[MovementStatus, MovementStatus]] = frozenset(
    {
        (MovementStatus.DRAFT, MovementStatus.OPEN),
        (MovementStatus.OPEN, MovementStatus.CLOSED),
        (MovementStatus.CLOSED, MovementStatus.ARCHIVED),
        (MovementStatus.CLOSED, MovementStatus.OPEN),
    }
)

M = TypeVar("M", Field, Criterion, Title)


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
    parent_id: int | None = None

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
        m.parent_id,
    )


def _applies(kind: NomineeKind) -> list[str]:
    return [AppliesTo.BOTH.value, kind.value]


# --- typed input: dates, deadlines, thresholds ---------------------------------------------------


_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DATE_ANYWHERE = r"\d{1,2}/\d{1,2}/\d{4}"
_TIME = re.compile(r"(\d{1,2})(?::(\d{2})|[hHgG](\d{2})?)")


def _plain(text: str | None) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def parse_date(text: str) -> date:
    """A calendar date written dd/mm/yyyy (one-digit day and month allowed), nothing else."""
    raw = _plain(text)
    match = _DATE.fullmatch(raw)
    if match is None:
        raise InvalidInput(
            N_("“{text}” is not a date: please write it as dd/mm/yyyy, for example 31/12/2026."),
            text=raw[:40],
        )
    day, month, year = (int(g) for g in match.groups())
    if not YEARS[0] <= year <= YEARS[1]:
        raise InvalidInput(
            N_("The year {year} is out of range: please use a year from {first} to {last}."),
            year=str(year),
            first=str(YEARS[0]),
            last=str(YEARS[1]),
        )
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidInput(
            N_("{text} is not a real calendar date: please check the day and the month."),
            text=raw,
        ) from None


def _parse_time(text: str) -> time:
    match = _TIME.fullmatch(text)
    if match is not None:
        hour, minute = int(match.group(1)), int(match.group(2) or match.group(3) or 0)
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise InvalidInput(
        N_("“{text}” is not a time of day: please write HH:MM, for example 17:00."), text=text[:40]
    )


def parse_deadline(text: str, tz: ZoneInfo = OFFICE_TZ) -> datetime:
    """An office-local date dd/mm/yyyy with an optional time (HH:MM, 17h, 17h30; 17:00 when
    none), before or after the date; returned in UTC."""
    raw = _plain(text)
    match = re.fullmatch(rf"(?P<date>{_DATE_ANYWHERE})(?: (?P<time>\S+))?", raw) or re.fullmatch(
        rf"(?P<time>\S+) (?P<date>{_DATE_ANYWHERE})", raw
    )
    if match is None:
        raise InvalidInput(
            N_(
                "“{text}” is not a deadline: please write a date dd/mm/yyyy, optionally with a "
                "time HH:MM (17:00 if none), for example 15/11/2026 17:00."
            ),
            text=raw[:60],
        )
    day = parse_date(match.group("date"))
    at = _parse_time(match.group("time")) if match.group("time") else DEFAULT_DEADLINE_TIME
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def parse_period(text: str) -> tuple[date, date]:
    """Two dates, "01/01/2026 - 31/12/2026" (also with "–", "đến", "to" or a space between)."""
    raw = _plain(text)
    parts = [p for p in re.split(r"\s*(?:-|–|—|\bđến\b|\bto\b)\s*|\s+", raw) if p]
    if len(parts) != 2:
        raise InvalidInput(
            N_(
                "Please type the first and the last day as dd/mm/yyyy - dd/mm/yyyy, for example "
                "01/01/2026 - 31/12/2026."
            )
        )
    return parse_date(parts[0]), parse_date(parts[1])


def check_dates(starts_on: date, ends_on: date) -> None:
    if ends_on < starts_on:
        raise InvalidInput(
            N_("The movement cannot end ({end}) before it starts ({start})."),
            start=starts_on,
            end=ends_on,
        )


def check_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(N_("The approval threshold must be a number."))
    if not math.isfinite(value) or not 0 < value <= 1:
        raise InvalidInput(
            N_(
                "The approval threshold must be above 0 and at most 1 (for example 0.5, or 60%): "
                "it is the share of the whole council that must agree."
            )
        )
    return float(value)


def parse_threshold(text: str) -> float | None:
    """Text such as 0.6, 0,6 or 60%; "-" (or "default", "mặc định") for the council's setting."""
    raw = _plain(text)
    if fold(raw) in ("-", "default", "none", "mac dinh", "khong"):
        return None
    raw = raw.replace(" ", "")
    percent = raw.endswith("%")
    number = raw[:-1] if percent else raw
    try:
        value = float(number.replace(",", "."))
    except ValueError:
        raise InvalidInput(
            N_("“{text}” is not a number: please write for example 0.5 or 60%."), text=raw[:40]
        ) from None
    return check_threshold(value / 100 if percent else value)


# --- import results ------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportCount:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class ImportSummary:
    units: ImportCount = dc_field(default_factory=ImportCount)
    fields: ImportCount = dc_field(default_factory=ImportCount)
    criteria: ImportCount = dc_field(default_factory=ImportCount)
    titles: ImportCount = dc_field(default_factory=ImportCount)
    movements: ImportCount = dc_field(default_factory=ImportCount)

    def sections(self) -> list[tuple[str, ImportCount]]:
        return [
            ("units", self.units),
            ("fields", self.fields),
            ("criteria", self.criteria),
            ("titles", self.titles),
            ("movements", self.movements),
        ]

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for _, c in self.sections())


Problem = tuple[str, str, dict[str, object]]


class CatalogueImportError(InvalidInput):
    """A catalogue import that was refused: every problem with its key path (e.g.
    `fields[2].criteria[1].applies_to`, counted from 1)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(N_("The catalogue was not imported; nothing was changed."))
        self.problems = problems


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))


class CatalogueService:
    def __init__(self, db: Database, clock: Clock, *, tz: ZoneInfo | None = None) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz or OFFICE_TZ

    # --- read ------------------------------------------------------------------------------------

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

    async def criteria(
        self, field_id: int | None, *, include_inactive: bool = False
    ) -> list[CriterionView]:
        """The criteria of one field, or the general ones (field_id None), for administration."""
        async with self.db.read() as session:
            stmt = select(Criterion).order_by(Criterion.sort_order, Criterion.id)
            if field_id is None:
                stmt = stmt.where(Criterion.field_id.is_(None))
            else:
                stmt = stmt.where(Criterion.field_id == field_id)
            if not include_inactive:
                stmt = stmt.where(Criterion.active.is_(True))
            return [criterion_view(c) for c in await session.scalars(stmt)]

    async def criterion(self, criterion_id: int) -> CriterionView:
        async with self.db.read() as session:
            found = await session.get(Criterion, criterion_id)
            if found is None:
                raise NotFound(N_("That criterion no longer exists."))
            return criterion_view(found)

    async def titles(self, kind: NomineeKind | None = None) -> list[TitleView]:
        async with self.db.read() as session:
            stmt = select(Title).where(Title.active.is_(True)).order_by(Title.id)
            if kind is not None:
                stmt = stmt.where(Title.applies_to.in_(_applies(kind)))
            return [title_view(t) for t in await session.scalars(stmt)]

    async def list_titles(self, *, include_inactive: bool = False) -> list[TitleView]:
        async with self.db.read() as session:
            stmt = select(Title).order_by(Title.id)
            if not include_inactive:
                stmt = stmt.where(Title.active.is_(True))
            return [title_view(t) for t in await session.scalars(stmt)]

    async def title(self, title_id: int) -> TitleView:
        async with self.db.read() as session:
            found = await session.get(Title, title_id)
            if found is None:
                raise NotFound(N_("That title no longer exists."))
            return title_view(found)

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

    # --- fields ----------------------------------------------------------------------------------

    async def add_field(
        self, viewer: Viewer, name: str, *, description: str | None = None
    ) -> FieldView:
        _require_admin(viewer)
        name = clean_name(name, limit=NAME_LIMIT)
        text = _description(description)
        now = self.clock.now()
        async with self.db.transaction() as session:
            await _check_name_free(session, Field, name)
            last = await session.scalar(select(func.max(Field.sort_order)))
            found = Field(name=name, description=text, sort_order=(last or 0) + 10)
            session.add(found)
            await _flush_unique(session, name)
            self._audit(session, viewer, "field.add", "field", found.id, now, name=name)
            return field_view(found)

    async def rename_field(self, viewer: Viewer, field_id: int, new_name: str) -> FieldView:
        _require_admin(viewer)
        new_name = clean_name(new_name, limit=NAME_LIMIT)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_field(session, field_id)
            if found.name == new_name:
                return field_view(found)
            await _check_name_free(session, Field, new_name, except_id=found.id)
            old, found.name = found.name, new_name
            await _flush_unique(session, new_name)
            self._audit(
                session, viewer, "field.rename", "field", found.id, now, old=old, new=new_name
            )
            return field_view(found)

    async def deactivate_field(self, viewer: Viewer, field_id: int) -> FieldView:
        """The field is no longer offered; what was filed under it keeps it."""
        return field_view(await self._set_active(viewer, Field, field_id, active=False))

    async def reactivate_field(self, viewer: Viewer, field_id: int) -> FieldView:
        return field_view(await self._set_active(viewer, Field, field_id, active=True))

    # --- criteria --------------------------------------------------------------------------------

    async def add_criterion(
        self,
        viewer: Viewer,
        text: str,
        *,
        field_id: int | None,
        applies_to: AppliesTo = AppliesTo.BOTH,
    ) -> CriterionView:
        """A criterion of a field, or a general one (field_id None)."""
        _require_admin(viewer)
        text = _criterion_text(text)
        applies_to = AppliesTo(applies_to)
        now = self.clock.now()
        async with self.db.transaction() as session:
            if field_id is not None:
                owner = await _get_field(session, field_id)
                if not owner.active:
                    raise Conflict(N_("The field {name} is no longer active."), name=owner.name)
            await _check_criterion_free(session, field_id, text)
            last = await session.scalar(
                select(func.max(Criterion.sort_order)).where(_criterion_owner(field_id))
            )
            found = Criterion(
                field_id=field_id,
                text=text,
                applies_to=applies_to.value,
                sort_order=(last or 0) + 10,
            )
            session.add(found)
            await session.flush()
            self._audit(
                session,
                viewer,
                "criterion.add",
                "criterion",
                found.id,
                now,
                field_id=field_id,
                applies_to=applies_to.value,
            )
            return criterion_view(found)

    async def edit_criterion(
        self,
        viewer: Viewer,
        criterion_id: int,
        *,
        text: str | None = None,
        applies_to: AppliesTo | None = None,
    ) -> CriterionView:
        _require_admin(viewer)
        new_text = _criterion_text(text) if text is not None else None
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_criterion(session, criterion_id)
            changes: dict[str, Any] = {}
            if new_text is not None and new_text != found.text:
                await _check_criterion_free(session, found.field_id, new_text, except_id=found.id)
                changes["text"] = {"old": found.text, "new": new_text}
                found.text = new_text
            if applies_to is not None and AppliesTo(applies_to).value != found.applies_to:
                changes["applies_to"] = {"old": found.applies_to, "new": applies_to.value}
                found.applies_to = AppliesTo(applies_to).value
            if changes:
                self._audit(
                    session, viewer, "criterion.edit", "criterion", found.id, now, **changes
                )
            return criterion_view(found)

    async def deactivate_criterion(self, viewer: Viewer, criterion_id: int) -> CriterionView:
        return criterion_view(await self._set_active(viewer, Criterion, criterion_id, active=False))

    async def reactivate_criterion(self, viewer: Viewer, criterion_id: int) -> CriterionView:
        return criterion_view(await self._set_active(viewer, Criterion, criterion_id, active=True))

    # --- titles ----------------------------------------------------------------------------------

    async def add_title(
        self,
        viewer: Viewer,
        name: str,
        *,
        applies_to: AppliesTo = AppliesTo.INDIVIDUAL,
        description: str | None = None,
        approval_threshold: float | None = None,
    ) -> TitleView:
        _require_admin(viewer)
        name = clean_name(name, limit=NAME_LIMIT)
        applies_to = AppliesTo(applies_to)
        threshold = check_threshold(approval_threshold)
        text = _description(description)
        now = self.clock.now()
        async with self.db.transaction() as session:
            await _check_name_free(session, Title, name)
            found = Title(
                name=name,
                applies_to=applies_to.value,
                description=text,
                approval_threshold=threshold,
            )
            session.add(found)
            await _flush_unique(session, name)
            self._audit(
                session,
                viewer,
                "title.add",
                "title",
                found.id,
                now,
                name=name,
                applies_to=applies_to.value,
                approval_threshold=threshold,
            )
            return title_view(found)

    async def rename_title(self, viewer: Viewer, title_id: int, new_name: str) -> TitleView:
        _require_admin(viewer)
        new_name = clean_name(new_name, limit=NAME_LIMIT)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_title(session, title_id)
            if found.name == new_name:
                return title_view(found)
            await _check_name_free(session, Title, new_name, except_id=found.id)
            old, found.name = found.name, new_name
            await _flush_unique(session, new_name)
            self._audit(
                session, viewer, "title.rename", "title", found.id, now, old=old, new=new_name
            )
            return title_view(found)

    async def set_title_threshold(
        self, viewer: Viewer, title_id: int, approval_threshold: float | None
    ) -> TitleView:
        """None: the council's general setting applies to this title."""
        _require_admin(viewer)
        threshold = check_threshold(approval_threshold)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_title(session, title_id)
            if found.approval_threshold != threshold:
                old, found.approval_threshold = found.approval_threshold, threshold
                self._audit(
                    session,
                    viewer,
                    "title.threshold",
                    "title",
                    found.id,
                    now,
                    old=old,
                    new=threshold,
                )
            return title_view(found)

    async def deactivate_title(self, viewer: Viewer, title_id: int) -> TitleView:
        return title_view(await self._set_active(viewer, Title, title_id, active=False))

    async def reactivate_title(self, viewer: Viewer, title_id: int) -> TitleView:
        return title_view(await self._set_active(viewer, Title, title_id, active=True))

    # --- movements -------------------------------------------------------------------------------

    async def add_movement(
        self,
        viewer: Viewer,
        name: str,
        *,
        starts_on: date,
        ends_on: date,
        nomination_deadline: datetime,
        kind: MovementKind = MovementKind.REGULAR,
        parent_id: int | None = None,
        description: str | None = None,
    ) -> MovementView:
        """A new movement, as a draft: it is launched with `open_movement`."""
        _require_admin(viewer)
        name = clean_name(name, limit=MOVEMENT_NAME_LIMIT)
        kind = MovementKind(kind)
        deadline = self._aware(nomination_deadline)
        self.check_period(starts_on, ends_on, deadline)
        text = _description(description)
        now = self.clock.now()
        async with self.db.transaction() as session:
            await _check_movement_name_free(session, name)
            if parent_id is not None:
                parent = await _get_movement(session, parent_id)
                if parent.status == MovementStatus.ARCHIVED.value:
                    raise Conflict(
                        N_("The movement {name} is archived and can no longer be changed."),
                        name=parent.name,
                    )
                _check_within_parent(parent, starts_on, ends_on)
            found = Movement(
                name=name,
                kind=kind.value,
                description=text,
                starts_on=starts_on,
                ends_on=ends_on,
                nomination_deadline=deadline,
                status=MovementStatus.DRAFT.value,
                parent_id=parent_id,
                created_at=now,
            )
            session.add(found)
            await session.flush()
            self._audit(
                session,
                viewer,
                "movement.add",
                "movement",
                found.id,
                now,
                name=name,
                kind=kind.value,
                starts_on=starts_on.isoformat(),
                ends_on=ends_on.isoformat(),
                nomination_deadline=deadline.isoformat(),
                parent_id=parent_id,
            )
            return movement_view(found)

    async def rename_movement(
        self, viewer: Viewer, movement_id: int, new_name: str
    ) -> MovementView:
        _require_admin(viewer)
        new_name = clean_name(new_name, limit=MOVEMENT_NAME_LIMIT)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_movement(session, movement_id)
            _check_not_archived(found)
            if found.name == new_name:
                return movement_view(found)
            await _check_movement_name_free(session, new_name, except_id=found.id)
            old, found.name = found.name, new_name
            self._audit(
                session, viewer, "movement.rename", "movement", found.id, now, old=old, new=new_name
            )
            return movement_view(found)

    async def change_movement_dates(
        self,
        viewer: Viewer,
        movement_id: int,
        *,
        starts_on: date,
        ends_on: date,
        nomination_deadline: datetime | None = None,
    ) -> MovementView:
        """New first and last days (and, optionally, a new deadline in the same step)."""
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_movement(session, movement_id)
            _check_not_archived(found)
            deadline = (
                self._aware(nomination_deadline)
                if nomination_deadline is not None
                else found.nomination_deadline
            )
            self.check_period(starts_on, ends_on, deadline)
            if nomination_deadline is not None:
                self._check_open_deadline(found, deadline, now)
            if found.parent_id is not None:
                parent = await session.get(Movement, found.parent_id)
                if parent is not None:
                    _check_within_parent(parent, starts_on, ends_on)
            await _check_children_within(session, found.id, starts_on, ends_on)
            old = (found.starts_on, found.ends_on, found.nomination_deadline)
            found.starts_on, found.ends_on, found.nomination_deadline = starts_on, ends_on, deadline
            if old != (starts_on, ends_on, deadline):
                self._audit(
                    session,
                    viewer,
                    "movement.dates",
                    "movement",
                    found.id,
                    now,
                    old=[old[0].isoformat(), old[1].isoformat(), old[2].isoformat()],
                    new=[starts_on.isoformat(), ends_on.isoformat(), deadline.isoformat()],
                )
            return movement_view(found)

    async def change_deadline(
        self, viewer: Viewer, movement_id: int, nomination_deadline: datetime
    ) -> MovementView:
        _require_admin(viewer)
        deadline = self._aware(nomination_deadline)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_movement(session, movement_id)
            _check_not_archived(found)
            self.check_period(found.starts_on, found.ends_on, deadline)
            self._check_open_deadline(found, deadline, now)
            if found.nomination_deadline != deadline:
                old, found.nomination_deadline = found.nomination_deadline, deadline
                self._audit(
                    session,
                    viewer,
                    "movement.deadline",
                    "movement",
                    found.id,
                    now,
                    old=old.isoformat(),
                    new=deadline.isoformat(),
                )
            return movement_view(found)

    async def open_movement(self, viewer: Viewer, movement_id: int) -> MovementView:
        """Phát động phong trào: the movement takes nominations until its deadline. Closed
        movements may be reopened while their deadline is in the future."""
        return await self.set_movement_status(viewer, movement_id, MovementStatus.OPEN)

    async def close_movement(self, viewer: Viewer, movement_id: int) -> MovementView:
        return await self.set_movement_status(viewer, movement_id, MovementStatus.CLOSED)

    async def archive_movement(self, viewer: Viewer, movement_id: int) -> MovementView:
        return await self.set_movement_status(viewer, movement_id, MovementStatus.ARCHIVED)

    async def set_movement_status(
        self, viewer: Viewer, movement_id: int, status: MovementStatus
    ) -> MovementView:
        _require_admin(viewer)
        target = MovementStatus(status)
        now = self.clock.now()
        async with self.db.transaction() as session:
            found = await _get_movement(session, movement_id)
            current = MovementStatus(found.status)
            _check_transition(current, target)
            if target is MovementStatus.OPEN and found.nomination_deadline <= now:
                raise Conflict(
                    N_(
                        "The nomination deadline {deadline} has passed: set a later deadline "
                        "before opening the movement."
                    ),
                    deadline=found.nomination_deadline,
                )
            changed = affected(
                await session.execute(
                    update(Movement)
                    .where(Movement.id == found.id, Movement.status == current.value)
                    .values(status=target.value)
                )
            )
            if changed != 1:
                raise AlreadyDecided(
                    N_("Someone else changed this movement just now. Please look again.")
                )
            await session.refresh(found)
            if target is MovementStatus.OPEN:
                self._movement_opened(
                    session, viewer.member_id, found, now, reopened=current is MovementStatus.CLOSED
                )
            else:
                action = "movement.close" if target is MovementStatus.CLOSED else "movement.archive"
                self._audit(session, viewer, action, "movement", found.id, now, old=current.value)
            return movement_view(found)

    async def check_movement_name(self, name: str) -> str:
        """The cleaned name a new movement could have (a flow checks it before going on)."""
        name = clean_name(name, limit=MOVEMENT_NAME_LIMIT)
        async with self.db.read() as session:
            await _check_movement_name_free(session, name)
        return name

    async def check_movement_dates(
        self, starts_on: date, ends_on: date, *, parent_id: int | None = None
    ) -> None:
        """Dates a new movement could have (in order, within its parent's): lets a flow refuse
        them before it asks for the deadline."""
        check_dates(starts_on, ends_on)
        if parent_id is not None:
            async with self.db.read() as session:
                _check_within_parent(await _get_movement(session, parent_id), starts_on, ends_on)

    def check_period(self, starts_on: date, ends_on: date, deadline: datetime) -> None:
        """The last day is not before the first; the deadline falls on one of the days."""
        check_dates(starts_on, ends_on)
        local_day = self._aware(deadline).astimezone(self.tz).date()
        if not starts_on <= local_day <= ends_on:
            raise InvalidInput(
                N_(
                    "The nomination deadline ({deadline}) must fall within the movement's "
                    "dates, {start} to {end}."
                ),
                deadline=deadline,
                start=starts_on,
                end=ends_on,
            )

    def _check_open_deadline(self, found: Movement, deadline: datetime, now: datetime) -> None:
        if found.status == MovementStatus.OPEN.value and deadline <= now:
            raise InvalidInput(
                N_(
                    "An open movement needs a deadline in the future, and {deadline} has "
                    "passed. To stop nominations, close the movement."
                ),
                deadline=deadline,
            )

    def _movement_opened(
        self,
        session: AsyncSession,
        actor_member_id: int | None,
        found: Movement,
        now: datetime,
        *,
        reopened: bool,
    ) -> None:
        """The hook for "phát động phong trào": group announcements will start from here (in
        the same transaction). For now the launch is audited as `movement.open`."""
        audit.record(
            session,
            actor_member_id=actor_member_id,
            action="movement.open",
            target_type="movement",
            target_id=found.id,
            at=now,
            reopened=reopened,
            name=found.name,
            nomination_deadline=found.nomination_deadline.isoformat(),
        )

    # --- shared --------------------------------------------------------------------------------

    def _aware(self, value: datetime) -> datetime:
        """Datetimes without a zone are read as office-local time."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(UTC)

    def _audit(
        self,
        session: AsyncSession,
        viewer: Viewer | None,
        action: str,
        target_type: str,
        target_id: int | None,
        at: datetime,
        **details: Any,
    ) -> None:
        audit.record(
            session,
            actor_member_id=viewer.member_id if viewer else None,
            actor_user_id=viewer.telegram_user_id if viewer else None,
            action=action,
            target_type=target_type,
            target_id=target_id,
            at=at,
            **details,
        )

    async def _set_active(self, viewer: Viewer, model: type[M], item_id: int, *, active: bool) -> M:
        _require_admin(viewer)
        now = self.clock.now()
        target = {Field: "field", Criterion: "criterion", Title: "title"}[model]
        async with self.db.transaction() as session:
            found: M | None = await session.get(model, item_id)
            if found is None:
                raise NotFound(_NOT_FOUND[target])
            if found.active != active:
                if active and isinstance(found, Criterion) and found.field_id is not None:
                    owner = await _get_field(session, found.field_id)
                    if not owner.active:
                        raise Conflict(N_("The field {name} is no longer active."), name=owner.name)
                found.active = active
                action = f"{target}.{'reactivate' if active else 'deactivate'}"
                self._audit(session, viewer, action, target, found.id, now)
            return found

    # --- TOML import -----------------------------------------------------------------------------

    async def import_toml(self, data: bytes, actor: Viewer | None = None) -> ImportSummary:
        """Load a catalogue file (format: examples/catalogue.vi.toml). All or nothing; items are
        matched by name (accents and case ignored), so loading a file twice changes nothing.
        Raises CatalogueImportError listing every problem with its key path."""
        if actor is not None:
            _require_admin(actor)
        document = _load_toml(data)
        reader = _Reader(self.tz)
        spec = reader.document(document)
        if reader.problems:
            raise CatalogueImportError(reader.problems)
        now = self.clock.now()
        async with self.db.transaction() as session:
            applier = _Applier(self, session, actor, now)
            await applier.apply(spec)
            if applier.problems:
                raise CatalogueImportError(applier.problems)
            summary = applier.summary
            self._audit(
                session,
                actor,
                "catalogue.import",
                "catalogue",
                None,
                now,
                **{
                    name: {"created": c.created, "updated": c.updated}
                    for name, c in summary.sections()
                },
            )
        return summary


_NOT_FOUND = {
    "field": N_("That field no longer exists."),
    "criterion": N_("That criterion no longer exists."),
    "title": N_("That title no longer exists."),
}


def _description(raw: str | None) -> str | None:
    if raw is None:
        return None
    return clean_text(raw, limit=DESCRIPTION_LIMIT, required=False) or None


def _criterion_text(raw: str) -> str:
    text = " ".join(clean_text(raw, limit=CRITERION_LIMIT).split())
    if len(text) < 3:
        raise InvalidInput(N_("Please type a criterion of at least 3 characters."))
    return text


def _criterion_owner(field_id: int | None) -> Any:
    return Criterion.field_id.is_(None) if field_id is None else Criterion.field_id == field_id


async def _get_field(session: AsyncSession, field_id: int) -> Field:
    found = await session.get(Field, field_id)
    if found is None:
        raise NotFound(N_("That field no longer exists."))
    return found


async def _get_criterion(session: AsyncSession, criterion_id: int) -> Criterion:
    found = await session.get(Criterion, criterion_id)
    if found is None:
        raise NotFound(N_("That criterion no longer exists."))
    return found


async def _get_title(session: AsyncSession, title_id: int) -> Title:
    found = await session.get(Title, title_id)
    if found is None:
        raise NotFound(N_("That title no longer exists."))
    return found


async def _get_movement(session: AsyncSession, movement_id: int) -> Movement:
    found = await session.get(Movement, movement_id)
    if found is None:
        raise NotFound(N_("That movement no longer exists."))
    return found


async def _check_name_free(
    session: AsyncSession, model: type[Field] | type[Title], name: str, except_id: int | None = None
) -> None:
    """Names are unique ignoring accents and case, inactive items included (they can be
    reactivated instead)."""
    for row in await session.execute(select(model.id, model.name)):
        if row.id != except_id and fold(row.name) == fold(name):
            if model is Field:
                raise Conflict(N_("A field named {name} exists already."), name=row.name)
            raise Conflict(N_("A title named {name} exists already."), name=row.name)


async def _flush_unique(session: AsyncSession, name: str) -> None:
    """Two admins adding the same name at once: the database's unique index decides."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(N_("{name} was just added by someone else."), name=name) from None


async def _check_criterion_free(
    session: AsyncSession, field_id: int | None, text: str, except_id: int | None = None
) -> None:
    rows = await session.execute(
        select(Criterion.id, Criterion.text).where(_criterion_owner(field_id))
    )
    for row in rows:
        if row.id != except_id and fold(row.text) == fold(text):
            raise Conflict(N_("That criterion exists already here."))


async def _check_movement_name_free(
    session: AsyncSession, name: str, except_id: int | None = None
) -> None:
    for row in await session.execute(select(Movement.id, Movement.name)):
        if row.id != except_id and fold(row.name) == fold(name):
            raise Conflict(N_("A movement named {name} exists already."), name=row.name)


def _check_not_archived(found: Movement) -> None:
    if found.status == MovementStatus.ARCHIVED.value:
        raise Conflict(
            N_("The movement {name} is archived and can no longer be changed."), name=found.name
        )


def _check_within_parent(parent: Movement, starts_on: date, ends_on: date) -> None:
    if starts_on < parent.starts_on or ends_on > parent.ends_on:
        raise InvalidInput(
            N_("The dates must lie within those of {parent}: {start} to {end}."),
            parent=parent.name,
            start=parent.starts_on,
            end=parent.ends_on,
        )


async def _check_children_within(
    session: AsyncSession, movement_id: int, starts_on: date, ends_on: date
) -> None:
    children = await session.scalars(select(Movement).where(Movement.parent_id == movement_id))
    for child in children:
        if child.starts_on < starts_on or child.ends_on > ends_on:
            raise Conflict(
                N_(
                    "The movement {name} ({start} to {end}) is part of this one and would fall "
                    "outside the new dates."
                ),
                name=child.name,
                start=child.starts_on,
                end=child.ends_on,
            )


def _check_transition(current: MovementStatus, target: MovementStatus) -> None:
    if (current, target) in TRANSITIONS:
        return
    if current is target:
        raise Conflict(N_("Nothing to do: the movement already has that status."))
    if current is MovementStatus.ARCHIVED:
        raise Conflict(N_("An archived movement cannot be changed any more."))
    if target is MovementStatus.DRAFT:
        raise Conflict(N_("A movement cannot go back to draft."))
    if target is MovementStatus.CLOSED:
        raise Conflict(N_("Only an open movement can be closed."))
    if target is MovementStatus.ARCHIVED:
        raise Conflict(N_("Only a closed movement can be archived: close it first."))
    raise Conflict(N_("That status change is not allowed."))


# --- TOML import: reading ------------------------------------------------------------------------


def _load_toml(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueImportError(
            [
                (
                    "",
                    N_(
                        "The file is not UTF-8 text (byte {position}). Save it with the UTF-8 "
                        "encoding and try again."
                    ),
                    {"position": exc.start},
                )
            ]
        ) from None
    text = text.removeprefix("\ufeff")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueImportError(
            [("", N_("The file is not valid TOML: {error}."), {"error": str(exc)})]
        ) from None


@dataclass(slots=True)
class _UnitSpec:
    path: str
    name: str
    kind: UnitKind
    parent: str | None
    code: str | None


@dataclass(slots=True)
class _CriterionSpec:
    path: str
    text: str
    applies_to: AppliesTo | None
    active: bool | None


@dataclass(slots=True)
class _FieldSpec:
    path: str
    name: str
    description: str | None
    active: bool | None
    criteria: list[_CriterionSpec]


@dataclass(slots=True)
class _TitleSpec:
    path: str
    name: str
    applies_to: AppliesTo | None
    description: str | None
    threshold: float | None
    active: bool | None


@dataclass(slots=True)
class _MovementSpec:
    path: str
    name: str
    kind: MovementKind | None
    description: str | None
    starts_on: date
    ends_on: date
    deadline: datetime
    status: MovementStatus | None
    parent: str | None


@dataclass(slots=True)
class _Spec:
    units: list[_UnitSpec] = dc_field(default_factory=list)
    fields: list[_FieldSpec] = dc_field(default_factory=list)
    criteria: list[_CriterionSpec] = dc_field(default_factory=list)
    titles: list[_TitleSpec] = dc_field(default_factory=list)
    movements: list[_MovementSpec] = dc_field(default_factory=list)


_SECTIONS = ("units", "fields", "criteria", "titles", "movements")
_MISSING = object()


class _Reader:
    """Checks the shape and the values of a parsed file, collecting every problem."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, **params: object) -> None:
        self.problems.append((path, message, params))

    def document(self, doc: dict[str, Any]) -> _Spec:
        spec = _Spec()
        for key in doc:
            if key not in _SECTIONS:
                self.problem(
                    key,
                    N_("Unknown key “{key}”; expected one of: {expected}."),
                    key=key,
                    expected=", ".join(_SECTIONS),
                )
        spec.units = [
            u for path, t in self.tables(doc, "units") if (u := self.unit(path, t)) is not None
        ]
        spec.fields = [
            f for path, t in self.tables(doc, "fields") if (f := self.field(path, t)) is not None
        ]
        spec.criteria = self.criteria(doc, "criteria", "")
        spec.titles = [
            x for path, t in self.tables(doc, "titles") if (x := self.title(path, t)) is not None
        ]
        spec.movements = [
            m
            for path, t in self.tables(doc, "movements")
            if (m := self.movement(path, t)) is not None
        ]
        self.unique(spec.units, "name")
        self.unique(spec.fields, "name")
        self.unique(spec.criteria, "text")
        for f in spec.fields:
            self.unique(f.criteria, "text")
        self.unique(spec.titles, "name")
        self.unique(spec.movements, "name")
        return spec

    def tables(
        self, doc: dict[str, Any], key: str, prefix: str = ""
    ) -> list[tuple[str, dict[str, Any]]]:
        value = doc.get(key, [])
        where = f"{prefix}{key}"
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(
                where, N_("“{key}” must be a list of tables, written [[{key}]]."), key=where
            )
            return []
        return [(f"{where}[{i}]", v) for i, v in enumerate(value, start=1)]

    def keys(self, path: str, table: dict[str, Any], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                self.problem(
                    f"{path}.{key}",
                    N_("Unknown key “{key}”; expected one of: {expected}."),
                    key=key,
                    expected=", ".join(allowed),
                )

    def text(
        self,
        path: str,
        table: dict[str, Any],
        key: str,
        *,
        required: bool,
        name_limit: int | None = None,
    ) -> str | None:
        value = table.get(key, _MISSING)
        where = f"{path}.{key}"
        if value is _MISSING:
            if required:
                self.problem(where, N_("“{key}” is required here."), key=key)
            return None
        if not isinstance(value, str):
            self.problem(where, N_("“{key}” must be text in quotes."), key=key)
            return None
        try:
            if name_limit is not None:
                return clean_name(value, limit=name_limit)
            if key == "text":
                return _criterion_text(value)
            return _description(value) or ""
        except InvalidInput as exc:
            self.problems.append((where, exc.message, exc.params))
            return None

    def choice(self, path: str, table: dict[str, Any], key: str, enum: type[Any]) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return None
        allowed = [e.value for e in enum]
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            self.problem(
                f"{path}.{key}",
                N_("“{value}” is not allowed for “{key}”; use one of: {expected}."),
                value=str(value),
                key=key,
                expected=", ".join(allowed),
            )
            return None
        return enum(value.strip().lower())

    def flag(self, path: str, table: dict[str, Any], key: str) -> bool | None:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.problem(f"{path}.{key}", N_("“{key}” must be true or false."), key=key)
            return None
        return value

    def day(self, path: str, table: dict[str, Any], key: str) -> date | None:
        value = table.get(key, _MISSING)
        where = f"{path}.{key}"
        if value is _MISSING:
            self.problem(where, N_("“{key}” is required here."), key=key)
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            self.problem(where, N_('“{key}” must be a date written "dd/mm/yyyy".'), key=key)
            return None
        try:
            return parse_date(value)
        except InvalidInput as exc:
            self.problems.append((where, exc.message, exc.params))
            return None

    def deadline(self, path: str, table: dict[str, Any], key: str) -> datetime | None:
        value = table.get(key, _MISSING)
        where = f"{path}.{key}"
        if value is _MISSING:
            self.problem(where, N_("“{key}” is required here."), key=key)
            return None
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
            return aware.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, DEFAULT_DEADLINE_TIME, tzinfo=self.tz).astimezone(UTC)
        if not isinstance(value, str):
            self.problem(where, N_('“{key}” must be a date written "dd/mm/yyyy HH:MM".'), key=key)
            return None
        try:
            return parse_deadline(value, self.tz)
        except InvalidInput as exc:
            self.problems.append((where, exc.message, exc.params))
            return None

    def unit(self, path: str, t: dict[str, Any]) -> _UnitSpec | None:
        self.keys(path, t, ("name", "kind", "parent", "code"))
        name = self.text(path, t, "name", required=True, name_limit=NAME_LIMIT)
        kind = self.choice(path, t, "kind", UnitKind)
        parent = self.text(path, t, "parent", required=False, name_limit=NAME_LIMIT)
        code = t.get("code")
        if code is not None and (not isinstance(code, str) or not 1 <= len(code.strip()) <= 32):
            self.problem(
                f"{path}.code", N_("“{key}” must be text of 1 to 32 characters."), key="code"
            )
            code = None
        if name is None:
            return None
        return _UnitSpec(
            path, name, kind or UnitKind.DEPARTMENT, parent, code.strip() if code else None
        )

    def criteria(self, doc: dict[str, Any], key: str, prefix: str) -> list[_CriterionSpec]:
        out: list[_CriterionSpec] = []
        for path, t in self.tables(doc, key, prefix):
            self.keys(path, t, ("text", "applies_to", "active"))
            text = self.text(path, t, "text", required=True)
            applies = self.choice(path, t, "applies_to", AppliesTo)
            active = self.flag(path, t, "active")
            if text is not None:
                out.append(_CriterionSpec(path, text, applies, active))
        return out

    def field(self, path: str, t: dict[str, Any]) -> _FieldSpec | None:
        self.keys(path, t, ("name", "description", "active", "criteria"))
        name = self.text(path, t, "name", required=True, name_limit=NAME_LIMIT)
        description = self.text(path, t, "description", required=False)
        active = self.flag(path, t, "active")
        criteria = self.criteria(t, "criteria", f"{path}.")
        if name is None:
            return None
        return _FieldSpec(path, name, description, active, criteria)

    def title(self, path: str, t: dict[str, Any]) -> _TitleSpec | None:
        self.keys(path, t, ("name", "applies_to", "description", "approval_threshold", "active"))
        name = self.text(path, t, "name", required=True, name_limit=NAME_LIMIT)
        applies = self.choice(path, t, "applies_to", AppliesTo)
        description = self.text(path, t, "description", required=False)
        active = self.flag(path, t, "active")
        threshold: float | None = None
        raw = t.get("approval_threshold", _MISSING)
        if raw is not _MISSING:
            try:
                threshold = parse_threshold(raw) if isinstance(raw, str) else check_threshold(raw)
            except InvalidInput as exc:
                self.problems.append((f"{path}.approval_threshold", exc.message, exc.params))
        if name is None:
            return None
        return _TitleSpec(path, name, applies, description, threshold, active)

    def movement(self, path: str, t: dict[str, Any]) -> _MovementSpec | None:
        self.keys(
            path,
            t,
            (
                "name",
                "kind",
                "description",
                "starts_on",
                "ends_on",
                "nomination_deadline",
                "status",
                "parent",
            ),
        )
        name = self.text(path, t, "name", required=True, name_limit=MOVEMENT_NAME_LIMIT)
        kind = self.choice(path, t, "kind", MovementKind)
        description = self.text(path, t, "description", required=False)
        starts_on = self.day(path, t, "starts_on")
        ends_on = self.day(path, t, "ends_on")
        deadline = self.deadline(path, t, "nomination_deadline")
        status = self.choice(path, t, "status", MovementStatus)
        parent = self.text(path, t, "parent", required=False, name_limit=MOVEMENT_NAME_LIMIT)
        if name is None or starts_on is None or ends_on is None or deadline is None:
            return None
        return _MovementSpec(
            path, name, kind, description, starts_on, ends_on, deadline, status, parent
        )

    def unique(self, items: list[Any], attribute: str) -> None:
        seen: dict[str, str] = {}
        for item in items:
            key = fold(getattr(item, attribute))
            if key in seen:
                self.problem(
                    f"{item.path}.{attribute}",
                    N_("This repeats {other}; each name may appear once."),
                    other=seen[key],
                )
            else:
                seen[key] = item.path


# --- TOML import: writing ------------------------------------------------------------------------


class _Applier:
    """Upserts a checked file inside one transaction; problems found against the database are
    collected (the caller rolls back when there are any)."""

    def __init__(
        self, service: CatalogueService, session: AsyncSession, actor: Viewer | None, now: datetime
    ) -> None:
        self.service = service
        self.session = session
        self.actor = actor
        self.now = now
        self.summary = ImportSummary()
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, **params: object) -> None:
        self.problems.append((path, message, params))

    async def apply(self, spec: _Spec) -> None:
        await self.units(spec.units)
        await self.fields(spec.fields)
        await self.criteria(None, spec.criteria)
        await self.titles(spec.titles)
        await self.movements(spec.movements)

    async def units(self, specs: list[_UnitSpec]) -> None:
        session = self.session
        active = {
            fold(u.name): u
            for u in await session.scalars(select(Unit).where(Unit.active.is_(True)))
        }
        codes = {c for c in await session.scalars(select(Unit.code)) if c}
        for spec in specs:
            if fold(spec.name) in active:
                self.summary.units.unchanged += 1
                continue
            parent_id: int | None = None
            if spec.parent is not None:
                parent = active.get(fold(spec.parent))
                if parent is None:
                    self.problem(
                        f"{spec.path}.parent",
                        N_(
                            "Unknown unit “{name}”: list it before the units under it, or "
                            "create it first."
                        ),
                        name=spec.parent,
                    )
                    continue
                parent_id = parent.id
            if spec.code is not None:
                if spec.code in codes:
                    self.problem(
                        f"{spec.path}.code",
                        N_("The code {code} belongs to another unit already."),
                        code=spec.code,
                    )
                    continue
                codes.add(spec.code)
            unit = Unit(
                name=spec.name,
                kind=spec.kind.value,
                parent_id=parent_id,
                code=spec.code,
                created_at=self.now,
            )
            session.add(unit)
            await session.flush()
            session.add(UnitName(unit_id=unit.id, name=spec.name, valid_from=self.now))
            self.service._audit(
                session,
                self.actor,
                "unit.add",
                "unit",
                unit.id,
                self.now,
                name=spec.name,
                source="catalogue.import",
            )
            active[fold(spec.name)] = unit
            self.summary.units.created += 1

    async def fields(self, specs: list[_FieldSpec]) -> None:
        existing = {fold(f.name): f for f in await self.session.scalars(select(Field))}
        for position, spec in enumerate(specs, start=1):
            found = existing.get(fold(spec.name))
            order = position * 10
            if found is None:
                found = Field(
                    name=spec.name,
                    description=spec.description or None,
                    active=True if spec.active is None else spec.active,
                    sort_order=order,
                )
                self.session.add(found)
                await self.session.flush()
                self.summary.fields.created += 1
            else:
                changed = _assign(
                    found,
                    name=spec.name,
                    description=(spec.description or None)
                    if spec.description is not None
                    else _MISSING,
                    active=spec.active if spec.active is not None else _MISSING,
                    sort_order=order,
                )
                self._count(self.summary.fields, changed)
            await self.criteria(found.id, spec.criteria)

    async def criteria(self, field_id: int | None, specs: list[_CriterionSpec]) -> None:
        rows = await self.session.scalars(select(Criterion).where(_criterion_owner(field_id)))
        existing = {fold(c.text): c for c in rows}
        for position, spec in enumerate(specs, start=1):
            found = existing.get(fold(spec.text))
            order = position * 10
            if found is None:
                self.session.add(
                    Criterion(
                        field_id=field_id,
                        text=spec.text,
                        applies_to=(spec.applies_to or AppliesTo.BOTH).value,
                        active=True if spec.active is None else spec.active,
                        sort_order=order,
                    )
                )
                self.summary.criteria.created += 1
            else:
                changed = _assign(
                    found,
                    text=spec.text,
                    applies_to=spec.applies_to.value if spec.applies_to else _MISSING,
                    active=spec.active if spec.active is not None else _MISSING,
                    sort_order=order,
                )
                self._count(self.summary.criteria, changed)
        await self.session.flush()

    async def titles(self, specs: list[_TitleSpec]) -> None:
        existing = {fold(t.name): t for t in await self.session.scalars(select(Title))}
        for spec in specs:
            found = existing.get(fold(spec.name))
            if found is None:
                self.session.add(
                    Title(
                        name=spec.name,
                        applies_to=(spec.applies_to or AppliesTo.INDIVIDUAL).value,
                        description=spec.description or None,
                        approval_threshold=spec.threshold,
                        active=True if spec.active is None else spec.active,
                    )
                )
                self.summary.titles.created += 1
            else:
                changed = _assign(
                    found,
                    name=spec.name,
                    applies_to=spec.applies_to.value if spec.applies_to else _MISSING,
                    description=(spec.description or None)
                    if spec.description is not None
                    else _MISSING,
                    approval_threshold=spec.threshold if spec.threshold is not None else _MISSING,
                    active=spec.active if spec.active is not None else _MISSING,
                )
                self._count(self.summary.titles, changed)
        await self.session.flush()

    async def movements(self, specs: list[_MovementSpec]) -> None:
        session = self.session
        every = {m.id: m for m in await session.scalars(select(Movement))}
        by_name = {fold(m.name): m for m in sorted(every.values(), key=lambda m: -m.id)}
        touched: dict[int, str] = {}
        for spec in specs:
            parent: Movement | None = None
            if spec.parent is not None:
                parent = by_name.get(fold(spec.parent))
                if parent is None:
                    self.problem(
                        f"{spec.path}.parent",
                        N_(
                            "Unknown movement “{name}”: list it before the movements under it, "
                            "or create it first."
                        ),
                        name=spec.parent,
                    )
                    continue
            try:
                self.service.check_period(spec.starts_on, spec.ends_on, spec.deadline)
            except InvalidInput as exc:
                key = "ends_on" if spec.ends_on < spec.starts_on else "nomination_deadline"
                self.problems.append((f"{spec.path}.{key}", exc.message, exc.params))
                continue
            found = by_name.get(fold(spec.name))
            if found is None:
                status = spec.status or MovementStatus.DRAFT
                if status is MovementStatus.OPEN and spec.deadline <= self.now:
                    self.problem(
                        f"{spec.path}.status",
                        N_(
                            "The nomination deadline {deadline} has passed: set a later deadline "
                            "before opening the movement."
                        ),
                        deadline=spec.deadline,
                    )
                    continue
                found = Movement(
                    name=spec.name,
                    kind=(spec.kind or MovementKind.REGULAR).value,
                    description=spec.description or None,
                    starts_on=spec.starts_on,
                    ends_on=spec.ends_on,
                    nomination_deadline=spec.deadline,
                    status=status.value,
                    parent_id=parent.id if parent else None,
                    created_at=self.now,
                )
                session.add(found)
                await session.flush()
                every[found.id] = found
                by_name[fold(found.name)] = found
                self.summary.movements.created += 1
                if status is MovementStatus.OPEN:
                    self.service._movement_opened(
                        session,
                        self.actor.member_id if self.actor else None,
                        found,
                        self.now,
                        reopened=False,
                    )
            else:
                if parent is not None and self._is_cycle(found, parent, every):
                    self.problem(
                        f"{spec.path}.parent",
                        N_("A movement cannot be placed under itself or under its own parts."),
                    )
                    continue
                values: dict[str, Any] = {
                    "name": spec.name,
                    "kind": spec.kind.value if spec.kind else _MISSING,
                    "description": (spec.description or None)
                    if spec.description is not None
                    else _MISSING,
                    "starts_on": spec.starts_on,
                    "ends_on": spec.ends_on,
                    "nomination_deadline": spec.deadline,
                    "parent_id": parent.id if parent else _MISSING,
                }
                if found.status == MovementStatus.ARCHIVED.value and _differs(found, values):
                    self.problem(
                        spec.path,
                        N_("The movement {name} is archived and can no longer be changed."),
                        name=found.name,
                    )
                    continue
                self._count(self.summary.movements, _assign(found, **values))
            touched[found.id] = spec.path
        # every movement lies within the dates of the movement it belongs to
        for movement in every.values():
            parent = every.get(movement.parent_id) if movement.parent_id else None
            if parent is None or (movement.id not in touched and parent.id not in touched):
                continue
            try:
                _check_within_parent(parent, movement.starts_on, movement.ends_on)
            except InvalidInput as exc:
                where = touched.get(movement.id) or touched[parent.id]
                self.problems.append((f"{where}.starts_on", exc.message, exc.params))
        await session.flush()

    @staticmethod
    def _is_cycle(found: Movement, parent: Movement, every: dict[int, Movement]) -> bool:
        cursor: Movement | None = parent
        for _ in range(len(every) + 1):
            if cursor is None:
                return False
            if cursor.id == found.id:
                return True
            cursor = every.get(cursor.parent_id) if cursor.parent_id else None
        return True

    @staticmethod
    def _count(count: ImportCount, changed: bool) -> None:
        if changed:
            count.updated += 1
        else:
            count.unchanged += 1


def _differs(item: object, values: dict[str, Any]) -> bool:
    return any(v is not _MISSING and getattr(item, k) != v for k, v in values.items())


def _assign(item: object, **values: Any) -> bool:
    """Set the given attributes (skipping _MISSING); True when anything changed."""
    changed = False
    for key, value in values.items():
        if value is _MISSING or getattr(item, key) == value:
            continue
        setattr(item, key, value)
        changed = True
    return changed
