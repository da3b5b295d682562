"""The exemplar registry, the good deeds feed and the audit reader, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.config import ModerationSettings
from bot.services.audit_view import AuditViewService
from bot.services.clock import FixedClock
from bot.services.directory import Viewer
from bot.services.errors import AlreadyDecided, InvalidInput, NotAllowed, NotFound
from bot.services.exemplars import ExemplarFilter, ExemplarService
from bot.services.moderation import ItemType, ModerationService, Outcome
from storage.db import Database
from storage.models import Nomination, Unit
from tests.test_moderation_fixtures import (
    STAFF_TG,
    World,
    add_deed,
    add_nomination,
    outbox_to,
    seed,
)


@pytest.fixture
async def world(db: Database) -> World:
    return await seed(db)


def at(day: int) -> datetime:
    return datetime(2026, 2, day, 3, 0, tzinfo=UTC)


async def test_registry_lists_current_approved_exemplars_only(
    db: Database, clock: FixedClock, world: World
) -> None:
    ex = ExemplarService(db, clock)
    approved = await add_nomination(db, world, status="approved", decided_at=at(3))
    newer = await add_nomination(
        db, world, status="approved", decided_at=at(5), nominee="staff_b", nominator="staff"
    )
    unit = await add_nomination(
        db,
        world,
        status="approved",
        decided_at=at(4),
        nominee=None,
        nominee_unit="b",
        name="Chi cục Thống kê khu vực Đông Anh",
    )
    archived = await add_nomination(
        db, world, status="approved", decided_at=at(1), movement=world.archived_movement
    )
    for status in ("submitted", "in_review", "rejected", "withdrawn", "changes_requested", "draft"):
        await add_nomination(db, world, status=status)
    revoked = await add_nomination(
        db, world, status="approved", decided_at=at(6), revoked_at=at(7), revoke_reason="x"
    )
    viewer = world.viewer("staff")
    page = await ex.search(viewer)
    assert [r.id for r in page.items] == [newer, unit, approved]
    assert page.total == 3 and page.pages == 1
    assert page.items[1].name == "Chi cục Thống kê khu vực Đông Anh"
    assert page.items[0].title_name == "Lao động tiên tiến"
    everything = await ex.search(viewer, ExemplarFilter(everything=True))
    assert [r.id for r in everything.items] == [newer, unit, approved, archived]
    by_year = await ex.search(viewer, ExemplarFilter(year=2024))
    assert [r.id for r in by_year.items] == [archived]
    by_movement = await ex.search(viewer, ExemplarFilter(movement_id=world.movement))
    assert {r.id for r in by_movement.items} == {newer, unit, approved}
    by_unit = await ex.search(viewer, ExemplarFilter(unit_id=world.units["b"]))
    assert [r.id for r in by_unit.items] == [newer, unit]
    by_field = await ex.search(viewer, ExemplarFilter(field_id=world.field + 99))
    assert by_field.total == 0
    # names without accents, people and units alike
    found = await ex.search(viewer, ExemplarFilter(search=True), query="tran van DUOC")
    assert [r.id for r in found.items] == [approved]
    found = await ex.search(viewer, ExemplarFilter(search=True), query="dong anh")
    assert [r.id for r in found.items] == [unit]
    found = await ex.search(viewer, ExemplarFilter(search=True), query="50%_")
    assert found.total == 0
    with pytest.raises(InvalidInput):
        await ex.search(viewer, ExemplarFilter(search=True), query="a")
    # cards: only of listed exemplars
    card = await ex.card(viewer, approved)
    assert card.achievements and card.good_practices and card.movement_name
    for hidden in (revoked, approved + 100):
        with pytest.raises(NotFound):
            await ex.card(viewer, hidden)
    pending = await add_nomination(db, world)
    with pytest.raises(NotFound):
        await ex.card(viewer, pending)
    with pytest.raises(NotAllowed):
        await ex.search(Viewer(1, None, None, None, None, None))
    assert await ex.years() == [2026, 2024]


async def test_unit_filter_follows_merges(db: Database, clock: FixedClock, world: World) -> None:
    ex = ExemplarService(db, clock)
    n = await add_nomination(db, world, status="approved", decided_at=at(3), nominee="staff_b")
    async with db.transaction() as session:
        await session.execute(
            Nomination.__table__.update().where(Nomination.id == n).values(unit_id=world.units["b"])
        )
        unit = await session.get(Unit, world.units["b"])
        assert unit is not None
        unit.merged_into_id = world.units["a"]
        unit.active = False
    page = await ex.search(world.viewer("staff"), ExemplarFilter(unit_id=world.units["a"]))
    assert n in [r.id for r in page.items]


async def test_pages(db: Database, clock: FixedClock, world: World) -> None:
    ex = ExemplarService(db, clock)
    ids = [
        await add_nomination(db, world, status="approved", decided_at=at(1) + timedelta(hours=i))
        for i in range(11)
    ]
    first = await ex.search(world.viewer("staff"), page=0)
    second = await ex.search(world.viewer("staff"), page=1)
    beyond = await ex.search(world.viewer("staff"), page=99)
    assert first.pages == 2 and len(first.items) == 8 and len(second.items) == 3
    assert [r.id for r in first.items + second.items] == ids[::-1]
    assert beyond.page == 1


async def test_revoke(db: Database, clock: FixedClock, world: World) -> None:
    ex = ExemplarService(db, clock)
    n = await add_nomination(db, world, status="approved", decided_at=at(3))
    for who in ("staff", "council1", "officer"):
        with pytest.raises(NotAllowed):
            await ex.revoke(world.viewer(who), n, "Sai sự thật")
    with pytest.raises(InvalidInput):
        await ex.revoke(world.viewer("admin"), n, "  ")
    results = await asyncio.gather(
        ex.revoke(world.viewer("admin"), n, "Thành tích không đúng sự thật"),
        ex.revoke(world.viewer("admin"), n, "Trùng lặp"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, BaseException) for r in results) == 1
    assert all(
        isinstance(r, AlreadyDecided | NotFound) for r in results if isinstance(r, BaseException)
    )
    assert (await ex.search(world.viewer("staff"))).total == 0
    async with db.read() as session:
        row = await session.get(Nomination, n)
        assert row is not None and row.revoked_at == clock.now() and row.revoke_reason
    notices = await outbox_to(db, STAFF_TG)
    assert len(notices) == 1 and "revoked" in notices[0].message


async def test_good_deeds_feed_and_applause(db: Database, clock: FixedClock, world: World) -> None:
    ex = ExemplarService(db, clock)
    a = await add_deed(db, world, status="approved", decided_at=at(2))
    b = await add_deed(db, world, status="approved", decided_at=at(3), subject="staff_b")
    await add_deed(db, world)  # pending: not in the feed
    await add_deed(db, world, status="rejected")
    feed = await ex.feed(world.viewer("staff"))
    assert [d.id for d in feed.items] == [b, a] and feed.total == 2
    assert await ex.applaud(world.viewer("staff"), a) == (True, 1)
    assert await ex.applaud(world.viewer("council1"), a) == (True, 2)
    assert await ex.applaud(world.viewer("staff"), a) == (False, 1)  # taken back
    assert await ex.applaud(world.viewer("staff"), a) == (True, 2)
    results = await asyncio.gather(
        ex.applaud(world.viewer("officer"), b), ex.applaud(world.viewer("officer"), b)
    )
    assert sorted(r[1] for r in results) in ([0, 1], [1, 1])  # never two from one person
    feed = await ex.feed(world.viewer("staff"))
    counts = {d.id: (d.applause, d.applauded) for d in feed.items}
    assert counts[a] == (2, True) and counts[b][0] <= 1
    pending = await add_deed(db, world)
    with pytest.raises(NotFound):
        await ex.applaud(world.viewer("staff"), pending)


async def test_audit_reader(db: Database, clock: FixedClock, world: World) -> None:
    moderation = ModerationService(db, clock, ModerationSettings())
    audit = AuditViewService(db, clock)
    n = await add_nomination(db, world)
    d = await add_deed(db, world, subject="staff_b")
    await moderation.decide(world.viewer("council1"), ItemType.NOMINATION, n, Outcome.APPROVED)
    clock.advance(timedelta(minutes=1))
    await moderation.decide(
        world.viewer("council2"), ItemType.GOOD_DEED, d, Outcome.REJECTED, reason_code="u"
    )
    admin = world.viewer("admin")
    every = await audit.entries(admin)
    assert [e.action for e in every.items] == ["good_deed.rejected", "nomination.approved"]
    assert every.items[0].actor_name == "Phạm Thị Đồng"
    item = await audit.entries(admin, target_type="nomination", target_id=n)
    assert [e.action for e in item.items] == ["nomination.approved"]
    person = await audit.entries(admin, person_id=world.members["staff_b"])
    assert [e.target_id for e in person.items] == [d]  # a deed about them
    actor = await audit.entries(admin, person_id=world.members["council1"])
    assert [e.action for e in actor.items] == ["nomination.approved"]
    assert [p.name for p in await audit.find_people(admin, "pham thi")] == ["Phạm Thị Đồng"]
    for who in ("council1", "staff", "officer"):
        with pytest.raises(NotAllowed):
            await audit.entries(world.viewer(who))
    with pytest.raises(InvalidInput):
        await audit.entries(admin, target_type="Robert'); DROP TABLE")
    async with db.read() as session:
        assert (await session.scalar(select(Nomination.status).where(Nomination.id == n))) == (
            "approved"
        )
