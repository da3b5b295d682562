"""The directory: who is who (units, members, roles), joining by invite or by request."""

from __future__ import annotations

import csv
import io
import re
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.clock import Clock
from bot.services.errors import N_, AlreadyDecided, Conflict, InvalidInput, NotAllowed, NotFound
from bot.services.outbox import Kind, button, enqueue
from bot.services.text import clean_name, fold
from storage.db import Database, affected
from storage.models import (
    AccessRequest,
    GroupChat,
    Invite,
    Member,
    RequestStatus,
    Role,
    Unit,
    UnitKind,
    UnitName,
)

INVITE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
JOIN_REQUEST = N_("New request to join: {name} ({unit}), Telegram id {id}.")
ACCESS_DECISION = {
    True: N_(
        "Your request to join was approved. Welcome to Hoa Đẹp! Send /help to see what you can do."
    ),
    False: N_(
        "Your request to join was not approved. If you think this is a mistake, please contact "
        "the office's administrator."
    ),
}
PAGE_SIZE = 10
T = TypeVar("T")
ROLE_RANK = {Role.STAFF: 0, Role.UNIT_OFFICER: 1, Role.COUNCIL: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind an update, as the directory knows them (None member_id: a stranger)."""

    telegram_user_id: int
    member_id: int | None
    full_name: str | None
    role: Role | None
    unit_id: int | None
    language: str | None

    @property
    def is_member(self) -> bool:
        return self.member_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_council(self) -> bool:
        return self.role in (Role.COUNCIL, Role.ADMIN)

    @property
    def is_unit_officer(self) -> bool:
        return self.role is Role.UNIT_OFFICER

    def at_least(self, role: Role) -> bool:
        return self.role is not None and ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class UnitView:
    id: int
    name: str
    code: str | None
    kind: str
    parent_id: int | None
    active: bool
    merged_into_id: int | None
    depth: int = 0
    members: int = 0


@dataclass(frozen=True, slots=True)
class MemberView:
    id: int
    full_name: str
    unit_id: int | None
    unit_name: str | None
    role: Role
    active: bool
    linked: bool
    language: str
    telegram_user_id: int | None
    notify_opt_out: bool = False
    position: str | None = None


@dataclass(frozen=True, slots=True)
class InviteView:
    token: str
    member_id: int
    member_name: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AccessRequestView:
    id: int
    telegram_user_id: int
    full_name: str
    unit_id: int | None
    unit_name: str | None
    status: RequestStatus
    created_at: datetime
    language: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int
    pages: int
    total: int


class ImportError_(InvalidInput):
    """A CSV import that was refused, with every line's problem."""

    def __init__(self, problems: list[tuple[int, str, dict[str, object]]]) -> None:
        super().__init__(N_("The import was refused; nothing was changed."))
        self.problems = problems


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))


def _member_view(member: Member, unit_name: str | None) -> MemberView:
    return MemberView(
        id=member.id,
        full_name=member.full_name,
        unit_id=member.unit_id,
        unit_name=unit_name,
        role=Role(member.role),
        active=member.active,
        linked=member.telegram_user_id is not None,
        language=member.language,
        telegram_user_id=member.telegram_user_id,
        notify_opt_out=member.notify_opt_out,
        position=member.position,
    )


def _unit_view(unit: Unit, depth: int = 0, members: int = 0) -> UnitView:
    return UnitView(
        id=unit.id,
        name=unit.name,
        code=unit.code,
        kind=unit.kind,
        parent_id=unit.parent_id,
        active=unit.active,
        merged_into_id=unit.merged_into_id,
        depth=depth,
        members=members,
    )


