"""The announcement ticker with a controlled clock, on SQLite and PostgreSQL: weekly and monthly
rules, working days across Tết, UTC+7 slots, downtime and the grace window, two schedulers on one
database, and delivery through Telegram's faults (offline Bot API)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from telegram.error import NetworkError, TimedOut

from bot import broadcast, scheduler
from bot.broadcast import maybe_delivered
from bot.services.announcements import DOUBT_AFTER, TARGET_ALL
from bot.services.clock import FixedClock
from storage.models import AnnouncementRun, RunStatus
from tests.conftest import make_settings
from tests.fake_telegram import faults
from tests.harness import BotHarness, make_harness
from tests.test_announcements_world import (
    World,
    add_group,
    admin_viewer,
    announcement,
    local,
    make_world,
    running_bot,
    runs,
    texts,
)

G1, G2, G3 = -1001, -1002, -1003


async def custom(
    h: BotHarness, w: World, rule: str, body: str = "Họp giao ban đầu tuần", **kw: Any
) -> int:
    view = await h.services.announcements.create_custom(admin_viewer(w), body=body, rule=rule, **kw)
    return view.id


async def tick(h: BotHarness) -> scheduler.TickReport:
    return await scheduler.tick(h.app)


@pytest.fixture
async def bot(db_url: str, clock: FixedClock) -> Any:
    async with running_bot(make_settings(db_url), clock) as h:
        yield h


@pytest.fixture
async def world(bot: BotHarness) -> World:
    return await make_world(bot.services.db)


# ------------------------------------------------------------------------------ schedules


async def test_weekly_rule_posts_each_slot_once(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    clock.at = local(2026, 3, 1, 10)  # Sunday
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    ann = await custom(bot, world, "weekly mon 08:00")
    assert (await announcement(bot.services.db, ann)).next_run_at == local(2026, 3, 2, 8)

    await tick(bot)
    assert not texts(bot, G1)
    clock.at = local(2026, 3, 2, 8, 0, 10)
    report = await tick(bot)
    assert report.plan.claimed == 2 and report.outcomes["sent"] == 2
    assert [len(texts(bot, g)) for g in (G1, G2)] == [1, 1]
    assert "Họp giao ban đầu tuần" in texts(bot, G1)[0]
    for _ in range(3):
        clock.advance(timedelta(seconds=20))
        await tick(bot)
    assert [len(texts(bot, g)) for g in (G1, G2)] == [1, 1]
    assert (await announcement(bot.services.db, ann)).next_run_at == local(2026, 3, 9, 8)
    done = await runs(bot.services.db, ann)
    assert {r.status for r in done} == {RunStatus.SENT.value}
    assert all(r.message_id for r in done)
    # 08:00 in Hà Nội is 01:00 UTC: no daylight saving, the same all year
    assert {r.slot_at for r in done} == {datetime(2026, 3, 2, 1, 0, tzinfo=UTC)}

    clock.at = local(2026, 3, 9, 8, 0, 5)
    await tick(bot)
    assert [len(texts(bot, g)) for g in (G1, G2)] == [2, 2]


async def test_working_days_skip_tet(bot: BotHarness, world: World, clock: FixedClock) -> None:
    """Tết Đinh Mùi: 04/02–10/02/2027 are days off; Monday 08/02 is skipped."""
    clock.at = local(2027, 1, 25, 12)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "weekly mon 08:00", working_days_only=True)
    clock.at = local(2027, 2, 1, 8, 0, 5)
    await tick(bot)
    assert len(texts(bot, G1)) == 1
    assert (await announcement(bot.services.db, ann)).next_run_at == local(2027, 2, 15, 8)
    clock.at = local(2027, 2, 8, 8, 0, 5)
    await tick(bot)
    assert len(texts(bot, G1)) == 1
    clock.at = local(2027, 2, 15, 8, 0, 5)
    await tick(bot)
    assert len(texts(bot, G1)) == 2


async def test_daily_working_days_across_tet_2026(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    clock.at = local(2026, 2, 13, 9)  # Friday before Tết Bính Ngọ (16/02–20/02/2026)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "daily 07:30", working_days_only=True)
    assert (await announcement(bot.services.db, ann)).next_run_at == local(2026, 2, 23, 7, 30)


async def test_monthly_rules(bot: BotHarness, world: World, clock: FixedClock) -> None:
    clock.at = local(2026, 12, 20, 9)
    await add_group(bot, world, G1, "Cả cơ quan")
    first = await custom(bot, world, "monthly first-workday 08:00")
    last_day = await custom(bot, world, "monthly 31 16:30", body="Báo cáo tháng")
    db = bot.services.db
    # 01/01/2027 is New Year's Day: the first working day is Monday 04/01
    assert (await announcement(db, first)).next_run_at == local(2027, 1, 4, 8)
    assert (await announcement(db, last_day)).next_run_at == local(2026, 12, 31, 16, 30)
    clock.at = local(2026, 12, 31, 16, 30, 5)
    await tick(bot)
    assert (await announcement(db, last_day)).next_run_at == local(2027, 1, 31, 16, 30)
    clock.at = local(2027, 1, 4, 8, 0, 5)
    await tick(bot)
    assert len(texts(bot, G1)) == 2
    assert (await announcement(db, first)).next_run_at == local(2027, 2, 1, 8)
    # February has 28 days: "day 31" falls on its last day
    clock.at = local(2027, 1, 31, 16, 30, 5)
    await tick(bot)
    assert (await announcement(db, last_day)).next_run_at == local(2027, 2, 28, 16, 30)


async def test_slot_missed_during_downtime_is_posted_once_late(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    clock.at = local(2026, 3, 1, 10)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "weekly mon 08:00")
    clock.at = local(2026, 3, 2, 9, 30)  # the bot was down 07:00–09:30; grace is 120 minutes
    await tick(bot)
    await tick(bot)
    assert len(texts(bot, G1)) == 1
    (run,) = await runs(bot.services.db, ann)
    assert run.slot_at == local(2026, 3, 2, 8) and run.status == RunStatus.SENT.value


async def test_slot_older_than_the_grace_window_is_skipped_and_logged(
    bot: BotHarness, world: World, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.at = local(2026, 3, 1, 10)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "weekly mon 08:00")
    clock.at = local(2026, 3, 2, 10, 30)
    with caplog.at_level(logging.WARNING, logger="hoadep.announcements"):
        report = await tick(bot)
    assert report.plan.missed == 1 and not texts(bot, G1)
    assert "08:00 02/03/2026 was missed" in caplog.text
    assert not await runs(bot.services.db, ann)
    assert (await announcement(bot.services.db, ann)).next_run_at == local(2026, 3, 9, 8)


async def test_after_days_down_only_the_newest_slot_within_grace_goes_out(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    clock.at = local(2026, 3, 1, 10)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "daily 08:00")
    clock.at = local(2026, 3, 4, 8, 45)
    report = await tick(bot)
    assert report.plan.missed == 2
    (run,) = await runs(bot.services.db, ann)
    assert run.slot_at == local(2026, 3, 4, 8)
    assert len(texts(bot, G1)) == 1


async def test_a_one_off_announcement_finishes(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    clock.at = local(2026, 3, 1, 10)
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await custom(bot, world, "once 05/03/2026 14:00")
    clock.at = local(2026, 3, 5, 14, 0, 30)
    await tick(bot)
    row = await announcement(bot.services.db, ann)
    assert row.next_run_at is None and row.enabled
    clock.advance(timedelta(days=7))
    await tick(bot)
    assert len(texts(bot, G1)) == 1


# ------------------------------------------------------------------------------ two schedulers


@pytest.mark.parametrize("lock", [True, False], ids=["advisory-lock", "unique-key-only"])
async def test_two_schedulers_post_each_slot_once(
    db_url: str, clock: FixedClock, lock: bool
) -> None:
    """Two instances on one database tick at the same moments; without the lock too, each
    (announcement, slot, group) goes out exactly once."""
    settings = make_settings(db_url)
    clock.at = local(2026, 3, 1, 10)
    async with running_bot(settings, clock) as one, running_bot(settings, clock, one.core) as two:
        w = await make_world(one.services.db)
        chats = [-2000 - i for i in range(12)]
        for i, chat in enumerate(chats):
            await add_group(one, w, chat, f"Nhóm {i}", unit=("a", "b", None)[i % 3])
        first = await custom(one, w, "weekly mon 08:00")
        second = await custom(one, w, "daily 08:00", body="Nhắc việc hằng ngày")
        for h in (one, two):
            h.services.announcements.use_db_lock = lock
            # slow every send a little so that the two ticks overlap
        one.core.inject("sendMessage", faults.Delay(0.01), times=None)
        for day in (2, 3):
            clock.at = local(2026, 3, day, 8, 0, 3)
            reports = await asyncio.gather(*(tick(h) for h in (one, two, one, two)))
            assert sum(r.ran for r in reports) >= 1
        for chat in chats:
            got = texts(one, chat)
            assert sum("Họp giao ban" in t for t in got) == 1, (chat, got)
            assert sum("Nhắc việc hằng ngày" in t for t in got) == 2, (chat, got)
        done = await runs(one.services.db)
        assert len(done) == 12 * 3
        assert {r.status for r in done} == {RunStatus.SENT.value}
        assert {r.announcement_id for r in done} == {first, second}


# ------------------------------------------------------------------------------ delivery


async def _due_now(bot: BotHarness, world: World, clock: FixedClock, **kw: Any) -> int:
    clock.at = local(2026, 3, 1, 10)
    ann = await custom(bot, world, "weekly mon 08:00", **kw)
    clock.at = local(2026, 3, 2, 8, 0, 5)
    return ann


async def test_retry_after_is_retried_later_not_dropped(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    ann = await _due_now(bot, world, clock)
    bot.core.inject("sendMessage", faults.RetryAfter(7), chat_id=G2)
    report = await tick(bot)
    assert report.outcomes == {"sent": 1, "retry": 1}
    by_group = {r.group_chat_id: r for r in await runs(bot.services.db, ann)}
    retry = next(r for r in by_group.values() if r.status == RunStatus.RETRY.value)
    assert retry.next_attempt_at == clock.now() + timedelta(seconds=8)
    assert "rate limited" in (retry.last_error or "")
    await tick(bot)  # not yet
    assert not texts(bot, G2)
    clock.advance(timedelta(seconds=9))
    await tick(bot)
    assert len(texts(bot, G1)) == 1 and len(texts(bot, G2)) == 1
    assert {r.status for r in await runs(bot.services.db, ann)} == {RunStatus.SENT.value}


async def test_forbidden_marks_the_group_inactive_and_the_others_still_receive(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    gone = await add_group(bot, world, G2, "Nhóm cũ")
    await add_group(bot, world, G3, "Phòng Kinh tế", unit="a")
    bot.core.set_member(G2, bot.core.bot_user, "kicked")
    ann = await _due_now(bot, world, clock)
    report = await tick(bot)
    assert report.outcomes == {"sent": 2, "failed": 1}
    assert len(texts(bot, G1)) == 1 and len(texts(bot, G3)) == 1
    group = await bot.services.groups.get(gone.id)
    assert not group.active and group.inactive_reason == "forbidden"
    failed = [r for r in await runs(bot.services.db, ann) if r.status == RunStatus.FAILED.value]
    assert len(failed) == 1 and "forbidden" in (failed[0].last_error or "")
    clock.at = local(2026, 3, 9, 8, 0, 5)
    await tick(bot)
    assert len(await runs(bot.services.db, ann)) == 5  # the inactive group is not targeted


async def test_chat_migrated_is_followed(bot: BotHarness, world: World, clock: FixedClock) -> None:
    group = await add_group(bot, world, G1, "Phòng Kinh tế", kind="group")
    ann = await _due_now(bot, world, clock)
    bot.core.migrate_group(G1, -100_777)  # the bot has not seen the update yet
    report = await tick(bot)
    assert report.outcomes == {"sent": 1}
    assert not texts(bot, G1) and len(texts(bot, -100_777)) == 1
    moved = await bot.services.groups.get(group.id)
    assert moved.chat_id == -100_777 and moved.migrated_from_chat_id == G1 and moved.active
    (run,) = await runs(bot.services.db, ann)
    assert run.status == RunStatus.SENT.value and run.attempts == 2


async def test_server_errors_are_retried_with_backoff(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await _due_now(bot, world, clock)
    bot.core.inject("sendMessage", faults.ServerError(502), times=2)
    await tick(bot)
    (run,) = await runs(bot.services.db, ann)
    assert run.status == RunStatus.RETRY.value
    assert run.next_attempt_at == clock.now() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=10))
    await tick(bot)
    (run,) = await runs(bot.services.db, ann)
    assert run.next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(timedelta(seconds=20))
    await tick(bot)
    (run,) = await runs(bot.services.db, ann)
    assert run.status == RunStatus.SENT.value and run.attempts == 3
    assert len(texts(bot, G1)) == 1


async def test_a_timeout_is_never_resent(
    bot: BotHarness, world: World, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer in time: Telegram may have delivered it (the fake does). At most once."""
    monkeypatch.setattr(broadcast, "READ_TIMEOUT", 0.2)
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    ann = await _due_now(bot, world, clock)
    bot.core.inject("sendMessage", faults.Delay(0.6), chat_id=G1)
    report = await tick(bot)
    assert report.outcomes == {"sent": 1, "uncertain": 1}
    await asyncio.sleep(0.7)  # the fake carries the delayed request out
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        await tick(bot)
    assert len(texts(bot, G1)) == 1 and len(texts(bot, G2)) == 1
    statuses = sorted(
        (r.status, (r.last_error or "")[:9]) for r in await runs(bot.services.db, ann)
    )
    assert statuses == [("failed", "uncertain"), ("sent", "")]


