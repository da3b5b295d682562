"""The ballot in Telegram (process_update, offline Bot API), on SQLite and PostgreSQL: a choice
leads to a confirmation screen and nothing is stored until Confirm; Choose again goes back; a
confirmed vote is final and shows no receipt; a second press is refused; a member taken off the
council cannot vote. And the logs: a whole vote with every logger at DEBUG and `database.echo`
on leaves no record that pairs a voter with their choice."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.__main__ import setup_logging
from bot.outbox import deliver
from bot.services.ballot_box import TALLY_BASE
from bot.services.clock import FixedClock
from storage.models import BallotTally, BallotVoter, Member
from tests.conftest import make_settings
from tests.harness import BotHarness, make_harness
from tests.test_moderation_fixtures import COUNCIL_TG, World, add_nomination, seed

LABELS = {"a": "Đồng ý", "d": "Không đồng ý", "b": "Phiếu trắng"}
VALUES = {"a": "agree", "d": "disagree", "b": "abstain"}


async def started(db_url: str, clock: FixedClock, **sections: Any) -> tuple[BotHarness, Any]:
    h, app = await make_harness(make_settings(db_url, **sections), clock)
    return h, app


@pytest.fixture
async def ballot(db_url: str, clock: FixedClock) -> AsyncIterator[tuple[BotHarness, World, int]]:
    h, app = await started(db_url, clock)
    try:
        w = await seed(h.services.db)
        for key, tg in w.tg.items():
            h.user(tg, key)
        view = await h.services.voting.open_vote(
            w.viewer("admin"), await add_nomination(h.services.db, w)
        )
        await deliver(h.app)
        yield h, w, view.id
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
        assert not h.core.unknown_fields, h.core.unknown_fields


async def counted(h: BotHarness, ballot_id: int) -> tuple[dict[str, int], list[tuple[bool, bool]]]:
    async with h.services.db.read() as session:
        tallies = await session.execute(
            select(BallotTally.choice, BallotTally.count).where(BallotTally.ballot_id == ballot_id)
        )
        voters = await session.execute(
            select(BallotVoter.voted, BallotVoter.pending)
            .where(BallotVoter.ballot_id == ballot_id)
            .order_by(BallotVoter.member_id)
        )
        return {c: n - TALLY_BASE for c, n in tallies}, [(bool(v), bool(p)) for v, p in voters]


def answers(h: BotHarness) -> list[str]:
    return [str(a.get("text") or "") for a in h.core.calls("answerCallbackQuery")]


async def test_choose_confirm_and_choose_again(ballot: tuple[BotHarness, World, int]) -> None:
    h, _, b = ballot
    me = COUNCIL_TG[0]
    invitation = h.core.sent(me)[-1]
    assert "phiếu đã bỏ không thể thay đổi" in invitation["text"]
    nothing = ({"agree": 0, "disagree": 0, "abstain": 0}, [(False, False)] * 3)

    await h.press(me, f"vt:c:{b}:d")
    screen = h.core.sent(me)[-1]
    assert screen["message_id"] == invitation["message_id"]  # the ballot itself is edited
    assert "Đồng chí chọn: Không đồng ý. Phiếu đã bỏ không thể thay đổi." in screen["text"]
    assert h.buttons(me) == [f"vt:k:{b}:d", f"vt:r:{b}"]
    assert await counted(h, b) == nothing  # a choice on screen is not a vote

    await h.press(me, f"vt:r:{b}")  # Choose again
    assert h.buttons(me)[:3] == [f"vt:c:{b}:a", f"vt:c:{b}:d", f"vt:c:{b}:b"]
    assert "Đồng chí chưa bỏ phiếu." in h.last_text(me)
    assert await counted(h, b) == nothing

    await h.press(me, f"vt:c:{b}:a")
    await h.press(me, f"vt:k:{b}:a")
    recorded = h.last_text(me)
    assert "Phiếu của đồng chí đã được ghi nhận. Phiếu đã bỏ không thể thay đổi." in recorded
    assert "Đồng chí chọn" not in recorded  # no receipt of the choice once cast
    assert not [d for d in h.buttons(me) if d.startswith("vt:")]
    assert await counted(h, b) == (
        {"agree": 1, "disagree": 0, "abstain": 0},
        [(True, False), (False, False), (False, False)],
    )


async def test_a_second_press_after_voting_changes_nothing(
    ballot: tuple[BotHarness, World, int],
) -> None:
    h, _, b = ballot
    me = COUNCIL_TG[1]
    await h.press(me, f"vt:c:{b}:b")
    await h.press(me, f"vt:k:{b}:b")
    before = await counted(h, b)
    for data in (f"vt:k:{b}:b", f"vt:k:{b}:a", f"vt:c:{b}:a"):  # a double tap, an old ballot
        await h.forge_press(me, data)
        assert "không thể thay đổi" in answers(h)[-1]
    assert await counted(h, b) == before


async def test_a_member_taken_off_the_council_cannot_vote(
    ballot: tuple[BotHarness, World, int],
) -> None:
    h, w, b = ballot
    async with h.services.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == w.members["council3"]).values(role="staff")
        )
    await h.forge_press(COUNCIL_TG[2], f"vt:c:{b}:a")
    assert "không còn là thành viên Hội đồng" in answers(h)[-1]
    await h.forge_press(COUNCIL_TG[2], f"vt:k:{b}:a")
    assert "không còn là thành viên Hội đồng" in answers(h)[-1]
    assert (await counted(h, b))[0] == {"agree": 0, "disagree": 0, "abstain": 0}


# --- the logs -------------------------------------------------------------------------------


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_logging() -> Iterator[Capture]:
    """The bot's own logging set-up at DEBUG, every record captured."""
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    levels = {n: logging.getLogger(n).level for n in logging.root.manager.loggerDict}
    setup_logging(None, "DEBUG")
    capture = Capture()
    root.addHandler(capture)
    yield capture
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_no_log_record_pairs_a_voter_with_a_choice(
    db_url: str, clock: FixedClock, debug_logging: Capture
) -> None:
    h, app = await started(db_url, clock, database={"echo": True})
    try:
        w = await seed(h.services.db)
        for key, tg in w.tg.items():
            h.user(tg, key)
        n = await add_nomination(h.services.db, w)
        view = await h.services.voting.open_vote(w.viewer("admin"), n)
        await deliver(h.app)
        b = view.id
        chosen = dict(zip(COUNCIL_TG, ("d", "b", "a"), strict=True))
        for tg, code in chosen.items():
            await h.press(tg, f"vt:c:{b}:{code}")
            await h.press(tg, f"vt:k:{b}:{code}")
        assert "BIÊN BẢN KIỂM PHIẾU" in h.last_text(w.tg["admin"])
    finally:
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
    records = debug_logging.records
    texts = []
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        texts.append(text)
    # the capture works: SQLAlchemy's echo and the bot's own DEBUG lines are there
    assert any("UPDATE ballot_tallies" in t for t in texts)
    assert any("parameters hidden" in t for t in texts)

    def choices_named(t: str) -> set[str]:
        """The choices a record names: as callback data, a confirmation, a stored value."""
        return {
            code
            for code in LABELS
            if re.search(rf"vt:[ck]:{b}:{code}\b|chọn: {LABELS[code]}\b|\b{VALUES[code]}\b", t)
        }

    for tg in chosen:
        for t in texts:
            # naming all three is an invitation (it offers every choice); one or two, a pairing
            named = choices_named(t)
            assert not (str(tg) in t and named and named != set(LABELS)), t[:500]
