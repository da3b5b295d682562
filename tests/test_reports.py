"""The sơ kết / tổng kết report engine: figures, authorisation, summary, XLSX/CSV/PNG files.

Every test runs on both backends through the shared `db` fixture (tests/conftest.py): a migrated
SQLite file, and a uniquely named PostgreSQL database cloned from a migrated template at
127.0.0.1:5432 and dropped afterwards (skipped when unreachable, a failure when CI=true).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import struct
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.services.clock import FixedClock
from bot.services.errors import InvalidInput, NotAllowed, NotFound
from bot.services.report_files import (
    DEED_COLUMNS,
    EXEMPLAR_COLUMNS,
    NOMINATION_COLUMNS,
    UNIT_COLUMNS,
    chart_deeds_per_unit_month,
    chart_deeds_per_unit_month_async,
    chart_exemplars_per_field,
    chart_exemplars_per_field_async,
    headers,
    to_csv,
    to_csv_async,
    to_xlsx,
    to_xlsx_async,
)
from bot.services.reports import (
    MESSAGE_LIMIT,
    ReportData,
    ReportPeriod,
    ReportScope,
    UnitStat,
    build_report,
    fmt_int,
    render_summary,
    unit_label,
)
from storage.db import Database
from storage.models import (
    Field,
    GoodDeed,
    Member,
    Movement,
    Nomination,
    Role,
    Unit,
    UnitKind,
    UnitName,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)
YEAR_2025 = ReportPeriod.for_year(2025)

OLD_KV1 = "Chi cục Thống kê thành phố Hòa Bình"
NEW_KV1 = "Chi cục Thống kê khu vực I"
LAC_SON = "Chi cục Thống kê huyện Lạc Sơn"
EVIL_NAME = "<b>Lê & Co</b>"


# --- fixtures: a small office with a 2025 history ------------------------------------------------


@dataclasses.dataclass
class Seed:
    office: int
    dept_th: int  # Phòng Thống kê Tổng hợp
    dept_tt: int  # Phòng Thu thập thông tin: no activity
    kv1: int  # renamed in 2025
    team: int  # child of kv1
    lac_son: int  # merged into kv1 in 2025
    admin: int
    officer: int  # unit officer of kv1
    officer_th: int  # unit officer of dept_th
    staff: int
    council: int
    former_admin: int  # inactive
    movement: int
    nominations: dict[str, int]


def utc(y: int, mo: int, d: int, h: int = 3) -> datetime:
    return datetime(y, mo, d, h, tzinfo=UTC)


async def seed(db: Database) -> Seed:
    async with db.transaction() as s:
        office = Unit(name="Thống kê tỉnh Hòa Bình", code="TK", kind=UnitKind.OFFICE.value)
        s.add(office)
        await s.flush()
        dept_th = Unit(name="Phòng Thống kê Tổng hợp", code="TH", parent_id=office.id)
        dept_tt = Unit(name="Phòng Thu thập thông tin", code="TT", parent_id=office.id)
        kv1 = Unit(
            name=NEW_KV1, code="KV1", kind=UnitKind.SUB_DEPARTMENT.value, parent_id=office.id
        )
        s.add_all([dept_th, dept_tt, kv1])
        await s.flush()
        team = Unit(name="Tổ Thống kê số 1", code="T1", kind="other", parent_id=kv1.id)
        lac_son = Unit(
            name=LAC_SON,
            code="LS",
            kind=UnitKind.SUB_DEPARTMENT.value,
            parent_id=office.id,
            active=False,
            merged_into_id=kv1.id,
        )
        s.add_all([team, lac_son])
        await s.flush()
        s.add_all(
            [
                UnitName(
                    unit_id=kv1.id,
                    name=OLD_KV1,
                    valid_from=utc(2020, 1, 1),
                    valid_to=utc(2025, 7, 1),
                ),
                UnitName(unit_id=kv1.id, name=NEW_KV1, valid_from=utc(2025, 7, 1)),
            ]
        )

        def member(name: str, unit: Unit, role: Role, active: bool = True) -> Member:
            m = Member(
                full_name=name,
                name_folded=name.lower(),
                unit_id=unit.id,
                role=role.value,
                active=active,
            )
            s.add(m)
            return m

        admin = member("Nguyễn Văn Quản", office, Role.ADMIN)
        officer = member("Trần Thị Khu", kv1, Role.UNIT_OFFICER)
        officer_th = member("Phạm Văn Hợp", dept_th, Role.UNIT_OFFICER)
        staff = member("Lê Thị Nhân", dept_th, Role.STAFF)
        council = member("Đỗ Văn Hội", office, Role.COUNCIL)
        former = member("Vũ Văn Cũ", office, Role.ADMIN, active=False)
        evil = member(EVIL_NAME, dept_th, Role.STAFF)
        hoa = member("Hoàng Thị Hoa", kv1, Role.STAFF)
        son = member("Bùi Văn Sơn", lac_son, Role.STAFF)
        minh = member("Đinh Văn Minh", team, Role.STAFF)
        await s.flush()

        cmnv = Field(name="Chuyên môn nghiệp vụ", sort_order=1)
        cds = Field(name="Chuyển đổi số", sort_order=2)
        cchc = Field(name="Cải cách hành chính", sort_order=3)
        s.add_all([cmnv, cds, cchc])
        movement = Movement(
            name="Thi đua chuyển đổi số năm 2025",
            starts_on=date(2025, 3, 1),
            ends_on=date(2025, 11, 30),
            nomination_deadline=utc(2025, 11, 30, 10),
            status="closed",
        )
        s.add(movement)
        await s.flush()

        noms: dict[str, Nomination] = {}

        def nominate(
            key: str,
            nominee: Member | None,
            unit: Unit,
            unit_name: str,
            status: str,
            submitted: datetime | None,
            *,
            field: Field | None = None,
            nominator: Member = staff,
            collective: Unit | None = None,
            movement_id: int | None = None,
            **extra: Any,
        ) -> None:
            n = Nomination(
                nominator_id=nominator.id,
                nominee_kind="collective" if collective else "individual",
                nominee_member_id=nominee.id if nominee else None,
                nominee_unit_id=collective.id if collective else None,
                nominee_name_at_time=(nominee.full_name if nominee else unit_name),
                unit_id=unit.id,
                unit_name_at_time=unit_name,
                field_id=field.id if field else None,
                movement_id=movement_id,
                status=status,
                submitted_at=submitted,
                decided_at=submitted.replace(day=min(submitted.day + 5, 28))
                if submitted and status in ("approved", "rejected")
                else None,
                achievements=f"Thành tích của {nominee.full_name if nominee else unit_name}",
                **extra,
            )
            noms[key] = n
            s.add(n)

        mid = movement.id
        nominate(
            "n1",
            hoa,
            kv1,
            OLD_KV1,
            "approved",
            utc(2025, 3, 10),
            field=cds,
            movement_id=mid,
            good_practices="Số hoá phiếu điều tra, cập nhật hằng ngày",
        )
        nominate(
            "n2",
            evil,
            dept_th,
            "Phòng Thống kê Tổng hợp",
            "approved",
            utc(2025, 5, 5),
            field=cmnv,
            good_practices="<script>alert(1)</script> & dùng bảng tính chung",
        )
        noms["n2"].achievements = "=SUM(A1:A9)"
        nominate(
            "n3",
            None,
            kv1,
            NEW_KV1,
            "approved",
            utc(2025, 9, 1),
            field=cchc,
            collective=kv1,
            movement_id=mid,
            good_practices="Một cửa liên thông",
        )
        nominate(
            "n4",
            staff,
            dept_th,
            "Phòng Thống kê Tổng hợp",
            "approved",
            utc(2025, 4, 1),
            field=cmnv,
            revoked_at=utc(2025, 10, 1),
            revoke_reason="Vi phạm kỷ luật",
            good_practices="Không được nhân rộng (đã thu hồi)",
        )
        nominate("n5", minh, team, "Tổ Thống kê số 1", "submitted", utc(2025, 6, 1))
        nominate("n6", staff, dept_th, "Phòng Thống kê Tổng hợp", "in_review", utc(2025, 6, 15))
        nominate("n7", hoa, kv1, NEW_KV1, "rejected", utc(2025, 7, 10), movement_id=mid)
        nominate(
            "n8", evil, dept_th, "Phòng Thống kê Tổng hợp", "changes_requested", utc(2025, 8, 1)
        )
        nominate("n9", hoa, kv1, NEW_KV1, "withdrawn", utc(2025, 8, 2))
        nominate("n10", hoa, kv1, NEW_KV1, "draft", None)
        nominate("n11", son, lac_son, LAC_SON, "approved", utc(2025, 2, 10), field=cmnv)
        nominate(
            "n12",
            staff,
            dept_th,
            "Phòng Thống kê Tổng hợp",
            "approved",
            utc(2024, 12, 20),
            field=cmnv,
        )
        # 31/12/2025 18:00 UTC is 01/01/2026 01:00 in Hà Nội: a 2026 nomination
        nominate(
            "n13",
            staff,
            dept_th,
            "Phòng Thống kê Tổng hợp",
            "approved",
            datetime(2025, 12, 31, 18, 0, tzinfo=UTC),
            field=cds,
        )
        nominate("n14", hoa, kv1, NEW_KV1, "submitted", utc(2025, 10, 10), nominator=officer)
        nominate("n15", minh, team, "Tổ Thống kê số 1", "approved", utc(2025, 8, 8))

        def deed(
            unit: Unit,
            unit_name: str,
            subject: Member,
            occurred: date | None,
            submitted: datetime,
            status: str = "approved",
        ) -> None:
            s.add(
                GoodDeed(
                    reporter_id=staff.id,
                    subject_kind="individual",
                    subject_member_id=subject.id,
                    subject_name_at_time=subject.full_name,
                    unit_id=unit.id,
                    unit_name_at_time=unit_name,
                    description=f"Việc tốt của {subject.full_name}",
                    occurred_on=occurred,
                    place="Trụ sở",
                    status=status,
                    submitted_at=submitted,
                )
            )

        deed(kv1, OLD_KV1, hoa, date(2025, 1, 15), utc(2025, 1, 16))
        deed(kv1, NEW_KV1, hoa, date(2025, 8, 20), utc(2025, 8, 21))
        # no date given: 31/08/2025 20:00 UTC is 01/09/2025 in Hà Nội -> September
        deed(kv1, NEW_KV1, hoa, None, datetime(2025, 8, 31, 20, 0, tzinfo=UTC))
        deed(dept_th, "Phòng Thống kê Tổng hợp", evil, date(2025, 3, 3), utc(2025, 3, 4))
        deed(dept_th, "Phòng Thống kê Tổng hợp", staff, date(2025, 3, 25), utc(2025, 3, 26))
        # no date given: 31/12/2024 18:30 UTC is 01/01/2025 in Hà Nội -> counts in 2025
        deed(
            dept_th,
            "Phòng Thống kê Tổng hợp",
            staff,
            None,
            datetime(2024, 12, 31, 18, 30, tzinfo=UTC),
        )
        deed(team, "Tổ Thống kê số 1", minh, date(2025, 11, 11), utc(2025, 11, 12))
        deed(kv1, NEW_KV1, hoa, date(2025, 5, 5), utc(2025, 5, 6), status="submitted")
        deed(
            dept_th,
            "Phòng Thống kê Tổng hợp",
            staff,
            date(2025, 6, 6),
            utc(2025, 6, 7),
            status="rejected",
        )
        # happened in 2024, reported in 2025: a 2024 deed
        deed(dept_th, "Phòng Thống kê Tổng hợp", staff, date(2024, 12, 31), utc(2025, 1, 2))
        await s.flush()
        return Seed(
            office=office.id,
            dept_th=dept_th.id,
            dept_tt=dept_tt.id,
            kv1=kv1.id,
            team=team.id,
            lac_son=lac_son.id,
            admin=admin.id,
            officer=officer.id,
            officer_th=officer_th.id,
            staff=staff.id,
            council=council.id,
            former_admin=former.id,
            movement=movement.id,
            nominations={k: v.id for k, v in noms.items()},
        )


async def report(
    db: Database, viewer: int, period: ReportPeriod = YEAR_2025, scope: ReportScope | None = None
) -> ReportData:
    return await build_report(
        db, viewer, period, scope or ReportScope.office(), "Asia/Ho_Chi_Minh", clock=CLOCK
    )


# --- figures -------------------------------------------------------------------------------------


async def test_counts_by_status_and_exemplars(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)

    assert data.nominations_by_status == {
        "submitted": 2,
        "in_review": 1,
        "changes_requested": 1,
        "approved": 6,
        "rejected": 1,
        "withdrawn": 1,
    }
    assert data.nominations_total == 12  # no draft, nothing from 2024 or local 2026
    assert data.revoked_count == 1
    assert (data.exemplars_total, data.exemplars_individual, data.exemplars_collective) == (5, 4, 1)

    fields = {f.name: (f.individual, f.collective) for f in data.by_field}
    assert fields["Chuyên môn nghiệp vụ"] == (2, 0)  # the revoked one is not counted
    assert fields["Chuyển đổi số"] == (1, 0)
    assert fields["Cải cách hành chính"] == (0, 1)
    assert fields[None] == (1, 0)  # no field given
    assert data.by_field[0].name == "Chuyên môn nghiệp vụ"  # most exemplars first

    units = {u.unit_id: u for u in data.by_unit}
    assert (units[s.kv1].exemplars_individual, units[s.kv1].exemplars_collective) == (1, 1)
    assert units[s.dept_th].exemplars == 1 and units[s.dept_th].revoked == 1
    assert units[s.lac_son].exemplars == 1 and not units[s.lac_son].active
    assert units[s.team].exemplars == 1
    assert units[s.dept_tt].exemplars == 0 and units[s.dept_tt].good_deeds == 0
    assert sum(u.exemplars for u in data.by_unit) == data.exemplars_total

    # approved good deeds by the day they happened (local day of the report when no date)
    assert data.good_deeds_total == 7
    assert units[s.kv1].good_deeds == 3 and units[s.dept_th].good_deeds == 3
    assert data.deeds_by_unit_month[s.kv1] == {"2025-01": 1, "2025-08": 1, "2025-09": 1}
    assert data.deeds_by_unit_month[s.dept_th] == {"2025-01": 1, "2025-03": 2}
    assert data.months == [f"2025-{m:02d}" for m in range(1, 13)]

    # the only active unit with nothing; the office itself and the merged unit are not listed
    assert [u.unit_id for u in data.units_without_activity] == [s.dept_tt]

    # good practices: approved and not revoked only
    texts = [p.text for p in data.good_practices]
    assert data.good_practices_total == 3 and len(texts) == 3
    assert not any("đã thu hồi" in x for x in texts)

    # the lists: admins see every status; exemplars are the approved ones, the revoked marked
    assert len(data.nominations) == 12
    assert len(data.exemplars) == 6
    assert [r.id for r in data.exemplars if r.revoked] == [s.nominations["n4"]]
    assert len(data.good_deeds) == 7
    assert data.nominations_detail == "all"


async def test_unit_names_at_the_time(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    by_id = {r.id: r for r in data.nominations}
    assert by_id[s.nominations["n1"]].unit_name == OLD_KV1  # history keeps the old name
    assert by_id[s.nominations["n3"]].unit_name == NEW_KV1
    kv1 = data.unit_stat(s.kv1)
    assert kv1 is not None and kv1.name == NEW_KV1 and kv1.former_names == (OLD_KV1,)
    assert unit_label(kv1, "vi") == f"{NEW_KV1} (trước đây: {OLD_KV1})"
    assert unit_label(kv1, "en") == f"{NEW_KV1} (formerly: {OLD_KV1})"
    lac_son = data.unit_stat(s.lac_son)
    assert lac_son is not None
    assert unit_label(lac_son, "vi") == f"{LAC_SON} (đã sáp nhập vào {NEW_KV1})"
    deeds = {r.unit_name for r in data.good_deeds if r.unit_id == s.kv1}
    assert deeds == {OLD_KV1, NEW_KV1}


async def test_periods(db: Database) -> None:
    s = await seed(db)
    movement = await report(db, s.admin, ReportPeriod.for_movement(s.movement))
    assert movement.period.movement_name == "Thi đua chuyển đổi số năm 2025"
    assert movement.nominations_total == 3  # n1, n3, n7: by movement_id
    assert movement.exemplars_total == 2
    assert movement.good_deeds_total == 5  # deeds from 01/03/2025 to 30/11/2025
    assert movement.months[0] == "2025-03" and movement.months[-1] == "2025-11"

    y2026 = await report(db, s.admin, ReportPeriod.for_year(2026))
    assert [r.id for r in y2026.nominations] == [s.nominations["n13"]]
    assert y2026.nominations[0].submitted_on == date(2026, 1, 1)

    spring = await report(db, s.admin, ReportPeriod.between(date(2025, 3, 1), date(2025, 3, 31)))
    assert spring.nominations_total == 1  # n1 on 10/03
    assert spring.good_deeds_total == 2

    with pytest.raises(InvalidInput):
        await report(db, s.admin, ReportPeriod.between(date(2025, 3, 2), date(2025, 3, 1)))
    with pytest.raises(InvalidInput):
        await report(db, s.admin, ReportPeriod.for_year(1066))
    with pytest.raises(NotFound):
        await report(db, s.admin, ReportPeriod.for_movement(999_999))
    with pytest.raises(NotFound):
        await report(db, s.admin, scope=ReportScope.unit(999_999))
    with pytest.raises(InvalidInput):
        await build_report(db, s.admin, YEAR_2025, ReportScope.office(), "Mars/Olympus")


# --- authorisation -------------------------------------------------------------------------------


async def test_authorisation(db: Database) -> None:
    s = await seed(db)
    with pytest.raises(NotAllowed):  # another unit
        await report(db, s.officer, scope=ReportScope.unit(s.dept_th))
    with pytest.raises(NotAllowed):  # the whole office
        await report(db, s.officer)
    with pytest.raises(NotAllowed):  # a child unit only is not "their own unit" either
        await report(db, s.officer, scope=ReportScope.unit(s.team))
    for viewer in (s.staff, s.council, s.former_admin, 999_999):
        with pytest.raises(NotAllowed):
            await report(db, viewer, scope=ReportScope.unit(s.dept_th))
        with pytest.raises(NotAllowed):
            await report(db, viewer)
    # admins may look at any unit
    other = await report(db, s.admin, scope=ReportScope.unit(s.dept_th))
    assert other.scope_unit_ids == frozenset({s.dept_th})


async def test_unit_officer_sees_only_their_unit(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.officer, scope=ReportScope.unit(s.kv1))
    mine = {s.kv1, s.team, s.lac_son}  # descendants and the unit merged into it
    assert data.scope_unit_ids == frozenset(mine)
    assert {u.unit_id for u in data.by_unit} == mine
    assert {r.unit_id for r in data.nominations} <= mine
    assert {r.unit_id for r in data.good_deeds} <= mine
    assert data.nominations_by_status == {
        "submitted": 2,
        "in_review": 0,
        "changes_requested": 0,
        "approved": 4,
        "rejected": 1,
        "withdrawn": 1,
    }
    # rows: approved ones plus the officer's own submission, never other people's pending ones
    assert data.nominations_detail == "approved_and_own"
    ids = {r.id for r in data.nominations}
    n = s.nominations
    assert ids == {n["n1"], n["n3"], n["n11"], n["n15"], n["n14"]}
    assert {r.status for r in data.nominations} == {"approved", "submitted"}
    assert data.good_deeds_total == 4 and len(data.good_deeds) == 4
    assert data.exemplars_total == 4
    assert data.units_without_activity == []
    text = "\n".join(render_summary(data, "vi"))
    assert EVIL_NAME not in text and "Lê &amp; Co" not in text
    assert "Phòng Thống kê Tổng hợp" not in text
    assert "Anh/Chị gửi" in text  # says why the list is shorter than the counts

    wb = load_workbook(io.BytesIO(to_xlsx(data, "vi")), read_only=True)
    listed = list(wb["Đề cử"].iter_rows(min_row=3, values_only=True))
    assert len(listed) == 5
    assert not any("Phòng Thống kê Tổng hợp" in str(cell) for row in listed for cell in row)
    units = list(wb["Thống kê theo đơn vị"].iter_rows(min_row=3, values_only=True))
    assert len(units) == len(mine) + 1  # one row per unit, then the total


# --- the summary ---------------------------------------------------------------------------------

_ALLOWED_TAGS = {"b", "i", "u", "code", "pre", "a", "blockquote"}


def _check_html(chunk: str) -> None:
    stack: list[str] = []
    for closing, tag in re.findall(r"<(/?)([a-z]+)[^>]*>", chunk):
        assert tag in _ALLOWED_TAGS, tag
        if closing:
            assert stack and stack.pop() == tag
        else:
            stack.append(tag)
    assert not stack


async def test_summary_is_escaped_and_short(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    chunks = render_summary(data, "vi")
    text = "\n".join(chunks)
    assert all(len(c) < MESSAGE_LIMIT for c in chunks)
    for chunk in chunks:
        _check_html(chunk)
    assert "&lt;b&gt;Lê &amp; Co&lt;/b&gt;" in text
    assert EVIL_NAME not in text and "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "Năm 2025 (01/01/2025 – 31/12/2025)" in text
    assert "Toàn cơ quan" in text and "Điển hình tiên tiến" in text
    assert "Phòng Thu thập thông tin" in text  # the unit with nothing
    assert f"{NEW_KV1} (trước đây: {OLD_KV1})" in text
    assert "Chờ duyệt: 2" in text and "Đã thu hồi (không tính): 1" in text

    assert fmt_int(89772, "vi") == "89.772" and fmt_int(89772, "en") == "89,772"

    english = "\n".join(render_summary(data, "en"))
    assert "Year 2025" in english and "Pending: 2" in english and "Whole office" in english
    assert "&lt;b&gt;Lê &amp; Co&lt;/b&gt;" in english


async def test_long_summary_is_split_at_lines(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    many = [
        UnitStat(unit_id=10_000 + i, name=f"<i>Đơn vị số {i}</i> & " + "x" * 150)
        for i in range(200)
    ]
    big = dataclasses.replace(data, units_without_activity=many)
    chunks = render_summary(big, "vi")
    assert len(chunks) > 1
    for chunk in chunks:
        assert 0 < len(chunk) < MESSAGE_LIMIT
        _check_html(chunk)
        assert "<i>Đơn vị" not in chunk
    assert sum(c.count("&lt;i&gt;Đơn vị số") for c in chunks) == 200


# --- files ---------------------------------------------------------------------------------------


async def _db_truth(db: Database, s: Seed) -> dict[str, int]:
    lo, hi = datetime(2024, 12, 31, 17, tzinfo=UTC), datetime(2025, 12, 31, 17, tzinfo=UTC)
    n = Nomination
    in_year = (n.submitted_at >= lo, n.submitted_at < hi, n.status != "draft")
    async with db.read() as session:
        counted = await session.scalar(
            select(func.count())
            .select_from(n)
            .where(*in_year, n.status == "approved", n.revoked_at.is_(None))
        )
        approved = await session.scalar(
            select(func.count()).select_from(n).where(*in_year, n.status == "approved")
        )
        revoked = await session.scalar(
            select(func.count())
            .select_from(n)
            .where(*in_year, n.status == "approved", n.revoked_at.is_not(None))
        )
        total = await session.scalar(select(func.count()).select_from(n).where(*in_year))
    return {
        "counted": int(counted or 0),
        "approved": int(approved or 0),
        "revoked": int(revoked or 0),
        "nominations": int(total or 0),
    }


async def test_xlsx(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    truth = await _db_truth(db, s)
    blob = await to_xlsx_async(data, "vi")
    wb = load_workbook(io.BytesIO(blob))
    assert wb.sheetnames == ["Điển hình", "Đề cử", "Người tốt việc tốt", "Thống kê theo đơn vị"]

    expected = {
        "Điển hình": (EXEMPLAR_COLUMNS, truth["approved"]),
        "Đề cử": (NOMINATION_COLUMNS, truth["nominations"]),
        "Người tốt việc tốt": (DEED_COLUMNS, 7),
    }
    for name, (columns, count) in expected.items():
        ws = wb[name]
        rows = list(ws.iter_rows(values_only=True))
        assert "Năm 2025" in str(rows[0][0])  # the title row
        assert list(rows[1]) == headers(columns, "vi")
        assert len(rows) - 2 == count, name
        assert ws.freeze_panes == "A3"
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws["A2"].font.bold

    exemplars = wb["Điển hình"]
    header = [c.value for c in exemplars[2]]
    assert header[:3] == ["STT", "Mã đề cử", "Họ tên / Tập thể"]
    revoked_col = header.index("Thu hồi")
    notes = [r[revoked_col] for r in exemplars.iter_rows(min_row=3, values_only=True)]
    assert sum(1 for x in notes if x) == truth["revoked"] == 1
    assert "Vi phạm kỷ luật" in next(x for x in notes if x)
    # a formula typed by a user stays text
    achievements_col = header.index("Thành tích") + 1
    formula_cells = [
        row[achievements_col - 1]
        for row in exemplars.iter_rows(min_row=3)
        if row[achievements_col - 1].value == "=SUM(A1:A9)"
    ]
    assert formula_cells and formula_cells[0].data_type == "s"
    # dates are real dates shown dd/mm/yyyy
    date_cell = exemplars.cell(row=3, column=header.index("Ngày đề cử") + 1)
    assert isinstance(date_cell.value, datetime) and date_cell.number_format == "dd/mm/yyyy"

    units = list(wb["Thống kê theo đơn vị"].iter_rows(values_only=True))
    assert list(units[1]) == headers(UNIT_COLUMNS, "vi")
    body, total = units[2:-1], units[-1]
    assert total[1] == "Tổng cộng"
    assert len(body) == len(data.by_unit)
    assert total[4] == sum(r[4] for r in body) == truth["counted"] == 5
    assert total[5] == truth["revoked"]
    assert total[6] == data.good_deeds_total == 7
    assert total[7] == truth["nominations"]
    assert any(str(r[1]).startswith(f"{NEW_KV1} (trước đây:") for r in body)

    english = load_workbook(io.BytesIO(to_xlsx(data, "en")), read_only=True)
    assert english.sheetnames == ["Exemplars", "Nominations", "Good deeds", "Statistics by unit"]


async def test_csv(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    blob = await to_csv_async(data, "exemplars", "vi")
    assert blob.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(blob.decode("utf-8-sig"))))
    assert rows[0] == headers(EXEMPLAR_COLUMNS, "vi")
    assert len(rows) - 1 == len(data.exemplars) == 6
    assert any(r[2] == EVIL_NAME for r in rows[1:])  # CSV is data, not HTML: kept as typed
    assert any(r[8] == "'=SUM(A1:A9)" for r in rows[1:])  # never a formula
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r[10]) for r in rows[1:])

    deeds = list(csv.reader(io.StringIO(to_csv(data, "good_deeds", "en").decode("utf-8-sig"))))
    assert deeds[0] == headers(DEED_COLUMNS, "en") and len(deeds) == 8
    nominations = to_csv(data, "nominations").decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(nominations)))) == 13
    units = list(csv.reader(io.StringIO(to_csv(data, "units").decode("utf-8-sig"))))
    assert len(units) == len(data.by_unit) + 1
    with pytest.raises(ValueError):
        to_csv(data, "secrets")


def _png_size(blob: bytes) -> tuple[int, int]:
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    assert blob[12:16] == b"IHDR"
    width, height = struct.unpack(">II", blob[16:24])
    return width, height


async def test_charts(db: Database) -> None:
    s = await seed(db)
    data = await report(db, s.admin)
    for blob in (
        await chart_deeds_per_unit_month_async(data, "vi"),
        await chart_exemplars_per_field_async(data, "vi"),
        chart_exemplars_per_field(data, "en"),
    ):
        width, height = _png_size(blob)
        assert width == 1080 and 600 <= height <= 3000
        assert len(blob) > 20_000  # bars, labels and legend, not a blank canvas

    empty = await report(db, s.admin, ReportPeriod.for_year(2030))
    assert empty.good_deeds_total == 0 and empty.exemplars_total == 0
    for blob in (chart_deeds_per_unit_month(empty, "vi"), chart_exemplars_per_field(empty, "en")):
        width, _ = _png_size(blob)
        assert width == 1080 and len(blob) > 5_000
    # an empty report still gives a workbook with headers
    wb = load_workbook(io.BytesIO(to_xlsx(empty, "vi")), read_only=True)
    assert len(list(wb["Điển hình"].iter_rows(values_only=True))) == 2


async def test_summary_only_report_skips_lists(db: Database) -> None:
    s = await seed(db)
    data = await build_report(
        db, s.admin, YEAR_2025, ReportScope.office(), include_lists=False, clock=CLOCK
    )
    assert data.nominations == [] and data.good_deeds == [] and not data.lists_included
    assert data.exemplars_total == 5 and data.good_deeds_total == 7
    assert data.generated_at == NOW
