"""/report through process_update (offline Bot API), on SQLite and PostgreSQL: the period and scope
buttons, the summary, the files (XLSX opened with openpyxl, CSV, PNG), who may ask for what, and
forged buttons.

The report buttons run with block=False: `process_update` returns while the report is still being
built, so every step here waits for the bot's background tasks (`settle`) before looking."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.services.clock import FixedClock
from storage.db import Database
from storage.models import Field, GoodDeed, Member, Movement, Nomination, Role, Unit, UnitKind
from tests.conftest import make_settings
from tests.harness import ADMIN_ID, BotHarness, make_harness, settle

pytestmark = pytest.mark.filterwarnings("ignore:Tasks created via:UserWarning")

OFFICER_ID = 2002
STAFF_ID = 3003
DEPT_A = "Phòng Thống kê Tổng hợp"
DEPT_B = "Chi cục Thống kê khu vực I"
JSON = dict[str, Any]


# --- a small office with a 2025 history (shared with the CLI and end-to-end tests) ----------------


@dataclasses.dataclass
class World:
    office: int
    dept_a: int
    dept_b: int
    admin: int
    officer: int
    staff: int
    movement: int


def utc(y: int, mo: int, d: int) -> datetime:
    return datetime(y, mo, d, 3, tzinfo=UTC)


async def seed(db: Database, *, admin_tg: int | None = ADMIN_ID) -> World:
    """2025: five nominations (three approved: two individuals, one collective; one pending; one
    rejected) and four good deeds (three approved), in two units."""
    async with db.transaction() as s:
        office = Unit(name="Thống kê tỉnh Hòa Bình", code="TK", kind=UnitKind.OFFICE.value)
        s.add(office)
        await s.flush()
        dept_a = Unit(name=DEPT_A, code="TH", parent_id=office.id)
        dept_b = Unit(
            name=DEPT_B, code="KV1", kind=UnitKind.SUB_DEPARTMENT.value, parent_id=office.id
        )
        s.add_all([dept_a, dept_b])
        await s.flush()

        def member(name: str, unit: Unit, role: Role, tg: int | None = None) -> Member:
            m = Member(
                full_name=name,
                name_folded=name.lower(),
                unit_id=unit.id,
                role=role.value,
                telegram_user_id=tg,
                language="vi",
            )
            s.add(m)
            return m

        admin = member("Trần Quản Trị", office, Role.ADMIN, admin_tg)
        officer = member("Phạm Văn Hợp", dept_a, Role.UNIT_OFFICER, OFFICER_ID)
        staff = member("Lê Thị Nhân", dept_a, Role.STAFF, STAFF_ID)
        an = member("Nguyễn Văn An", dept_a, Role.STAFF)
        hoa = member("Hoàng Thị Hoa", dept_b, Role.STAFF)
        cds = Field(name="Chuyển đổi số", sort_order=1)
        cmnv = Field(name="Chuyên môn nghiệp vụ", sort_order=2)
        movement = Movement(
            name="Thi đua chuyển đổi số năm 2025",
            starts_on=date(2025, 3, 1),
            ends_on=date(2025, 11, 30),
            nomination_deadline=utc(2025, 11, 30),
            status="closed",
        )
        s.add_all([cds, cmnv, movement])
        await s.flush()

        def nominate(
            nominee: Member | None,
            unit: Unit,
            status: str,
            submitted: datetime,
            field: Field | None = None,
            *,
            movement_id: int | None = None,
            practice: str | None = None,
        ) -> None:
            s.add(
                Nomination(
                    nominator_id=staff.id,
                    nominee_kind="individual" if nominee else "collective",
                    nominee_member_id=nominee.id if nominee else None,
                    nominee_unit_id=None if nominee else unit.id,
                    nominee_name_at_time=nominee.full_name if nominee else unit.name,
                    unit_id=unit.id,
                    unit_name_at_time=unit.name,
                    field_id=field.id if field else None,
                    movement_id=movement_id,
                    status=status,
                    submitted_at=submitted,
                    decided_at=utc(submitted.year, submitted.month, 20)
                    if status in ("approved", "rejected")
                    else None,
                    achievements=f"Thành tích của {nominee.full_name if nominee else unit.name}",
                    good_practices=practice,
                )
            )

        nominate(
            an,
            dept_a,
            "approved",
            utc(2025, 4, 2),
            cds,
            movement_id=movement.id,
            practice="Số hoá phiếu điều tra, cập nhật hằng ngày",
        )
        nominate(hoa, dept_b, "approved", utc(2025, 5, 6), cmnv)
        nominate(None, dept_b, "approved", utc(2025, 9, 1), cds, movement_id=movement.id)
        nominate(an, dept_a, "submitted", utc(2025, 10, 10))
        nominate(hoa, dept_b, "rejected", utc(2025, 7, 7), cmnv)

        def deed(unit: Unit, subject: Member, day: date, status: str = "approved") -> None:
            s.add(
                GoodDeed(
                    reporter_id=staff.id,
                    subject_kind="individual",
                    subject_member_id=subject.id,
                    subject_name_at_time=subject.full_name,
                    unit_id=unit.id,
                    unit_name_at_time=unit.name,
                    description=f"Việc tốt của {subject.full_name}",
                    occurred_on=day,
                    place="Trụ sở",
                    status=status,
                    submitted_at=utc(day.year, day.month, day.day),
                )
            )

        deed(dept_a, an, date(2025, 4, 15))
        deed(dept_a, staff, date(2025, 5, 20))
        deed(dept_b, hoa, date(2025, 8, 8))
        deed(dept_b, hoa, date(2025, 8, 9), status="submitted")
        await s.flush()
        return World(office.id, dept_a.id, dept_b.id, admin.id, officer.id, staff.id, movement.id)


# --- the harness, waiting for the non-blocking report tasks ---------------------------------------


@pytest.fixture
async def rh(db_url: str, clock: FixedClock) -> AsyncIterator[tuple[BotHarness, World]]:
    settings = make_settings(db_url, access={"throttle_burst": 1000})
    h, app = await make_harness(settings, clock)
    world = await seed(h.services.db)
    h.user(ADMIN_ID, "Trần", "Quản Trị")
    h.user(OFFICER_ID, "Hợp")
    h.user(STAFF_ID, "Nhân")
    try:
        yield h, world
    finally:
        await settle()
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        assert not h.core.unknown_fields, f"fields Telegram does not know: {h.core.unknown_fields}"
        # every button press was answered once, in time
        assert not h.core.callback_problems()


async def act(h: BotHarness, step: Awaitable[Any]) -> list[JSON]:
    """One update, then everything the bot did about it, background work included."""
    mark = h.core.mark()
    await step
    await settle()
    return h.replies_since(mark)


def answers(h: BotHarness) -> list[str]:
    return [str(a.get("text") or "") for a in h.core.calls("answerCallbackQuery")]


def uploads(h: BotHarness, chat_id: int, kind: str = "document") -> list[JSON]:
    return [m for m in h.core.sent(chat_id) if kind in m]


def stored(h: BotHarness, message: JSON) -> bytes:
    if "document" in message:
        file_id = message["document"]["file_id"]
    else:
        file_id = message["photo"][-1]["file_id"]
    data: bytes = h.core.files[file_id].data
    return data


def sheet_rows(xlsx: bytes, sheet: str) -> list[tuple[Any, ...]]:
    """The data rows of a sheet (row 1 is the title, row 2 the headers)."""
    wb = load_workbook(io.BytesIO(xlsx), read_only=True)
    rows = list(wb[sheet].iter_rows(values_only=True))
    wb.close()
    return rows


# --- tests ----------------------------------------------------------------------------------------


async def test_admin_gets_the_yearly_summary_and_the_workbook(
    rh: tuple[BotHarness, World],
) -> None:
    h, _ = rh
    await act(h, h.text(ADMIN_ID, "/report"))
    assert "Báo cáo sơ kết, tổng kết" in h.last_text(ADMIN_ID)
    assert set(h.buttons(ADMIN_ID)) == {"rp:ml:0", "rp:p:y2026", "rp:p:y2025", "rp:dates"}

    await act(h, h.press(ADMIN_ID, "rp:p:y2025"))
    assert "Kỳ báo cáo: Năm 2025 (01/01/2025 – 31/12/2025)" in h.last_text(ADMIN_ID)
    assert set(h.buttons(ADMIN_ID)) == {"rp:go:y2025:o", "rp:ul:y2025:0", "rp:menu"}
    await act(h, h.press(ADMIN_ID, "rp:menu"))  # back, and forth again
    assert "rp:dates" in h.buttons(ADMIN_ID)
    await act(h, h.press(ADMIN_ID, "rp:p:y2025"))

    replies = await act(h, h.press(ADMIN_ID, "rp:go:y2025:o"))
    # a progress message, then the same message becomes the summary
    assert replies[0]["method"].lower() == "sendmessage"
    assert replies[0]["text"] == "⏳ Đang tạo báo cáo…"
    summary = h.last_text(ADMIN_ID)
    assert "Báo cáo phong trào thi đua và điển hình tiên tiến" in summary
    assert "Toàn cơ quan" in summary
    assert "Điển hình tiên tiến: 3 (cá nhân 2 · tập thể 1)" in summary
    assert "Người tốt, việc tốt: 3" in summary
    assert "Số hoá phiếu điều tra" in summary
    assert "Đang tạo báo cáo" not in " ".join(h.texts(ADMIN_ID))
    assert any(c["action"] == "typing" for c in h.core.calls("sendChatAction"))
    files = h.buttons(ADMIN_ID)
    assert "rp:f:y2025:o:x" in files and "rp:f:y2025:o:gf" in files

    replies = await act(h, h.press(ADMIN_ID, "rp:f:y2025:o:x"))
    assert [r["method"].lower() for r in replies] == [
        "sendmessage",
        "senddocument",
        "editmessagetext",
    ]
    assert replies[0]["text"] == "⏳ Đang tạo tệp: Bảng tính Excel…"
    assert any(c["action"] == "upload_document" for c in h.core.calls("sendChatAction"))
    (doc,) = uploads(h, ADMIN_ID)
    assert doc["document"]["file_name"] == "bao-cao-tong-ket-2025.xlsx"
    assert "Bảng tính Excel" in doc["caption"] and "Năm 2025" in doc["caption"]
    assert "✅ Đã gửi tệp bao-cao-tong-ket-2025.xlsx" in h.texts(ADMIN_ID)

    xlsx = stored(h, doc)
    exemplars = sheet_rows(xlsx, "Điển hình")
    assert exemplars[1][:3] == ("STT", "Mã đề cử", "Họ tên / Tập thể")
    assert sorted(r[2] for r in exemplars[2:]) == sorted(["Nguyễn Văn An", "Hoàng Thị Hoa", DEPT_B])
    assert len(sheet_rows(xlsx, "Đề cử")) - 2 == 5  # the admin sees every status
    assert len(sheet_rows(xlsx, "Người tốt việc tốt")) - 2 == 3
    units = sheet_rows(xlsx, "Thống kê theo đơn vị")
    total = units[-1]
    assert total[1] == "Tổng cộng" and total[4] == 3 and total[6] == 3 and total[7] == 5


async def test_csv_and_charts_on_request(rh: tuple[BotHarness, World]) -> None:
    h, _ = rh
    await act(h, h.text(ADMIN_ID, "/report"))
    await act(h, h.press(ADMIN_ID, "rp:p:y2025"))
    await act(h, h.press(ADMIN_ID, "rp:go:y2025:o"))

    await act(h, h.press(ADMIN_ID, "rp:f:y2025:o:cg"))
    (doc,) = uploads(h, ADMIN_ID)
    assert doc["document"]["file_name"] == "bao-cao-tong-ket-2025-nguoi-tot-viec-tot.csv"
    text = stored(h, doc).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][2] == "Người / Tập thể được biểu dương" and len(rows) == 4
    assert {r[5] for r in rows[1:]} == {"15/04/2025", "20/05/2025", "08/08/2025"}

    await act(h, h.press(ADMIN_ID, "rp:f:y2025:o:gd"))
    (photo,) = uploads(h, ADMIN_ID, "photo")
    png = stored(h, photo)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "Biểu đồ người tốt, việc tốt theo đơn vị và tháng" in photo["caption"]
    assert any(c["action"] == "upload_photo" for c in h.core.calls("sendChatAction"))


async def test_admin_picks_a_movement_and_a_unit(rh: tuple[BotHarness, World]) -> None:
    h, world = rh
    await act(h, h.text(ADMIN_ID, "/report"))
    await act(h, h.press(ADMIN_ID, "rp:ml:0"))
    assert "Báo cáo phong trào thi đua nào?" in h.last_text(ADMIN_ID)
    period = f"m{world.movement}"
    await act(h, h.press(ADMIN_ID, f"rp:p:{period}"))
    assert "Thi đua chuyển đổi số năm 2025" in h.last_text(ADMIN_ID)
    await act(h, h.press(ADMIN_ID, f"rp:ul:{period}:0"))
    assert f"rp:go:{period}:u{world.dept_b}" in h.buttons(ADMIN_ID)
    await act(h, h.press(ADMIN_ID, f"rp:go:{period}:u{world.dept_b}"))
    summary = h.last_text(ADMIN_ID)
    assert DEPT_B in summary
    # the movement's nominations only: the collective of dept B (the other two have no movement)
    assert "Điển hình tiên tiến: 1 (cá nhân 0 · tập thể 1)" in summary
    await act(h, h.press(ADMIN_ID, f"rp:f:{period}:u{world.dept_b}:x"))
    (doc,) = uploads(h, ADMIN_ID)
    assert doc["document"]["file_name"] == (
        "bao-cao-thi-dua-chuyen-doi-so-nam-2025-chi-cuc-thong-ke-khu-vuc-i.xlsx"
    )

    # another report, in a new message: the summary keeps its buttons
    count = len(h.core.sent(ADMIN_ID))
    await act(h, h.press(ADMIN_ID, "rp:new"))
    assert len(h.core.sent(ADMIN_ID)) == count + 1
    assert "rp:p:y2025" in h.buttons(ADMIN_ID)


async def test_typed_dates(rh: tuple[BotHarness, World]) -> None:
    h, _ = rh
    await act(h, h.text(ADMIN_ID, "/report"))
    await act(h, h.press(ADMIN_ID, "rp:dates"))
    assert "dd/mm/yyyy - dd/mm/yyyy" in h.last_text(ADMIN_ID)
    replies = await act(h, h.text(ADMIN_ID, "30/06/2025 - 01/01/2025"))
    reversed_dates = "Ngày kết thúc (01/01/2025) không thể trước ngày bắt đầu (30/06/2025)"
    assert reversed_dates in replies[-1]["text"]
    replies = await act(h, h.text(ADMIN_ID, "01/01/2025 đến ngày mai"))
    assert "dd/mm/yyyy" in replies[-1]["text"]
    await act(h, h.text(ADMIN_ID, "01/01/2025 - 30/06/2025"))
    assert "Từ ngày 01/01/2025 đến ngày 30/06/2025" in h.last_text(ADMIN_ID)
    await act(h, h.press(ADMIN_ID, "rp:go:r20250101-20250630:o"))
    # the first half of 2025: the two approved individuals, two good deeds
    assert "Điển hình tiên tiến: 2 (cá nhân 2 · tập thể 0)" in h.last_text(ADMIN_ID)
    assert "Người tốt, việc tốt: 2" in h.last_text(ADMIN_ID)
    assert await h.services.flows.get(ADMIN_ID) is None

    # a unit officer's typed period gives their unit's report straight away
    await act(h, h.text(OFFICER_ID, "/report"))
    await act(h, h.press(OFFICER_ID, "rp:dates"))
    await act(h, h.text(OFFICER_ID, "01/01/2025 - 30/06/2025"))
    summary = h.last_text(OFFICER_ID)
    assert DEPT_A in summary and "Điển hình tiên tiến: 1" in summary


async def test_unit_officer_gets_only_their_unit(rh: tuple[BotHarness, World]) -> None:
    h, world = rh
    await act(h, h.text(OFFICER_ID, "/report"))
    # no scope to choose: the report is of the officer's unit
    await act(h, h.press(OFFICER_ID, "rp:p:y2025"))
    summary = h.last_text(OFFICER_ID)
    assert DEPT_A in summary and "Toàn cơ quan" not in summary and DEPT_B not in summary
    assert "Điển hình tiên tiến: 1 (cá nhân 1 · tập thể 0)" in summary
    scope = f"u{world.dept_a}"
    assert f"rp:f:y2025:{scope}:x" in h.buttons(OFFICER_ID)

    await act(h, h.press(OFFICER_ID, f"rp:f:y2025:{scope}:x"))
    (doc,) = uploads(h, OFFICER_ID)
    assert doc["document"]["file_name"] == "bao-cao-tong-ket-2025-phong-thong-ke-tong-hop.xlsx"
    xlsx = stored(h, doc)
    assert [r[4] for r in sheet_rows(xlsx, "Điển hình")[2:]] == [DEPT_A]
    # the pending nomination is another person's: not listed for a unit officer
    assert [r[9] for r in sheet_rows(xlsx, "Đề cử")[2:]] == ["Đã duyệt"]
    assert {r[4] for r in sheet_rows(xlsx, "Người tốt việc tốt")[2:]} == {DEPT_A}
    units = [r[1] for r in sheet_rows(xlsx, "Thống kê theo đơn vị")[2:-1]]
    assert units == [DEPT_A]


async def test_forged_scope_buttons_change_nothing(rh: tuple[BotHarness, World]) -> None:
    h, world = rh
    await act(h, h.text(OFFICER_ID, "/report"))
    before = h.texts(OFFICER_ID)
    for data in (
        "rp:go:y2025:o",
        f"rp:go:y2025:u{world.dept_b}",
        f"rp:f:y2025:u{world.dept_b}:x",
        "rp:f:y2025:o:cn",
        f"rp:f:m{world.movement}:o:gd",
        "rp:ul:y2025:0",
    ):
        await act(h, h.forge_press(OFFICER_ID, data))
        assert "Chỉ quản trị viên" in answers(h)[-1], data
    assert h.texts(OFFICER_ID) == before
    assert not uploads(h, OFFICER_ID) and not uploads(h, OFFICER_ID, "photo")
    assert not h.core.calls("sendDocument") and not h.core.calls("sendPhoto")

    # malformed tokens are stale buttons
    for data in ("rp:go:y20x5:o", "rp:go:r20250231-20250301:o", "rp:f:y2025:u1:zz", "rp:nope"):
        await act(h, h.forge_press(OFFICER_ID, data))
        assert "không còn hiệu lực" in answers(h)[-1], data
    assert h.texts(OFFICER_ID) == before


async def test_staff_and_strangers_are_refused(rh: tuple[BotHarness, World]) -> None:
    h, world = rh
    replies = await act(h, h.text(STAFF_ID, "/report"))
    refusal = "Chỉ quản trị viên và cán bộ phụ trách đơn vị được xem báo cáo."
    assert replies[-1]["text"] == refusal
    await act(h, h.forge_press(STAFF_ID, "rp:go:y2025:o"))
    assert answers(h)[-1] == refusal
    await act(h, h.forge_press(STAFF_ID, f"rp:f:y2025:u{world.dept_a}:x"))
    assert not h.core.calls("sendDocument")
    # /help: staff do not see /report, a unit officer does
    staff_help = (await act(h, h.text(STAFF_ID, "/help")))[-1]["text"]
    officer_help = (await act(h, h.text(OFFICER_ID, "/help")))[-1]["text"]
    assert "/report" not in staff_help and "/report" in officer_help


async def test_one_report_at_a_time(rh: tuple[BotHarness, World]) -> None:
    h, _ = rh
    h.app.bot_data.setdefault("report_busy", set()).add(ADMIN_ID)
    await act(h, h.forge_press(ADMIN_ID, "rp:go:y2025:o"))
    assert "đang được lập" in answers(h)[-1]
    assert not h.core.sent(ADMIN_ID)
    h.app.bot_data["report_busy"].discard(ADMIN_ID)
    await act(h, h.forge_press(ADMIN_ID, "rp:go:y2025:o"))
    assert "Điển hình tiên tiến: 3" in h.last_text(ADMIN_ID)


async def test_other_users_are_served_while_a_report_is_built(
    rh: tuple[BotHarness, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export runs in the background: the update is processed, /help answered meanwhile."""
    h, _ = rh
    import handlers.report as report

    gate = asyncio.Event()
    real = report.make_file

    async def slow(*args: Any) -> bytes:
        await gate.wait()
        return await real(*args)

    monkeypatch.setattr(report, "make_file", slow)
    await act(h, h.text(ADMIN_ID, "/report"))
    await act(h, h.press(ADMIN_ID, "rp:p:y2025"))
    await act(h, h.press(ADMIN_ID, "rp:go:y2025:o"))
    # returns at once: the handler is non-blocking
    await h.press(ADMIN_ID, "rp:f:y2025:o:x", wait=False)
    for _ in range(100):
        if "⏳ Đang tạo tệp: Bảng tính Excel…" in h.texts(ADMIN_ID):
            break
        await asyncio.sleep(0.02)
    assert "⏳ Đang tạo tệp: Bảng tính Excel…" in h.texts(ADMIN_ID)
    replies = await h.text(OFFICER_ID, "/help")
    assert "/report" in replies[-1]["text"]
    assert not uploads(h, ADMIN_ID)
    gate.set()
    await settle()
    assert len(uploads(h, ADMIN_ID)) == 1