class DirectoryService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        admin_ids: Sequence[int] = (),
        invite_ttl: timedelta = timedelta(hours=72),
        default_language: str = "vi",
        viewer_cache_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bootstrap_admins = frozenset(admin_ids)
        self.invite_ttl = invite_ttl
        self.default_language = default_language
        # members seen recently: every change made here clears it; a change made by another
        # process (the CLI, a second instance) applies within the TTL. Strangers are not cached.
        self.viewer_cache_seconds = viewer_cache_seconds
        self._viewers: dict[int, tuple[float, Viewer]] = {}
        # counts shown on admin screens (members of a unit, pending requests), same rules
        self._counts: dict[object, tuple[float, int]] = {}

    def forget_viewers(self) -> None:
        """Drop every cached member lookup (after any change to the directory)."""
        self._viewers.clear()
        self._counts.clear()

    async def _count(self, key: object, stmt: Any) -> int:
        cached = self._counts.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.reader.connect() as conn:
            value = int(await conn.scalar(stmt) or 0)
        if self.viewer_cache_seconds > 0:
            if len(self._counts) > 10_000:
                self._counts.clear()
            self._counts[key] = (now + self.viewer_cache_seconds, value)
        return value

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work on the directory; cached lookups are dropped once it ends."""
        try:
            async with self.db.transaction() as session:
                yield session
        finally:
            self.forget_viewers()

    # --- who is this ---------------------------------------------------------------------------

    async def identify(self, telegram_user_id: int) -> Viewer:
        """The hot path of every update: a recent answer, or one indexed Core SELECT."""
        cached = self._viewers.get(telegram_user_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        stmt = select(
            Member.id, Member.full_name, Member.role, Member.unit_id, Member.language
        ).where(Member.telegram_user_id == telegram_user_id, Member.active.is_(True))
        async with self.db.reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            self._viewers.pop(telegram_user_id, None)
            return Viewer(telegram_user_id, None, None, None, None, None)
        viewer = Viewer(
            telegram_user_id, row.id, row.full_name, Role(row.role), row.unit_id, row.language
        )
        if self.viewer_cache_seconds > 0:
            if len(self._viewers) > 50_000:
                self._viewers.clear()
            self._viewers[telegram_user_id] = (now + self.viewer_cache_seconds, viewer)
        return viewer

    def is_bootstrap_admin(self, telegram_user_id: int) -> bool:
        return telegram_user_id in self.bootstrap_admins

    async def ensure_bootstrap_admin(
        self, telegram_user_id: int, display_name: str, language: str | None
    ) -> Viewer:
        """A configured admin who writes for the first time gets a member record."""
        if not self.is_bootstrap_admin(telegram_user_id):
            raise NotAllowed(N_("Only administrators can do that."))
        now = self.clock.now()
        async with self._write() as session:
            member = await session.scalar(
                select(Member).where(Member.telegram_user_id == telegram_user_id)
            )
            if member is None:
                name = _safe_display_name(display_name)
                member = Member(
                    telegram_user_id=telegram_user_id,
                    full_name=name,
                    name_folded=fold(name),
                    role=Role.ADMIN.value,
                    language=language or self.default_language,
                    joined_at=now,
                )
                session.add(member)
                await session.flush()
                audit.record(
                    session,
                    actor_member_id=member.id,
                    actor_user_id=telegram_user_id,
                    action="member.bootstrap_admin",
                    target_type="member",
                    target_id=member.id,
                    at=now,
                )
            else:
                member.role = Role.ADMIN.value
                member.active = True
        return await self.identify(telegram_user_id)

    async def set_language(self, viewer: Viewer, language: str) -> None:
        if language not in ("vi", "en"):
            raise InvalidInput(N_("Unknown language."))
        if viewer.member_id is None:
            raise NotAllowed(N_("You are not a member yet."))
        async with self._write() as session:
            await session.execute(
                update(Member).where(Member.id == viewer.member_id).values(language=language)
            )

    async def set_notifications(self, viewer: Viewer, *, opt_out: bool) -> None:
        if viewer.member_id is None:
            raise NotAllowed(N_("You are not a member yet."))
        async with self._write() as session:
            await session.execute(
                update(Member).where(Member.id == viewer.member_id).values(notify_opt_out=opt_out)
            )

    async def admin_user_ids(self) -> list[int]:
        """Telegram ids of every active, linked admin (plus configured ones not yet seen)."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(Member.telegram_user_id).where(
                    Member.role == Role.ADMIN.value,
                    Member.active.is_(True),
                    Member.telegram_user_id.is_not(None),
                )
            )
            ids = {int(r) for r in rows if r is not None}
        return sorted(ids | self.bootstrap_admins)

    # --- units ---------------------------------------------------------------------------------

    async def list_units(self, *, include_inactive: bool = False) -> list[UnitView]:
        """Units as a tree in display order (depth-first, by name)."""
        async with self.db.read() as session:
            stmt = select(Unit)
            if not include_inactive:
                stmt = stmt.where(Unit.active.is_(True))
            units = list(await session.scalars(stmt))
            result = await session.execute(
                select(Member.unit_id, func.count())
                .where(Member.active.is_(True))
                .group_by(Member.unit_id)
            )
            counts: dict[int | None, int] = {row[0]: int(row[1]) for row in result}
        by_parent: dict[int | None, list[Unit]] = {}
        ids = {u.id for u in units}
        for unit in units:
            parent = unit.parent_id if unit.parent_id in ids else None
            by_parent.setdefault(parent, []).append(unit)
        out: list[UnitView] = []

        def walk(parent: int | None, depth: int) -> None:
            for unit in sorted(by_parent.get(parent, []), key=lambda u: fold(u.name)):
                out.append(_unit_view(unit, depth, counts.get(unit.id, 0)))
                walk(unit.id, depth + 1)

        walk(None, 0)
        return out

    async def get_unit(self, unit_id: int) -> UnitView:
        async with self.db.read() as session:
            unit = await session.get(Unit, unit_id)
            if unit is None:
                raise NotFound(N_("That unit no longer exists."))
            return _unit_view(unit)

    async def unit_name_history(self, unit_id: int) -> list[tuple[str, datetime, datetime | None]]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(UnitName.name, UnitName.valid_from, UnitName.valid_to)
                .where(UnitName.unit_id == unit_id)
                .order_by(UnitName.valid_from)
            )
            return [(r.name, r.valid_from, r.valid_to) for r in rows]

    async def add_unit(
        self,
        viewer: Viewer,
        name: str,
        *,
        parent_id: int | None = None,
        kind: UnitKind = UnitKind.DEPARTMENT,
        code: str | None = None,
    ) -> UnitView:
        _require_admin(viewer)
        name = clean_name(name, limit=200)
        now = self.clock.now()
        async with self._write() as session:
            await self._check_unit_name_free(session, name)
            if parent_id is not None:
                await self._active_unit(session, parent_id)
            unit = Unit(name=name, parent_id=parent_id, kind=kind.value, code=code, created_at=now)
            session.add(unit)
            await session.flush()
            session.add(UnitName(unit_id=unit.id, name=name, valid_from=now))
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="unit.add",
                target_type="unit",
                target_id=unit.id,
                at=now,
                name=name,
            )
            return _unit_view(unit)

    async def rename_unit(self, viewer: Viewer, unit_id: int, new_name: str) -> UnitView:
        _require_admin(viewer)
        new_name = clean_name(new_name, limit=200)
        now = self.clock.now()
        async with self._write() as session:
            unit = await self._active_unit(session, unit_id)
            if unit.name == new_name:
                return _unit_view(unit)
            await self._check_unit_name_free(session, new_name, except_id=unit.id)
            old = unit.name
            await self._close_name(session, unit.id, now)
            session.add(UnitName(unit_id=unit.id, name=new_name, valid_from=now))
            unit.name = new_name
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="unit.rename",
                target_type="unit",
                target_id=unit.id,
                at=now,
                old=old,
                new=new_name,
            )
            return _unit_view(unit)

    async def move_unit(self, viewer: Viewer, unit_id: int, new_parent_id: int | None) -> UnitView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self._write() as session:
            unit = await self._active_unit(session, unit_id)
            if new_parent_id is not None:
                await self._active_unit(session, new_parent_id)
                # refuse a cycle: the new parent may not be the unit or one of its descendants
                cursor: int | None = new_parent_id
                while cursor is not None:
                    if cursor == unit.id:
                        raise InvalidInput(N_("A unit cannot be placed under itself."))
                    cursor = await session.scalar(select(Unit.parent_id).where(Unit.id == cursor))
            old_parent = unit.parent_id
            unit.parent_id = new_parent_id
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="unit.move",
                target_type="unit",
                target_id=unit.id,
                at=now,
                old_parent=old_parent,
                new_parent=new_parent_id,
            )
            return _unit_view(unit)

    async def merge_units(self, viewer: Viewer, source_id: int, target_id: int) -> UnitView:
        """The source's members and sub-units move to the target; the source is kept, inactive,
        so its items keep the name they were filed under."""
        _require_admin(viewer)
        if source_id == target_id:
            raise InvalidInput(N_("A unit cannot be merged into itself."))
        now = self.clock.now()
        async with self._write() as session:
            source = await self._active_unit(session, source_id)
            target = await self._active_unit(session, target_id)
            cursor: int | None = target.parent_id
            while cursor is not None:
                if cursor == source.id:
                    raise InvalidInput(N_("A unit cannot be merged into one of its own sub-units."))
                cursor = await session.scalar(select(Unit.parent_id).where(Unit.id == cursor))
            moved = affected(
                await session.execute(
                    update(Member).where(Member.unit_id == source.id).values(unit_id=target.id)
                )
            )
            await session.execute(
                update(Unit).where(Unit.parent_id == source.id).values(parent_id=target.id)
            )
            await session.execute(
                update(GroupChat).where(GroupChat.unit_id == source.id).values(unit_id=target.id)
            )
            source.active = False
            source.merged_into_id = target.id
            await self._close_name(session, source.id, now)
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="unit.merge",
                target_type="unit",
                target_id=source.id,
                at=now,
                into=target.id,
                members_moved=moved,
            )
            return _unit_view(target)

    async def deactivate_unit(self, viewer: Viewer, unit_id: int) -> UnitView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self._write() as session:
            unit = await self._active_unit(session, unit_id)
            members = await session.scalar(
                select(func.count()).where(Member.unit_id == unit.id, Member.active.is_(True))
            )
            children = await session.scalar(
                select(func.count()).where(Unit.parent_id == unit.id, Unit.active.is_(True))
            )
            if members or children:
                raise Conflict(
                    N_(
                        "This unit still has {members} members and {children} sub-units: "
                        "move or merge them first."
                    ),
                    members=members or 0,
                    children=children or 0,
                )
            unit.active = False
            await self._close_name(session, unit.id, now)
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="unit.deactivate",
                target_type="unit",
                target_id=unit.id,
                at=now,
            )
            return _unit_view(unit)

    async def _active_unit(self, session: AsyncSession, unit_id: int) -> Unit:
        unit = await session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(N_("That unit no longer exists."))
        if not unit.active:
            raise Conflict(N_("The unit {name} is no longer active."), name=unit.name)
        return unit

    async def _check_unit_name_free(
        self, session: AsyncSession, name: str, except_id: int | None = None
    ) -> None:
        stmt = select(Unit.id, Unit.name).where(Unit.active.is_(True))
        for row in await session.execute(stmt):
            if row.id != except_id and fold(row.name) == fold(name):
                raise Conflict(N_("An active unit named {name} exists already."), name=row.name)

    async def _close_name(self, session: AsyncSession, unit_id: int, at: datetime) -> None:
        await session.execute(
            update(UnitName)
            .where(UnitName.unit_id == unit_id, UnitName.valid_to.is_(None))
            .values(valid_to=at)
        )

    # --- members -------------------------------------------------------------------------------

    async def get_member(self, member_id: int) -> MemberView:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(Member, Unit.name)
                    .outerjoin(Unit, Unit.id == Member.unit_id)
                    .where(Member.id == member_id)
                )
            ).first()
            if row is None:
                raise NotFound(N_("That person is not in the directory."))
            return _member_view(row[0], row[1])

    async def list_members(
        self,
        viewer: Viewer,
        *,
        unit_id: int | None = None,
        query: str | None = None,
        page: int = 0,
        include_inactive: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> Page[MemberView]:
        if not viewer.is_member:
            raise NotAllowed(N_("You are not a member yet."))
        conditions: list[Any] = []
        if not include_inactive:
            conditions.append(Member.active.is_(True))
        if unit_id is not None:
            conditions.append(Member.unit_id == unit_id)
        if query:
            folded = fold(query)
            if len(folded) < 2:
                raise InvalidInput(N_("Type at least 2 letters of the name."))
            pattern = (
                "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            conditions.append(Member.name_folded.like(pattern, escape="\\"))
        page = max(page, 0)
        count = select(func.count()).select_from(Member).where(*conditions)
        # a plain listing's total comes from the count cache; a search counts in the same query
        by_window = bool(query)
        columns: tuple[Any, ...] = (
            Member.id,
            Member.full_name,
            Member.unit_id,
            Unit.name.label("unit_name"),
            Member.role,
            Member.active,
            Member.telegram_user_id,
            Member.language,
            Member.notify_opt_out,
            Member.position,
        )
        if by_window:
            columns += (func.count().over().label("total"),)
        else:
            total = await self._count(("members", unit_id, include_inactive), count)
            page = min(page, max(0, (total - 1) // page_size))
        async with self.db.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(*columns)
                    .outerjoin(Unit, Unit.id == Member.unit_id)
                    .where(*conditions)
                    .order_by(Member.name_folded, Member.id)
                    .offset(page * page_size)
                    .limit(page_size)
                )
            ).all()
            if by_window:
                total = int(rows[0].total) if rows else int(await conn.scalar(count) or 0)
        if by_window and not rows and total and page > 0:  # past the end: the last page
            return await self.list_members(
                viewer,
                unit_id=unit_id,
                query=query,
                page=(total - 1) // page_size,
                include_inactive=include_inactive,
                page_size=page_size,
            )
        pages = max(1, -(-total // page_size))
        items = [
            MemberView(
                id=r.id,
                full_name=r.full_name,
                unit_id=r.unit_id,
                unit_name=r.unit_name,
                role=Role(r.role),
                active=r.active,
                linked=r.telegram_user_id is not None,
                language=r.language,
                telegram_user_id=r.telegram_user_id,
                notify_opt_out=r.notify_opt_out,
                position=r.position,
            )
            for r in rows
        ]
        return Page(items, page, pages, total)

    async def add_member(
        self,
        viewer: Viewer,
        full_name: str,
        unit_id: int,
        role: Role = Role.STAFF,
        *,
        telegram_user_id: int | None = None,
        position: str | None = None,
    ) -> MemberView:
        _require_admin(viewer)
        name = clean_name(full_name)
        now = self.clock.now()
        async with self._write() as session:
            unit = await self._active_unit(session, unit_id)
            if telegram_user_id is not None:
                await self._check_account_free(session, telegram_user_id)
            member = Member(
                full_name=name,
                name_folded=fold(name),
                unit_id=unit.id,
                role=role.value,
                telegram_user_id=telegram_user_id,
                position=position,
                language=self.default_language,
                created_at=now,
            )
            session.add(member)
            await session.flush()
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="member.add",
                target_type="member",
                target_id=member.id,
                at=now,
                name=name,
                unit=unit.id,
                role=role.value,
            )
            return _member_view(member, unit.name)

    async def change_member(
        self,
        viewer: Viewer,
        member_id: int,
        *,
        unit_id: int | None = None,
        role: Role | None = None,
        active: bool | None = None,
    ) -> MemberView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self._write() as session:
            member = await session.get(Member, member_id)
            if member is None:
                raise NotFound(N_("That person is not in the directory."))
            changes: dict[str, Any] = {}
            if unit_id is not None and unit_id != member.unit_id:
                await self._active_unit(session, unit_id)
                changes["unit"] = [member.unit_id, unit_id]
                member.unit_id = unit_id
            if role is not None and role.value != member.role:
                if member.id == viewer.member_id and role is not Role.ADMIN:
                    raise NotAllowed(N_("You cannot take away your own administrator role."))
                changes["role"] = [member.role, role.value]
                member.role = role.value
            if active is not None and active != member.active:
                if member.id == viewer.member_id and not active:
                    raise NotAllowed(N_("You cannot deactivate yourself."))
                changes["active"] = [member.active, active]
                member.active = active
            if changes:
                audit.record(
                    session,
                    actor_member_id=viewer.member_id,
                    action="member.change",
                    target_type="member",
                    target_id=member.id,
                    at=now,
                    **changes,
                )
            unit_name = await session.scalar(select(Unit.name).where(Unit.id == member.unit_id))
            return _member_view(member, unit_name)

    async def _check_account_free(self, session: AsyncSession, telegram_user_id: int) -> None:
        taken = await session.scalar(
            select(Member.id).where(Member.telegram_user_id == telegram_user_id)
        )
        if taken is not None:
            raise Conflict(N_("This Telegram account is already linked to a member."))

    # --- invites -------------------------------------------------------------------------------

    async def create_invite(self, viewer: Viewer, member_id: int) -> InviteView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self._write() as session:
            member = await session.get(Member, member_id)
            if member is None or not member.active:
                raise NotFound(N_("That person is not in the directory."))
            if member.telegram_user_id is not None:
                raise Conflict(N_("{name} has already joined."), name=member.full_name)
            invite = Invite(
                token=secrets.token_urlsafe(18),
                member_id=member.id,
                created_by=viewer.member_id,
                created_at=now,
                expires_at=now + self.invite_ttl,
            )
            session.add(invite)
            await session.flush()
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="invite.create",
                target_type="member",
                target_id=member.id,
                at=now,
            )
            return InviteView(invite.token, member.id, member.full_name, invite.expires_at)

    async def redeem_invite(
        self, token: str, telegram_user_id: int, language: str | None
    ) -> Viewer:
        if not INVITE_TOKEN.match(token or ""):
            raise InvalidInput(
                N_("This invitation link is not valid. Ask an administrator for a new one.")
            )
        now = self.clock.now()
        async with self._write() as session:
            invite = await session.scalar(select(Invite).where(Invite.token == token))
            if invite is None:
                raise NotFound(
                    N_("This invitation link is not valid. Ask an administrator for a new one.")
                )
            if invite.used_at is not None:
                if invite.used_by_user_id == telegram_user_id:
                    raise AlreadyDecided(N_("You have already joined with this invitation."))
                raise AlreadyDecided(
                    N_("This invitation has already been used. Ask an administrator for a new one.")
                )
            if invite.expires_at <= now:
                raise AlreadyDecided(
                    N_("This invitation expired on {at}. Ask an administrator for a new one."),
                    at=invite.expires_at,
                )
            member = await session.get(Member, invite.member_id)
            if member is None or not member.active:
                raise NotFound(N_("This invitation is no longer valid."))
            if member.telegram_user_id is not None:
                raise AlreadyDecided(
                    N_("This invitation has already been used. Ask an administrator for a new one.")
                )
            await self._check_account_free(session, telegram_user_id)
            # the conditional update makes a double redemption race lose cleanly
            claimed = affected(
                await session.execute(
                    update(Invite)
                    .where(Invite.id == invite.id, Invite.used_at.is_(None))
                    .values(used_at=now, used_by_user_id=telegram_user_id)
                )
            )
            if claimed != 1:
                raise AlreadyDecided(
                    N_("This invitation has already been used. Ask an administrator for a new one.")
                )
            member.telegram_user_id = telegram_user_id
            member.joined_at = now
            if language in ("vi", "en"):
                member.language = language
            audit.record(
                session,
                actor_member_id=member.id,
                actor_user_id=telegram_user_id,
                action="invite.redeem",
                target_type="member",
                target_id=member.id,
                at=now,
            )
            try:
                await session.flush()
            except IntegrityError:
                raise Conflict(N_("This Telegram account is already linked to a member.")) from None
        return await self.identify(telegram_user_id)

    # --- access requests -----------------------------------------------------------------------

    async def request_access(
        self, telegram_user_id: int, full_name: str, unit_id: int, language: str | None
    ) -> AccessRequestView:
        name = clean_name(full_name)
        now = self.clock.now()
        async with self._write() as session:
            if await session.scalar(
                select(Member.id).where(Member.telegram_user_id == telegram_user_id)
            ):
                raise Conflict(N_("You are already a member."))
            unit = await self._active_unit(session, unit_id)
            pending = await session.scalar(
                select(AccessRequest).where(
                    AccessRequest.telegram_user_id == telegram_user_id,
                    AccessRequest.status == RequestStatus.PENDING.value,
                )
            )
            if pending is not None:
                raise Conflict(N_("Your request is already waiting for an administrator."))
            request = AccessRequest(
                telegram_user_id=telegram_user_id,
                full_name=name,
                unit_id=unit.id,
                language=language if language in ("vi", "en") else self.default_language,
                created_at=now,
            )
            session.add(request)
            await session.flush()
            audit.record(
                session,
                actor_member_id=None,
                actor_user_id=telegram_user_id,
                action="access.request",
                target_type="access_request",
                target_id=request.id,
                at=now,
                name=name,
                unit=unit.id,
            )
            await self._tell_admins(session, request, unit.name, now)
            return self._request_view(request, unit.name)

    async def _tell_admins(
        self, session: AsyncSession, request: AccessRequest, unit: str | None, now: datetime
    ) -> None:
        """Every administrator hears of the request (through the outbox: nothing is lost)."""
        rows = await session.execute(
            select(Member.telegram_user_id, Member.language).where(
                Member.role == Role.ADMIN.value,
                Member.active.is_(True),
                Member.telegram_user_id.is_not(None),
            )
        )
        admins: dict[int, str | None] = {int(uid): lang for uid, lang in rows if uid is not None}
        for uid in self.bootstrap_admins:
            admins.setdefault(uid, None)
        for chat_id, language in sorted(admins.items()):
            enqueue(
                session,
                chat_id=chat_id,
                message=JOIN_REQUEST,
                language=language,
                now=now,
                kind=Kind.ACCESS_REQUEST,
                buttons=[
                    [
                        button(N_("Approve"), data=f"acc:ok:{request.id}"),
                        button(N_("Reject"), data=f"acc:no:{request.id}"),
                    ]
                ],
                name=request.full_name,
                unit=unit or "—",
                id=request.telegram_user_id,
            )

    async def pending_request_of(self, telegram_user_id: int) -> AccessRequestView | None:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(AccessRequest, Unit.name)
                    .outerjoin(Unit, Unit.id == AccessRequest.unit_id)
                    .where(
                        AccessRequest.telegram_user_id == telegram_user_id,
                        AccessRequest.status == RequestStatus.PENDING.value,
                    )
                )
            ).first()
            return None if row is None else self._request_view(row[0], row[1])

    async def count_access_requests(self, viewer: Viewer) -> int:
        _require_admin(viewer)
        return await self._count(
            "requests",
            select(func.count()).where(AccessRequest.status == RequestStatus.PENDING.value),
        )

    async def list_access_requests(self, viewer: Viewer) -> list[AccessRequestView]:
        _require_admin(viewer)
        async with self.db.read() as session:
            rows = await session.execute(
                select(AccessRequest, Unit.name)
                .outerjoin(Unit, Unit.id == AccessRequest.unit_id)
                .where(AccessRequest.status == RequestStatus.PENDING.value)
                .order_by(AccessRequest.created_at)
            )
            return [self._request_view(r, u) for r, u in rows]

    async def decide_access_request(
        self, viewer: Viewer, request_id: int, *, approve: bool
    ) -> AccessRequestView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self._write() as session:
            request = await session.get(AccessRequest, request_id)
            if request is None:
                raise NotFound(N_("That request no longer exists."))
            status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
            decided = affected(
                await session.execute(
                    update(AccessRequest)
                    .where(
                        AccessRequest.id == request_id,
                        AccessRequest.status == RequestStatus.PENDING.value,
                    )
                    .values(status=status.value, decided_by=viewer.member_id, decided_at=now)
                )
            )
            if decided != 1:
                await session.refresh(request)
                raise AlreadyDecided(
                    N_("This request was already decided on {at}."), at=request.decided_at or now
                )
            unit_name = None
            if approve:
                unit = (
                    await self._active_unit(session, request.unit_id) if request.unit_id else None
                )
                unit_name = unit.name if unit else None
                await self._check_account_free(session, request.telegram_user_id)
                member = Member(
                    telegram_user_id=request.telegram_user_id,
                    full_name=request.full_name,
                    name_folded=fold(request.full_name),
                    unit_id=unit.id if unit else None,
                    role=Role.STAFF.value,
                    language=request.language,
                    created_at=now,
                    joined_at=now,
                )
                session.add(member)
                await session.flush()
                request.member_id = member.id
            await session.refresh(request)
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="access.approve" if approve else "access.reject",
                target_type="access_request",
                target_id=request.id,
                at=now,
            )
            enqueue(
                session,
                chat_id=request.telegram_user_id,
                message=ACCESS_DECISION[approve],
                language=request.language,
                now=now,
                kind=Kind.DECISION,
            )
            return self._request_view(request, unit_name)

    @staticmethod
    def _request_view(request: AccessRequest, unit_name: str | None) -> AccessRequestView:
        return AccessRequestView(
            id=request.id,
            telegram_user_id=request.telegram_user_id,
            full_name=request.full_name,
            unit_id=request.unit_id,
            unit_name=unit_name,
            status=RequestStatus(request.status),
            created_at=request.created_at,
            language=request.language,
        )

    # --- CSV import ----------------------------------------------------------------------------

    async def import_members_csv(self, data: bytes, *, actor: Viewer | None = None) -> int:
        """Columns: full_name, unit, role (optional), telegram_user_id (optional), position
        (optional). `unit` is a unit's code or exact name. All rows or none."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportError_(
                [
                    (
                        0,
                        N_(
                            "The file is not UTF-8 text (byte {position}). Save it "
                            "as “CSV UTF-8” and try again."
                        ),
                        {"position": exc.start},
                    )
                ]
            ) from None
        reader = csv.DictReader(io.StringIO(text))
        headers = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = {"full_name", "unit"} - set(headers)
        if missing:
            raise ImportError_(
                [(1, N_("Missing columns: {columns}."), {"columns": ", ".join(sorted(missing))})]
            )
        now = self.clock.now()
        problems: list[tuple[int, str, dict[str, object]]] = []
        async with self._write() as session:
            units = list(await session.scalars(select(Unit).where(Unit.active.is_(True))))
            by_key: dict[str, Unit] = {}
            for unit in units:
                by_key[fold(unit.name)] = unit
                if unit.code:
                    by_key[fold(unit.code)] = unit
            taken = {
                int(x or 0)
                for x in await session.scalars(
                    select(Member.telegram_user_id).where(Member.telegram_user_id.is_not(None))
                )
            }
            new: list[Member] = []
            for line_no, raw in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
                if not any(row.values()):
                    continue
                try:
                    name = clean_name(row.get("full_name", ""))
                except InvalidInput as exc:
                    problems.append((line_no, exc.message, exc.params))
                    continue
                found = by_key.get(fold(row.get("unit", "")))
                if found is None:
                    problems.append(
                        (line_no, N_("Unknown unit “{unit}”."), {"unit": row.get("unit", "")})
                    )
                    continue
                role_text = (row.get("role") or "staff").lower()
                try:
                    role = Role(role_text)
                except ValueError:
                    problems.append(
                        (
                            line_no,
                            N_("Unknown role “{role}” (staff, unit_officer, council, admin)."),
                            {"role": role_text},
                        )
                    )
                    continue
                user_id: int | None = None
                if row.get("telegram_user_id"):
                    if not row["telegram_user_id"].isdigit():
                        problems.append(
                            (
                                line_no,
                                N_("The Telegram id “{value}” is not a number."),
                                {"value": row["telegram_user_id"]},
                            )
                        )
                        continue
                    user_id = int(row["telegram_user_id"])
                    if user_id in taken:
                        problems.append(
                            (
                                line_no,
                                N_("The Telegram id {value} is already in use."),
                                {"value": user_id},
                            )
                        )
                        continue
                    taken.add(user_id)
                new.append(
                    Member(
                        full_name=name,
                        name_folded=fold(name),
                        unit_id=found.id,
                        role=role.value,
                        telegram_user_id=user_id,
                        position=row.get("position") or None,
                        language=self.default_language,
                        created_at=now,
                        joined_at=now if user_id else None,
                    )
                )
            if problems:
                raise ImportError_(problems)
            if not new:
                raise ImportError_([(0, N_("The file has no rows."), {})])
            session.add_all(new)
            await session.flush()
            audit.record(
                session,
                actor_member_id=actor.member_id if actor else None,
                action="member.import",
                target_type="member",
                target_id=None,
                at=now,
                count=len(new),
            )
        return len(new)


def _safe_display_name(raw: str) -> str:
    try:
        return clean_name(raw)
    except InvalidInput:
        return "Quản trị viên"
