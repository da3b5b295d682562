"""The outbox's rows and the delivery health, service level, on SQLite and PostgreSQL: claims
and their tokens across two instances, settling rows a dead process left "sending" by kind,
expiry and the retry window at claim time, the capped backoff, and the administrators' alert and
recovery claimed once by one of two instances."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import DeliverySettings
from bot.services.clock import FixedClock
from bot.services.delivery import DELIVERY_DOWN, DELIVERY_UP, MIN_FAILURES, DeliveryService
from bot.services.outbox import (
    DOUBT_AFTER,
    KINDS,
    LEASE,
    Kind,
    OutboxService,
    Policy,
    policy,
)
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.test_moderation_fixtures import ADMIN_TG, seed

SETTINGS = DeliverySettings()


def outbox(db: Database, clock: FixedClock, **settings: object) -> OutboxService:
    return OutboxService(db, clock, DeliverySettings(**settings))  # type: ignore[arg-type]


async def all_rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def status(db: Database, row_id: int) -> str:
    async with db.read() as session:
        return str(
            await session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == row_id))
        )


def test_the_kinds_and_their_policies() -> None:
    assert {k for k, p in KINDS.items() if p is Policy.AT_LEAST_ONCE} == {
        Kind.BALLOT,
        Kind.BALLOT_REMINDER,
        Kind.REVIEW,
        Kind.ACCESS_REQUEST,
        Kind.ALERT,
    }
    for kind in (Kind.RECOGNITION, Kind.DECISION, Kind.NOTICE, "minutes", "anything new"):
        assert policy(kind) is Policy.AT_MOST_ONCE  # the conservative default


def test_the_backoff_doubles_up_to_the_cap(clock: FixedClock) -> None:
    service = OutboxService(None, clock, SETTINGS)  # type: ignore[arg-type]
    assert [service.backoff(n) for n in range(1, 11)] == [
        5, 10, 20, 40, 80, 160, 320, 640, 900, 900,
    ]  # fmt: skip
    assert service.backoff(10_000) == 900
    small = OutboxService(None, clock, DeliverySettings(max_backoff_seconds=60))  # type: ignore[arg-type]
    assert small.backoff(5) == 60


async def test_two_instances_never_claim_one_row(db: Database, clock: FixedClock) -> None:
    one, two = outbox(db, clock), outbox(db, clock)
    for i in range(30):
        await one.add(chat_id=100 + i, message="Thông báo {i}", i=i)
    first, second = await asyncio.gather(one.claim_due(limit=20), two.claim_due(limit=20))
    ids = [m.id for m in first] + [m.id for m in second]
    assert ids and len(ids) == len(set(ids))  # whoever won a row, it was one of them
    rest = [m.id for m in await one.claim_due(limit=50)]
    assert not set(rest) & set(ids) and len(ids) + len(rest) == 30
    assert not await two.claim_due()  # all leased
    clock.advance(LEASE + timedelta(seconds=1))
    assert len(await two.claim_due(limit=50)) == 30  # the leases ran out


async def test_a_late_outcome_never_overwrites_a_newer_attempt(
    db: Database, clock: FixedClock
) -> None:
    service = outbox(db, clock)
    await service.add(chat_id=100, message="Thông báo")
    (old,) = await service.claim_due()
    clock.advance(LEASE + timedelta(seconds=1))
    (new,) = await service.claim_due()
    assert new.attempts == old.attempts + 1
    assert not await service.begin_send(old)
    await service.failed(old, "late")  # ignored: the row moved on
    await service.sent(old, 1)
    assert await status(db, new.id) == "pending"
    assert await service.begin_send(new)
    await service.refused(new)  # an error answer: back to pending, still leased
    (row,) = await all_rows(db)
    assert row.status == "pending" and row.next_attempt_at > clock.now()
    assert await service.retry(new, "Bad Gateway") == 10  # the second attempt's backoff
    (row,) = await all_rows(db)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=10)


async def test_released_rows_are_due_again_with_their_attempt_uncounted(
    db: Database, clock: FixedClock
) -> None:
    service = outbox(db, clock)
    for chat in (100, 101):
        await service.add(chat_id=chat, message="Thông báo")
    claimed = await service.claim_due()
    await service.release(claimed)
    rows = await all_rows(db)
    assert [r.attempts for r in rows] == [0, 0]
    assert all(r.next_attempt_at <= clock.now() for r in rows)
    assert len(await service.claim_due()) == 2


async def test_rows_left_sending_are_settled_by_kind(db: Database, clock: FixedClock) -> None:
    service = outbox(db, clock)
    await service.add(chat_id=100, message="Phiếu bầu", kind=Kind.BALLOT)
    await service.add(chat_id=101, message="Chúc mừng", kind=Kind.RECOGNITION)
    await service.add(chat_id=102, message="Biên bản")  # the default kind
    for item in await service.claim_due():
        assert await service.begin_send(item)
    clock.advance(DOUBT_AFTER - timedelta(seconds=1))
    assert await service.settle_in_doubt() == (0, 0)  # a slow request is not a dead process
    clock.advance(timedelta(seconds=2))
    assert await service.settle_in_doubt() == (1, 2)
    rows = await all_rows(db)
    assert [r.status for r in rows] == ["pending", "uncertain", "uncertain"]
    assert rows[0].next_attempt_at == clock.now()
    assert all((r.last_error or "").startswith("uncertain") for r in rows[1:])
    assert [m.chat_id for m in await service.claim_due()] == [100]


async def test_expired_and_too_old_rows_are_not_claimed(db: Database, clock: FixedClock) -> None:
    service = outbox(db, clock)
    deadline = clock.now() + timedelta(hours=1)
    await service.add(chat_id=100, message="Phiếu bầu", kind=Kind.BALLOT, expires_at=deadline)
    await service.add(chat_id=101, message="Thông báo")
    clock.advance(timedelta(hours=72))
    await service.add(chat_id=102, message="Phiếu bầu", expires_at=clock.now() + timedelta(days=1))
    assert [m.chat_id for m in await service.claim_due()] == [102]
    assert [r.status for r in await all_rows(db)] == ["expired", "failed", "pending"]
    assert "gave up after 72 hours" in ((await all_rows(db))[1].last_error or "")


async def test_a_migration_moves_every_waiting_message_of_the_chat(
    db: Database, clock: FixedClock
) -> None:
    service = outbox(db, clock)
    for text in ("một", "hai"):
        await service.add(chat_id=-100, message=text, kind=Kind.REVIEW)
    await service.add(chat_id=-200, message="khác", kind=Kind.REVIEW)
    first = (await service.claim_due(limit=1))[0]
    await service.moved(first, -1000100)
    assert [r.chat_id for r in await all_rows(db)] == [-1000100, -1000100, -200]


# ------------------------------------------------------------------------------ health


async def alerts(db: Database, message: str) -> list[OutboxMessage]:
    return [r for r in await all_rows(db) if r.message == message]


@pytest.fixture
async def waiting(db: Database, clock: FixedClock) -> OutboxService:
    """An administrator, and a message that cannot be delivered."""
    await seed(db)
    service = outbox(db, clock)
    await service.add(chat_id=100, message="Thông báo")
    return service


async def test_an_alert_needs_failures_in_a_row_for_a_while(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    health = DeliveryService(db, clock, SETTINGS)
    assert MIN_FAILURES == 3
    for _ in range(MIN_FAILURES - 1):
        await health.record(sent=0, failures=1)
        clock.advance(timedelta(minutes=19))
    assert not await alerts(db, DELIVERY_DOWN)  # 38 minutes, but only two failures
    clock.advance(timedelta(minutes=1))
    await health.record(sent=0, failures=1)
    (alert,) = await alerts(db, DELIVERY_DOWN)
    assert alert.chat_id == ADMIN_TG and alert.kind == Kind.ALERT
    state = await health.state()
    assert state is not None and state.alerted_at == clock.now()
    for _ in range(5):
        clock.advance(timedelta(minutes=10))
        await health.record(sent=0, failures=1)
    assert len(await alerts(db, DELIVERY_DOWN)) == 1  # no storm


async def test_a_short_run_of_failures_raises_no_alert(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    health = DeliveryService(db, clock, SETTINGS)
    for _ in range(14):
        clock.advance(timedelta(minutes=1))
        await health.record(sent=0, failures=1)
    assert await health.record(sent=1, failures=0)  # the run ended (backlog resumed)
    clock.advance(timedelta(minutes=5))
    await health.record(sent=0, failures=1)  # a new run starts from here
    clock.advance(timedelta(minutes=5))
    await health.record(sent=0, failures=3)
    assert not await alerts(db, DELIVERY_DOWN) and not await alerts(db, DELIVERY_UP)


async def test_two_instances_alert_once_and_recover_once(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    one, two = DeliveryService(db, clock, SETTINGS), DeliveryService(db, clock, SETTINGS)
    for _ in range(20):
        clock.advance(timedelta(minutes=1))
        await asyncio.gather(one.record(sent=0, failures=1), two.record(sent=0, failures=1))
    assert len(await alerts(db, DELIVERY_DOWN)) == 1
    clock.advance(timedelta(minutes=1))
    results = await asyncio.gather(one.record(sent=3, failures=0), two.record(sent=2, failures=0))
    assert sorted(results) == [False, True]
    (up,) = await alerts(db, DELIVERY_UP)
    assert up.params["delayed"] == 1 and up.params["expired"] == 0
    assert not await one.record(sent=1, failures=0) and not await two.record(sent=1, failures=0)
    assert len(await alerts(db, DELIVERY_UP)) == 1


async def test_a_recovery_seen_by_another_instance_ends_the_alert(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    failing = DeliveryService(db, clock, SETTINGS)
    for _ in range(16):
        clock.advance(timedelta(minutes=1))
        await failing.record(sent=0, failures=1)
    for item in await waiting.claim_due():  # the message and the alert wait out a backoff
        await waiting.retry(item, "Bad Gateway", 900)
    healthy = DeliveryService(db, clock, SETTINGS)  # never saw a failure itself
    assert await healthy.record(sent=1, failures=0)
    assert len(await alerts(db, DELIVERY_UP)) == 1
    # the backlog waiting out its backoff is due at once
    assert all(r.next_attempt_at == clock.now() for r in await all_rows(db))
    state = await healthy.state()
    assert state is not None and state.failing_since is None and state.alerted_at is None


async def test_an_expired_and_an_uncertain_message_are_counted(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    health = DeliveryService(db, clock, SETTINGS)
    await waiting.add(chat_id=101, message="Phiếu", kind=Kind.BALLOT, expires_at=clock.now())
    await waiting.add(chat_id=102, message="Chúc mừng", kind=Kind.RECOGNITION)
    await health.record(sent=0, failures=1)
    claimed = {m.chat_id: m for m in await waiting.claim_due()}  # 101 expires here
    await waiting.uncertain(claimed[102], "timed out")
    await waiting.retry(claimed[100], "Bad Gateway")
    for _ in range(16):
        clock.advance(timedelta(minutes=1))
        await health.record(sent=0, failures=1)
    await health.record(sent=1, failures=0)
    (up,) = await alerts(db, DELIVERY_UP)
    assert (up.params["delayed"], up.params["expired"], up.params["uncertain"]) == (1, 1, 1)
    assert await status(db, 1) == OutboxStatus.PENDING.value


async def test_no_alert_while_nothing_has_waited_long(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    """Failures for 20 minutes, but the message that failed first was given up meanwhile and
    the one waiting now is new: not yet an alert."""
    health = DeliveryService(db, clock, SETTINGS)
    for _ in range(4):
        await health.record(sent=0, failures=1)
        clock.advance(timedelta(minutes=4))
    for item in await waiting.claim_due():
        await waiting.failed(item, "forbidden: bot was blocked by the user")
    await waiting.add(chat_id=101, message="Thông báo mới")
    clock.advance(timedelta(minutes=4))
    await health.record(sent=0, failures=1)
    assert not await alerts(db, DELIVERY_DOWN)
    clock.advance(timedelta(minutes=12))
    await health.record(sent=0, failures=1)
    assert len(await alerts(db, DELIVERY_DOWN)) == 1


async def test_a_run_of_failures_seen_here_is_ended_by_the_next_success(
    db: Database, clock: FixedClock, waiting: OutboxService
) -> None:
    """A process that looked at the state a moment ago still looks again after a failure of
    its own: the backlog is resumed at once."""
    health = DeliveryService(db, clock, SETTINGS)
    assert not await health.record(sent=1, failures=0)  # nothing was failing
    clock.advance(timedelta(seconds=5))
    (item,) = await waiting.claim_due()
    await waiting.retry(item, "Bad Gateway")
    await health.record(sent=0, failures=1)
    clock.advance(timedelta(seconds=2))
    assert await health.record(sent=1, failures=0)
    assert [r.next_attempt_at for r in await all_rows(db)] == [clock.now()]
    clock.advance(timedelta(seconds=2))
    assert not await health.record(sent=1, failures=0)  # and then leaves the row alone
