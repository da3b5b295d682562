"""What is announced, on SQLite and PostgreSQL: the default announcements, the weekly digest per
unit and for the office, the exemplar spotlight's fair rotation, movement notices, key dates,
and /announce for administrators (offline Bot API, controlled clock)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import scheduler
from bot.broadcast import render
from bot.services.announcements import (
    CUSTOM,
    KEY_DATE,
    MOVEMENT_NOTICES,
    SEEDS,
    SPOTLIGHT,
    WEEKLY_DIGEST,
    Content,
    split_progress,
    with_progress,
)
from bot.services.clock import FixedClock
from bot.services.errors import InvalidInput, NotAllowed
from bot.texts import translator
from storage.models import Announcement, RunStatus
from tests.conftest import make_settings
from tests.harness import ADMIN_ID, BotHarness
from tests.test_announcements_world import (
    STAFF_TG,
    World,
    add_deed,
    add_exemplar,
    add_group,
    admin_viewer,
    local,
    make_world,
    running_bot,
    runs,
    seeded,
    staff_viewer,
    texts,
)

G1, G2, G3, G4 = -3001, -3002, -3003, -3004


async def tick(h: BotHarness) -> scheduler.TickReport:
    return await scheduler.tick(h.app)


@pytest.fixture
async def bot(db_url: str, clock: FixedClock) -> Any:
    clock.at = local(2026, 2, 1, 12)
    async with running_bot(make_settings(db_url), clock, seed=True) as h:
        yield h


@pytest.fixture
async def world(bot: BotHarness) -> World:
    return await make_world(bot.services.db)


# ------------------------------------------------------------------------------ defaults


async def test_defaults_are_created_once_and_a_deleted_one_stays_deleted(
    bot: BotHarness, world: World
) -> None:
    service = bot.services.announcements
    assert await service.seed_defaults() == len(SEEDS)
    assert await service.seed_defaults() == 0
    admin = admin_viewer(world)
    views = await service.list_announcements(admin)
    assert [v.kind for v in views] == [
        WEEKLY_DIGEST,
        SPOTLIGHT,
        MOVEMENT_NOTICES,
        KEY_DATE,
        KEY_DATE,
    ]
    digest = views[0]
    assert digest.rule == "weekly mon 08:00" and digest.working_days_only
    assert digest.next_run_at == local(2026, 2, 2, 8)
    await service.delete(admin, digest.id)
    assert await service.seed_defaults() == 0
    assert WEEKLY_DIGEST not in [v.kind for v in await service.list_announcements(admin)]
    with pytest.raises(NotAllowed):
        await service.list_announcements(staff_viewer(world))
    # the ticker creates them at its first round
    await tick(bot)
    async with bot.services.db.read() as session:
        count = len(list(await session.scalars(select(Announcement))))
    assert count == len(SEEDS)


# ------------------------------------------------------------------------------ digest


async def test_weekly_digest_per_unit_and_for_the_office(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    db = bot.services.db
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    await add_group(bot, world, G3, "Chi cục Đông Anh", unit="b")
    await add_group(bot, world, G4, "Nông nghiệp (EN)", unit="a1", language="en")
    await tick(bot)  # creates the defaults
    await add_deed(
        db,
        world,
        subject="an",
        unit="a1",
        decided_at=local(2026, 2, 2, 15),
        description="Hỗ trợ đồng nghiệp <mới> hoàn thành phiếu điều tra",
        occurred_on=date(2026, 2, 2),
    )
    await add_deed(
        db,
        world,
        subject="binh",
        unit="b",
        decided_at=local(2026, 2, 6, 9),
        description="Hiến máu tình nguyện",
    )
    await add_deed(
        db,
        world,
        subject="an",
        unit="a1",
        decided_at=local(2026, 1, 28, 9),
        description="Việc của tuần trước",
    )
    await add_deed(
        db,
        world,
        subject="cuong",
        unit="b",
        decided_at=local(2026, 2, 7, 9),
        description="Chưa được duyệt",
        status="submitted",
    )
    clock.at = local(2026, 2, 9, 8, 0, 10)
    await tick(bot)
    office, unit_a, unit_b, english = (texts(bot, g) for g in (G1, G2, G3, G4))
    assert len(office) == len(unit_a) == len(unit_b) == len(english) == 1
    assert "Những bông hoa đẹp trong tuần" in office[0]
    assert "toàn cơ quan từ 02/02/2026 đến 08/02/2026" in office[0]
    assert "Lê Văn An" in office[0] and "Phạm Thị Bình" in office[0]
    assert "<mới>" in office[0]  # user text is escaped, then shown as typed
    assert "(02/02/2026)" in office[0]
    assert "Việc của tuần trước" not in office[0] and "Chưa được duyệt" not in office[0]
    assert "Phòng Thống kê Kinh tế" in unit_a[0]  # the unit's name heads its digest
    assert "Lê Văn An" in unit_a[0] and "Phạm Thị Bình" not in unit_a[0]
    assert "Phạm Thị Bình" in unit_b[0] and "Lê Văn An" not in unit_b[0]
    assert "Beautiful flowers of the week" in english[0] and "Lê Văn An" in english[0]
    digest = await seeded(db, "weekly_digest")
    refs = sorted(r.content_ref or "" for r in await runs(db, digest.id))
    assert refs == ["deeds:1", "deeds:1", "deeds:1", "deeds:2"]


@pytest.mark.parametrize("invite", [False, True], ids=["skipped", "invitation"])
async def test_no_empty_digest_unless_an_invitation_is_wanted(
    db_url: str, clock: FixedClock, invite: bool
) -> None:
    clock.at = local(2026, 2, 1, 12)
    settings = make_settings(db_url, announcements={"post_invitation_when_empty": invite})
    async with running_bot(settings, clock, seed=True) as h:
        w = await make_world(h.services.db)
        await add_group(h, w, G1, "Cả cơ quan")
        await tick(h)
        clock.at = local(2026, 2, 9, 8, 0, 10)
        await tick(h)
        digest = await seeded(h.services.db, "weekly_digest")
        (run,) = await runs(h.services.db, digest.id)
        if invite:
            assert "Tuần này chưa có người tốt, việc tốt nào" in texts(h, G1)[-1]
            assert run.status == RunStatus.SENT.value and run.content_ref == "invite"
        else:
            assert not texts(h, G1)
            assert run.status == RunStatus.SKIPPED.value and run.content_ref == "empty"


async def test_a_skipped_monday_loses_no_good_deed(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    """Monday 16/02/2026 is Tết: the digest of 23/02 covers everything since 09/02."""
    db = bot.services.db
    await add_group(bot, world, G1, "Cả cơ quan")
    await tick(bot)
    clock.at = local(2026, 2, 9, 8, 0, 5)
    await tick(bot)  # nothing yet: skipped, empty
    await add_deed(db, world, decided_at=local(2026, 2, 12, 10), description="Trước Tết")
    await add_deed(db, world, decided_at=local(2026, 2, 20, 10), description="Trong Tết")
    clock.at = local(2026, 2, 16, 8, 0, 5)
    await tick(bot)
    assert not texts(bot, G1)
    clock.at = local(2026, 2, 23, 8, 0, 5)
    await tick(bot)
    (digest,) = texts(bot, G1)
    assert "Trước Tết" in digest and "Trong Tết" in digest
    assert "từ 09/02/2026 đến 22/02/2026" in digest


async def test_a_long_digest_is_cut_and_counted(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    db = bot.services.db
    await add_group(bot, world, G1, "Cả cơ quan")
    await tick(bot)
    for i in range(25):
        await add_deed(db, world, decided_at=local(2026, 2, 3, 8, i), description=f"Việc {i} " * 60)
    clock.at = local(2026, 2, 9, 8, 0, 5)
    await tick(bot)
    parts = texts(bot, G1)
    assert len(parts) >= 2 and all(len(p) <= 4096 for p in parts)
    assert "…và 5 người tốt, việc tốt khác" in parts[-1]


# ------------------------------------------------------------------------------ spotlight


async def test_spotlight_rotates_fairly(bot: BotHarness, world: World, clock: FixedClock) -> None:
    db = bot.services.db
    await add_group(bot, world, G1, "Cả cơ quan")
    await tick(bot)
    spotlight = await seeded(db, "spotlight")
    assert spotlight.next_run_at == local(2026, 2, 4, 8, 30)
    n1 = await add_exemplar(db, world, nominee="an", decided_at=local(2026, 1, 10, 9))
    n2 = await add_exemplar(db, world, nominee="binh", decided_at=local(2026, 1, 12, 9))
    n3 = await add_exemplar(
        db,
        world,
        nominee="cuong",
        decided_at=local(2026, 1, 15, 9),
        practices="Ứng dụng <b>phần mềm</b> CAPI",
    )
    shown: list[str | None] = []
    wednesdays = [
        local(2026, 2, 4),
        local(2026, 2, 11),
        local(2026, 2, 25),
        local(2026, 3, 4),
        local(2026, 3, 11),
    ]  # 18/02 is Tết
    for day in wednesdays:
        clock.at = day + timedelta(hours=8, minutes=30, seconds=5)
        await tick(bot)
        shown.append((await runs(db, spotlight.id))[-1].content_ref)
    assert shown == [f"nom:{n}" for n in (n1, n2, n3, n1, n2)]
    assert "Gương điển hình tiên tiến" in texts(bot, G1)[2]
    assert "Ứng dụng &lt;b&gt;phần mềm&lt;/b&gt; CAPI" not in texts(bot, G1)[2]
    assert "Ứng dụng <b>phần mềm</b> CAPI" in texts(bot, G1)[2]  # escaped, shown as typed
    assert "Kinh nghiệm, cách làm hay cần học tập và nhân rộng" in texts(bot, G1)[2]
    # a newly approved exemplar goes first; the one shown last never comes twice in a row
    n4 = await add_exemplar(db, world, nominee="staff", decided_at=local(2026, 3, 12, 9))
    clock.at = local(2026, 3, 18, 8, 30, 5)
    await tick(bot)
    assert (await runs(db, spotlight.id))[-1].content_ref == f"nom:{n4}"
    clock.at = local(2026, 3, 25, 8, 30, 5)
    await tick(bot)
    assert (await runs(db, spotlight.id))[-1].content_ref == f"nom:{n3}"


async def test_a_single_exemplar_is_not_shown_twice_in_a_row(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    db = bot.services.db
    await add_group(bot, world, G1, "Cả cơ quan")
    await tick(bot)
    spotlight = await seeded(db, "spotlight")
    clock.at = local(2026, 2, 4, 8, 30, 5)
    await tick(bot)
    assert (await runs(db, spotlight.id))[-1].status == RunStatus.SKIPPED.value
    await add_exemplar(db, world, nominee="an", decided_at=local(2026, 2, 5, 9))
    for day in (11, 25):
        clock.at = local(2026, 2, day, 8, 30, 5)
        await tick(bot)
    statuses = [r.status for r in await runs(db, spotlight.id)]
    assert statuses == ["skipped", "sent", "skipped"]
    assert len(texts(bot, G1)) == 1


# ------------------------------------------------------------------------------ movements


async def test_movement_notices(bot: BotHarness, world: World, clock: FixedClock) -> None:
    admin = admin_viewer(world)
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    clock.at = local(2026, 3, 1, 12)
    await tick(bot)
    catalogue = bot.services.catalogue
    movement = await catalogue.add_movement(
        admin,
        "Thi đua chuyển đổi số năm 2026",
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 6, 30),
        nomination_deadline=local(2026, 5, 15, 17),
    )
    clock.at = local(2026, 3, 2, 10)
    await catalogue.open_movement(admin, movement.id)
    expected = {
        local(2026, 3, 3): "Phát động phong trào thi đua",
        local(2026, 5, 4): "Sơ kết phong trào",  # half-way: 30/04 (a holiday, like 1/5)
        local(2026, 5, 8): "Sắp hết hạn đề cử",
        local(2026, 5, 14): "Hạn đề cử đã cận kề",
        local(2026, 5, 21): "Kết thúc nhận đề cử",
        local(2026, 6, 30): "Tổng kết phong trào",
    }
    quiet = [local(2026, 3, 4), local(2026, 5, 5), local(2026, 5, 11), local(2026, 5, 22)]
    for day in sorted([*expected, *quiet]):
        if day == local(2026, 5, 21):
            clock.at = local(2026, 5, 20, 9)
            await catalogue.close_movement(admin, movement.id)
        clock.at = day + timedelta(hours=8, seconds=5)
        await tick(bot)
        for group in (G1, G2):
            got = texts(bot, group)
            if day in expected:
                assert expected[day] in got[-1], (day, got[-1])
            assert len(got) == sum(1 for d in expected if d <= day), (day, got)
    launch = texts(bot, G1)[0]
    assert "Thi đua chuyển đổi số năm 2026" in launch and "17:00 15/05/2026" in launch


# ------------------------------------------------------------------------------ key dates


async def test_key_dates(bot: BotHarness, world: World, clock: FixedClock) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "English group", language="en")
    await tick(bot)
    clock.at = local(2026, 5, 6, 8, 0, 5)
    await tick(bot)
    assert "Ngày truyền thống ngành Thống kê Việt Nam" in texts(bot, G1)[-1]
    assert "kỷ niệm 80 năm (06/5/1946 – 06/05/2026)" in texts(bot, G1)[-1]
    clock.at = local(2026, 6, 11, 8, 0, 5)
    await tick(bot)
    assert (
        "Kỷ niệm 78 năm Ngày Chủ tịch Hồ Chí Minh ra Lời kêu gọi thi đua ái quốc"
        in (texts(bot, G1)[-1])
    )
    assert "78 years since President Hồ Chí Minh's Call" in texts(bot, G2)[-1]


# ------------------------------------------------------------------------------ rendering


def test_progress_suffix() -> None:
    assert split_progress(None) == (None, 0)
    assert split_progress("nom:4") == ("nom:4", 0)
    assert with_progress("nom:4", 2) == "nom:4#2" and split_progress("nom:4#2") == ("nom:4", 2)
    assert with_progress(None, 1) == "#1" and split_progress("#1") == (None, 1)


def test_custom_text_is_escaped() -> None:
    from datetime import UTC, datetime

    t = translator("vi")
    text = render(Content(CUSTOM, datetime(2026, 3, 2, tzinfo=UTC), body="A < B & <b>C</b>"), t)
    assert text == "📢 <b>Thông báo</b>\n\nA &lt; B &amp; &lt;b&gt;C&lt;/b&gt;"


# ------------------------------------------------------------------------------ /announce


async def test_announce_for_administrators(harness: BotHarness, clock: FixedClock) -> None:
    h = harness
    w = await make_world(h.services.db)
    h.user(STAFF_TG, "Lan")
    clock.at = local(2026, 3, 2, 9)
    await h.services.announcements.seed_defaults()
    await add_group(h, w, G1, "Cả cơ quan")
    sent = await h.text(STAFF_TG, "/announce")
    assert "Chỉ quản trị viên" in sent[-1]["text"]
    sent = await h.text(ADMIN_ID, "/announce")
    listing = sent[-1]["text"]
    assert "Bản tin người tốt, việc tốt hằng tuần" in listing
    assert "Thứ Hai hằng tuần lúc 08:00 (bỏ qua thứ Bảy, Chủ nhật và ngày lễ)" in listing

    # a custom announcement: text, schedule, working days, target, check, save
    await h.press(ADMIN_ID, "ann:new")
    await h.text(ADMIN_ID, "Họp sơ kết 6 tháng\nKính mời các đơn vị dự họp sơ kết <6 tháng>.")
    assert "Khi nào gửi?" in h.last_text(ADMIN_ID)
    await h.text(ADMIN_ID, "hằng tuần thứ 6 lúc 8h30")
    assert "Chỉ gửi vào ngày làm việc?" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, "ann:wd:1")
    await h.press(ADMIN_ID, "ann:tgu:0")
    await h.press(ADMIN_ID, f"ann:tgx:{w.units['a']}")
    check = h.last_text(ADMIN_ID)
    assert "Thứ Sáu hằng tuần lúc 08:30 (bỏ qua" in check
    assert "các nhóm của Phòng Thống kê Kinh tế" in check
    assert "dự họp sơ kết <6 tháng>" in check
    await h.press(ADMIN_ID, "ann:save")
    assert "Đã lưu thông báo" in h.texts(ADMIN_ID)[-2]
    views = await h.services.announcements.list_announcements(admin_viewer(w))
    custom = next(v for v in views if v.kind == CUSTOM)
    assert custom.rule == "weekly fri 08:30" and custom.working_days_only
    assert custom.target == f"unit:{w.units['a']}" and custom.title == "Họp sơ kết 6 tháng"
    assert custom.next_run_at == local(2026, 3, 6, 8, 30)


async def test_announce_asks_again_for_a_schedule_it_cannot_use(
    harness: BotHarness, clock: FixedClock
) -> None:
    h = harness
    await make_world(h.services.db)
    clock.at = local(2026, 3, 2, 9)
    await h.text(ADMIN_ID, "/announce")
    await h.press(ADMIN_ID, "ann:new")
    await h.text(ADMIN_ID, "Thông báo nghỉ lễ")
    sent = await h.text(ADMIN_ID, "thứ hai hằng tháng")
    assert "Tôi chưa hiểu lịch này" in sent[-1]["text"]
    sent = await h.text(ADMIN_ID, "once 01/01/2026 08:00")
    assert "Thời điểm đó đã qua" in sent[-1]["text"]
    await h.text(ADMIN_ID, "một lần 30/04/2026 08:00")
    assert "Gửi tới những nhóm nào?" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, "ann:tg:office")
    assert "Một lần vào ngày 30/04/2026 lúc 08:00" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, "ann:stop")
    assert "Không có gì được lưu" in h.last_text(ADMIN_ID)
    assert await h.services.flows.get(ADMIN_ID) is None


async def test_preview_pause_resume_delete(harness: BotHarness, clock: FixedClock) -> None:
    h = harness
    w = await make_world(h.services.db)
    clock.at = local(2026, 3, 2, 9)
    await h.services.announcements.seed_defaults()
    custom = await h.services.announcements.create_custom(
        admin_viewer(w), body="Nhắc nộp báo cáo tháng", rule="weekly fri 08:30"
    )
    views = await h.services.announcements.list_announcements(admin_viewer(w))
    # preview, in both languages, as a new message
    digest = next(v for v in views if v.kind == WEEKLY_DIGEST)
    await h.text(ADMIN_ID, "/announce")
    await h.press(ADMIN_ID, f"ann:card:{digest.id}")
    sent = await h.press(ADMIN_ID, f"ann:prev:{digest.id}")
    assert sent[-1]["method"] == "sendMessage" and "Xem trước" in sent[-1]["text"]
    assert "Tuần này chưa có người tốt, việc tốt nào" in sent[-1]["text"]
    sent = await h.press(ADMIN_ID, f"ann:prev:{digest.id}:en")
    assert "No good deed was recognised this week yet" in sent[-1]["text"]

    # pause, resume, delete
    await h.text(ADMIN_ID, "/announce")
    await h.press(ADMIN_ID, f"ann:card:{custom.id}")
    await h.press(ADMIN_ID, f"ann:pause:{custom.id}")
    assert "đang tạm dừng" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"ann:resume:{custom.id}")
    assert "lần gửi tới: 08:30 06/03/2026" in h.last_text(ADMIN_ID)
    await h.press(ADMIN_ID, f"ann:del:{custom.id}")
    await h.press(ADMIN_ID, f"ann:delok:{custom.id}")
    assert "Đã xoá thông báo" in h.texts(ADMIN_ID)[-2]
    assert custom.id not in [
        v.id for v in await h.services.announcements.list_announcements(admin_viewer(w))
    ]


async def test_last_runs_per_group(harness: BotHarness, clock: FixedClock) -> None:
    h = harness
    w = await make_world(h.services.db)
    clock.at = local(2026, 3, 1, 10)
    await add_group(h, w, G1, "Cả cơ quan")
    gone = await add_group(h, w, G2, "Nhóm cũ")
    view = await h.services.announcements.create_custom(
        admin_viewer(w), body="Nhắc nộp báo cáo", rule="weekly mon 08:00"
    )
    h.core.set_member(G2, h.core.bot_user, "kicked")
    h.app.bot_data[scheduler.SEEDED] = True
    clock.at = local(2026, 3, 2, 8, 0, 5)
    await tick(h)
    await h.text(ADMIN_ID, "/announce")
    await h.press(ADMIN_ID, f"ann:card:{view.id}")
    await h.press(ADMIN_ID, f"ann:runs:{view.id}")
    text = h.last_text(ADMIN_ID)
    assert "Lượt gửi 08:00 02/03/2026" in text
    assert "✅ Cả cơ quan: đã gửi" in text
    assert "❌ Nhóm cũ: không gửi được: forbidden" in text
    assert not (await h.services.groups.get(gone.id)).active


async def test_custom_announcement_rules(harness: BotHarness, clock: FixedClock) -> None:
    w = await make_world(harness.services.db)
    service = harness.services.announcements
    admin = admin_viewer(w)
    with pytest.raises(InvalidInput):
        await service.create_custom(admin, body="  ", rule="daily 08:00")
    with pytest.raises(InvalidInput):
        await service.create_custom(admin, body="x" * 4001, rule="daily 08:00")
    with pytest.raises(NotAllowed):
        await service.create_custom(staff_viewer(w), body="Xin chào", rule="daily 08:00")
    once = await service.create_custom(
        admin, body="Một lần", rule="once 2026-03-03 08:00", working_days_only=True
    )
    assert not once.working_days_only  # an explicit date is kept: the admin chose it
