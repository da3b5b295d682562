"""Moderation rules, on SQLite and PostgreSQL: the queue, who may decide, one decision per item
under concurrency, notices to the author and the nominee, the admin chat's hook."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.config import ModerationSettings
from bot.services.clock import FixedClock
from bot.services.errors import AlreadyDecided, InvalidInput, NotAllowed, NotFound
from bot.services.moderation import CANNED_REASONS, ItemType, ModerationService, Outcome
from storage.db import Database
from storage.models import AuditEntry, Decision, GoodDeed, Member, Nomination, OutboxMessage
from tests.test_moderation_fixtures import (
    NOMINEE_TG,
    STAFF_TG,
    World,
    add_deed,
    add_nomination,
    outbox_to,
    seed,
)

ADMIN_CHAT = -100777


def service(db: Database, clock: FixedClock, **settings: object) -> ModerationService:
    return ModerationService(db, clock, ModerationSettings(**settings))  # type: ignore[arg-type]


@pytest.fixture
async def world(db: Database) -> World:
    return await seed(db)


async def decisions(db: Database) -> list[Decision]:
    async with db.read() as session:
        return list(await session.scalars(select(Decision).order_by(Decision.id)))


async def test_queue_oldest_first_with_counts_and_scopes(
    db: Database, clock: FixedClock, world: World
) -> None:
    mod = service(db, clock)
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    n1 = await add_nomination(db, world, submitted_at=t0 + timedelta(hours=3))
    d1 = await add_deed(db, world, submitted_at=t0 + timedelta(hours=1))
    d2 = await add_deed(
        db, world, unit="b", subject="staff_b", submitted_at=t0 + timedelta(hours=2)
    )
    await add_nomination(db, world, status="draft", submitted_at=t0)
    await add_nomination(db, world, status="approved", submitted_at=t0)

    queue = await mod.queue(world.viewer("council1"))
    assert (queue.nominations, queue.good_deeds) == (1, 2)
    assert [(e.type, e.id) for e in queue.entries] == [
        (ItemType.GOOD_DEED, d1),
        (ItemType.GOOD_DEED, d2),
        (ItemType.NOMINATION, n1),
    ]
    assert queue.entries[0].submitted_at == t0 + timedelta(hours=1)
    only = await mod.queue(world.viewer("admin"), kind=ItemType.NOMINATION)
    assert [e.id for e in only.entries] == [n1]

    officer = await mod.queue(world.viewer("officer"))
    assert (officer.nominations, officer.good_deeds) == (0, 1)
    assert [(e.type, e.id) for e in officer.entries] == [(ItemType.GOOD_DEED, d1)]

    # the author and the subject do not see their own items
    nominee_q = await service(db, clock).queue(world.viewer("council1"))
    assert nominee_q.total == 3
    with pytest.raises(NotAllowed):
        await mod.queue(world.viewer("staff"))
    with pytest.raises(NotAllowed):
        await service(db, clock, unit_officers_review_good_deeds=False).queue(
            world.viewer("officer")
        )


async def test_approve_records_decision_audit_and_notices(
    db: Database, clock: FixedClock, world: World
) -> None:
    mod = service(db, clock)
    n = await add_nomination(db, world)
    result = await mod.decide(world.viewer("council1"), ItemType.NOMINATION, n, Outcome.APPROVED)
    assert result.state.status.value == "approved"
    assert result.state.decided_by == "Lê Văn Hội"
    rows = await decisions(db)
    assert [(d.nomination_id, d.outcome, d.decided_by) for d in rows] == [
        (n, "approved", world.members["council1"])
    ]
    async with db.read() as session:
        nomination = await session.get(Nomination, n)
        assert nomination is not None and nomination.version == 2
        assert nomination.decided_at == clock.now()
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions == ["nomination.approved"]
    author = await outbox_to(db, STAFF_TG)
    assert len(author) == 1 and "was approved" in author[0].message
    assert author[0].params["name"] == "Trần Văn Được"
    nominee = await outbox_to(db, NOMINEE_TG)
    assert len(nominee) == 1 and "Congratulations" in nominee[0].message
    assert nominee[0].params["title"] == "Lao động tiên tiến"

    with pytest.raises(AlreadyDecided) as err:
        await mod.decide(
            world.viewer("admin"), ItemType.NOMINATION, n, Outcome.REJECTED, reason_code="e"
        )
    assert err.value.params["name"] == "Lê Văn Hội"
    assert err.value.params["at"] == clock.now()
    assert len(await decisions(db)) == 1


async def test_nominee_who_opted_out_is_not_told(
    db: Database, clock: FixedClock, world: World
) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == world.members["nominee"]).values(notify_opt_out=True)
        )
    n = await add_nomination(db, world)
    await service(db, clock).decide(world.viewer("admin"), ItemType.NOMINATION, n, Outcome.APPROVED)
    assert await outbox_to(db, NOMINEE_TG) == []
    assert len(await outbox_to(db, STAFF_TG)) == 1


async def test_reject_with_canned_and_typed_reasons_and_request_changes(
    db: Database, clock: FixedClock, world: World
) -> None:
    from bot.voting_jobs import localizer

    mod = service(db, clock)
    mod.localize = localizer("Asia/Ho_Chi_Minh")
    d1 = await add_deed(db, world)
    d2 = await add_deed(db, world)
    d3 = await add_deed(db, world)
    with pytest.raises(InvalidInput):
        await mod.decide(
            world.viewer("council2"), ItemType.GOOD_DEED, d1, Outcome.REJECTED, reason_code="zz"
        )
    with pytest.raises(InvalidInput):
        await mod.decide(
            world.viewer("council2"), ItemType.GOOD_DEED, d1, Outcome.REJECTED, reason="   "
        )
    with pytest.raises(InvalidInput):
        await mod.decide(
            world.viewer("council2"), ItemType.GOOD_DEED, d1, Outcome.CHANGES_REQUESTED, reason=""
        )
    await mod.decide(
        world.viewer("council2"), ItemType.GOOD_DEED, d1, Outcome.REJECTED, reason_code="e"
    )
    await mod.decide(
        world.viewer("council2"),
        ItemType.GOOD_DEED,
        d2,
        Outcome.REJECTED,
        reason="Sự việc <đã> được biểu dương",
    )
    await mod.decide(
        world.viewer("council2"),
        ItemType.GOOD_DEED,
        d3,
        Outcome.CHANGES_REQUESTED,
        reason="Bổ sung ảnh minh chứng",
    )
    async with db.read() as session:
        notes = dict(
            (i, (s, n))
            for i, s, n in await session.execute(
                select(GoodDeed.id, GoodDeed.status, GoodDeed.review_note)
            )
        )
    assert notes[d1] == ("rejected", CANNED_REASONS["e"])
    assert notes[d2] == ("rejected", "Sự việc <đã> được biểu dương")
    assert notes[d3] == ("changes_requested", "Bổ sung ảnh minh chứng")
    sent = await outbox_to(db, STAFF_TG)
    assert [m.params["reason"] for m in sent] == [
        "Chưa đủ minh chứng",  # the canned reason, in the author's language
        "Sự việc <đã> được biểu dương",
        "Bổ sung ảnh minh chứng",
    ]
    assert "needs changes" in sent[2].message
    # a decided item cannot be decided again, whatever the outcome
    with pytest.raises(AlreadyDecided) as err:
        await mod.decide(world.viewer("admin"), ItemType.GOOD_DEED, d3, Outcome.APPROVED)
    assert "asked for changes" in err.value.message


async def test_two_moderators_at_once_make_one_decision(
    db: Database, clock: FixedClock, world: World
) -> None:
    mod = service(db, clock)
    for _ in range(3):  # a few rounds: the race must hold every time
        d = await add_deed(db, world)
        results = await asyncio.gather(
            mod.decide(
                world.viewer("council1"), ItemType.GOOD_DEED, d, Outcome.APPROVED, version=1
            ),
            mod.decide(
                world.viewer("council2"),
                ItemType.GOOD_DEED,
                d,
                Outcome.REJECTED,
                version=1,
                reason_code="u",
            ),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], AlreadyDecided), lost
        winner = won[0].state.decided_by
        assert lost[0].params.get("name") == winner
        async with db.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(Decision).where(Decision.good_deed_id == d)
            )
            audits = await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.target_type == "good_deed", AuditEntry.target_id == d)
            )
            notices = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert count == 1 and audits == 1
        assert notices is not None


async def test_who_may_decide(db: Database, clock: FixedClock, world: World) -> None:
    mod = service(db, clock)
    n = await add_nomination(db, world)
    deed_a = await add_deed(db, world)
    deed_b = await add_deed(db, world, unit="b", subject="staff_b", reporter="staff_b")
    for who in ("staff", "staff_b"):
        with pytest.raises(NotAllowed):
            await mod.decide(world.viewer(who), ItemType.GOOD_DEED, deed_a, Outcome.APPROVED)
    with pytest.raises(NotAllowed):
        await mod.decide(world.viewer("officer"), ItemType.NOMINATION, n, Outcome.APPROVED)
    with pytest.raises(NotAllowed):
        await mod.decide(world.viewer("officer"), ItemType.GOOD_DEED, deed_b, Outcome.APPROVED)
    with pytest.raises(NotAllowed):
        await service(db, clock, unit_officers_review_good_deeds=False).decide(
            world.viewer("officer"), ItemType.GOOD_DEED, deed_a, Outcome.APPROVED
        )
    # nobody decides on their own submission or one about themselves
    own = await add_deed(db, world, reporter="council1", subject="staff")
    about = await add_nomination(db, world, nominee="council2")
    with pytest.raises(NotAllowed):
        await mod.decide(world.viewer("council1"), ItemType.GOOD_DEED, own, Outcome.APPROVED)
    with pytest.raises(NotAllowed):
        await mod.decide(world.viewer("council2"), ItemType.NOMINATION, about, Outcome.APPROVED)
    with pytest.raises(NotFound):
        await mod.decide(world.viewer("admin"), ItemType.GOOD_DEED, 99999, Outcome.APPROVED)
    draft = await add_nomination(db, world, status="draft")
    with pytest.raises(NotFound):
        await mod.decide(world.viewer("admin"), ItemType.NOMINATION, draft, Outcome.APPROVED)
    assert await decisions(db) == []
    result = await mod.decide(world.viewer("officer"), ItemType.GOOD_DEED, deed_a, Outcome.APPROVED)
    assert result.state.status.value == "approved"
    # viewing an item follows the same rule
    with pytest.raises(NotAllowed):
        await mod.item(world.viewer("staff"), ItemType.NOMINATION, n)
    with pytest.raises(NotAllowed):
        await mod.item(world.viewer("officer_b"), ItemType.GOOD_DEED, deed_a)
    item = await mod.item(world.viewer("officer_b"), ItemType.GOOD_DEED, deed_b)
    assert item.subject_name == "Trịnh Văn Bắc"


async def test_a_stale_card_cannot_decide_a_changed_item(
    db: Database, clock: FixedClock, world: World
) -> None:
    mod = service(db, clock)
    n = await add_nomination(db, world)
    item = await mod.item(world.viewer("council1"), ItemType.NOMINATION, n)
    assert item.version == 1 and item.movement_name and item.title_name == "Lao động tiên tiến"
    async with db.transaction() as session:  # the author edited and resubmitted meanwhile
        await session.execute(update(Nomination).where(Nomination.id == n).values(version=3))
    with pytest.raises(AlreadyDecided) as err:
        await mod.decide(
            world.viewer("council1"), ItemType.NOMINATION, n, Outcome.APPROVED, version=1
        )
    assert "changed" in err.value.message
    async with db.transaction() as session:
        await session.execute(
            update(Nomination).where(Nomination.id == n).values(status="withdrawn")
        )
    with pytest.raises(AlreadyDecided) as err:
        await mod.decide(world.viewer("council1"), ItemType.NOMINATION, n, Outcome.APPROVED)
    assert "withdrew" in err.value.message


async def test_admin_chat_hook_and_cards(db: Database, clock: FixedClock, world: World) -> None:
    quiet = service(db, clock)
    loud = service(db, clock, admin_chat_id=ADMIN_CHAT)
    n = await add_nomination(db, world)
    async with db.transaction() as session:
        item = await session.get(Nomination, n)
        assert item is not None
        await quiet.announce_new_submission(session, item, now=clock.now())
        await loud.announce_new_submission(session, item, now=clock.now())
        await loud.announce_new_submission(session, item, now=clock.now())  # twice: once
    notices = await outbox_to(db, ADMIN_CHAT)
    assert len(notices) == 1
    notice = notices[0]
    assert notice.params == {"id": n, "nominations": 1, "deeds": 0}  # no content of the item
    assert notice.buttons == [[{"text": "Open for review", "data": f"rv:o:n:{n}"}]]
    assert notice.dedupe_key == f"modnew:n:{n}:1"

    await loud.record_card(ItemType.NOMINATION, n, 3001, 55)
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == notice.id).values(message_id=77)
        )
    refs = await loud.cards(ItemType.NOMINATION, n)
    assert [(r.chat_id, r.message_id, r.group) for r in refs] == [
        (3001, 55, False),
        (ADMIN_CHAT, 77, True),
    ]
    assert await loud.cards(ItemType.GOOD_DEED, n) == []


async def test_no_commendation_under_discipline(
    db: Database, clock: FixedClock, world: World
) -> None:
    from bot.services.voting import VotingService

    mod = service(db, clock)
    voting = VotingService(db, clock, mod.settings, mod)
    n = await add_nomination(db, world)
    async with db.transaction() as session:
        await session.execute(
            update(Member)
            .where(Member.id == world.members["nominee"])
            .values(under_discipline=True)
        )
    with pytest.raises(InvalidInput) as err:
        await mod.decide(world.viewer("admin"), ItemType.NOMINATION, n, Outcome.APPROVED)
    assert err.value.params["name"] == "Trần Văn Được"
    with pytest.raises(InvalidInput):
        await voting.open_vote(world.viewer("admin"), n)
    # rejecting it, or asking for changes, stays possible
    await mod.decide(
        world.viewer("admin"),
        ItemType.NOMINATION,
        n,
        Outcome.CHANGES_REQUESTED,
        reason="Chờ kết luận",
    )
