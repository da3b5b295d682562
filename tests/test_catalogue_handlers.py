"""The catalogue from /admin, through process_update (offline Bot API), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.services.catalogue import parse_deadline
from bot.services.clock import FixedClock
from storage.models import AppliesTo, MovementStatus, NomineeKind
from tests.conftest import make_settings
from tests.harness import ADMIN_ID, BotHarness, make_harness

STAFF_ID = 4001


@pytest.fixture
async def harness(db_url: str, clock: FixedClock) -> AsyncIterator[BotHarness]:
    """The shared harness, with flood control loosened: these walks press many buttons."""
    settings = make_settings(db_url, access={"throttle_burst": 1000})
    h, app = await make_harness(settings, clock)
    h.user(ADMIN_ID, "Trần", "Quản Trị")
    try:
        yield h
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        assert not h.core.unknown_fields, f"fields Telegram does not know: {h.core.unknown_fields}"


async def _admin(h: BotHarness):  # type: ignore[no-untyped-def]
    viewer = await h.services.directory.identify(ADMIN_ID)
    if not viewer.is_member:
        viewer = await h.services.directory.ensure_bootstrap_admin(ADMIN_ID, "Trần Quản Trị", "vi")
    return viewer


async def _open_catalogue(h: BotHarness) -> None:
    await h.text(ADMIN_ID, "/admin")
    await h.press(ADMIN_ID, "cat:menu")


def _answers(h: BotHarness) -> list[str]:
    return [str(a.get("text") or "") for a in h.core.calls("answerCallbackQuery")]


async def test_admin_adds_a_field_a_criterion_and_launches_a_movement(
    harness: BotHarness,
) -> None:
    h = harness
    await _admin(h)
    await h.text(ADMIN_ID, "/admin")
    assert "cat:menu" in h.buttons(ADMIN_ID)
    replies = await h.press(ADMIN_ID, "cat:menu")
    assert "Danh mục thi đua" in replies[-1]["text"]

    # a field, typed
    await h.press(ADMIN_ID, "cat:fl:0")
    assert "Chưa có lĩnh vực nào" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, "cat:fadd")
    assert "tên lĩnh vực mới" in h.last_text(ADMIN_ID)
    replies = await h.text(ADMIN_ID, "Điều tra thống kê")
    assert any("Đã thêm lĩnh vực Điều tra thống kê" in r["text"] for r in replies)
    (field,) = await h.services.catalogue.fields()
    assert field.name == "Điều tra thống kê"
    # the same name again is refused clearly and nothing is added
    await h.press(ADMIN_ID, "cat:fl:0")
    await h.press(ADMIN_ID, "cat:fadd")
    replies = await h.text(ADMIN_ID, "dieu tra thong ke")
    assert "Đã có lĩnh vực mang tên Điều tra thống kê" in replies[-1]["text"]
    assert len(await h.services.catalogue.fields(include_inactive=True)) == 1
    await h.text(ADMIN_ID, "/cancel")

    # a criterion of that field, for individuals
    await _open_catalogue(h)
    await h.press(ADMIN_ID, "cat:cl:0")
    await h.press(ADMIN_ID, f"cat:cf:{field.id}:0")
    assert "Tiêu chí lĩnh vực Điều tra thống kê" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"cat:cadd:{field.id}")
    assert "áp dụng cho ai" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"cat:caddk:{field.id}:i")
    await h.text(ADMIN_ID, "Phiếu điều tra đạt chất lượng, không phải điều tra lại")
    (criterion,) = await h.services.catalogue.criteria_for(field.id, NomineeKind.INDIVIDUAL)
    assert criterion.applies_to is AppliesTo.INDIVIDUAL
    assert not await h.services.catalogue.criteria_for(field.id, NomineeKind.COLLECTIVE)
    # …then made to apply to collectives too, with a button
    await h.press(ADMIN_ID, f"cat:c:{criterion.id}")
    await h.press(ADMIN_ID, f"cat:capp:{criterion.id}:b")
    assert (await h.services.catalogue.criterion(criterion.id)).applies_to is AppliesTo.BOTH

    # a movement: name, kind, parent, dates and a deadline typed dd/mm/yyyy
    await _open_catalogue(h)
    await h.press(ADMIN_ID, "cat:ml:0")
    await h.press(ADMIN_ID, "cat:madd")
    replies = await h.text(ADMIN_ID, "x")
    assert "ít nhất 2 ký tự" in replies[-1]["text"]
    await h.text(ADMIN_ID, "Phong trào thi đua năm 2026")
    assert set(h.buttons(ADMIN_ID)) == {"cat:maddk:r", "cat:maddk:c"}
    await h.press(ADMIN_ID, "cat:maddk:r")
    await h.press(ADMIN_ID, "cat:maddp:0")
    replies = await h.text(ADMIN_ID, "2026-01-01 - 2026-12-31")
    assert "dd/mm/yyyy - dd/mm/yyyy" in replies[-1]["text"]
    replies = await h.text(ADMIN_ID, "01/01/2026 - 31/13/2026")
    assert "không phải là ngày có thật" in replies[-1]["text"]
    replies = await h.text(ADMIN_ID, "31/12/2026 - 01/01/2026")
    assert "không thể trước ngày bắt đầu" in replies[-1]["text"]
    await h.text(ADMIN_ID, "01/01/2026 - 31/12/2026")
    replies = await h.text(ADMIN_ID, "20/01/2027")
    assert "phải nằm trong thời gian của phong trào" in replies[-1]["text"]
    assert await h.services.catalogue.movements() == []
    replies = await h.text(ADMIN_ID, "20/11/2026")
    (movement,) = await h.services.catalogue.movements()
    assert movement.status is MovementStatus.DRAFT
    assert movement.nomination_deadline == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert (movement.starts_on, movement.ends_on) == (date(2026, 1, 1), date(2026, 12, 31))
    card = h.last_text(ADMIN_ID)
    assert "Dự thảo" in card and "17:00 20/11/2026" in card

    # launched (phát động) after a confirmation
    await h.press(ADMIN_ID, f"cat:mask:{movement.id}:o")
    assert "Phát động Phong trào thi đua năm 2026?" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"cat:mst:{movement.id}:o")
    assert "Đã phát động phong trào" in h.last_text(ADMIN_ID)
    assert [m.id for m in await h.services.catalogue.open_movements()] == [movement.id]

    # the deadline changed: a bad date is answered and changes nothing
    await h.press(ADMIN_ID, f"cat:mdl:{movement.id}")
    replies = await h.text(ADMIN_ID, "31/02/2026")
    assert "không phải là ngày có thật" in replies[-1]["text"]
    replies = await h.text(ADMIN_ID, "25/11/2026 11:00")
    assert "Hạn đề nghị mới: 11:00 25/11/2026" in h.last_text(ADMIN_ID)
    moved = await h.services.catalogue.movement(movement.id)
    assert moved.nomination_deadline == datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert await h.services.flows.get(ADMIN_ID) is None

    # closing and archiving, from the card's buttons
    await h.press(ADMIN_ID, f"cat:mask:{movement.id}:c")
    await h.press(ADMIN_ID, f"cat:mst:{movement.id}:c")
    await h.press(ADMIN_ID, f"cat:mask:{movement.id}:a")
    await h.press(ADMIN_ID, f"cat:mst:{movement.id}:a")
    archived = await h.services.catalogue.movement(movement.id)
    assert archived.status is MovementStatus.ARCHIVED
    assert not any(b.startswith("cat:mdl:") for b in h.buttons(ADMIN_ID))
    # an archived movement cannot be reopened, even with a replayed button
    await h.forge_press(ADMIN_ID, f"cat:mst:{movement.id}:o")
    assert "đã lưu trữ" in _answers(h)[-1]
    assert (await h.services.catalogue.movement(movement.id)).status is MovementStatus.ARCHIVED
    # a second movement with the same name is refused at once, before the other questions
    await _open_catalogue(h)
    await h.press(ADMIN_ID, "cat:ml:0")
    await h.press(ADMIN_ID, "cat:madd")
    replies = await h.text(ADMIN_ID, "phong trào thi đua NĂM 2026")
    assert "Đã có phong trào mang tên Phong trào thi đua năm 2026" in replies[-1]["text"]
    flow = await h.services.flows.get(ADMIN_ID)
    assert flow is not None and flow.step == "movement_name"
    await h.text(ADMIN_ID, "/cancel")
    assert len(await h.services.catalogue.movements()) == 1


async def test_titles_are_added_with_a_threshold(harness: BotHarness) -> None:
    h = harness
    await _admin(h)
    await h.text(ADMIN_ID, "/admin")
    await h.press(ADMIN_ID, "cat:menu")
    await h.press(ADMIN_ID, "cat:tl:0")
    await h.press(ADMIN_ID, "cat:tadd")
    await h.press(ADMIN_ID, "cat:taddk:c")
    await h.text(ADMIN_ID, "Tập thể lao động xuất sắc")
    (title,) = await h.services.catalogue.titles()
    assert title.applies_to is AppliesTo.COLLECTIVE and title.approval_threshold is None
    assert "theo mức chung" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"cat:tthr:{title.id}")
    replies = await h.text(ADMIN_ID, "150%")
    assert "lớn hơn 0 và không quá 1" in replies[-1]["text"]
    await h.text(ADMIN_ID, "70%")
    assert (await h.services.catalogue.title(title.id)).approval_threshold == 0.7
    assert "70%" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"cat:tdel:{title.id}")
    assert await h.services.catalogue.titles() == []


async def test_staff_pressing_forged_buttons_changes_nothing(harness: BotHarness) -> None:
    h = harness
    admin = await _admin(h)
    catalogue = h.services.catalogue
    unit = await h.services.directory.add_unit(admin, "Phòng Thống kê Xã hội")
    await h.services.directory.add_member(admin, "Cán Bộ", unit.id, telegram_user_id=STAFF_ID)
    h.user(STAFF_ID, "Cán")
    field = await catalogue.add_field(admin, "Điều tra thống kê")
    criterion = await catalogue.add_criterion(admin, "Phiếu đạt chất lượng", field_id=field.id)
    title = await catalogue.add_title(admin, "Lao động tiên tiến")
    movement = await catalogue.add_movement(
        admin,
        "Phong trào thi đua năm 2026",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        nomination_deadline=parse_deadline("20/11/2026"),
    )
    for data in (
        "cat:menu",
        "cat:fl:0",
        "cat:fadd",
        f"cat:fdel:{field.id}",
        f"cat:fren:{field.id}",
        f"cat:capp:{criterion.id}:c",
        f"cat:cdel:{criterion.id}",
        f"cat:caddk:{field.id}:i",
        f"cat:tdel:{title.id}",
        f"cat:tthr:{title.id}",
        f"cat:mst:{movement.id}:o",
        f"cat:mdl:{movement.id}",
        "cat:madd",
    ):
        await h.forge_press(STAFF_ID, data)
        assert "Chỉ quản trị viên" in _answers(h)[-1], data
    assert await h.services.flows.get(STAFF_ID) is None
    replies = await h.text(STAFF_ID, "Lĩnh vực giả mạo")
    assert len(await catalogue.fields(include_inactive=True)) == 1
    assert replies  # answered, not acted on
    assert (await catalogue.field(field.id)).active
    assert (await catalogue.criterion(criterion.id)).applies_to is AppliesTo.BOTH
    assert (await catalogue.title(title.id)).active
    current = await catalogue.movement(movement.id)
    assert current.status is MovementStatus.DRAFT
    assert current.nomination_deadline == movement.nomination_deadline


async def test_malformed_and_stale_buttons_are_answered(harness: BotHarness) -> None:
    h = harness
    admin = await _admin(h)
    movement = await h.services.catalogue.add_movement(
        admin,
        "Đợt thi đua quý II",
        starts_on=date(2026, 4, 1),
        ends_on=date(2026, 6, 30),
        nomination_deadline=parse_deadline("15/06/2026"),
    )
    for data in (
        "cat",
        "cat:m:abc",
        f"cat:mst:{movement.id}:x",
        f"cat:mst:{movement.id}",
        "cat:zzz",
        "cat:m:999999",
        "cat:maddk:r",  # no movement is being added
        "cat:maddp:0",
        "cat:caddk:999:i",
    ):
        mark = len(h.core.calls("answerCallbackQuery"))
        await h.forge_press(ADMIN_ID, data)
        assert len(h.core.calls("answerCallbackQuery")) > mark, data
    assert (await h.services.catalogue.movement(movement.id)).status is MovementStatus.DRAFT
    assert await h.services.flows.get(ADMIN_ID) is None
