"""Shared data and helpers for the group, announcement and scheduler tests (no tests here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.config import Settings
from bot.scheduler import SEEDED
from bot.services.clock import FixedClock
from bot.services.directory import Viewer
from bot.services.groups import GroupView
from bot.services.text import fold
from storage.db import Database
from storage.models import (
    Announcement,
    AnnouncementRun,
    Field,
    GoodDeed,
    Member,
    Movement,
    MovementStatus,
    Nomination,
    Role,
    Title,
    Unit,
)
from tests.harness import BotHarness, make_harness

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
ADMIN_TG = 1001
STAFF_TG = 5001


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """An instant given in office time, as an aware UTC datetime."""
    return datetime(y, mo, d, h, mi, s, tzinfo=HCM).astimezone(UTC)


@dataclass
class World:
    units: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    field_id: int = 0
    title_id: int = 0
    movement_id: int = 0


async def make_world(db: Database) -> World:
    """Units: an office, department A with a sub-unit A1, sub-department B; an admin and staff."""
    w = World()
    async with db.transaction() as session:
        office = Unit(name="Cục Thống kê", kind="office")
        session.add(office)
        await session.flush()
        a = Unit(name="Phòng Thống kê Kinh tế", parent_id=office.id)
        b = Unit(name="Chi cục Thống kê khu vực Đông Anh", kind="sub_department")
        session.add_all([a, b])
        await session.flush()
        a1 = Unit(name="Tổ Nông nghiệp", parent_id=a.id)
        session.add(a1)
        await session.flush()
        w.units = {"office": office.id, "a": a.id, "a1": a1.id, "b": b.id}
        people = [
            ("admin", "Trần Quản Trị", Role.ADMIN, a.id, ADMIN_TG),
            ("staff", "Nguyễn Thị Lan", Role.STAFF, a.id, STAFF_TG),
            ("an", "Lê Văn An", Role.STAFF, a1.id, None),
            ("binh", "Phạm Thị Bình", Role.STAFF, b.id, None),
            ("cuong", "Hoàng Văn Cường", Role.STAFF, b.id, None),
        ]
        for key, name, role, unit, tg in people:
            member = Member(
                full_name=name,
                name_folded=fold(name),
                unit_id=unit,
                role=role.value,
                telegram_user_id=tg,
                language="vi",
            )
            session.add(member)
            await session.flush()
            w.members[key] = member.id
        f = Field(name="Chuyên môn nghiệp vụ")
        t = Title(name="Lao động tiên tiến")
        session.add_all([f, t])
        await session.flush()
        w.field_id, w.title_id = f.id, t.id
    return w


def admin_viewer(w: World) -> Viewer:
    return Viewer(ADMIN_TG, w.members["admin"], "Trần Quản Trị", Role.ADMIN, w.units["a"], "vi")


def staff_viewer(w: World) -> Viewer:
    return Viewer(STAFF_TG, w.members["staff"], "Nguyễn Thị Lan", Role.STAFF, w.units["a"], "vi")


async def add_deed(
    db: Database,
    w: World,
    *,
    subject: str = "an",
    unit: str = "a1",
    decided_at: datetime,
    description: str = "Nhặt được ví và trả lại người đánh rơi",
    status: str = "approved",
    occurred_on: date | None = None,
) -> int:
    async with db.transaction() as session:
        name = await session.scalar(select(Member.full_name).where(Member.id == w.members[subject]))
        deed = GoodDeed(
            reporter_id=w.members["staff"],
            subject_kind="individual",
            subject_member_id=w.members[subject],
            unit_id=w.units[unit],
            unit_name_at_time=await session.scalar(
                select(Unit.name).where(Unit.id == w.units[unit])
            ),
            subject_name_at_time=name,
            description=description,
            occurred_on=occurred_on,
            status=status,
            submitted_at=decided_at - timedelta(hours=2),
            decided_at=decided_at,
        )
        session.add(deed)
        await session.flush()
        return deed.id


async def add_exemplar(
    db: Database,
    w: World,
    *,
    nominee: str,
    decided_at: datetime,
    practices: str = "Số hoá quy trình thu thập phiếu điều tra",
    movement_id: int | None = None,
) -> int:
    async with db.transaction() as session:
        member = await session.get(Member, w.members[nominee])
        assert member is not None
        n = Nomination(
            nominator_id=w.members["staff"],
            nominee_kind="individual",
            nominee_member_id=member.id,
            unit_id=member.unit_id,
            unit_name_at_time="Phòng Thống kê Kinh tế",
            nominee_name_at_time=member.full_name,
            movement_id=movement_id,
            field_id=w.field_id,
            title_id=w.title_id,
            achievements="Hoàn thành xuất sắc nhiệm vụ năm",
            good_practices=practices,
            status="approved",
            submitted_at=decided_at - timedelta(days=3),
            decided_at=decided_at,
        )
        session.add(n)
        await session.flush()
        return n.id


async def add_movement(
    db: Database,
    *,
    name: str,
    starts_on: date,
    ends_on: date,
    deadline: datetime,
    status: MovementStatus = MovementStatus.DRAFT,
) -> int:
    async with db.transaction() as session:
        m = Movement(
            name=name,
            starts_on=starts_on,
            ends_on=ends_on,
            nomination_deadline=deadline,
            status=status.value,
        )
        session.add(m)
        await session.flush()
        return m.id


async def add_group(
    h: BotHarness,
    w: World,
    chat_id: int,
    title: str,
    *,
    unit: str | None = None,
    kind: str = "supergroup",
    language: str | None = None,
) -> GroupView:
    """A group in the fake Telegram with the bot in it, registered by the admin."""
    h.core.group(chat_id, title, type=kind)
    admin = admin_viewer(w)
    added = await h.services.groups.bot_added(admin, chat_id, title)
    assert added.accepted and added.group is not None
    group = added.group
    if unit is not None:
        group = await h.services.groups.link_unit(admin, group.id, w.units[unit])
    if language is not None:
        group = await h.services.groups.set_language(admin, group.id, language)
    return group


@asynccontextmanager
async def running_bot(
    settings: Settings, clock: FixedClock, core: Any = None, *, seed: bool = False
) -> AsyncIterator[BotHarness]:
    """The application on the offline Bot API; the default announcements are only created
    when `seed` (they would post alongside what a test schedules)."""
    h, app = await make_harness(settings, clock, core)
    if not seed:
        app.bot_data[SEEDED] = True
    try:
        yield h
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        assert not h.core.unknown_fields, h.core.unknown_fields


def texts(h: BotHarness, chat_id: int) -> list[str]:
    return [str(m.get("text") or "") for m in h.core.sent(chat_id)]


async def runs(db: Database, announcement_id: int | None = None) -> list[AnnouncementRun]:
    async with db.read() as session:
        stmt = select(AnnouncementRun).order_by(AnnouncementRun.id)
        if announcement_id is not None:
            stmt = stmt.where(AnnouncementRun.announcement_id == announcement_id)
        return list(await session.scalars(stmt))


async def announcement(db: Database, announcement_id: int) -> Announcement:
    async with db.read() as session:
        row = await session.get(Announcement, announcement_id)
        assert row is not None
        return row


async def seeded(db: Database, seed: str) -> Announcement:
    async with db.read() as session:
        for row in await session.scalars(select(Announcement)):
            if (row.payload or {}).get("seed") == seed:
                return row
    raise AssertionError(f"no seeded announcement {seed}")


__all__ = ["MovementStatus"]
