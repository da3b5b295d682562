"""The catalogue's administration rules and its TOML import, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.services.catalogue import (
    CatalogueImportError,
    CatalogueService,
    parse_date,
    parse_deadline,
    parse_period,
    parse_threshold,
)
from bot.services.clock import FixedClock
from bot.services.directory import DirectoryService, Viewer
from bot.services.errors import Conflict, InvalidInput, NotAllowed
from storage.db import Database
from storage.models import (
    AppliesTo,
    AuditEntry,
    Criterion,
    Field,
    Movement,
    MovementKind,
    MovementStatus,
    NomineeKind,
    Title,
    Unit,
    UnitName,
)

ADMIN_TG = 1001
STAFF_TG = 2002
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "catalogue.vi.toml"


@pytest.fixture
def directory(db: Database, clock: FixedClock) -> DirectoryService:
    return DirectoryService(db, clock, admin_ids=[ADMIN_TG])


@pytest.fixture
def catalogue(db: Database, clock: FixedClock) -> CatalogueService:
    return CatalogueService(db, clock)


@pytest.fixture
async def admin(directory: DirectoryService) -> Viewer:
    return await directory.ensure_bootstrap_admin(ADMIN_TG, "Trần Quản Trị", "vi")


@pytest.fixture
async def staff(directory: DirectoryService, admin: Viewer) -> Viewer:
    unit = await directory.add_unit(admin, "Phòng Thống kê Kinh tế")
    await directory.add_member(admin, "Phạm Thị Hoa", unit.id, telegram_user_id=STAFF_TG)
    return await directory.identify(STAFF_TG)


async def _actions(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


async def _counts(db: Database) -> dict[str, int]:
    out = {}
    async with db.read() as session:
        for model in (Unit, UnitName, Field, Criterion, Title, Movement, AuditEntry):
            out[model.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return out


def _local(day: date, hour: int = 17, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour - 7, minute, tzinfo=UTC)


# --- typed dates ---------------------------------------------------------------------------------


def test_dates_are_parsed_strictly() -> None:
    assert parse_date("01/03/2026") == date(2026, 3, 1)
    assert parse_date(" 1/3/2026 ") == date(2026, 3, 1)
    for bad in (
        "2026-03-01",
        "03/2026",
        "1/3/26",
        "01.03.2026",
        "",
        "31/02/2026",
        "1/13/2026",
        "01/03/1899",
        "abc",
        "01/03/2026 x",
    ):
        with pytest.raises(InvalidInput):
            parse_date(bad)
    with pytest.raises(InvalidInput) as caught:
        parse_date("30/02/2026")
    assert "real calendar date" in caught.value.message


def test_deadlines_are_office_local_and_default_to_five_pm() -> None:
    assert parse_deadline("15/11/2026") == datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
    assert parse_deadline("15/11/2026 08:30") == datetime(2026, 11, 15, 1, 30, tzinfo=UTC)
    assert parse_deadline("15/11/2026 23h") == datetime(2026, 11, 15, 16, 0, tzinfo=UTC)
    assert parse_deadline("17h30 15/11/2026") == datetime(2026, 11, 15, 10, 30, tzinfo=UTC)
    # the format the bot shows a deadline in can be typed back
    assert parse_deadline("17:00 15/11/2026") == datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
    for bad in ("15/11/2026 25:00", "15/11/2026 17:60", "tomorrow", "15/11", "15/11/2026 17:00 x"):
        with pytest.raises(InvalidInput):
            parse_deadline(bad)


def test_periods_and_thresholds() -> None:
    assert parse_period("01/01/2026 - 31/12/2026") == (date(2026, 1, 1), date(2026, 12, 31))
    assert parse_period("1/1/2026 đến 31/12/2026") == (date(2026, 1, 1), date(2026, 12, 31))
    assert parse_period("1/1/2026–31/12/2026") == (date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(InvalidInput):
        parse_period("01/01/2026")
    assert parse_threshold("0.7") == pytest.approx(0.7)
    assert parse_threshold("0,7") == pytest.approx(0.7)
    assert parse_threshold("70%") == pytest.approx(0.7)
    assert parse_threshold("1") == 1.0
    assert parse_threshold("-") is None
    assert parse_threshold("mặc định") is None
    for bad in ("0", "1.5", "70", "abc", "nan", "inf", "-0.5", "0%"):
        with pytest.raises(InvalidInput):
            parse_threshold(bad)


# --- fields, criteria, titles ---------------------------------------------------------------


async def test_fields_are_added_renamed_and_deactivated(
    catalogue: CatalogueService, admin: Viewer, db: Database
) -> None:
    a = await catalogue.add_field(admin, "Điều tra thống kê", description="Tổng điều tra")
    b = await catalogue.add_field(admin, "  Ứng dụng   công nghệ thông tin ")
    assert b.name == "Ứng dụng công nghệ thông tin"
    assert [f.name for f in await catalogue.fields()] == [a.name, b.name]
    with pytest.raises(Conflict):
        await catalogue.add_field(admin, "dieu tra THONG KE")
    renamed = await catalogue.rename_field(admin, a.id, "Điều tra thống kê & tổng điều tra")
    assert renamed.name == "Điều tra thống kê & tổng điều tra"
    with pytest.raises(Conflict):
        await catalogue.rename_field(admin, b.id, "Điều tra thống kê & TỔNG điều tra")
    with pytest.raises(InvalidInput):
        await catalogue.add_field(admin, "x")
    await catalogue.deactivate_field(admin, a.id)
    assert [f.id for f in await catalogue.fields()] == [b.id]
    assert [f.id for f in await catalogue.fields(include_inactive=True)] == [a.id, b.id]
    # an inactive field takes no new criteria, and its name stays taken
    with pytest.raises(Conflict):
        await catalogue.add_criterion(admin, "Tiêu chí mới", field_id=a.id)
    with pytest.raises(Conflict):
        await catalogue.add_field(admin, "Điều tra thống kê & tổng điều tra")
    await catalogue.reactivate_field(admin, a.id)
    assert len(await catalogue.fields()) == 2
    actions = await _actions(db)
    assert actions.count("field.add") == 2
    assert {"field.rename", "field.deactivate", "field.reactivate"} <= set(actions)


async def test_criteria_per_field_and_general(catalogue: CatalogueService, admin: Viewer) -> None:
    survey = await catalogue.add_field(admin, "Điều tra thống kê")
    own = await catalogue.add_criterion(
        admin, "Phiếu điều tra đạt chất lượng", field_id=survey.id, applies_to=AppliesTo.INDIVIDUAL
    )
    team = await catalogue.add_criterion(
        admin, "Tổ chức điều tra hiệu quả", field_id=survey.id, applies_to=AppliesTo.COLLECTIVE
    )
    general = await catalogue.add_criterion(admin, "Chấp hành tốt quy chế", field_id=None)
    assert general.applies_to is AppliesTo.BOTH and general.field_id is None
    with pytest.raises(Conflict):
        await catalogue.add_criterion(admin, "phieu dieu tra dat chat luong", field_id=survey.id)
    with pytest.raises(InvalidInput):
        await catalogue.add_criterion(admin, "  ", field_id=survey.id)
    person = await catalogue.criteria_for(survey.id, NomineeKind.INDIVIDUAL)
    assert [c.id for c in person] == [own.id, general.id]
    collective = await catalogue.criteria_for(survey.id, NomineeKind.COLLECTIVE)
    assert [c.id for c in collective] == [team.id, general.id]
    assert [c.id for c in await catalogue.criteria(survey.id)] == [own.id, team.id]
    assert [c.id for c in await catalogue.criteria(None)] == [general.id]

    edited = await catalogue.edit_criterion(
        admin, own.id, text="Phiếu điều tra đạt chất lượng cao", applies_to=AppliesTo.BOTH
    )
    assert edited.text.endswith("cao") and edited.applies_to is AppliesTo.BOTH
    await catalogue.deactivate_criterion(admin, team.id)
    collective = await catalogue.criteria_for(survey.id, NomineeKind.COLLECTIVE)
    assert [c.id for c in collective] == [own.id, general.id]
    assert len(await catalogue.criteria(survey.id, include_inactive=True)) == 2
    assert len(await catalogue.criteria(survey.id)) == 1


async def test_titles_with_thresholds(catalogue: CatalogueService, admin: Viewer) -> None:
    lao_dong = await catalogue.add_title(admin, "Lao động tiên tiến")
    assert lao_dong.applies_to is AppliesTo.INDIVIDUAL and lao_dong.approval_threshold is None
    tap_the = await catalogue.add_title(
        admin, "Tập thể lao động xuất sắc", applies_to=AppliesTo.COLLECTIVE, approval_threshold=0.7
    )
    assert tap_the.approval_threshold == pytest.approx(0.7)
    for bad in (0, 0.0, 1.01, -1, float("nan")):
        with pytest.raises(InvalidInput):
            await catalogue.add_title(admin, f"Danh hiệu {bad}", approval_threshold=bad)
    with pytest.raises(Conflict):
        await catalogue.add_title(admin, "LAO DONG TIEN TIEN")
    assert [t.id for t in await catalogue.titles(NomineeKind.COLLECTIVE)] == [tap_the.id]
    updated = await catalogue.set_title_threshold(admin, lao_dong.id, 1.0)
    assert updated.approval_threshold == 1.0
    cleared = await catalogue.set_title_threshold(admin, lao_dong.id, None)
    assert cleared.approval_threshold is None
    await catalogue.rename_title(admin, lao_dong.id, "Lao động tiên tiến (cá nhân)")
    await catalogue.deactivate_title(admin, lao_dong.id)
    assert [t.id for t in await catalogue.titles()] == [tap_the.id]
    assert len(await catalogue.list_titles(include_inactive=True)) == 2


# --- movements ---------------------------------------------------------------------------------


async def test_movement_status_transitions(
    catalogue: CatalogueService, admin: Viewer, clock: FixedClock, db: Database
) -> None:
    movement = await catalogue.add_movement(
        admin,
        "Phong trào thi đua năm 2026",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        nomination_deadline=parse_deadline("20/11/2026"),
    )
    assert movement.status is MovementStatus.DRAFT and movement.kind is MovementKind.REGULAR
    assert movement.nomination_deadline == _local(date(2026, 11, 20))
    assert await catalogue.open_movements() == []
    for wrong in (catalogue.close_movement, catalogue.archive_movement):
        with pytest.raises(Conflict):
            await wrong(admin, movement.id)
    opened = await catalogue.open_movement(admin, movement.id)
    assert opened.status is MovementStatus.OPEN
    assert [m.id for m in await catalogue.open_movements()] == [movement.id]
    with pytest.raises(Conflict):
        await catalogue.open_movement(admin, movement.id)  # already open
    with pytest.raises(Conflict):
        await catalogue.archive_movement(admin, movement.id)  # close it first
    with pytest.raises(Conflict):
        await catalogue.set_movement_status(admin, movement.id, MovementStatus.DRAFT)
    await catalogue.close_movement(admin, movement.id)
    reopened = await catalogue.open_movement(admin, movement.id)  # deadline still ahead
    assert reopened.status is MovementStatus.OPEN
    await catalogue.close_movement(admin, movement.id)
    clock.at = _local(date(2026, 11, 21), 9)
    with pytest.raises(Conflict):
        await catalogue.open_movement(admin, movement.id)  # the deadline has passed
    archived = await catalogue.archive_movement(admin, movement.id)
    assert archived.status is MovementStatus.ARCHIVED
    for attempt in (
        catalogue.open_movement(admin, movement.id),
        catalogue.close_movement(admin, movement.id),
        catalogue.change_deadline(admin, movement.id, parse_deadline("30/11/2026")),
        catalogue.rename_movement(admin, movement.id, "Tên khác"),
    ):
        with pytest.raises(Conflict):
            await attempt
    actions = await _actions(db)
    assert actions.count("movement.open") == 2
    assert actions.count("movement.close") == 2
    assert actions.count("movement.archive") == 1
    async with db.read() as session:
        reopen = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "movement.open")
            .order_by(AuditEntry.id.desc())
        )
    assert reopen is not None and reopen.details["reopened"] is True


async def test_a_draft_with_a_past_deadline_cannot_be_opened(
    catalogue: CatalogueService, admin: Viewer
) -> None:
    movement = await catalogue.add_movement(
        admin,
        "Đợt thi đua quý I",
        kind=MovementKind.CAMPAIGN,
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 3, 31),
        nomination_deadline=parse_deadline("01/03/2026 08:00"),  # before the clock (02/03)
    )
    with pytest.raises(Conflict):
        await catalogue.open_movement(admin, movement.id)
    later = await catalogue.change_deadline(admin, movement.id, parse_deadline("25/03/2026"))
    assert later.nomination_deadline == _local(date(2026, 3, 25))
    assert (await catalogue.open_movement(admin, movement.id)).status is MovementStatus.OPEN
    # an open movement keeps a deadline in the future
    with pytest.raises(InvalidInput):
        await catalogue.change_deadline(admin, movement.id, parse_deadline("01/03/2026"))


async def test_movement_dates_and_deadline_rules(
    catalogue: CatalogueService, admin: Viewer
) -> None:
    with pytest.raises(InvalidInput):  # ends before it starts
        await catalogue.add_movement(
            admin,
            "Sai ngày",
            starts_on=date(2026, 12, 31),
            ends_on=date(2026, 1, 1),
            nomination_deadline=parse_deadline("20/11/2026"),
        )
    with pytest.raises(InvalidInput) as caught:  # deadline after the last day
        await catalogue.add_movement(
            admin,
            "Sai hạn",
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 6, 30),
            nomination_deadline=parse_deadline("01/07/2026"),
        )
    assert "within the movement's dates" in caught.value.message
    # the deadline may be on the last day, late in the evening
    phase = await catalogue.add_movement(
        admin,
        "Phong trào thi đua giai đoạn 2026-2030",
        starts_on=date(2026, 1, 1),
        ends_on=date(2030, 12, 31),
        nomination_deadline=parse_deadline("31/12/2030 23:59"),
    )
    with pytest.raises(Conflict):
        await catalogue.add_movement(
            admin,
            "phong trao thi dua giai doan 2026-2030",
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            nomination_deadline=parse_deadline("20/11/2026"),
        )
    with pytest.raises(InvalidInput):  # outside the parent's dates
        await catalogue.add_movement(
            admin,
            "Phong trào thi đua năm 2031",
            parent_id=phase.id,
            starts_on=date(2031, 1, 1),
            ends_on=date(2031, 12, 31),
            nomination_deadline=parse_deadline("20/11/2031"),
        )
    year = await catalogue.add_movement(
        admin,
        "Phong trào thi đua năm 2026",
        parent_id=phase.id,
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        nomination_deadline=parse_deadline("20/11/2026"),
    )
    assert year.parent_id == phase.id
    with pytest.raises(Conflict):  # the yearly movement would fall outside the phase
        await catalogue.change_movement_dates(
            admin, phase.id, starts_on=date(2027, 1, 1), ends_on=date(2030, 12, 31)
        )
    with pytest.raises(InvalidInput):  # the deadline would fall outside the new dates
        await catalogue.change_movement_dates(
            admin, year.id, starts_on=date(2026, 1, 1), ends_on=date(2026, 6, 30)
        )
    moved = await catalogue.change_movement_dates(
        admin,
        year.id,
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 6, 30),
        nomination_deadline=parse_deadline("15/06/2026"),
    )
    assert moved.ends_on == date(2026, 6, 30)
    assert moved.nomination_deadline == _local(date(2026, 6, 15))


async def test_staff_cannot_change_the_catalogue(
    catalogue: CatalogueService, admin: Viewer, staff: Viewer, db: Database
) -> None:
    field = await catalogue.add_field(admin, "Điều tra thống kê")
    title = await catalogue.add_title(admin, "Lao động tiên tiến")
    movement = await catalogue.add_movement(
        admin,
        "Phong trào thi đua năm 2026",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        nomination_deadline=parse_deadline("20/11/2026"),
    )
    before = await _counts(db)
    deadline = parse_deadline("30/11/2026")
    for attempt in (
        catalogue.add_field(staff, "Lĩnh vực mới"),
        catalogue.rename_field(staff, field.id, "Tên mới"),
        catalogue.deactivate_field(staff, field.id),
        catalogue.add_criterion(staff, "Tiêu chí mới", field_id=field.id),
        catalogue.add_title(staff, "Danh hiệu mới"),
        catalogue.deactivate_title(staff, title.id),
        catalogue.set_title_threshold(staff, title.id, 0.5),
        catalogue.add_movement(
            staff,
            "Phong trào mới",
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            nomination_deadline=deadline,
        ),
        catalogue.open_movement(staff, movement.id),
        catalogue.change_deadline(staff, movement.id, deadline),
        catalogue.import_toml(EXAMPLE.read_bytes(), actor=staff),
    ):
        with pytest.raises(NotAllowed):
            await attempt
    assert await _counts(db) == before
    assert (await catalogue.movement(movement.id)).status is MovementStatus.DRAFT


# --- TOML import ---------------------------------------------------------------------------------


async def test_the_example_loads_and_loading_it_again_changes_nothing(
    catalogue: CatalogueService, directory: DirectoryService, admin: Viewer, db: Database
) -> None:
    summary = await catalogue.import_toml(EXAMPLE.read_bytes(), actor=admin)
    assert summary.units.created == 8
    assert summary.fields.created == 6
    assert summary.criteria.created >= 12
    assert summary.titles.created == 6
    assert summary.movements.created == 6
    assert not any(c.updated for _, c in summary.sections())

    fields = await catalogue.fields()
    assert fields[0].name == "Thu thập thông tin thống kê"
    assert "Công tác Đảng - đoàn thể" in [f.name for f in fields]
    titles = {t.name: t for t in await catalogue.titles()}
    assert {
        "Lao động tiên tiến",
        "Chiến sĩ thi đua cơ sở",
        "Tập thể lao động tiên tiến",
        "Tập thể lao động xuất sắc",
    } <= set(titles)
    assert titles["Bằng khen của Bộ trưởng Bộ Tài chính"].approval_threshold == pytest.approx(0.8)
    assert titles["Tập thể lao động xuất sắc"].applies_to is AppliesTo.COLLECTIVE
    movements = {m.name: m for m in await catalogue.movements()}
    phase = movements["Phong trào thi đua giai đoạn 2021-2025"]
    assert phase.status is MovementStatus.CLOSED
    year = movements["Phong trào thi đua năm 2026"]
    assert year.status is MovementStatus.DRAFT
    assert year.parent_id == movements["Phong trào thi đua giai đoạn 2026-2030"].id
    assert year.nomination_deadline == _local(date(2026, 11, 20))
    units = await directory.list_units()
    assert units[0].name == "Thống kê tỉnh Nghệ An" and units[0].depth == 0
    assert {u.name for u in units if u.depth == 1} >= {
        "Phòng Tổ chức - Hành chính",
        "Phòng Thống kê Kinh tế",
        "Phòng Thống kê Xã hội",
        "Phòng Thu thập thông tin thống kê",
        "Chi cục Thống kê khu vực I",
    }
    survey = next(f for f in fields if f.name == "Điều tra thống kê")
    assert await catalogue.criteria_for(survey.id, NomineeKind.INDIVIDUAL)

    before = await _counts(db)
    again = await catalogue.import_toml(EXAMPLE.read_bytes(), actor=admin)
    assert not again.changed
    assert again.units.unchanged == 8 and again.movements.unchanged == 6
    after = await _counts(db)
    assert after.pop("audit_log") == before.pop("audit_log") + 1  # only the import itself
    assert after == before


async def test_existing_units_are_kept_and_the_file_updates_what_it_names(
    catalogue: CatalogueService, directory: DirectoryService, admin: Viewer
) -> None:
    existing = await directory.add_unit(admin, "phong thong ke kinh te")
    await catalogue.add_title(admin, "Lao động tiên tiến", applies_to=AppliesTo.BOTH)
    summary = await catalogue.import_toml(EXAMPLE.read_bytes(), actor=admin)
    assert summary.units.created == 7 and summary.units.unchanged == 1
    assert summary.titles.created == 5 and summary.titles.updated == 1
    assert (await directory.get_unit(existing.id)).name == "phong thong ke kinh te"
    title = next(t for t in await catalogue.titles() if t.name == "Lao động tiên tiến")
    assert title.applies_to is AppliesTo.INDIVIDUAL


async def test_a_broken_file_changes_nothing_and_names_the_key(
    catalogue: CatalogueService, admin: Viewer, db: Database
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    before = await _counts(db)
    broken = text.replace('approval_threshold = "80%"', "approval_threshold = 1.5").replace(
        'nomination_deadline = "20/11/2026 17:00"', 'nomination_deadline = "31/11/2026"'
    )
    with pytest.raises(CatalogueImportError) as caught:
        await catalogue.import_toml(broken.encode(), actor=admin)
    paths = [p for p, _, _ in caught.value.problems]
    assert "titles[6].approval_threshold" in paths
    assert "movements[4].nomination_deadline" in paths
    assert await _counts(db) == before

    # a problem only the database can see (an unknown parent) also rolls back the units
    broken = text.replace(
        'parent = "Phong trào thi đua năm 2026"', 'parent = "Phong trào không có"'
    )
    with pytest.raises(CatalogueImportError) as caught:
        await catalogue.import_toml(broken.encode(), actor=admin)
    assert [p for p, _, _ in caught.value.problems] == [
        "movements[5].parent",
        "movements[6].parent",
    ]
    assert await _counts(db) == before

    for data, where, needle in (
        (b'[[fields]]\nname = "Ph\xf2ng"\n', "", "UTF-8"),
        (b"[[fields]\nname = 'x'", "", "TOML"),
        ('[[fields]]\nnam = "Điều tra"\n'.encode(), "fields[1].nam", "Unknown key"),
        (
            b'[[titles]]\nname = "A B"\napplies_to = "everyone"\n',
            "titles[1].applies_to",
            "not allowed",
        ),
        (
            '[[movements]]\nname = "Đợt 1"\nstarts_on = "2026-01-01"\n'
            'ends_on = "31/12/2026"\nnomination_deadline = "20/11/2026"\n'.encode(),
            "movements[1].starts_on",
            "not a date",
        ),
        (
            '[[movements]]\nname = "Đợt 1"\nstarts_on = "01/01/2026"\n'
            'ends_on = "30/06/2026"\nnomination_deadline = "20/11/2026"\n'.encode(),
            "movements[1].nomination_deadline",
            "within",
        ),
        (
            '[[fields]]\nname = "Điều tra"\n[[fields]]\nname = "ĐIỀU TRA"\n'.encode(),
            "fields[2].name",
            "repeats",
        ),
        (b'fields = "x"\n', "fields", "list of tables"),
        (
            '[[units]]\nname = "Phòng A"\nparent = "Không có"\n'.encode(),
            "units[1].parent",
            "Unknown unit",
        ),
    ):
        with pytest.raises(CatalogueImportError) as caught:
            await catalogue.import_toml(data, actor=admin)
        problems = caught.value.problems
        assert problems[0][0] == where, problems
        assert needle in problems[0][1], problems
    assert await _counts(db) == before


async def test_archived_movements_are_not_changed_by_an_import(
    catalogue: CatalogueService, admin: Viewer
) -> None:
    await catalogue.import_toml(EXAMPLE.read_bytes(), actor=admin)
    phase = next(
        m for m in await catalogue.movements() if m.name == "Phong trào thi đua giai đoạn 2021-2025"
    )
    await catalogue.archive_movement(admin, phase.id)
    # the same file again is fine: nothing it says differs
    assert not (await catalogue.import_toml(EXAMPLE.read_bytes(), actor=admin)).changed
    changed = EXAMPLE.read_text(encoding="utf-8").replace(
        'nomination_deadline = "20/11/2025"\nstatus = "closed"',
        'nomination_deadline = "25/11/2025"\nstatus = "closed"',
    )
    with pytest.raises(CatalogueImportError) as caught:
        await catalogue.import_toml(changed.encode(), actor=admin)
    assert caught.value.problems[0][0] == "movements[1]"


async def test_import_without_an_actor_is_audited_as_the_system(
    catalogue: CatalogueService, db: Database
) -> None:
    await catalogue.import_toml(EXAMPLE.read_bytes())
    async with db.read() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "catalogue.import")
        )
    assert entry is not None and entry.actor_member_id is None
    assert entry.details["fields"] == {"created": 6, "updated": 0}


async def test_a_movement_opened_by_the_file_is_audited_as_launched(
    catalogue: CatalogueService, db: Database, clock: FixedClock
) -> None:
    data = (
        '[[movements]]\nname = "Đợt thi đua 6 tháng đầu năm 2026"\nkind = "campaign"\n'
        'starts_on = "01/01/2026"\nends_on = "30/06/2026"\n'
        'nomination_deadline = "15/06/2026 17:00"\nstatus = "open"\n'
    ).encode()
    summary = await catalogue.import_toml(data)
    assert summary.movements.created == 1
    assert "movement.open" in await _actions(db)
    assert [m.name for m in await catalogue.open_movements()] == [
        "Đợt thi đua 6 tháng đầu năm 2026"
    ]
    clock.advance(timedelta(days=200))
    late = data.replace("6 tháng đầu".encode(), "quý III".encode())
    with pytest.raises(CatalogueImportError) as caught:
        await catalogue.import_toml(late)
    assert caught.value.problems[0][0] == "movements[1].status"
