"""Who votes on a council ballot and when, and what a crash in the middle of a vote leaves, on
SQLite and PostgreSQL: the nominator, the nominee and a nominated unit's members are left out
and named in the minutes; a member who leaves the council or is deactivated can no longer vote
and is not reminded; the threshold is counted on those entitled at opening; no vote after the
deadline or from an out-of-date card; a voter left pending is settled, never counted twice or
silently lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.config import ModerationSettings
from bot.services.ballot_box import TALLY_BASE, BallotBox
from bot.services.clock import FixedClock
from bot.services.errors import AlreadyDecided, InvalidInput, NotAllowed
from bot.services.moderation import ModerationService
from bot.services.text import fold
from bot.services.voting import (
    BALLOT_MESSAGE,
    VOTE_LOST_CLOSED,
    VOTE_LOST_MESSAGE,
    VotingService,
)
from storage.db import Database
from storage.models import (
    Ballot,
    BallotTally,
    BallotVoter,
    Member,
    Nomination,
    Role,
    Unit,
    VoteChoice,
)
from tests.test_moderation_fixtures import COUNCIL_TG, World, add_nomination, outbox_to, seed

A, D, B = VoteChoice.AGREE, VoteChoice.DISAGREE, VoteChoice.ABSTAIN


def services(db: Database, clock: FixedClock, **settings: Any) -> VotingService:
    config = ModerationSettings(**settings)
    return VotingService(db, clock, config, ModerationService(db, clock, config))


@pytest.fixture
async def world(db: Database) -> World:
    return await seed(db)


async def add_council_member(
    db: Database, w: World, key: str, name: str, unit: str, tg: int
) -> None:
    async with db.transaction() as session:
        m = Member(
            full_name=name,
            name_folded=fold(name),
            unit_id=w.units[unit],
            role=Role.COUNCIL.value,
            telegram_user_id=tg,
        )
        session.add(m)
        await session.flush()
        w.members[key], w.tg[key], w.roles[key], w.unit_of[key] = m.id, tg, Role.COUNCIL, m.unit_id


async def set_member(db: Database, w: World, key: str, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(Member).where(Member.id == w.members[key]).values(**values))


async def voter_rows(db: Database, ballot_id: int) -> dict[int, tuple[bool, bool]]:
    async with db.read() as session:
        rows = await session.execute(
            select(BallotVoter.member_id, BallotVoter.voted, BallotVoter.pending).where(
                BallotVoter.ballot_id == ballot_id
            )
        )
        return {m: (bool(v), bool(p)) for m, v, p in rows}


async def tallies(db: Database, ballot_id: int) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(
            select(BallotTally.choice, BallotTally.count).where(BallotTally.ballot_id == ballot_id)
        )
        return {c: n - TALLY_BASE for c, n in rows}


# --- who votes ------------------------------------------------------------------------------


async def test_nominator_and_nominee_on_the_council_are_left_out(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    n = await add_nomination(db, world, nominator="council1", nominee="council2")
    view = await voting.open_vote(world.viewer("admin"), n)
    assert view.council_size == 1
    assert set(await voter_rows(db, view.id)) == {world.members["council3"]}
    for tg, ballots in zip(COUNCIL_TG, (0, 0, 1), strict=True):  # no ballot for those left out
        sent = await outbox_to(db, tg)
        assert sum(m.message == BALLOT_MESSAGE for m in sent) == ballots
    for who in ("council1", "council2"):
        with pytest.raises(NotAllowed):
            await voting.cast(world.viewer(who), view.id, A)
        with pytest.raises(NotAllowed):
            await voting.choose(world.viewer(who), view.id)
    result = (await voting.cast(world.viewer("council3"), view.id, A)).closed
    assert result is not None and result.approved and result.ratio == 1.0  # 1 of 1 entitled
    assert result.council_total == 3 and result.left_out == ("Lê Văn Hội", "Phạm Thị Đồng")
    assert result.minutes is not None
    assert "Not taking part in the vote: Lê Văn Hội, Phạm Thị Đồng" in result.minutes
    assert "Council members: 3" in result.minutes and "Ballots issued: 1" in result.minutes


async def test_a_nominated_units_members_and_its_sub_units_are_left_out(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    async with db.transaction() as session:  # a team under unit b, where council2 now works
        team = Unit(name="Tổ Điều tra", parent_id=world.units["b"])
        session.add(team)
        await session.flush()
        world.units["team"] = team.id
    await set_member(db, world, "council2", unit_id=world.units["team"])
    n = await add_nomination(db, world, nominee=None, nominee_unit="b", name="Chi cục Đông Anh")
    view = await voting.open_vote(world.viewer("admin"), n)
    assert set(await voter_rows(db, view.id)) == {world.members["council1"]}
    async with db.read() as session:
        ballot = await session.get(Ballot, view.id)
    assert ballot is not None and sorted(ballot.left_out) == ["Hoàng Minh Thi", "Phạm Thị Đồng"]


async def test_opening_is_refused_when_nobody_may_vote(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    await set_member(db, world, "council3", unit_id=world.units["a"])
    n = await add_nomination(db, world, nominee=None, nominee_unit="a", name="Phòng Tổng hợp")
    with pytest.raises(InvalidInput) as refused:
        await voting.open_vote(world.viewer("admin"), n)
    assert "Nobody on the council may vote" in refused.value.message
    async with db.read() as session:
        assert await session.scalar(select(Nomination.status).where(Nomination.id == n)) == (
            "submitted"
        )
        assert await session.scalar(select(Ballot.id)) is None


async def test_leaving_the_council_during_the_vote(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    n = await add_nomination(db, world)
    view = await voting.open_vote(world.viewer("admin"), n, days=2)
    await set_member(db, world, "council2", role=Role.STAFF.value)
    await set_member(db, world, "council3", active=False)
    for who in ("council2", "council3"):
        with pytest.raises(NotAllowed) as refused:
            await voting.cast(world.viewer(who), view.id, A)
        assert "no longer a member of the council" in refused.value.message
        assert not (await voting.ballot(world.viewer("council1"), view.id)).voted
    assert (await voting.ballot(world.viewer("council2"), view.id)).may_vote is False
    clock.advance(timedelta(days=1, hours=1))
    assert await voting.send_reminders() == 1  # council1 only
    assert (await outbox_to(db, COUNCIL_TG[0]))[-1].message.startswith("Reminder")
    for tg in COUNCIL_TG[1:]:
        assert not (await outbox_to(db, tg))[-1].message.startswith("Reminder")
    # the last one still entitled votes: nobody is left to wait for
    closed = (await voting.cast(world.viewer("council1"), view.id, A)).closed
    assert closed is not None and closed.council_size == 3 and closed.cast == 1
    assert not closed.approved  # 1 of the 3 entitled at opening: 33.3% < 50%


@pytest.mark.parametrize(("threshold", "approved"), [(0.6, True), (0.67, False)])
async def test_the_threshold_is_counted_on_those_entitled_at_opening(
    db: Database, clock: FixedClock, world: World, threshold: float, approved: bool
) -> None:
    voting = services(db, clock, approval_threshold=threshold)
    await add_council_member(db, world, "council4", "Ngô Thị Bốn", "a", 3004)
    n = await add_nomination(db, world, nominator="council4")  # 4 on the council, 3 entitled
    view = await voting.open_vote(world.viewer("admin"), n)
    await voting.cast(world.viewer("council1"), view.id, A)
    await voting.cast(world.viewer("council2"), view.id, A)
    closed = (await voting.cast(world.viewer("council3"), view.id, D)).closed
    assert closed is not None and closed.council_total == 4 and closed.council_size == 3
    assert closed.ratio_text("vi") == "2/3 (66,7%)" and closed.approved is approved


async def test_exactly_the_threshold_passes(db: Database, clock: FixedClock, world: World) -> None:
    voting = services(db, clock, approval_threshold=2 / 3)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world))
    for who, choice in (("council1", A), ("council2", A)):
        await voting.cast(world.viewer(who), view.id, choice)
    closed = (await voting.cast(world.viewer("council3"), view.id, B)).closed
    assert closed is not None and closed.approved


# --- when -----------------------------------------------------------------------------------


async def test_no_vote_after_the_deadline_even_before_the_closing_job(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world), days=1)
    await voting.choose(world.viewer("council1"), view.id)  # allowed before
    clock.advance(timedelta(days=1))  # at the deadline
    for at in (timedelta(0), timedelta(seconds=1)):
        clock.advance(at)
        with pytest.raises(AlreadyDecided):
            await voting.choose(world.viewer("council1"), view.id)
        with pytest.raises(AlreadyDecided):
            await voting.cast(world.viewer("council1"), view.id, A)
    assert await tallies(db, view.id) == {"agree": 0, "disagree": 0, "abstain": 0}
    assert not any(v for v, _ in (await voter_rows(db, view.id)).values())


async def test_a_vote_cannot_be_opened_from_an_out_of_date_card(
    db: Database, clock: FixedClock, world: World
) -> None:
    voting = services(db, clock)
    n = await add_nomination(db, world)
    async with db.transaction() as session:  # the author edited it after the card was shown
        await session.execute(update(Nomination).where(Nomination.id == n).values(version=2))
    with pytest.raises(AlreadyDecided):
        await voting.open_vote(world.viewer("admin"), n, version=1)
    async with db.read() as session:
        assert await session.scalar(select(Ballot.id)) is None
    view = await voting.open_vote(world.viewer("admin"), n, version=2)
    assert view.council_size == 3


# --- a crash in the middle of a vote ----------------------------------------------------------


class Crash(Exception):
    """The process dying between two steps of a cast."""


def crash_once(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    real = getattr(BallotBox, step)

    async def failing(self: BallotBox, *args: Any) -> None:
        monkeypatch.setattr(BallotBox, step, real)
        raise Crash(step)

    monkeypatch.setattr(BallotBox, step, failing)


async def test_crash_before_counting_the_voter_is_told_to_vote_again(
    db: Database, clock: FixedClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world))
    crash_once(monkeypatch, "count")  # between T1 and T2
    with pytest.raises(Crash):
        await voting.cast(world.viewer("council1"), view.id, D)
    me = world.members["council1"]
    assert (await voter_rows(db, view.id))[me] == (False, True)  # pending, nothing counted
    assert sum((await tallies(db, view.id)).values()) == 0
    # the next cast on the ballot settles it first: not counted, so back to not voted, told
    await voting.cast(world.viewer("council2"), view.id, A)
    assert (await voter_rows(db, view.id))[me] == (False, False)
    told = (await outbox_to(db, COUNCIL_TG[0]))[-1]
    assert told.message == VOTE_LOST_MESSAGE
    assert told.buttons and told.buttons[0][0]["data"] == f"vt:c:{view.id}:a"
    assert "disagree" not in str(told.params).lower()  # the lost choice is nowhere
    await voting.cast(world.viewer("council1"), view.id, D)  # votes again
    assert await tallies(db, view.id) == {"agree": 1, "disagree": 1, "abstain": 0}


async def test_crash_after_counting_the_vote_stands(
    db: Database, clock: FixedClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world), days=1)
    crash_once(monkeypatch, "mark_voted")  # between T2 and T3
    with pytest.raises(Crash):
        await voting.cast(world.viewer("council1"), view.id, A)
    me = world.members["council1"]
    assert (await voter_rows(db, view.id))[me] == (False, True)
    assert await tallies(db, view.id) == {"agree": 1, "disagree": 0, "abstain": 0}
    await voting.cast(world.viewer("council2"), view.id, D)  # settles council1 as voted
    assert (await voter_rows(db, view.id))[me] == (True, False)
    assert all(m.message != VOTE_LOST_MESSAGE for m in await outbox_to(db, COUNCIL_TG[0]))
    with pytest.raises(AlreadyDecided):  # no second vote
        await voting.cast(world.viewer("council1"), view.id, A)
    clock.advance(timedelta(days=1))
    [closed] = await voting.close_due()
    assert (closed.agree, closed.disagree, closed.cast) == (1, 1, 2)


async def test_the_voter_who_crashed_retries_at_once(
    db: Database, clock: FixedClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world))
    crash_once(monkeypatch, "count")
    with pytest.raises(Crash):
        await voting.cast(world.viewer("council1"), view.id, B)
    await voting.cast(world.viewer("council1"), view.id, B)  # the same press again
    assert await tallies(db, view.id) == {"agree": 0, "disagree": 0, "abstain": 1}
    assert len(await outbox_to(db, COUNCIL_TG[0])) == 1  # the ballot; no "vote again" message


async def test_the_job_settles_a_pending_voter_and_the_close_tells_the_late_one(
    db: Database, clock: FixedClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world), days=1)
    crash_once(monkeypatch, "count")
    with pytest.raises(Crash):
        await voting.cast(world.viewer("council1"), view.id, A)
    assert await voting.close_due() == []  # not due, but the stuck voter is settled
    assert (await outbox_to(db, COUNCIL_TG[0]))[-1].message == VOTE_LOST_MESSAGE
    crash_once(monkeypatch, "count")
    with pytest.raises(Crash):
        await voting.cast(world.viewer("council2"), view.id, A)
    clock.advance(timedelta(days=1))
    [closed] = await voting.close_due()
    assert closed.cast == 0
    late = (await outbox_to(db, COUNCIL_TG[1]))[-1]
    assert late.message == VOTE_LOST_CLOSED and not late.buttons


async def test_a_vote_stands_when_a_long_reader_delays_the_scrubbing(
    db: Database, clock: FixedClock, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    voting = services(db, clock)
    view = await voting.open_vote(world.viewer("admin"), await add_nomination(db, world))
    async with db.engine.connect() as reader:  # a backup reading the ballot tables, say
        if db.is_sqlite:
            await reader.exec_driver_sql("BEGIN")
        await reader.exec_driver_sql("SELECT count(*) FROM ballot_voters")
        await voting.cast(world.viewer("council1"), view.id, A)  # neither waits nor fails
        await reader.rollback()
    assert "could not be scrubbed yet" in caplog.text
    assert await tallies(db, view.id) == {"agree": 1, "disagree": 0, "abstain": 0}
    caplog.clear()
    await voting.cast(world.viewer("council2"), view.id, D)  # the next vote scrubs again
    assert "could not be scrubbed" not in caplog.text
