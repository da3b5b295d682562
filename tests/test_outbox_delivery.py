"""The outbox's sender through Telegram's faults, with a controlled clock, on SQLite and
PostgreSQL: 429 honoured, 403 and unknown chats given up, migrations followed, network and server
errors retried with a capped backoff, a slow answer resent or not by the message's kind, a crash
while sending, expiry, the 72-hour window, and outages of 2 and 70 hours after which every message
arrives once and the administrators hear of it once (even with two senders)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot import outbox as sender
from bot.outbox import deliver
from bot.services.clock import FixedClock
from bot.services.delivery import DELIVERY_DOWN, DELIVERY_UP
from bot.services.outbox import DOUBT_AFTER, Kind
from storage.models import OutboxMessage, OutboxStatus
from tests.conftest import make_settings
from tests.fake_telegram import faults
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.offline import OfflineRequest
from tests.harness import BotHarness, make_harness
from tests.test_moderation_fixtures import ADMIN_TG, seed

ALICE, BOB, CAROL = 7001, 7002, 7003
GROUP = -7100


@pytest.fixture
async def bot(db_url: str, clock: FixedClock) -> AsyncIterator[BotHarness]:
    async with running(db_url, clock) as h:
        await seed(h.services.db)  # an administrator (ADMIN_TG) to alert
        yield h


@pytest.fixture
async def plain(db_url: str, clock: FixedClock) -> AsyncIterator[BotHarness]:
    """No administrator: nothing but the test's own messages in the outbox."""
    async with running(db_url, clock) as h:
        yield h


class running:
    """A bot on the offline Bot API (several may share a database, a core and a clock)."""

    def __init__(self, db_url: str, clock: FixedClock, core: FakeTelegramCore | None = None):
        self.db_url, self.clock, self.core = db_url, clock, core

    async def __aenter__(self) -> BotHarness:
        self.h, self.app = await make_harness(make_settings(self.db_url), self.clock, self.core)
        for user in (ALICE, BOB, CAROL, ADMIN_TG):
            self.h.user(user, f"Người {user}")
        if GROUP not in self.h.core.chats:
            self.h.core.group(GROUP, "Tổ thẩm định")
        return self.h

    async def __aexit__(self, *exc: object) -> None:
        await self.app.shutdown()
        if self.app.post_shutdown:
            await self.app.post_shutdown(self.app)
        assert not self.h.core.unknown_fields, self.h.core.unknown_fields


async def queue(h: BotHarness, chat_id: int, kind: str, text: str, **kw: Any) -> int:
    assert await h.services.outbox.add(chat_id=chat_id, message=text, kind=kind, **kw)
    async with h.services.db.read() as session:
        return int(await session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc())))


async def row(h: BotHarness, row_id: int) -> OutboxMessage:
    async with h.services.db.read() as session:
        found = await session.get(OutboxMessage, row_id)
        assert found is not None
        return found


async def rows(h: BotHarness) -> list[OutboxMessage]:
    async with h.services.db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def texts(h: BotHarness, chat_id: int) -> list[str]:
    return [str(m.get("text") or "") for m in h.core.sent(chat_id)]


def sends(h: BotHarness, chat_id: int | None = None) -> int:
    """sendMessage requests made (answered or not), to one chat or to any."""
    return sum(
        1
        for params in h.core.calls("sendMessage")
        if chat_id is None or int(params["chat_id"]) == chat_id
    )


def wire(h: BotHarness) -> OfflineRequest:
    inner = h.app.bot.request.inner  # GuardedRequest around the offline request
    assert isinstance(inner, OfflineRequest)
    return inner


async def tick(h: BotHarness, step: timedelta = timedelta(seconds=0)) -> int:
    h.clock.advance(step)
    return await deliver(h.app, wait=True)


# ------------------------------------------------------------------------------ Telegram's answers


async def test_a_429_is_honoured_and_pauses_the_sender(bot: BotHarness) -> None:
    first = await queue(bot, ALICE, Kind.NOTICE, "Thông báo một")
    second = await queue(bot, BOB, Kind.NOTICE, "Thông báo hai")
    bot.core.inject("sendMessage", faults.RetryAfter(30))
    assert await tick(bot) == 0
    limited = await row(bot, first)
    assert limited.status == "pending" and (limited.last_error or "").startswith("rate limited")
    assert limited.next_attempt_at == bot.clock.now() + timedelta(seconds=31)
    waiting = await row(bot, second)
    assert waiting.attempts == 0 and waiting.next_attempt_at <= bot.clock.now()  # given back
    before = sends(bot)
    assert await tick(bot, timedelta(seconds=30)) == 0  # still asked to wait: nothing goes out
    assert sends(bot) == before
    assert await tick(bot, timedelta(seconds=2)) == 2
    assert texts(bot, ALICE) == ["Thông báo một"] and texts(bot, BOB) == ["Thông báo hai"]


