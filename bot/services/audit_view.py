"""Reading the audit log (administrators only): by item ("nomination 12") or by person (what
they did, what was done to them and to the submissions they made or are the subject of)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from bot.services.clock import Clock
from bot.services.directory import Page, Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed
from bot.services.text import fold
from storage.db import Database
from storage.models import AuditEntry, GoodDeed, Member, Nomination

PAGE_SIZE = 10
TARGET = re.compile(r"^[a-z_]{1,32}$")


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor_member_id: int | None
    actor_name: str | None
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PersonMatch:
    id: int
    name: str
    active: bool


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))


class AuditViewService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def entries(
        self,
        viewer: Viewer,
        *,
        target_type: str | None = None,
        target_id: int | None = None,
        person_id: int | None = None,
        page: int = 0,
        page_size: int = PAGE_SIZE,
    ) -> Page[AuditRow]:
        """Newest first; with no filter, everything."""
        _require_admin(viewer)
        conditions: list[Any] = []
        if target_type is not None:
            if not TARGET.match(target_type):
                raise InvalidInput(N_("Unknown kind of item."))
            conditions.append(AuditEntry.target_type == target_type)
            if target_id is not None:
                conditions.append(AuditEntry.target_id == target_id)
        if person_id is not None:
            nominations = select(Nomination.id).where(
                or_(Nomination.nominator_id == person_id, Nomination.nominee_member_id == person_id)
            )
            deeds = select(GoodDeed.id).where(
                or_(GoodDeed.reporter_id == person_id, GoodDeed.subject_member_id == person_id)
            )
            conditions.append(
                or_(
                    AuditEntry.actor_member_id == person_id,
                    (AuditEntry.target_type == "member") & (AuditEntry.target_id == person_id),
                    (AuditEntry.target_type == "nomination")
                    & AuditEntry.target_id.in_(nominations),
                    (AuditEntry.target_type == "good_deed") & AuditEntry.target_id.in_(deeds),
                )
            )
        async with self.db.read() as session:
            total = int(
                await session.scalar(
                    select(func.count()).select_from(AuditEntry).where(*conditions)
                )
                or 0
            )
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            rows = await session.execute(
                select(AuditEntry, Member.full_name)
                .outerjoin(Member, Member.id == AuditEntry.actor_member_id)
                .where(*conditions)
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .offset(page * page_size)
                .limit(page_size)
            )
            items = [
                AuditRow(
                    id=entry.id,
                    at=entry.at,
                    actor_member_id=entry.actor_member_id,
                    actor_name=name,
                    action=entry.action,
                    target_type=entry.target_type,
                    target_id=entry.target_id,
                    details=dict(entry.details or {}),
                )
                for entry, name in rows
            ]
        return Page(items, page, pages, total)

    async def find_people(self, viewer: Viewer, query: str, limit: int = 8) -> list[PersonMatch]:
        """Members (active or not) whose name contains the text, accents optional."""
        _require_admin(viewer)
        folded = fold(query)
        if len(folded) < 2:
            raise InvalidInput(N_("Type at least 2 letters of the name."))
        pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with self.db.read() as session:
            rows = await session.execute(
                select(Member.id, Member.full_name, Member.active)
                .where(Member.name_folded.like(pattern, escape="\\"))
                .order_by(Member.name_folded, Member.id)
                .limit(limit)
            )
            return [PersonMatch(i, n, bool(a)) for i, n, a in rows]

    async def person(self, viewer: Viewer, member_id: int) -> PersonMatch | None:
        _require_admin(viewer)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(Member.id, Member.full_name, Member.active).where(Member.id == member_id)
                )
            ).first()
        return None if row is None else PersonMatch(row[0], row[1], bool(row[2]))