def test_which_network_errors_may_have_delivered() -> None:
    import httpx

    def caused(exc: NetworkError, cause: BaseException) -> NetworkError:
        exc.__cause__ = cause
        return exc

    assert maybe_delivered(TimedOut())
    assert maybe_delivered(caused(TimedOut(), httpx.ReadTimeout("slow")))
    assert maybe_delivered(caused(NetworkError("x"), httpx.RemoteProtocolError("dropped")))
    assert not maybe_delivered(caused(TimedOut(), httpx.ConnectTimeout("no route")))
    assert not maybe_delivered(caused(TimedOut(), httpx.PoolTimeout("busy")))
    assert not maybe_delivered(caused(NetworkError("x"), httpx.ConnectError("refused")))
    assert not maybe_delivered(NetworkError("Bad Gateway"))


async def test_a_crash_mid_broadcast_loses_nothing_and_doubles_nothing(
    db_url: str, clock: FixedClock
) -> None:
    """Claimed runs are sent after a restart; a run that was on the wire when the process died
    is in doubt and never resent."""
    settings = make_settings(db_url)
    clock.at = local(2026, 3, 1, 10)
    async with running_bot(settings, clock) as first:
        w = await make_world(first.services.db)
        for i, chat in enumerate((G1, G2, G3)):
            await add_group(first, w, chat, f"Nhóm {i}")
        ann = await custom(first, w, "weekly mon 08:00")
        clock.at = local(2026, 3, 2, 8, 0, 5)
        # the first process claims the slot, sends to G1, and dies while G2's request is on the
        # wire (the fake delivers it); G3 never got its turn
        await first.services.announcements.plan()
        (r1, r2, r3) = await runs(first.services.db, ann)
        pending = await first.services.announcements.deliverable()
        await broadcast.Broadcaster(first.app).deliver([p for p in pending if p.id == r1.id])
        assert await first.services.announcements.begin_send(r2.id, r2.content_ref)
        await first.app.bot.send_message(G2, "📢 (đã gửi trước khi tiến trình dừng)")
        core = first.core
    clock.advance(timedelta(seconds=30))
    async with running_bot(settings, clock, core) as second:
        report = await tick(second)
        assert report.outcomes == {"sent": 1}
        assert [len(texts(second, c)) for c in (G1, G2, G3)] == [1, 1, 1]
        clock.advance(DOUBT_AFTER + timedelta(seconds=1))
        report = await tick(second)
        assert report.in_doubt == [r2.id] and not report.outcomes
        assert [len(texts(second, c)) for c in (G1, G2, G3)] == [1, 1, 1]
        statuses = {r.id: r.status for r in await runs(second.services.db, ann)}
        assert statuses == {r1.id: "sent", r2.id: "failed", r3.id: "sent"}


