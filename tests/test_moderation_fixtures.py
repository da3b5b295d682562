"""Shared data for the moderation, voting and exemplar tests (no tests here).

Submissions are created directly with the models (status "submitted"), independent of the
submissions feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.services.directory import Viewer
from bot.services.text import fold
from storage.db import Database
from storage.models import (
    Attachment,
    Field,
    GoodDeed,
    Member,
    Movement,
    MovementStatus,
    Nomination,
    OutboxMessage,
    Role,
    Title,
    Unit,
)

ADMIN_TG = 1001
COUNCIL_TG = (3001, 3002, 3003)
OFFICER_TG = 4001
STAFF_TG = 5001
OTHER_STAFF_TG = 5002
NOMINEE_TG = 5003
OFFICER_B_TG = 4002


@dataclass
class World:
    units: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    tg: dict[str, int] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    unit_of: dict[str, int] = field(default_factory=dict)
    movement: int = 0
    archived_movement: int = 0
    title: int = 0
    strict_title: int = 0
    field: int = 0

    def viewer(self, key: str) -> Viewer:
        return Viewer(
            self.tg[key],
            self.members[key],
            key,
            self.roles[key],
            self.unit_of[key],
            "vi",
        )


async def seed(db: Database, *, admin: bool = True) -> World:
    """Two units, an admin, a three-member council, a unit officer per unit, staff, a nominee,
    a current and an archived movement, two titles (one with its own threshold 0.7)."""
    w = World()
    async with db.transaction() as session:
        a = Unit(name="Phòng Thống kê Tổng hợp", code="TH")
        b = Unit(name="Chi cục Thống kê khu vực Đông Anh", code="DA")
        session.add_all([a, b])
        await session.flush()
        w.units = {"a": a.id, "b": b.id}
        people: list[tuple[str, str, Role, int, int | None]] = [
            ("council1", "Lê Văn Hội", Role.COUNCIL, a.id, COUNCIL_TG[0]),
            ("council2", "Phạm Thị Đồng", Role.COUNCIL, a.id, COUNCIL_TG[1]),
            ("council3", "Hoàng Minh Thi", Role.COUNCIL, b.id, COUNCIL_TG[2]),
            ("officer", "Đỗ Văn Cán", Role.UNIT_OFFICER, a.id, OFFICER_TG),
            ("officer_b", "Vũ Thị Bộ", Role.UNIT_OFFICER, b.id, OFFICER_B_TG),
            ("staff", "Nguyễn Thị Lan", Role.STAFF, a.id, STAFF_TG),
            ("staff_b", "Trịnh Văn Bắc", Role.STAFF, b.id, OTHER_STAFF_TG),
            ("nominee", "Trần Văn Được", Role.STAFF, a.id, NOMINEE_TG),
        ]
        if admin:
            people.insert(0, ("admin", "Trần Quản Trị", Role.ADMIN, a.id, ADMIN_TG))
        for key, name, role, unit, tg in people:
            m = Member(
                full_name=name,
                name_folded=fold(name),
                unit_id=unit,
                role=role.value,
                telegram_user_id=tg,
                language="vi",
            )
            session.add(m)
            await session.flush()
            w.members[key] = m.id
            w.tg[key] = tg or 0
            w.roles[key] = role
            w.unit_of[key] = unit
        f = Field(name="Chuyên môn nghiệp vụ")
        t = Title(name="Lao động tiên tiến")
        strict = Title(name="Chiến sĩ thi đua cơ sở", approval_threshold=0.7)
        now = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
        mv = Movement(
            name="Thi đua thực hiện thắng lợi nhiệm vụ năm 2026",
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            nomination_deadline=now + timedelta(days=300),
            status=MovementStatus.OPEN.value,
        )
        old = Movement(
            name="Phong trào thi đua năm 2024",
            starts_on=date(2024, 1, 1),
            ends_on=date(2024, 12, 31),
            nomination_deadline=now - timedelta(days=400),
            status=MovementStatus.ARCHIVED.value,
        )
        session.add_all([f, t, strict, mv, old])
        await session.flush()
        w.field, w.title, w.strict_title = f.id, t.id, strict.id
        w.movement, w.archived_movement = mv.id, old.id
    return w


async def add_nomination(
    db: Database,
    w: World,
    *,
    nominator: str = "staff",
    nominee: str | None = "nominee",
    nominee_unit: str | None = None,
    status: str = "submitted",
    title: int | None = None,
    movement: int | None = None,
    submitted_at: datetime | None = None,
    achievements: str = "Hoàn thành xuất sắc nhiệm vụ điều tra doanh nghiệp",
    practices: str = "Số hoá quy trình thu thập phiếu",
    photos: list[str] = (),  # type: ignore[assignment]
    name: str | None = None,
    **extra: Any,
) -> int:
    async with db.transaction() as session:
        member_name = None
        if nominee is not None:
            member_name = await session.scalar(
                select(Member.full_name).where(Member.id == w.members[nominee])
            )
        unit_id = w.units[nominee_unit] if nominee_unit else w.unit_of.get(nominee or "", None)
        n = Nomination(
            nominator_id=w.members[nominator],
            nominee_kind="collective" if nominee_unit else "individual",
            nominee_member_id=w.members[nominee] if nominee else None,
            nominee_unit_id=w.units[nominee_unit] if nominee_unit else None,
            unit_id=unit_id,
            unit_name_at_time="Phòng Thống kê Tổng hợp",
            nominee_name_at_time=name or member_name,
            movement_id=movement if movement is not None else w.movement,
            field_id=w.field,
            title_id=title or w.title,
            achievements=achievements,
            good_practices=practices,
            status=status,
            submitted_at=submitted_at or datetime(2026, 3, 1, 1, 0, tzinfo=UTC),
            decided_at=extra.pop("decided_at", None),
            **extra,
        )
        session.add(n)
        await session.flush()
        for file_id in photos:
            session.add(
                Attachment(
                    nomination_id=n.id,
                    kind="photo",
                    file_id=file_id,
                    file_unique_id=file_id[-10:],
                )
            )
        return n.id


async def add_deed(
    db: Database,
    w: World,
    *,
    reporter: str = "staff",
    subject: str = "nominee",
    unit: str = "a",
    status: str = "submitted",
    submitted_at: datetime | None = None,
    description: str = "Nhặt được ví và trả lại người đánh rơi",
    **extra: Any,
) -> int:
    async with db.transaction() as session:
        name = await session.scalar(select(Member.full_name).where(Member.id == w.members[subject]))
        d = GoodDeed(
            reporter_id=w.members[reporter],
            subject_kind="individual",
            subject_member_id=w.members[subject],
            unit_id=w.units[unit],
            unit_name_at_time="Phòng Thống kê Tổng hợp" if unit == "a" else "Chi cục Đông Anh",
            subject_name_at_time=name,
            description=description,
            occurred_on=date(2026, 2, 20),
            place="Trụ sở Cục",
            status=status,
            submitted_at=submitted_at or datetime(2026, 3, 1, 0, 30, tzinfo=UTC),
            **extra,
        )
        session.add(d)
        await session.flush()
        return d.id


async def outbox_to(db: Database, chat_id: int) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == chat_id)
                .order_by(OutboxMessage.id)
            )
        )
