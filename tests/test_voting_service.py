"""The council's secret ballot, on SQLite and PostgreSQL: opening, casting (final), secrecy, the
threshold on the members entitled to vote, closing at the deadline or when all have voted,
reminders, minutes. Who votes and crash recovery: test_ballot_rules.py; the forensic scans:
test_ballot_forensics.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.config import ModerationSettings
from bot.services.ballot_box import TALLY_BASE
from bot.services.clock import FixedClock
from bot.services.errors import AlreadyDecided, InvalidInput, NotAllowed
from bot.services.minutes import passes, percent
from bot.services.moderation import ItemType, ModerationService, Outcome
from bot.services.voting import VotingService, remind_at
from storage.db import Database
from storage.models import (
    AuditEntry,
    Ballot,
    BallotTally,
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
    assert percent(2 / 3, "vi") == "66,7%" and percent(0.7, "vi") == "70%"
    assert passes(7, 10, 0.7) and not passes(6, 10, 0.7)  # "từ 70% trở lên"
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
        tallies = list(await session.execute(select(BallotTally.choice, BallotTally.count)))
    assert voters == sorted(world.members[k] for k in ("council1", "council2", "council3"))
    assert ballot is not None and ballot.council_total == 3 and ballot.left_out == []
    assert sorted(tallies) == [(c, TALLY_BASE) for c in ("abstain", "agree", "disagree")]
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
    await voting.cast(world.viewer("council2"), view.id, VoteChoice.AGREE)
    with pytest.raises(AlreadyDecided):  # final: no second vote, no change
        await voting.cast(world.viewer("council2"), view.id, VoteChoice.DISAGREE)
    with pytest.raises(AlreadyDecided):
        await voting.choose(world.viewer("council2"), view.id)

    # while open: no tally shown, and the voter rows say only who has voted
    during = await voting.ballot(world.viewer("admin"), view.id)
    assert during.result is None and during.voted == 2
    with pytest.raises(InvalidInput):
        await voting.result(world.viewer("admin"), view.id)
    async with db.read() as session:
        tallies = dict((await session.execute(select(BallotTally.choice, BallotTally.count))).all())
        voters = list(await session.execute(select(BallotVoter.voted, BallotVoter.pending)))
        ballot = await session.get(Ballot, view.id)
    assert {c: n - TALLY_BASE for c, n in tallies.items()} == {
        "agree": 2,
        "disagree": 0,
        "abstain": 0,
    }
    assert sorted(voters) == [(False, False), (True, False), (True, False)]
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
    assert ballot.closed_at == clock.now()
    assert (ballot.agree, ballot.disagree, ballot.abstain, ballot.approved) == (2, 0, 0, approved)
    # the service's own localizer is English (the bot installs gettext); numbers follow the
    # office's language
    assert ballot.minutes and "Approval: 2/3 (66,7%)" in ballot.minutes
    assert f"Required: {percent(threshold, 'vi')} or more" in ballot.minutes
    assert "Council members: 3" in ballot.minutes and "Ballots issued: 3" in ballot.minutes
    assert "Members who voted: 2" in ballot.minutes
    assert "not taking part in the vote: —" in ballot.minutes.lower()
    assert "from 09:00 on 2026-03-02 to 09:00 on 2026-03-09" in ballot.minutes
    assert ("Result: APPROVED." in ballot.minutes) is approved
    async with db.read() as session:
        left = await session.scalar(select(func.count()).select_from(BallotTally))
        decisions = list(await session.execute(select(Decision.outcome, Decision.decided_by)))
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert left == 0  # counted and gone: nothing links anyone to a choice any more
    assert decisions == [("approved" if approved else "rejected", None)]
    assert actions == ["ballot.open", "ballot.close"]
    minutes = await outbox_to(db, ADMIN_TG)
    assert len(minutes) == 1 and minutes[0].message.startswith("RECORD OF THE VOTE COUNT")
    assert minutes[0].params["agree"] == 2 and minutes[0].params["cast"] == 2
    assert minutes[0].params["ratio"] == "2/3 (66,7%)"  # the administrator reads Vietnamese
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
