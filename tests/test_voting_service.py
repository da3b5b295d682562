"""The council's secret ballot, on SQLite and PostgreSQL: opening, casting and changing votes,
secrecy, the threshold on the whole council, closing at the deadline or when all have voted,
reminders, minutes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.config import ModerationSettings
from bot.services.clock import FixedClock
from bot.services.errors import AlreadyDecided, InvalidInput, NotAllowed
from bot.services.moderation import ItemType, ModerationService, Outcome
from bot.services.voting import VotingService, passes, percent, remind_at, seal
from storage.db import Database
from storage.models import (
    AuditEntry,
    Ballot,
    BallotChoice,
    BallotVoter,
    Decision,
    Member,
    Nomination,
    VoteChoice,
)
from tests.test_moderation_fixtures import (
    ADMIN_TG,
    COUNCIL_TG,
    NOMINEE_TG,
    STAFF_TG,
    World,
    add_nomination,
    outbox_to,
    seed,
)


def services(
    db: Database, clock: FixedClock, **settings: object
) -> tuple[ModerationService, VotingService]:
    config = ModerationSettings(**settings)  # type: ignore[arg-type]
    moderation = ModerationService(db, clock, config)
    return moderation, VotingService(db, clock, config, moderation)


@pytest.fixture
async def world(db: Database) -> World:
    return await seed(db)


async def ballot_row(db: Database, ballot_id: int) -> Ballot:
    async with db.read() as session:
        ballot = await session.get(Ballot, ballot_id)
        assert ballot is not None
        return ballot


async def status_of(db: Database, nomination_id: int) -> str:
    async with db.read() as session:
        return str(
            await session.scalar(select(Nomination.status).where(Nomination.id == nomination_id))
        )


def test_arithmetic() -> None:
    assert passes(2, 3, 0.5) and not passes(2, 3, 0.7)
    assert passes(2, 3, 2 / 3) and passes(1, 2, 0.5) and not passes(0, 0, 0.1)
    assert percent(0.5) == "50%" and percent(2 / 3) == "66.7%" and percent(0.7) == "70%"
    s = seal("k" * 64, 7)
    assert s == seal("k" * 64, 7) != seal("k" * 64, 8) != seal("j" * 64, 7)
    opened = datetime(2026, 3, 2, tzinfo=UTC)
    assert remind_at(opened, opened + timedelta(days=7)) == opened + timedelta(days=6)
    assert remind_at(opened, opened + timedelta(hours=20)) == opened + timedelta(hours=10)


async def test_open_vote_sends_ballots_to_the_council_only(
    db: Database, clock: FixedClock, world: World
) -> None:
    _, voting = services(db, clock)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("admin"), n, version=1)
    assert view.council_size == 3 and view.threshold == 0.5
    assert view.deadline == clock.now() + timedelta(days=7)
    assert view.voted == 0 and view.result is None
    assert await status_of(db, n) == "in_review"
    async with db.read() as session:
        voters = list(
            await session.scalars(select(BallotVoter.member_id).order_by(BallotVoter.member_id))
        )
        ballot = await session.get(Ballot, view.id)
        audit = list(await session.scalars(select(AuditEntry.action)))
    assert voters == sorted(world.members[k] for k in ("council1", "council2", "council3"))
    assert ballot is not None and ballot.seal_key and len(ballot.seal_key) == 64
    assert audit == ["ballot.open"]
    for tg in COUNCIL_TG:
        sent = await outbox_to(db, tg)
        assert len(sent) == 1
        data = [b["data"] for row in sent[0].buttons or [] for b in row]
        assert data == [
            f"vt:c:{view.id}:a",
            f"vt:c:{view.id}:d",
            f"vt:c:{view.id}:b",
            f"rv:o:n:{n}",
        ]
    assert await outbox_to(db, ADMIN_TG) == []  # administrators moderate but do not vote
    author = await outbox_to(db, STAFF_TG)
    assert len(author) == 1 and "secret ballot" in author[0].message

    with pytest.raises(AlreadyDecided):
        await voting.open_vote(world.viewer("council1"), n)
    with pytest.raises(AlreadyDecided):  # a moderator's approval loses to the open vote
        moderation, _ = services(db, clock)
        await moderation.decide(world.viewer("council2"), ItemType.NOMINATION, n, Outcome.APPROVED)


async def test_open_vote_rules(db: Database, clock: FixedClock, world: World) -> None:
    _, voting = services(db, clock, vote_max_days=10)
    n = await add_nomination(db, world)
    for who in ("staff", "officer", "nominee"):
        with pytest.raises(NotAllowed):
            await voting.open_vote(world.viewer(who), n)
    with pytest.raises(InvalidInput):
        await voting.open_vote(world.viewer("admin"), n, days=11)
    with pytest.raises(InvalidInput):
        await voting.open_vote(world.viewer("admin"), n, days=-1)
    about_me = await add_nomination(db, world, nominee="council1")
    with pytest.raises(NotAllowed):
        await voting.open_vote(world.viewer("council1"), about_me)
    strict = await add_nomination(db, world, title=world.strict_title)
    view = await voting.open_vote(world.viewer("council2"), strict, days=2)
    assert view.threshold == 0.7 and view.deadline == clock.now() + timedelta(days=2)
    async with db.transaction() as session:
        await session.execute(update(Member).where(Member.role == "council").values(active=False))
    with pytest.raises(InvalidInput):
        await voting.open_vote(world.viewer("admin"), n)
    assert await status_of(db, n) == "submitted"


@pytest.mark.parametrize(("threshold", "approved"), [(0.5, True), (0.7, False)])
async def test_two_agree_one_silent_follows_the_threshold(
    db: Database, clock: FixedClock, world: World, threshold: float, approved: bool
) -> None:
    _, voting = services(db, clock, approval_threshold=threshold)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("admin"), n)
    await voting.cast(world.viewer("council1"), view.id, VoteChoice.AGREE)
    await voting.cast(world.viewer("council2"), view.id, VoteChoice.DISAGREE)
    await voting.cast(world.viewer("council2"), view.id, VoteChoice.AGREE)  # changed her mind

    # while open: no tally anywhere, and the voter rows say only who has voted
    during = await voting.ballot(world.viewer("admin"), view.id)
    assert during.result is None and during.voted == 2
    with pytest.raises(InvalidInput):
        await voting.result(world.viewer("admin"), view.id)
    async with db.read() as session:
        choices = list(await session.execute(select(BallotChoice.seal, BallotChoice.choice)))
        ballot = await session.get(Ballot, view.id)
    assert sorted(c for _, c in choices) == ["agree", "agree"]
    member_ids = {str(m) for m in world.members.values()}
    assert not {s for s, _ in choices} & member_ids
    assert ballot is not None and ballot.agree is None

    assert await voting.close_due() == []  # not yet
    clock.advance(timedelta(days=7))
    closed = await voting.close_due()
    assert len(closed) == 1
    result = closed[0]
    assert (result.agree, result.disagree, result.abstain, result.not_voted) == (2, 0, 0, 1)
    assert result.council_size == 3 and result.approved is approved
    assert await status_of(db, n) == ("approved" if approved else "rejected")

    ballot = await ballot_row(db, view.id)
    assert ballot.seal_key is None and ballot.closed_at == clock.now()
    assert (ballot.agree, ballot.disagree, ballot.abstain, ballot.approved) == (2, 0, 0, approved)
    assert ballot.minutes and "2/3 (66.7%)" in ballot.minutes
    assert percent(threshold) in ballot.minutes and "Council members: 3" in ballot.minutes
    assert ("Result: APPROVED." in ballot.minutes) is approved
    async with db.read() as session:
        left = await session.scalar(select(func.count()).select_from(BallotChoice))
        decisions = list(await session.execute(select(Decision.outcome, Decision.decided_by)))
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert left == 0  # counted and gone: nothing links anyone to a choice any more
    assert decisions == [("approved" if approved else "rejected", None)]
    assert actions == ["ballot.open", "ballot.close"]
    minutes = await outbox_to(db, ADMIN_TG)
    assert len(minutes) == 1 and minutes[0].message.startswith("MINUTES")
    assert minutes[0].params["agree"] == 2 and minutes[0].params["not_voted"] == 1
    author = await outbox_to(db, STAFF_TG)
    assert (
        "approved your nomination" in author[-1].message
        if approved
        else ("did not approve" in author[-1].message)
    )
    assert bool(await outbox_to(db, NOMINEE_TG)) is approved
    # late votes change nothing; the result is readable now
    with pytest.raises(AlreadyDecided):
        await voting.cast(world.viewer("council3"), view.id, VoteChoice.AGREE)
    assert (await voting.result(world.viewer("council3"), view.id)).agree == 2
    assert await voting.close_due() == []


async def test_closes_as_soon_as_everyone_has_voted(
    db: Database, clock: FixedClock, world: World
) -> None:
    _, voting = services(db, clock)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("admin"), n)
    first = await voting.cast(world.viewer("council1"), view.id, VoteChoice.DISAGREE)
    assert first.closed is None
    results = await asyncio.gather(
        voting.cast(world.viewer("council2"), view.id, VoteChoice.ABSTAIN),
        voting.cast(world.viewer("council3"), view.id, VoteChoice.AGREE),
    )
    closers = [r.closed for r in results if r.closed is not None]
    assert len(closers) == 1
    closed = closers[0]
    assert (closed.agree, closed.disagree, closed.abstain) == (1, 1, 1) and not closed.approved
    assert await status_of(db, n) == "rejected"


async def test_only_the_ballots_council_votes(
    db: Database, clock: FixedClock, world: World
) -> None:
    _, voting = services(db, clock)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("council1"), n)
    for who in ("admin", "staff", "officer", "nominee"):
        with pytest.raises(NotAllowed):
            await voting.cast(world.viewer(who), view.id, VoteChoice.AGREE)
        with pytest.raises(NotAllowed):
            await voting.cast(world.viewer(who), 999, VoteChoice.AGREE)
    # a member who joins the council after the opening is not on this ballot
    async with db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == world.members["staff_b"]).values(role="council")
        )
    with pytest.raises(NotAllowed):
        await voting.cast(world.viewer("staff_b"), view.id, VoteChoice.AGREE)
    assert (await voting.ballot(world.viewer("admin"), view.id)).voted == 0
    with pytest.raises(NotAllowed):
        await voting.ballot(world.viewer("staff"), view.id)
    with pytest.raises(NotAllowed):
        await voting.result(world.viewer("staff"), view.id)
    assert await voting.ballots(world.viewer("staff")) == []
    mine = await voting.ballots(world.viewer("council2"))
    assert [(b.id, b.i_voted) for b in mine] == [(view.id, False)]


async def test_one_reminder_before_the_deadline_to_those_who_have_not_voted(
    db: Database, clock: FixedClock, world: World
) -> None:
    _, voting = services(db, clock)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("admin"), n, days=3)
    await voting.cast(world.viewer("council1"), view.id, VoteChoice.AGREE)
    assert await voting.send_reminders() == 0
    clock.advance(timedelta(days=2, hours=1))  # 23 hours left
    assert await voting.send_reminders() == 2
    assert await voting.send_reminders() == 0
    assert len(await outbox_to(db, COUNCIL_TG[0])) == 1  # only the ballot
    reminder = (await outbox_to(db, COUNCIL_TG[1]))[-1]
    assert reminder.message.startswith("Reminder")
    assert reminder.buttons and reminder.buttons[0][0]["data"] == f"vt:c:{view.id}:a"
    assert (await ballot_row(db, view.id)).reminded_at == clock.now()
