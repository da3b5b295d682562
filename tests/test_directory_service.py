"""The directory's rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.services.clock import FixedClock
from bot.services.directory import DirectoryService, ImportError_, Role, Viewer
from bot.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed, NotFound
from storage.db import Database
from storage.models import AuditEntry, Member, UnitKind

ADMIN_TG = 1001


@pytest.fixture
def directory(db: Database, clock: FixedClock) -> DirectoryService:
    return DirectoryService(db, clock, admin_ids=[ADMIN_TG], invite_ttl=timedelta(hours=72))


@pytest.fixture
async def admin(directory: DirectoryService) -> Viewer:
    return await directory.ensure_bootstrap_admin(ADMIN_TG, "Trần Quản Trị", "vi")


async def test_stranger_then_bootstrap_admin(directory: DirectoryService) -> None:
    stranger = await directory.identify(555)
    assert not stranger.is_member and stranger.role is None
    with pytest.raises(NotAllowed):
        await directory.ensure_bootstrap_admin(555, "Kẻ Lạ", "vi")
    admin = await directory.ensure_bootstrap_admin(ADMIN_TG, "Trần Quản Trị", "vi")
    assert admin.is_admin and admin.full_name == "Trần Quản Trị"
    again = await directory.ensure_bootstrap_admin(ADMIN_TG, "Other", "en")
    assert again.member_id == admin.member_id


async def test_units_tree_rename_move_merge_keep_history(
    directory: DirectoryService, admin: Viewer, clock: FixedClock, db: Database
) -> None:
    office = await directory.add_unit(admin, "Cục Thống kê tỉnh", kind=UnitKind.OFFICE)
    a = await directory.add_unit(admin, "Phòng Tổng hợp", parent_id=office.id)
    b = await directory.add_unit(
        admin, "Chi cục Thống kê khu vực I", parent_id=office.id, kind=UnitKind.SUB_DEPARTMENT
    )
    tree = await directory.list_units()
    assert [(u.name, u.depth) for u in tree] == [
        ("Cục Thống kê tỉnh", 0),
        ("Chi cục Thống kê khu vực I", 1),
        ("Phòng Tổng hợp", 1),
    ]
    with pytest.raises(Conflict):
        await directory.add_unit(admin, "phong tong hop")  # same name, folded
    with pytest.raises(InvalidInput):
        await directory.move_unit(admin, office.id, a.id)  # a cycle

    clock.advance(timedelta(days=1))
    await directory.rename_unit(admin, a.id, "Phòng Tổng hợp - Hành chính")
    history = await directory.unit_name_history(a.id)
    assert [h[0] for h in history] == ["Phòng Tổng hợp", "Phòng Tổng hợp - Hành chính"]
    assert history[0][2] is not None and history[1][2] is None

    member = await directory.add_member(admin, "Lê Văn Bình", b.id)
    clock.advance(timedelta(days=1))
    target = await directory.merge_units(admin, b.id, a.id)
    assert target.id == a.id
    moved = await directory.get_member(member.id)
    assert moved.unit_id == a.id
    merged = await directory.get_unit(b.id)
    assert not merged.active and merged.merged_into_id == a.id
    assert [u.id for u in await directory.list_units()] == [office.id, a.id]
    with pytest.raises(Conflict):
        await directory.rename_unit(admin, b.id, "Tên mới")  # merged units are history

    with pytest.raises(Conflict):
        await directory.deactivate_unit(admin, a.id)  # still has members
    async with db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert "unit.merge" in actions and "unit.rename" in actions


async def test_staff_cannot_manage(directory: DirectoryService, admin: Viewer) -> None:
    unit = await directory.add_unit(admin, "Phòng Nghiệp vụ")
    staff_member = await directory.add_member(admin, "Phạm Thị Hoa", unit.id, telegram_user_id=2002)
    staff = await directory.identify(2002)
    assert staff.member_id == staff_member.id and staff.role is Role.STAFF
    for attempt in (
        directory.add_unit(staff, "X Y"),
        directory.rename_unit(staff, unit.id, "X Y"),
        directory.add_member(staff, "Ai Đó", unit.id),
        directory.create_invite(staff, staff_member.id),
        directory.change_member(staff, staff_member.id, role=Role.ADMIN),
        directory.list_access_requests(staff),
    ):
        with pytest.raises(NotAllowed):
            await attempt


async def test_member_search_is_diacritics_insensitive(
    directory: DirectoryService, admin: Viewer
) -> None:
    unit = await directory.add_unit(admin, "Phòng Dân số")
    for name in ("Nguyễn Văn A", "Nguyễn Thị Đào", "Trần Văn Nguyên", "Lê Ánh"):
        await directory.add_member(admin, name, unit.id)
    found = await directory.list_members(admin, query="nguyen van a")
    assert [m.full_name for m in found.items] == ["Nguyễn Văn A"]
    found = await directory.list_members(admin, query="DAO")
    assert [m.full_name for m in found.items] == ["Nguyễn Thị Đào"]
    found = await directory.list_members(admin, query="nguyen")
    assert found.total == 3
    found = await directory.list_members(admin, query="100%_")
    assert found.total == 0  # LIKE wildcards are literal
    with pytest.raises(InvalidInput):
        await directory.list_members(admin, query="a")


async def test_names_with_html_and_emoji_are_kept_literally(
    directory: DirectoryService, admin: Viewer
) -> None:
    unit = await directory.add_unit(admin, "<b>Phòng</b> & Co 🌸")
    member = await directory.add_member(admin, "<i>Lan</i> 🌸\u200b Nguyễn", unit.id)
    assert unit.name == "<b>Phòng</b> & Co 🌸"
    assert member.full_name == "<i>Lan</i> 🌸 Nguyễn"  # the zero-width space is dropped
    with pytest.raises(InvalidInput):
        await directory.add_member(admin, "x" * 500, unit.id)
    with pytest.raises(InvalidInput):
        await directory.add_member(admin, " \u200b ", unit.id)


async def test_invite_once_then_refused(
    directory: DirectoryService, admin: Viewer, clock: FixedClock
) -> None:
    unit = await directory.add_unit(admin, "Phòng Công nghiệp")
    member = await directory.add_member(admin, "Võ Thị Mai", unit.id)
    invite = await directory.create_invite(admin, member.id)
    assert invite.expires_at == clock.now() + timedelta(hours=72)
    joined = await directory.redeem_invite(invite.token, 3003, "vi")
    assert joined.member_id == member.id and joined.role is Role.STAFF
    with pytest.raises(AlreadyDecided):
        await directory.redeem_invite(invite.token, 3003, "vi")
    with pytest.raises(AlreadyDecided):
        await directory.redeem_invite(invite.token, 4004, "vi")
    with pytest.raises(Conflict):
        await directory.create_invite(admin, member.id)  # already joined


async def test_invite_bad_tokens(
    directory: DirectoryService, admin: Viewer, clock: FixedClock
) -> None:
    unit = await directory.add_unit(admin, "Phòng Nông nghiệp")
    member = await directory.add_member(admin, "Đỗ Văn Hùng", unit.id)
    invite = await directory.create_invite(admin, member.id)
    for bad in (
        "",
        "short",
        "x" * 65,
        "bad token with spaces!!",
        "<script>alert(1)</script>",
        "' OR 1=1 --aaaaaaaaaa",
    ):
        with pytest.raises(InvalidInput):
            await directory.redeem_invite(bad, 5005, "vi")
    with pytest.raises(NotFound):
        await directory.redeem_invite("A" * 24, 5005, "vi")
    clock.advance(timedelta(hours=73))
    with pytest.raises(AlreadyDecided):
        await directory.redeem_invite(invite.token, 5005, "vi")
    assert not (await directory.identify(5005)).is_member


async def test_invite_race_has_one_winner(directory: DirectoryService, admin: Viewer) -> None:
    unit = await directory.add_unit(admin, "Phòng Xây dựng")
    member = await directory.add_member(admin, "Hồ Văn Nam", unit.id)
    invite = await directory.create_invite(admin, member.id)
    results = await asyncio.gather(
        directory.redeem_invite(invite.token, 6006, "vi"),
        directory.redeem_invite(invite.token, 7007, "vi"),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Viewer)]
    assert len(winners) == 1, results
    assert all(isinstance(r, (AlreadyDecided, Conflict)) for r in results if r not in winners)


async def test_access_request_approved_once(directory: DirectoryService, admin: Viewer) -> None:
    unit = await directory.add_unit(admin, "Phòng Thương mại")
    request = await directory.request_access(8008, "Ngô Thị Thu", unit.id, "en")
    with pytest.raises(Conflict):
        await directory.request_access(8008, "Ngô Thị Thu", unit.id, "en")
    assert (await directory.pending_request_of(8008)) is not None
    pending = await directory.list_access_requests(admin)
    assert [r.id for r in pending] == [request.id]
    decided = await directory.decide_access_request(admin, request.id, approve=True)
    assert decided.status.value == "approved"
    with pytest.raises(AlreadyDecided):
        await directory.decide_access_request(admin, request.id, approve=False)
    member = await directory.identify(8008)
    assert member.is_member and member.unit_id == unit.id and member.language == "en"
    with pytest.raises(Conflict):
        await directory.request_access(8008, "Ngô Thị Thu", unit.id, "vi")


async def test_access_request_rejected(directory: DirectoryService, admin: Viewer) -> None:
    unit = await directory.add_unit(admin, "Phòng Xã hội")
    request = await directory.request_access(9009, "Kiều Văn Lợi", unit.id, "vi")
    await directory.decide_access_request(admin, request.id, approve=False)
    assert not (await directory.identify(9009)).is_member
    assert await directory.pending_request_of(9009) is None


async def test_admin_cannot_demote_or_deactivate_self(
    directory: DirectoryService, admin: Viewer
) -> None:
    assert admin.member_id is not None
    with pytest.raises(NotAllowed):
        await directory.change_member(admin, admin.member_id, role=Role.STAFF)
    with pytest.raises(NotAllowed):
        await directory.change_member(admin, admin.member_id, active=False)


async def test_deactivated_member_is_a_stranger(directory: DirectoryService, admin: Viewer) -> None:
    unit = await directory.add_unit(admin, "Phòng Tài chính")
    member = await directory.add_member(admin, "Mai Văn Tư", unit.id, telegram_user_id=1212)
    assert (await directory.identify(1212)).is_member
    await directory.change_member(admin, member.id, active=False)
    assert not (await directory.identify(1212)).is_member


CSV_OK = (
    "full_name,unit,role,telegram_user_id,position\n"
    "Nguyễn Văn An,PTH,staff,,Chuyên viên\n"
    '"<b>Trần</b> Thị Bé 🌸",Phòng Tổng hợp,council,4242,\n'
)


async def test_import_csv_all_rows(
    directory: DirectoryService, admin: Viewer, db: Database
) -> None:
    await directory.add_unit(admin, "Phòng Tổng hợp", code="PTH")
    count = await directory.import_members_csv(("\ufeff" + CSV_OK).encode("utf-8"))
    assert count == 2
    bee = await directory.identify(4242)
    assert bee.role is Role.COUNCIL and bee.full_name == "<b>Trần</b> Thị Bé 🌸"


async def test_import_csv_all_or_nothing_with_line_numbers(
    directory: DirectoryService, admin: Viewer, db: Database
) -> None:
    await directory.add_unit(admin, "Phòng Tổng hợp", code="PTH")
    bad = CSV_OK + "Lê Văn C,Phòng Không Có,staff,,\nX,PTH,boss,abc,\n"
    with pytest.raises(ImportError_) as caught:
        await directory.import_members_csv(bad.encode())
    lines = [p[0] for p in caught.value.problems]
    assert lines == [4, 5]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 1  # the admin


async def test_import_csv_wrong_encoding_and_headers(
    directory: DirectoryService, admin: Viewer
) -> None:
    await directory.add_unit(admin, "Phòng Tổng hợp", code="PTH")
    with pytest.raises(ImportError_) as caught:
        await directory.import_members_csv(CSV_OK.encode("cp1258", errors="replace"))
    assert "UTF-8" in caught.value.problems[0][1]
    with pytest.raises(ImportError_):
        await directory.import_members_csv(b"name,department\nA,B\n")
    with pytest.raises(ImportError_):
        await directory.import_members_csv(b"full_name,unit\n")


async def test_member_cache_is_cleared_by_changes_and_expires(
    db: Database, clock: FixedClock
) -> None:
    directory = DirectoryService(db, clock, admin_ids=[ADMIN_TG], viewer_cache_seconds=0.3)
    admin = await directory.ensure_bootstrap_admin(ADMIN_TG, "Trần Quản Trị", "vi")
    unit = await directory.add_unit(admin, "Phòng Kiểm tra")
    member = await directory.add_member(admin, "Lý Văn Kiểm", unit.id, telegram_user_id=7777)
    assert (await directory.identify(7777)).role is Role.STAFF
    # a change made through the service applies at once
    await directory.change_member(admin, member.id, role=Role.COUNCIL)
    assert (await directory.identify(7777)).role is Role.COUNCIL
    await directory.change_member(admin, member.id, active=False)
    assert not (await directory.identify(7777)).is_member
    # strangers are never remembered: joining applies at once
    await directory.change_member(admin, member.id, active=True)
    assert (await directory.identify(7777)).is_member
    # a change made elsewhere (another process) applies within the TTL
    async with db.transaction() as session:
        row = await session.get(Member, member.id)
        assert row is not None
        row.role = Role.ADMIN.value
    assert (await directory.identify(7777)).role is Role.COUNCIL  # still remembered
    await asyncio.sleep(0.35)
    assert (await directory.identify(7777)).role is Role.ADMIN
