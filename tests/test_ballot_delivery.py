"""A council vote whose ballots do not reach every member tells the administrators before its
deadline, once, naming who is missing and why; ballots are resent when in doubt and expire at
the deadline. The real application on the offline Bot API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.outbox import deliver
from bot.services.ballot_delivery import ballot_key
from bot.services.outbox import Kind
from bot.services.voting import BALLOT_MESSAGE, REMINDER_MESSAGE
from storage.models import Member, OutboxMessage
from tests.fake_telegram import faults
from tests.harness import BotHarness
from tests.test_moderation_fixtures import (
    ADMIN_TG,
    COUNCIL_TG,
    NOMINEE_TG,
    STAFF_TG,
    World,
    add_nomination,
    seed,
)

HEADING = "Phiếu bầu chưa đến tay thành viên Hội đồng"


@pytest.fixture
async def world(harness: BotHarness) -> World:
    w = await seed(harness.services.db)
    for tg in (*COUNCIL_TG, STAFF_TG, NOMINEE_TG, ADMIN_TG):
        harness.user(tg, f"Người {tg}")
    return w


async def open_vote(h: BotHarness, w: World, days: int = 7) -> int:
    n = await add_nomination(h.services.db, w)
    view = await h.services.voting.open_vote(w.viewer("admin"), n, version=1, days=days)
    return view.id


async def ballot_rows(h: BotHarness, ballot_id: int) -> list[OutboxMessage]:
    async with h.services.db.read() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.dedupe_key.like(f"ballot:{ballot_id}:%"))
                .order_by(OutboxMessage.id)
            )
        )


def warnings_to_admin(h: BotHarness) -> list[str]:
    return [t for t in h.texts(ADMIN_TG) if HEADING in t]


async def unlink(h: BotHarness, w: World, key: str) -> None:
    async with h.services.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == w.members[key]).values(telegram_user_id=None)
        )


async def test_ballots_are_keyed_resendable_and_expire_at_the_deadline(
    harness: BotHarness, world: World
) -> None:
    ballot = await open_vote(harness, world)
    rows = await ballot_rows(harness, ballot)
    assert [r.chat_id for r in rows] == list(COUNCIL_TG)
    deadline = harness.clock.now() + timedelta(days=7)
    for row in rows:
        assert row.message == BALLOT_MESSAGE and row.kind == Kind.BALLOT
        assert row.expires_at == deadline
        assert row.dedupe_key == ballot_key(ballot, row.chat_id)


async def test_an_invitation_still_failing_at_the_deadline_expires_unsent(
    harness: BotHarness, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    ballot = await open_vote(harness, world, days=1)
    harness.core.inject("sendMessage", faults.ServerError(502), times=None)
    with caplog.at_level(logging.WARNING, "hoadep.outbox"):
        for _ in range(26 * 4):
            harness.clock.advance(timedelta(minutes=15))
            await deliver(harness.app, wait=True)
    assert {r.status for r in await ballot_rows(harness, ballot)} == {"expired"}
    assert sum("expired" in r.getMessage() for r in caplog.records) == len(COUNCIL_TG)
    harness.core.clear_injections()
    harness.clock.advance(timedelta(minutes=15))
    await deliver(harness.app, wait=True)
    assert not any(harness.texts(tg) for tg in COUNCIL_TG)


async def test_a_blocked_and_an_unlinked_member_are_reported_at_once_and_once(
    harness: BotHarness, world: World
) -> None:
    await unlink(harness, world, "council3")
    harness.core.block_bot(COUNCIL_TG[1])
    ballot = await open_vote(harness, world)
    await deliver(harness.app, wait=True)
    assert [r.status for r in await ballot_rows(harness, ballot)] == ["sent", "failed"]
    assert await harness.services.ballot_delivery.check() == [ballot]
    await deliver(harness.app, wait=True)
    (text,) = warnings_to_admin(harness)
    assert "Phạm Thị Đồng" in text.split("Đã chặn bot")[1].split("\n")[0]
    assert "Hoàng Minh Thi" in text.split("Chưa liên kết")[1].split("\n")[0]
    assert "Lê Văn Hội" not in text
    for _ in range(3):
        harness.clock.advance(timedelta(days=2))
        assert await harness.services.ballot_delivery.check() == []
        await deliver(harness.app, wait=True)
    assert len(warnings_to_admin(harness)) == 1


async def test_a_ballot_still_failing_is_reported_before_the_deadline(
    harness: BotHarness, world: World
) -> None:
    ballot = await open_vote(harness, world)
    harness.core.inject("sendMessage", faults.ServerError(502), chat_id=COUNCIL_TG[0], times=None)
    await deliver(harness.app, wait=True)
    await deliver(harness.app, wait=True)
    harness.clock.advance(timedelta(days=5, hours=23))  # retried all along
    await deliver(harness.app, wait=True)
    assert await harness.services.ballot_delivery.check() == []  # still being retried
    harness.clock.advance(timedelta(hours=1, minutes=1))  # 24 hours before the deadline
    assert await harness.services.ballot_delivery.check() == [ballot]
    for _ in range(2):  # a pass ends at the first failure; the next one reaches the admin
        harness.clock.advance(timedelta(seconds=2))
        await deliver(harness.app, wait=True)
    (text,) = warnings_to_admin(harness)
    assert "Lê Văn Hội" in text.split("Vẫn đang gửi lỗi")[1]
    assert "Phạm Thị Đồng" not in text and "Hoàng Minh Thi" not in text


async def test_everybody_received_it_nothing_to_report(harness: BotHarness, world: World) -> None:
    ballot = await open_vote(harness, world)
    await deliver(harness.app, wait=True)
    harness.clock.advance(timedelta(days=6, hours=1))
    assert await harness.services.ballot_delivery.check() == []
    assert {r.status for r in await ballot_rows(harness, ballot)} == {"sent"}


async def test_a_delivered_reminder_counts_as_received(harness: BotHarness, world: World) -> None:
    harness.core.block_bot(COUNCIL_TG[0])
    ballot = await open_vote(harness, world, days=2)
    await deliver(harness.app, wait=True)
    harness.core.unblock_bot(COUNCIL_TG[0])
    harness.clock.advance(timedelta(days=1, minutes=1))
    assert await harness.services.voting.send_reminders() == 3
    await deliver(harness.app, wait=True)
    reminders = [r for r in await ballot_rows(harness, ballot) if r.message == REMINDER_MESSAGE]
    assert {r.kind for r in reminders} == {Kind.BALLOT_REMINDER}
    assert await harness.services.ballot_delivery.check() == []
    assert not warnings_to_admin(harness)


async def test_two_instances_report_a_ballot_once(harness: BotHarness, world: World) -> None:
    harness.core.block_bot(COUNCIL_TG[2])
    ballot = await open_vote(harness, world)
    await deliver(harness.app, wait=True)
    services = harness.services
    other = type(services.ballot_delivery)(services.db, services.clock, services.settings.delivery)
    results = await asyncio.gather(services.ballot_delivery.check(), other.check())
    assert sorted(results) == [[], [ballot]]
    await deliver(harness.app, wait=True)
    assert len(warnings_to_admin(harness)) == 1


async def test_a_ballot_queued_before_the_upgrade_is_not_reported(
    harness: BotHarness, world: World
) -> None:
    """Its invitations carry no key: nobody can tell who received it, so nothing is said."""
    ballot = await open_vote(harness, world)
    async with harness.services.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key.like(f"ballot:{ballot}:%"))
            .values(dedupe_key=None, status="failed")
        )
    harness.clock.advance(timedelta(days=6, hours=1))
    assert await harness.services.ballot_delivery.check() == []


async def test_a_member_deactivated_is_not_named(harness: BotHarness, world: World) -> None:
    """Someone who left the office has no ballot to miss."""
    await unlink(harness, world, "council3")
    harness.core.block_bot(COUNCIL_TG[1])
    ballot = await open_vote(harness, world)
    async with harness.services.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == world.members["council3"]).values(active=False)
        )
    await deliver(harness.app, wait=True)
    assert await harness.services.ballot_delivery.check() == [ballot]
    await deliver(harness.app, wait=True)
    (text,) = warnings_to_admin(harness)
    assert "Phạm Thị Đồng" in text and "Hoàng Minh Thi" not in text