async def test_a_blocked_chat_fails_and_is_never_retried(bot: BotHarness) -> None:
    bot.core.block_bot(ALICE)
    blocked = await queue(bot, ALICE, Kind.RECOGNITION, "Chúc mừng đồng chí")
    other = await queue(bot, BOB, Kind.NOTICE, "Vẫn đến nơi")
    assert await tick(bot) == 1  # a refusal does not stop the others
    failed = await row(bot, blocked)
    assert failed.status == OutboxStatus.FAILED.value
    assert "blocked" in (failed.last_error or "")
    assert (await row(bot, other)).status == OutboxStatus.SENT.value
    for _ in range(3):
        await tick(bot, timedelta(hours=2))
    assert sends(bot, ALICE) == 1 and not texts(bot, ALICE)


async def test_an_unknown_chat_fails(bot: BotHarness) -> None:
    gone = await queue(bot, -7999, Kind.REVIEW, "Có đề cử mới")
    await tick(bot)
    failed = await row(bot, gone)
    assert failed.status == "failed" and "chat not found" in (failed.last_error or "").lower()
    await tick(bot, timedelta(hours=1))
    assert sends(bot, -7999) == 1


async def test_a_migrated_group_gets_its_messages_in_the_supergroup(bot: BotHarness) -> None:
    first = await queue(bot, GROUP, Kind.REVIEW, "Có đề cử mới số 1")
    second = await queue(bot, GROUP, Kind.REVIEW, "Có đề cử mới số 2")
    bot.core.migrate_group(GROUP, -1007100)
    assert await tick(bot) == 2
    assert not texts(bot, GROUP)
    assert texts(bot, -1007100) == ["Có đề cử mới số 1", "Có đề cử mới số 2"]
    for row_id in (first, second):
        moved = await row(bot, row_id)
        assert moved.status == "sent" and moved.chat_id == -1007100
    assert sends(bot, GROUP) == 1  # the second one went straight to the new chat


async def test_network_errors_back_off_exponentially_up_to_the_cap(plain: BotHarness) -> None:
    notice = await queue(plain, ALICE, Kind.NOTICE, "Thông báo")
    plain.core.inject("sendMessage", faults.ServerError(502), times=None)
    waits = []
    for _ in range(12):
        await tick(plain)
        current = await row(plain, notice)
        assert current.status == "pending" and "Bad Gateway" in (current.last_error or "")
        waits.append((current.next_attempt_at - plain.clock.now()).total_seconds())
        plain.clock.at = current.next_attempt_at
    assert waits == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900, 900]
    assert sends(plain, ALICE) == 12
    plain.core.clear_injections()
    await tick(plain)
    assert texts(plain, ALICE) == ["Thông báo"]
    assert (await row(plain, notice)).attempts == 13


async def test_a_failing_pass_stops_at_the_first_failure(bot: BotHarness) -> None:
    for chat in (ALICE, BOB, CAROL):
        await queue(bot, chat, Kind.NOTICE, f"Thông báo cho {chat}")
    bot.core.inject("sendMessage", faults.ServerError(503), times=None)
    await tick(bot)
    assert sends(bot) == 1  # one probe, not one request per waiting message
    untried = [r for r in await rows(bot) if r.attempts == 0]
    assert len(untried) == 2 and all(r.next_attempt_at <= bot.clock.now() for r in untried)
    await tick(bot, timedelta(seconds=1))
    assert sends(bot) == 2


async def test_a_refused_connection_is_retried_even_for_an_at_most_once_kind(
    bot: BotHarness,
) -> None:
    congratulation = await queue(bot, ALICE, Kind.RECOGNITION, "Chúc mừng đồng chí")
    wire(bot).unreachable = True
    await tick(bot)
    current = await row(bot, congratulation)
    assert current.status == "pending" and "ConnectError" in (current.last_error or "")
    wire(bot).unreachable = False
    await tick(bot, timedelta(seconds=5))
    assert texts(bot, ALICE) == ["Chúc mừng đồng chí"]


class Unauthorized(faults.Fault):
    """401: the token was refused (revoked, or a self-hosted Bot API that lost it)."""

    def to_error(self) -> faults.ApiError:
        return faults.ApiError(401, "Unauthorized")