async def test_runs_left_by_a_long_stop_are_skipped_after_the_grace_window(
    db_url: str, clock: FixedClock
) -> None:
    settings = make_settings(db_url)
    clock.at = local(2026, 3, 1, 10)
    async with running_bot(settings, clock) as h:
        w = await make_world(h.services.db)
        await add_group(h, w, G1, "Cả cơ quan")
        ann = await custom(h, w, "weekly mon 08:00")
        clock.at = local(2026, 3, 2, 8, 0, 5)
        await h.services.announcements.plan()  # claimed, then the bot stopped for a day
        clock.at = local(2026, 3, 3, 9)
        await tick(h)
        assert not texts(h, G1)
        (run,) = await runs(h.services.db, ann)
        assert run.status == RunStatus.SKIPPED.value and "grace" in (run.last_error or "")


async def test_a_long_announcement_is_split_and_a_retry_continues_with_the_next_part(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    body = "\n".join(f'Mục {i}: <kết quả> & "đánh giá" của phòng {i}' for i in range(90))
    ann = await _due_now(bot, world, clock, body=body)
    bot.core.inject("sendMessage", faults.Delay(0), chat_id=G1)  # the first part goes through
    bot.core.inject("sendMessage", faults.RetryAfter(3), chat_id=G1)  # the second is refused
    report = await tick(bot)
    assert report.outcomes == {"retry": 1}
    (run,) = await runs(bot.services.db, ann)
    assert run.content_ref == "#1" and run.message_id is not None
    clock.advance(timedelta(seconds=5))
    await tick(bot)
    parts = texts(bot, G1)
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert "Mục 0: <kết quả>" in parts[0] and "Mục 89" in parts[1]
    (run,) = await runs(bot.services.db, ann)
    assert run.status == RunStatus.SENT.value


async def test_paused_announcements_and_inactive_groups_are_skipped(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    await add_group(bot, world, G2, "Phòng Kinh tế", unit="a")
    ann = await _due_now(bot, world, clock, target=TARGET_ALL)
    await bot.services.announcements.plan()
    await bot.services.groups.bot_left(G2, "removed")
    await tick(bot)
    assert len(texts(bot, G1)) == 1 and not texts(bot, G2)
    statuses = sorted(r.status for r in await runs(bot.services.db, ann))
    assert statuses == ["sent", "skipped"]
    admin = admin_viewer(world)
    await bot.services.announcements.pause(admin, ann)
    clock.at = local(2026, 3, 9, 8, 0, 5)
    await tick(bot)
    assert len(texts(bot, G1)) == 1
    view = await bot.services.announcements.resume(admin, ann)
    assert view.next_run_at == local(2026, 3, 16, 8)


async def test_another_instance_took_the_run(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await _due_now(bot, world, clock)
    await bot.services.announcements.plan()
    pending = await bot.services.announcements.deliverable()
    async with bot.services.db.transaction() as session:  # someone else sent it meanwhile
        await session.execute(
            update(AnnouncementRun)
            .where(AnnouncementRun.announcement_id == ann)
            .values(status=RunStatus.SENT.value)
        )
    outcomes = await broadcast.Broadcaster(bot.app).deliver(pending)
    assert outcomes == {"taken": 1} and not texts(bot, G1)


async def test_role_scheduler_runs_only_the_ticker(db_url: str, clock: FixedClock) -> None:
    settings = make_settings(db_url, announcements={"role": "scheduler", "tick_seconds": 0.2})
    h, app = await make_harness(settings, clock)
    w = await make_world(h.services.db)
    clock.at = local(2026, 3, 1, 10)
    await add_group(h, w, G1, "Cả cơ quan")
    await custom(h, w, "weekly mon 08:00")
    clock.at = local(2026, 3, 2, 8, 0, 5)
    assert {"outbox", scheduler.JOB_NAME} <= {job.name for job in app.job_queue.jobs()}
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_scheduler_only(app, stop))
    await h.core.wait_for_message(G1, timeout=20)
    assert {job.name for job in app.job_queue.jobs()} == {scheduler.JOB_NAME}
    assert not h.core.calls("getUpdates") and not h.core.calls("setWebhook")
    stop.set()
    await asyncio.wait_for(task, 20)
    assert not app.running


async def test_a_stopping_bot_sends_nothing_more(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    await add_group(bot, world, G1, "Cả cơ quan")
    ann = await _due_now(bot, world, clock)
    await bot.services.announcements.plan()
    pending = await bot.services.announcements.deliverable()
    outcomes = await broadcast.Broadcaster(bot.app, stopping=lambda: True).deliver(pending)
    assert not texts(bot, G1) and "sent" not in outcomes
    (run,) = await runs(bot.services.db, ann)
    assert run.status == RunStatus.CLAIMED.value and run.attempts == 0
    await tick(bot)  # the next start sends it
    assert len(texts(bot, G1)) == 1
