"""Scheduled announcements through long outages, with a controlled clock, on SQLite and
PostgreSQL: posted once in every group after 70 hours of server errors (the administrators told
once of the failure and once of the recovery), given up after 72 hours, and a call to nominate
that expired meanwhile never posted."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import scheduler
from bot.services.announcements import (
    SKIP_EXPIRED,
    Content,
    EventKind,
    MovementEvent,
    expires_at,
)
from bot.services.clock import FixedClock
from bot.services.delivery import DELIVERY_DOWN, DELIVERY_UP
from storage.models import OutboxMessage, RunStatus
from tests.conftest import make_settings
from tests.fake_telegram import faults
from tests.harness import BotHarness
from tests.test_announcements_world import (
    World,
    add_group,
    admin_viewer,
    local,
    make_world,
    running_bot,
    runs,
    seeded,
    texts,
)

G1, G2 = -4001, -4002
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
async def bot(db_url: str, clock: FixedClock) -> Any:
    clock.at = local(2026, 3, 1, 10)
    async with running_bot(make_settings(db_url), clock) as h:
        yield h


@pytest.fixture
async def world(bot: BotHarness) -> World:
    w = await make_world(bot.services.db)
    await add_group(bot, w, G1, "Cả cơ quan")
    await add_group(bot, w, G2, "Phòng Kinh tế", unit="a")
    return w


async def weekly(bot: BotHarness, world: World, clock: FixedClock) -> int:
    view = await bot.services.announcements.create_custom(
        admin_viewer(world), body="Họp giao ban đầu tuần", rule="weekly mon 08:00"
    )
    clock.at = local(2026, 3, 2, 8, 0, 5)
    return view.id


async def through(bot: BotHarness, clock: FixedClock, hours: float, step: timedelta) -> None:
    end = clock.now() + timedelta(hours=hours)
    while clock.now() < end:
        await scheduler.tick(bot.app)
        clock.advance(step)


async def admin_alerts(bot: BotHarness, message: str) -> int:
    async with bot.services.db.read() as session:
        found = await session.scalars(select(OutboxMessage).where(OutboxMessage.message == message))
        return len(list(found))


async def test_an_announcement_is_posted_once_after_a_70_hour_outage(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    ann = await weekly(bot, world, clock)
    bot.core.inject("sendMessage", faults.ServerError(502), times=None)
    await through(bot, clock, 70, timedelta(minutes=20))
    assert not texts(bot, G1) and not texts(bot, G2)
    waiting = await runs(bot.services.db, ann)
    assert {r.status for r in waiting} == {RunStatus.RETRY.value}
    assert all(r.next_attempt_at - clock.now() <= timedelta(minutes=15) for r in waiting)
    assert await admin_alerts(bot, DELIVERY_DOWN) == 1
    bot.core.clear_injections()
    await through(bot, clock, 0.3, timedelta(minutes=1))
    assert texts(bot, G1) == texts(bot, G2) and len(texts(bot, G1)) == 1
    assert "Họp giao ban đầu tuần" in texts(bot, G1)[0]
    assert {r.status for r in await runs(bot.services.db, ann)} == {RunStatus.SENT.value}
    assert await admin_alerts(bot, DELIVERY_UP) == 1
    await through(bot, clock, 1, timedelta(minutes=10))
    assert len(texts(bot, G1)) == 1 and len(texts(bot, G2)) == 1


async def test_an_announcement_is_given_up_after_72_hours(
    bot: BotHarness, world: World, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    ann = await weekly(bot, world, clock)
    slot = clock.now()
    bot.core.inject("sendMessage", faults.ServerError(500), times=None)
    await through(bot, clock, 71.5, timedelta(minutes=30))
    assert {r.status for r in await runs(bot.services.db, ann)} == {RunStatus.RETRY.value}
    with caplog.at_level(logging.WARNING, "hoadep.broadcast"):
        await through(bot, clock, 1, timedelta(minutes=15))
    given_up = await runs(bot.services.db, ann)
    assert {r.status for r in given_up} == {RunStatus.FAILED.value}
    assert all("gave up after 72 hours" in (r.last_error or "") for r in given_up)
    assert clock.now() - slot < timedelta(hours=73)
    assert any("gave up" in r.getMessage() for r in caplog.records)


async def test_a_call_to_nominate_that_expired_during_the_outage_is_not_posted(
    db_url: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.at = local(2026, 3, 1, 12)
    async with running_bot(make_settings(db_url), clock, seed=True) as bot:
        world = await make_world(bot.services.db)
        await add_group(bot, world, G1, "Cả cơ quan")
        await scheduler.tick(bot.app)  # the default announcements
        admin = admin_viewer(world)
        movement = await bot.services.catalogue.add_movement(
            admin,
            "Thi đua chuyển đổi số năm 2026",
            starts_on=date(2026, 3, 1),
            ends_on=date(2026, 6, 30),
            nomination_deadline=local(2026, 3, 5, 17),
        )
        clock.at = local(2026, 3, 2, 10)
        await bot.services.catalogue.open_movement(admin, movement.id)
        bot.core.inject("sendMessage", faults.ServerError(503), times=None)
        clock.at = local(2026, 3, 3, 8, 0, 5)
        await through(bot, clock, 60, timedelta(minutes=30))  # past the deadline
        assert clock.now() > local(2026, 3, 5, 17)
        bot.core.clear_injections()
        with caplog.at_level(logging.WARNING, "hoadep.broadcast"):
            await through(bot, clock, 0.5, timedelta(minutes=1))
        assert not texts(bot, G1)
        notices = await seeded(bot.services.db, "movement_notices")
        done = await runs(bot.services.db, notices.id)
        assert done and {(r.status, r.last_error) for r in done} == {
            (RunStatus.SKIPPED.value, SKIP_EXPIRED)
        }
        assert any("expired" in r.getMessage() for r in caplog.records)


def test_what_expires() -> None:
    deadline = datetime(2026, 3, 5, 10, tzinfo=UTC)
    slot = datetime(2026, 3, 3, 1, tzinfo=UTC)

    def event(kind: str) -> MovementEvent:
        return MovementEvent(
            f"{kind}1", kind, 1, "Phong trào", date(2026, 3, 1), date(2026, 6, 30), deadline, slot
        )

    calls = Content("movement", slot, events=(event(EventKind.LAUNCHED), event(EventKind.DAY)))
    assert expires_at(calls, HCM) == deadline
    mixed = Content("movement", slot, events=(event(EventKind.WEEK), event(EventKind.FINAL)))
    assert expires_at(mixed, HCM) is None  # the review is still worth posting
    key_date = Content("key_date", datetime(2026, 5, 6, 1, tzinfo=UTC), occasion="x", years=80)
    assert expires_at(key_date, HCM) == datetime(2026, 5, 7, tzinfo=HCM).astimezone(UTC)
    for kind in ("digest", "spotlight", "custom"):
        assert expires_at(Content(kind, slot), HCM) is None


async def test_server_errors_back_off_up_to_the_cap(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    ann = await weekly(bot, world, clock)
    bot.core.inject("sendMessage", faults.ServerError(502), chat_id=G1, times=None)
    waits = []
    for _ in range(10):
        await scheduler.tick(bot.app)
        (run,) = [r for r in await runs(bot.services.db, ann) if r.status == "retry"]
        assert run.next_attempt_at is not None
        waits.append((run.next_attempt_at - clock.now()).total_seconds())
        clock.at = run.next_attempt_at
    assert waits == [10, 20, 40, 80, 160, 320, 640, 900, 900, 900]


async def test_a_recovery_seen_by_the_outbox_sends_the_waiting_announcement_at_once(
    bot: BotHarness, world: World, clock: FixedClock
) -> None:
    from bot.outbox import deliver

    ann = await weekly(bot, world, clock)
    bot.core.inject("sendMessage", faults.ServerError(502), times=None)
    await through(bot, clock, 1, timedelta(minutes=5))
    (waiting,) = {r.next_attempt_at for r in await runs(bot.services.db, ann)}
    assert waiting is not None and waiting > clock.now()
    bot.core.clear_injections()
    bot.core.user(9001, "Người nhận")
    await bot.services.outbox.add(chat_id=9001, message="Thông báo")
    await deliver(bot.app, wait=True)  # the outbox finds Telegram back first
    assert {r.next_attempt_at for r in await runs(bot.services.db, ann)} == {clock.now()}
    await scheduler.tick(bot.app)
    assert len(texts(bot, G1)) == 1 and len(texts(bot, G2)) == 1