async def test_a_refused_token_keeps_the_messages_for_later(plain: BotHarness) -> None:
    notice = await queue(plain, ALICE, Kind.DECISION, "Đề cử đã được duyệt")
    plain.core.inject("sendMessage", Unauthorized(), times=2)
    await tick(plain)
    current = await row(plain, notice)
    assert current.status == "pending" and "Unauthorized" in (current.last_error or "")
    await tick(plain, timedelta(seconds=5))
    await tick(plain, timedelta(seconds=10))
    assert texts(plain, ALICE) == ["Đề cử đã được duyệt"]


# ------------------------------------------------------------------------- duplicates vs misses


async def test_a_slow_answer_resends_a_ballot_invitation(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once: the invitation arrived (the fake carries the request out) and is sent
    again; a second ballot is harmless, a missing one is not."""
    monkeypatch.setattr(sender, "READ_TIMEOUT", 0.2)
    ballot = await queue(bot, ALICE, Kind.BALLOT, "Phiếu bầu kín")
    bot.core.inject("sendMessage", faults.Delay(0.5))
    await tick(bot)
    await asyncio.sleep(0.6)
    assert texts(bot, ALICE) == ["Phiếu bầu kín"]
    current = await row(bot, ballot)
    assert current.status == "pending" and "timed out" in (current.last_error or "")
    await tick(bot, timedelta(seconds=5))
    assert texts(bot, ALICE) == ["Phiếu bầu kín", "Phiếu bầu kín"]  # twice, as designed
    assert (await row(bot, ballot)).status == "sent"


@pytest.mark.parametrize("kind", [Kind.RECOGNITION, Kind.DECISION, Kind.NOTICE, "unlisted"])
async def test_a_slow_answer_never_resends_an_at_most_once_kind(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sender, "READ_TIMEOUT", 0.2)
    congratulation = await queue(bot, ALICE, kind, "Chúc mừng đồng chí")
    bot.core.inject("sendMessage", faults.Delay(0.5))
    with caplog.at_level(logging.WARNING, "hoadep.outbox"):
        await tick(bot)
    await asyncio.sleep(0.6)
    current = await row(bot, congratulation)
    assert current.status == OutboxStatus.UNCERTAIN.value
    assert (current.last_error or "").startswith("uncertain")
    assert any("may have arrived" in r.getMessage() for r in caplog.records)
    for _ in range(3):
        await tick(bot, timedelta(minutes=30))
    assert texts(bot, ALICE) == ["Chúc mừng đồng chí"]  # once
    assert sends(bot, ALICE) == 1


async def test_a_crash_while_sending_resends_or_not_by_kind(db_url: str, clock: FixedClock) -> None:
    """The first process dies with two rows on the wire; the second settles them."""
    async with running(db_url, clock) as first:
        invitation = await queue(first, ALICE, Kind.BALLOT, "Phiếu bầu kín")
        minutes = await queue(first, BOB, Kind.NOTICE, "Biên bản kiểm phiếu")
        for item in await first.services.outbox.claim_due():
            assert await first.services.outbox.begin_send(item)
        await first.app.bot.send_message(BOB, "Biên bản kiểm phiếu")  # it did arrive
        core = first.core
    clock.advance(timedelta(seconds=30))
    async with running(db_url, clock, core) as second:
        await tick(second)
        assert (await row(second, invitation)).status == "sending"  # not yet in doubt
        await tick(second, DOUBT_AFTER)
        assert (await row(second, invitation)).status == "sent"
        assert (await row(second, minutes)).status == OutboxStatus.UNCERTAIN.value
        await tick(second, timedelta(hours=1))
        assert texts(second, ALICE) == ["Phiếu bầu kín"]
        assert texts(second, BOB) == ["Biên bản kiểm phiếu"]


async def test_a_long_message_continues_after_the_part_that_arrived(bot: BotHarness) -> None:
    body = "\n".join(f"Dòng {i}: " + "nội dung biên bản " * 8 for i in range(60))
    minutes = await queue(bot, ALICE, Kind.NOTICE, body)
    bot.core.inject("sendMessage", faults.Delay(0), chat_id=ALICE)  # the first part goes through
    bot.core.inject("sendMessage", faults.ServerError(502), chat_id=ALICE)
    await tick(bot)
    assert len(texts(bot, ALICE)) == 1 and (await row(bot, minutes)).parts_sent == 1
    await tick(bot, timedelta(seconds=5))
    parts = texts(bot, ALICE)
    assert len(parts) >= 2 and "".join(parts).count("Dòng 0:") == 1
    assert (await row(bot, minutes)).status == "sent"


# ------------------------------------------------------------------------------ expiry and give-up


async def test_an_expired_message_is_never_sent(
    plain: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    deadline = plain.clock.now() + timedelta(hours=3)
    ballot = await queue(plain, ALICE, Kind.BALLOT, "Phiếu bầu kín", expires_at=deadline)
    plain.core.inject("sendMessage", faults.ServerError(502), times=None)
    with caplog.at_level(logging.WARNING, "hoadep.outbox"):
        while plain.clock.now() < deadline + timedelta(minutes=20):
            await tick(plain, timedelta(minutes=5))
    assert (await row(plain, ballot)).status == OutboxStatus.EXPIRED.value
    assert any("expired" in r.getMessage() for r in caplog.records)
    plain.core.clear_injections()
    await tick(plain, timedelta(minutes=5))
    assert not texts(plain, ALICE)


async def test_a_message_is_retried_for_72_hours_then_given_up(plain: BotHarness) -> None:
    notice = await queue(plain, ALICE, Kind.NOTICE, "Thông báo")
    plain.core.inject("sendMessage", faults.ServerError(500), times=None)
    horizon = (await row(plain, notice)).created_at + timedelta(hours=71, minutes=45)
    while plain.clock.now() < horizon:
        await tick(plain, timedelta(minutes=15))
    assert (await row(plain, notice)).status == "pending"
    await tick(plain, timedelta(minutes=15))
    given_up = await row(plain, notice)
    assert given_up.status == "failed" and "gave up after 72 hours" in (given_up.last_error or "")


# ------------------------------------------------------------------------------ outages


async def recover(h: BotHarness) -> None:
    """Telegram is back: the next message due (within the 15-minute cap) finds it so, and
    everything waiting goes out at once."""
    h.core.clear_injections()
    for _ in range(16):
        await tick(h, timedelta(minutes=1))


def admin_notices(h: BotHarness) -> tuple[int, int]:
    """(alerts, recoveries) the administrator received."""
    sent = texts(h, ADMIN_TG)
    return (
        sum("Không gửi được tin nhắn" in t for t in sent),
        sum("gửi được trở lại" in t for t in sent),
    )


async def queue_everything(h: BotHarness) -> dict[int, int]:
    """One message of each kind; returns {row id: chat id}."""
    deadline = h.clock.now() + timedelta(days=7)
    made = {
        await queue(h, ALICE, Kind.BALLOT, "Phiếu bầu kín", expires_at=deadline): ALICE,
        await queue(h, BOB, Kind.BALLOT_REMINDER, "Nhắc bỏ phiếu", expires_at=deadline): BOB,
        await queue(h, GROUP, Kind.REVIEW, "Có đề cử mới"): GROUP,
        await queue(h, CAROL, Kind.RECOGNITION, "Chúc mừng đồng chí"): CAROL,
        await queue(h, BOB, Kind.DECISION, "Đề cử đã được duyệt"): BOB,
        await queue(h, ALICE, Kind.NOTICE, "Biên bản kiểm phiếu"): ALICE,
    }
    return made


@pytest.mark.parametrize(
    ("hours", "step"), [(2, timedelta(minutes=1)), (70, timedelta(minutes=15))]
)
async def test_an_outage_then_recovery_delivers_everything_once(
    bot: BotHarness, hours: int, step: timedelta, caplog: pytest.LogCaptureFixture
) -> None:
    made = await queue_everything(bot)
    bot.core.inject("sendMessage", faults.ServerError(502), times=None)
    end = bot.clock.now() + timedelta(hours=hours)
    with caplog.at_level(logging.WARNING, "hoadep.delivery"):
        while bot.clock.now() < end:
            await tick(bot, step)
        assert not any(bot.core.sent(chat) for chat in (ALICE, BOB, CAROL, GROUP, ADMIN_TG))
        assert all(r.status == "pending" for r in await rows(bot))
        # the probes were few: one request per pass, not one per waiting message
        assert sends(bot) <= hours * 60 / (step.total_seconds() / 60) + 1
        await recover(bot)
    for row_id, chat in made.items():
        current = await row(bot, row_id)
        assert current.status == "sent", (row_id, current.last_error)
        assert texts(bot, chat).count(current.message) == 1
    assert admin_notices(bot) == (1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("has been failing since" in w for w in warnings) == 1
    assert sum("works again" in w for w in warnings) == 1
    up = next(r for r in await rows(bot) if r.message == DELIVERY_UP)
    assert up.params["delayed"] == len(made) and up.params["uncertain"] == 0


async def test_once_a_send_works_the_whole_backlog_goes_at_once(plain: BotHarness) -> None:
    for chat in (ALICE, BOB, CAROL):
        await queue(plain, chat, Kind.NOTICE, f"Thông báo cho {chat}")
    plain.core.inject("sendMessage", faults.ServerError(502), times=None)
    for _ in range(30):
        await tick(plain, timedelta(minutes=1))
    plain.core.clear_injections()
    first = min(r.next_attempt_at for r in await rows(plain))
    plain.clock.at = first  # the first message due again finds Telegram back…
    assert await tick(plain) == 3  # …and the others, still waiting out their backoff, go too
    assert all(r.status == "sent" for r in await rows(plain))


async def test_no_alert_for_a_short_outage(bot: BotHarness) -> None:
    await queue_everything(bot)
    bot.core.inject("sendMessage", faults.ServerError(502), times=None)
    for _ in range(10):  # 10 minutes: below the 15 minutes of the setting
        await tick(bot, timedelta(minutes=1))
    await recover(bot)
    assert admin_notices(bot) == (0, 0)
    assert all(r.status == "sent" for r in await rows(bot))


async def test_two_senders_alert_once_and_tell_the_recovery_once(
    db_url: str, clock: FixedClock
) -> None:
    async with running(db_url, clock) as one, running(db_url, clock, one.core) as two:
        await seed(one.services.db)
        made = await queue_everything(one)
        one.core.inject("sendMessage", faults.ServerError(503), times=None)
        for _ in range(40):
            clock.advance(timedelta(minutes=1))
            await asyncio.gather(deliver(one.app, wait=True), deliver(two.app, wait=True))
        async with one.services.db.read() as session:
            down = list(
                await session.scalars(
                    select(OutboxMessage).where(OutboxMessage.message == DELIVERY_DOWN)
                )
            )
        assert len(down) == 1  # claimed by one instance only
        one.core.clear_injections()
        for _ in range(16):
            clock.advance(timedelta(minutes=1))
            await asyncio.gather(deliver(one.app, wait=True), deliver(two.app, wait=True))
        assert admin_notices(one) == (1, 1)
        for row_id, chat in made.items():
            current = await row(one, row_id)
            assert current.status == "sent" and texts(one, chat).count(current.message) == 1


async def test_a_second_outage_is_a_new_incident(bot: BotHarness) -> None:
    for round_ in range(2):
        await queue(bot, ALICE, Kind.NOTICE, f"Thông báo {round_}")
        bot.core.inject("sendMessage", faults.ServerError(502), times=None)
        for _ in range(20):
            await tick(bot, timedelta(minutes=1))
        await recover(bot)
    assert admin_notices(bot) == (2, 2)
    assert texts(bot, ALICE) == ["Thông báo 0", "Thông báo 1"]


async def test_an_uncertain_message_is_counted_in_the_recovery_notice(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "READ_TIMEOUT", 0.2)
    await queue(bot, CAROL, Kind.RECOGNITION, "Chúc mừng đồng chí")
    await queue(bot, ALICE, Kind.NOTICE, "Thông báo")
    bot.core.inject("sendMessage", faults.Delay(0.5), chat_id=CAROL)
    bot.core.inject("sendMessage", faults.ServerError(502), chat_id=ALICE, times=None)
    await tick(bot)
    await asyncio.sleep(0.6)
    for _ in range(20):
        await tick(bot, timedelta(minutes=1))
    await recover(bot)
    up = next(r for r in await rows(bot) if r.message == DELIVERY_UP)
    assert up.params["uncertain"] == 1 and up.params["delayed"] == 1
    assert texts(bot, CAROL) == ["Chúc mừng đồng chí"]


async def test_a_row_taken_by_another_sender_is_not_sent(bot: BotHarness) -> None:
    """After its lease ran out, another instance claimed the row: the late request of the first
    sends nothing."""
    notice = await queue(bot, ALICE, Kind.NOTICE, "Thông báo")
    (mine,) = await bot.services.outbox.claim_due()
    bot.clock.advance(timedelta(minutes=2))
    (theirs,) = await bot.services.outbox.claim_due()
    assert theirs.attempts == mine.attempts + 1
    assert not await bot.services.outbox.begin_send(mine)
    assert await sender._send_one(bot.app, mine, sender._sender(bot.app)) == sender.Outcome.TAKEN
    assert not texts(bot, ALICE)
    async with bot.services.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == notice)
            .values(next_attempt_at=bot.clock.now())
        )
    await tick(bot)
    assert texts(bot, ALICE) == ["Thông báo"]
