"""End to end: group chats and scheduled announcements with the real `hoadep run` process over
real HTTP against the local Bot API server — registration by an administrator and refusal of a
stranger, a digest that goes out while one group is removed and another becomes a supergroup,
the bot killed (SIGKILL) mid-broadcast and restarted, and two processes on one PostgreSQL
database (one of them scheduler-only). Every group gets each announcement once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from storage.db import Database
from storage.models import Announcement, AnnouncementRun, GroupChat, RunStatus
from tests.e2e.process import BotProcess
from tests.fake_telegram import faults
from tests.fake_telegram.core import RecordedRequest
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_announcements_world import add_deed, make_world

pytestmark = pytest.mark.e2e
ADMIN = 1001
STRANGER = 3001
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DIGEST = "Những bông hoa đẹp trong tuần"
CUSTOM = "Kính mời các đơn vị dự họp sơ kết"


def is_digest(message: dict[str, Any]) -> bool:
    return DIGEST in str(message.get("text") or "")


def count(tg: FakeTelegramServer, chat: int, what: Callable[[dict[str, Any]], bool]) -> int:
    return sum(1 for m in tg.core.sent(chat) if what(m))


def sends_to(chat: int, what: str) -> Callable[[RecordedRequest], bool]:
    def check(r: RecordedRequest) -> bool:
        return (
            r.method == "sendMessage"
            and int(r.params.get("chat_id", 0)) == chat
            and what in str(r.params.get("text") or "")
        )

    return check


async def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.1)


async def register_groups(tg: FakeTelegramServer, chats: list[tuple[int, str, str]]) -> None:
    """The administrator adds the bot to each group; each says hello."""
    for chat, title, kind in chats:
        tg.core.group(chat, title, type=kind, bot_status="left")
        mark = tg.core.mark()
        tg.core.add_bot_to_group(ADMIN, chat)
        await tg.core.wait_for_message(
            chat, lambda m: "Xin chào" in str(m.get("text")), timeout=30, after=mark
        )


async def seeded(db: Database, key: str) -> Announcement:
    async def find() -> Announcement | None:
        async with db.read() as session:
            for row in await session.scalars(select(Announcement)):
                if (row.payload or {}).get("seed") == key:
                    return row
        return None

    found: Announcement = await eventually(find, what=f"the default announcement {key}")
    return found


def current_slot() -> tuple[str, datetime]:
    """A daily rule whose slot is the current minute (already due, within the grace window)."""
    local = datetime.now(HCM).replace(second=0, microsecond=0)
    return f"daily {local:%H:%M}", local.astimezone(UTC)


async def make_due(db: Database, announcement_id: int) -> datetime:
    rule, slot = current_slot()
    async with db.transaction() as session:
        await session.execute(
            update(Announcement)
            .where(Announcement.id == announcement_id)
            .values(rule=rule, working_days_only=False, next_run_at=slot, enabled=True)
        )
    return slot


async def add_custom(db: Database, body: str) -> int:
    rule, slot = current_slot()
    async with db.transaction() as session:
        row = Announcement(
            kind="custom",
            title=body[:50],
            body=body,
            target="all",
            rule=rule,
            working_days_only=False,
            payload={},
            next_run_at=slot,
            enabled=True,
        )
        session.add(row)
        await session.flush()
        return row.id


async def run_statuses(db: Database, announcement_id: int) -> dict[int, str]:
    async with db.read() as session:
        rows = await session.execute(
            select(GroupChat.chat_id, AnnouncementRun.status)
            .join(GroupChat, GroupChat.id == AnnouncementRun.group_chat_id)
            .where(AnnouncementRun.announcement_id == announcement_id)
        )
        return {int(chat): str(status) for chat, status in rows}


async def test_groups_and_a_digest_through_removal_migration_and_a_kill(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    tg = telegram
    tg.core.user(ADMIN, "Trần", "Quản Trị")
    tg.core.user(STRANGER, "Người lạ")
    db = Database(e2e_db_url)
    # two messages a second overall: a broadcast to seven groups takes a few seconds
    bot = BotProcess(tg, e2e_db_url, tmp_path, HOADEP_ANNOUNCEMENTS__GLOBAL_RATE="2")
    await bot.start()
    try:
        world = await make_world(db)  # before the admin's first update: he is member 1001
        g = [-100_100 - i for i in range(1, 7)]
        basic = -5_007
        chats = [(c, f"Nhóm {i + 1}", "supergroup") for i, c in enumerate(g[:5])]
        chats += [(g[5], "Nhóm sẽ rời", "supergroup"), (basic, "Nhóm thường", "group")]
        await register_groups(tg, chats)

        # a stranger adds the bot: it explains and leaves; the group is not registered
        tg.core.group(-100_999, "Nhóm lạ", type="supergroup", bot_status="left")
        mark = tg.core.mark()
        tg.core.add_bot_to_group(STRANGER, -100_999)
        await tg.core.wait_for_message(
            -100_999, lambda m: "chỉ quản trị viên" in str(m.get("text")), after=mark, timeout=30
        )
        await tg.core.wait_for_request(
            lambda r: r.method == "leaveChat" and int(r.params["chat_id"]) == -100_999,
            after=mark,
            timeout=30,
        )

        # approved good deeds, and the weekly digest due now
        now = datetime.now(UTC)
        await add_deed(db, world, decided_at=now - timedelta(hours=3), description="Hiến máu")
        await add_deed(
            db,
            world,
            subject="binh",
            unit="b",
            decided_at=now - timedelta(days=2),
            description="Giúp đồng nghiệp hoàn thành phiếu điều tra",
        )
        digest = await seeded(db, "weekly_digest")
        await asyncio.sleep(3.5)  # one message per 3 s in a group: the hellos are behind us
        tg.core.inject("sendMessage", faults.Delay(6), chat_id=g[2])  # on the wire at the kill
        mark = tg.core.mark()
        await make_due(db, digest.id)

        # mid-broadcast: one group removes the bot, another becomes a supergroup
        await tg.core.wait_for_request(sends_to(g[0], DIGEST), after=mark, timeout=60)
        tg.core.remove_bot_from_group(ADMIN, g[5])
        tg.core.migrate_group(basic, -100_777, ADMIN)

        # killed while the third group's digest is on the wire
        await tg.core.wait_for_request(sends_to(g[2], DIGEST), after=mark, timeout=60)
        await bot.stop(signal.SIGKILL)
        assert count(tg, g[3], is_digest) == 0, "the kill came too late to be mid-broadcast"
        await bot.start()

        for chat in (g[0], g[1], g[2], g[3], g[4], -100_777):
            await tg.core.wait_for_message(chat, is_digest, timeout=60)
        await asyncio.sleep(4)  # a few more ticks: nothing more may come
        for chat in (g[0], g[1], g[2], g[3], g[4], -100_777):
            assert count(tg, chat, is_digest) == 1, (chat, bot.log())
        assert count(tg, g[5], is_digest) == 0 and count(tg, basic, is_digest) == 0
        text = next(m["text"] for m in tg.core.sent(g[0]) if is_digest(m))
        assert "Hiến máu" in text and "Giúp đồng nghiệp" in text

        statuses = await run_statuses(db, digest.id)
        assert statuses[g[2]] == RunStatus.SENDING.value  # in doubt: never sent again
        assert statuses[-100_777] == RunStatus.SENT.value
        async with db.read() as session:
            groups = {int(row.chat_id): row for row in await session.scalars(select(GroupChat))}
        assert not groups[g[5]].active and groups[-100_777].migrated_from_chat_id == basic
        assert -100_999 not in groups
    finally:
        await bot.stop()
        await db.dispose()
    log = bot.log()
    assert "Traceback" not in log, log
    assert tg.token not in log
    assert not tg.core.unknown_fields, tg.core.unknown_fields


@pytest.mark.postgres
async def test_two_processes_on_postgresql_post_each_announcement_once(
    telegram: FakeTelegramServer, pg_url: str, tmp_path: Path
) -> None:
    """One process takes the updates and ticks; a second one (role = scheduler) only ticks.
    Each group receives each announcement exactly once."""
    tg = telegram
    tg.core.user(ADMIN, "Trần", "Quản Trị")
    db = Database(pg_url)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = BotProcess(tg, pg_url, tmp_path / "one")
    two = BotProcess(tg, pg_url, tmp_path / "two", HOADEP_ANNOUNCEMENTS__ROLE="scheduler")
    await one.start()
    await two.start(wait_for="getMe")
    try:
        world = await make_world(db)
        chats = [(-100_200 - i, f"Đơn vị {i}", "supergroup") for i in range(8)]
        await register_groups(tg, chats)
        await add_deed(db, world, decided_at=datetime.now(UTC) - timedelta(hours=1))
        digest = await seeded(db, "weekly_digest")
        await asyncio.sleep(3.5)
        await make_due(db, digest.id)
        await add_custom(db, f"{CUSTOM} 6 tháng đầu năm.")

        def has_custom(m: dict[str, Any]) -> bool:
            return CUSTOM in str(m.get("text") or "")

        for chat, _, _ in chats:
            await tg.core.wait_for_message(chat, is_digest, timeout=60)
            await tg.core.wait_for_message(chat, has_custom, timeout=60)
        await asyncio.sleep(4)
        for chat, _, _ in chats:
            assert count(tg, chat, is_digest) == 1, chat
            assert count(tg, chat, has_custom) == 1, chat

        # the polling instance stops: the scheduler-only one carries on alone
        await one.stop()
        await add_custom(db, "Nhắc các đơn vị gửi báo cáo sơ kết trước ngày 15.")

        def has_reminder(m: dict[str, Any]) -> bool:
            return "Nhắc các đơn vị gửi báo cáo" in str(m.get("text") or "")

        for chat, _, _ in chats:
            await tg.core.wait_for_message(chat, has_reminder, timeout=60)
        await asyncio.sleep(3)
        for chat, _, _ in chats:
            assert count(tg, chat, has_reminder) == 1, chat
            assert count(tg, chat, is_digest) == 1 and count(tg, chat, has_custom) == 1, chat
    finally:
        await two.stop()
        await one.stop()
        await db.dispose()
    for process in (one, two):
        assert "Traceback" not in process.log(), process.log()
    assert "scheduler-only instance running" in two.log()
