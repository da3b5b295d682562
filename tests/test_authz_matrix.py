"""The authorization matrix: every moderation and administration action, tried by a staff member,
a unit officer, a council member, an administrator and a stranger, in a private chat and in a
registered group, through its command or button (as Telegram would deliver a forged, replayed,
malformed or oversized press). Only the allowed combinations take effect, checked in the
database; pending submissions never show in groups, in /exemplars or to other staff."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from bot.services.moderation import ItemType
from storage.models import (
    Ballot,
    BallotVoter,
    Decision,
    GoodDeed,
    GroupChat,
    Invite,
    Member,
    Nomination,
    Unit,
)
from tests.harness import BotHarness
from tests.test_moderation_fixtures import (
    ADMIN_TG,
    COUNCIL_TG,
    OFFICER_TG,
    STAFF_TG,
    World,
    add_deed,
    add_nomination,
    seed,
)

GROUP = -100600
UNKNOWN_TG = 9009
ACTORS = {
    "staff": STAFF_TG,
    "officer": OFFICER_TG,
    "council": COUNCIL_TG[0],
    "admin": ADMIN_TG,
    "unknown": UNKNOWN_TG,
}
CHATS = ("private", "group")
PRIVATE_ONLY = "private"
PENDING_MARK = "ZZ-CHỜ-DUYỆT"


def allowed(*actors: str, chats: tuple[str, ...] = (PRIVATE_ONLY,)) -> set[tuple[str, str]]:
    return {(a, c) for a in actors for c in chats}


Prepared = dict[str, Any]


@dataclass
class Action:
    name: str
    allowed: set[tuple[str, str]]
    prepare: Callable[[BotHarness, World], Awaitable[Prepared]]
    data: Callable[[Prepared], str]
    effect: Callable[[BotHarness, Prepared], Awaitable[int]]
    typed: str | None = None  # text sent after the press (a reason)
    replayable: bool = True
    notes: list[str] = field(default_factory=list)


async def _count(h: BotHarness, stmt: Any) -> int:
    async with h.services.db.read() as session:
        return int(await session.scalar(stmt) or 0)


# --- preparations ------------------------------------------------------------------------------


async def deed(h: BotHarness, w: World) -> Prepared:
    return {"id": await add_deed(h.services.db, w)}


async def nomination(h: BotHarness, w: World) -> Prepared:
    return {"id": await add_nomination(h.services.db, w)}


async def ballot(h: BotHarness, w: World) -> Prepared:
    n = await add_nomination(h.services.db, w)
    view = await h.services.voting.open_vote(w.viewer("council2"), n)
    return {"id": view.id, "nomination": n}


async def exemplar(h: BotHarness, w: World) -> Prepared:
    from datetime import UTC, datetime

    n = await add_nomination(
        h.services.db, w, status="approved", decided_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    return {"id": n}


async def member_b(h: BotHarness, w: World) -> Prepared:
    # a fresh staff member each time, so every trial starts from the same state
    from bot.services.text import fold

    async with h.services.db.transaction() as session:
        m = Member(full_name="Thử Nghiệm", name_folded=fold("Thử Nghiệm"), unit_id=w.units["b"])
        session.add(m)
        await session.flush()
        return {"id": m.id, "unit": w.units["a"]}


async def empty_unit(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        u = Unit(name=f"Tổ công tác {len(w.units)}")
        session.add(u)
        await session.flush()
        w.units[f"tmp{u.id}"] = u.id
        return {"id": u.id}


# --- effects -----------------------------------------------------------------------------------


def deed_status(status: str) -> Callable[[BotHarness, Prepared], Awaitable[int]]:
    async def check(h: BotHarness, p: Prepared) -> int:
        found = await _count(
            h,
            select(func.count())
            .select_from(GoodDeed)
            .where(GoodDeed.id == p["id"], GoodDeed.status == status),
        )
        decisions = await _count(
            h, select(func.count()).select_from(Decision).where(Decision.good_deed_id == p["id"])
        )
        return decisions if found else 0

    return check


def nomination_status(status: str) -> Callable[[BotHarness, Prepared], Awaitable[int]]:
    async def check(h: BotHarness, p: Prepared) -> int:
        found = await _count(
            h,
            select(func.count())
            .select_from(Nomination)
            .where(Nomination.id == p["id"], Nomination.status == status),
        )
        decisions = await _count(
            h, select(func.count()).select_from(Decision).where(Decision.nomination_id == p["id"])
        )
        ballots = await _count(
            h, select(func.count()).select_from(Ballot).where(Ballot.nomination_id == p["id"])
        )
        return (decisions + ballots) if found else 0

    return check


async def voted(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h,
        select(func.count())
        .select_from(BallotVoter)
        .where(BallotVoter.ballot_id == p["id"], BallotVoter.voted.is_(True)),
    )


async def revoked(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h,
        select(func.count())
        .select_from(Nomination)
        .where(Nomination.id == p["id"], Nomination.revoked_at.is_not(None)),
    )


async def made_admin(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h,
        select(func.count())
        .select_from(Member)
        .where(Member.id == p["id"], Member.role == "admin"),
    )


async def deactivated_member(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h,
        select(func.count())
        .select_from(Member)
        .where(Member.id == p["id"], Member.active.is_(False)),
    )


async def moved_member(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h,
        select(func.count())
        .select_from(Member)
        .where(Member.id == p["id"], Member.unit_id == p["unit"]),
    )


async def invited(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h, select(func.count()).select_from(Invite).where(Invite.member_id == p["id"])
    )


async def unit_gone(h: BotHarness, p: Prepared) -> int:
    return await _count(
        h, select(func.count()).select_from(Unit).where(Unit.id == p["id"], Unit.active.is_(False))
    )


MODERATORS_OF_DEEDS = ("officer", "council", "admin")
COUNCIL_AND_ADMIN = ("council", "admin")

ACTIONS = [
    Action(
        "approve a good deed",
        allowed(*MODERATORS_OF_DEEDS),
        deed,
        lambda p: f"rv:ok:g:{p['id']}:1",
        deed_status("approved"),
    ),
    Action(
        "reject a good deed (canned reason)",
        allowed(*MODERATORS_OF_DEEDS),
        deed,
        lambda p: f"rv:rr:g:{p['id']}:1:e",
        deed_status("rejected"),
    ),
    Action(
        "reject a good deed (typed reason)",
        allowed(*MODERATORS_OF_DEEDS),
        deed,
        lambda p: f"rv:ro:g:{p['id']}:1",
        deed_status("rejected"),
        typed="Không đúng sự thật",
    ),
    Action(
        "request changes to a good deed",
        allowed(*MODERATORS_OF_DEEDS),
        deed,
        lambda p: f"rv:ch:g:{p['id']}:1",
        deed_status("changes_requested"),
        typed="Bổ sung ảnh",
    ),
    Action(
        "approve a nomination",
        allowed(*COUNCIL_AND_ADMIN),
        nomination,
        lambda p: f"rv:ok:n:{p['id']}:1",
        nomination_status("approved"),
    ),
    Action(
        "reject a nomination",
        allowed(*COUNCIL_AND_ADMIN),
        nomination,
        lambda p: f"rv:rr:n:{p['id']}:1:c",
        nomination_status("rejected"),
    ),
    Action(
        "open a council vote",
        allowed(*COUNCIL_AND_ADMIN),
        nomination,
        lambda p: f"rv:vd:{p['id']}:1:7",
        nomination_status("in_review"),
    ),
    Action(
        "cast a vote",  # the confirmation screen's Confirm (vt:c only shows that screen)
        allowed("council"),
        ballot,
        lambda p: f"vt:k:{p['id']}:a",
        voted,
    ),
    Action(
        "revoke an exemplar",
        allowed("admin"),
        exemplar,
        lambda p: f"ex:rv:{p['id']}",
        revoked,
        typed="Thành tích không đúng",
    ),
    # the existing administration buttons (handlers/admin.py): the authority is the person;
    # administration happens in a private chat only: a press in a group changes nothing
    Action(
        "make a member an administrator",
        allowed("admin"),
        member_b,
        lambda p: f"adm:mrole:{p['id']}:a",
        made_admin,
    ),
    Action(
        "deactivate a member",
        allowed("admin"),
        member_b,
        lambda p: f"adm:mact:{p['id']}:0",
        deactivated_member,
    ),
    Action(
        "move a member to another unit",
        allowed("admin"),
        member_b,
        lambda p: f"adm:mset:{p['id']}:{p['unit']}",
        moved_member,
    ),
    Action(
        "create an invitation",
        allowed("admin"),
        member_b,
        lambda p: f"adm:minv:{p['id']}",
        invited,
        replayable=False,  # each press makes a new link, by design
    ),
    Action(
        "deactivate a unit",
        allowed("admin"),
        empty_unit,
        lambda p: f"adm:udel:{p['id']}",
        unit_gone,
    ),
]


async def setup(h: BotHarness) -> World:
    from handlers.gate import Throttle

    h.app.bot_data["throttle"] = Throttle(10**6, 1.0)  # hundreds of presses, no flood control
    w = await seed(h.services.db)
    for key, tg in w.tg.items():
        h.user(tg, key)
    h.user(UNKNOWN_TG, "Người Lạ")
    async with h.services.db.transaction() as session:
        session.add(GroupChat(chat_id=GROUP, title="Cơ quan", language="vi"))
    group = h.core.group(GROUP, "Cơ quan")
    await h.feed(h.core.send_text(ADMIN_TG, "/help", group))  # a message to press buttons on
    return w


async def press(h: BotHarness, actor: str, chat: str, data: str) -> None:
    await h.forge_press(ACTORS[actor], data, chat_id=GROUP if chat == "group" else None)


async def test_only_allowed_presses_take_effect(harness: BotHarness) -> None:
    h = harness
    w = await setup(h)
    wrong: list[str] = []
    for action in ACTIONS:
        for actor in ACTORS:
            for chat in CHATS:
                prepared = await action.prepare(h, w)
                data = action.data(prepared)
                await press(h, actor, chat, data)
                if action.typed is not None:
                    if chat == "private":
                        await h.text(ACTORS[actor], action.typed)
                    else:  # typed text in a group is never a reason
                        await h.feed(h.core.send_text(ACTORS[actor], action.typed, GROUP))
                effect = await action.effect(h, prepared)
                expected = (actor, chat) in action.allowed
                if bool(effect) != expected:
                    wrong.append(f"{action.name} by {actor} in {chat}: effect={effect}")
                if effect and action.replayable:
                    await press(h, actor, chat, data)  # replayed
                    if action.typed is not None and chat == "private":
                        await h.text(ACTORS[actor], action.typed)
                    again = await action.effect(h, prepared)
                    if again != effect:
                        wrong.append(f"{action.name} by {actor} in {chat}: replay took effect")
                await h.services.flows.clear(ACTORS[actor])
    assert wrong == [], "\n".join(wrong)


async def test_commands_by_role(harness: BotHarness) -> None:
    h = harness
    w = await setup(h)
    await add_deed(h.services.db, w, description=PENDING_MARK)
    expectations = {
        # command: (actors who get it in private, marker of success)
        "/review": ({"officer", "council", "admin"}, "Hồ sơ chờ duyệt"),
        "/audit": ({"admin"}, "Nhật ký hoạt động"),
        "/ballots": ({"council", "admin"}, "Các cuộc bỏ phiếu kín"),
        "/exemplars": ({"staff", "officer", "council", "admin"}, "Điển hình tiên tiến"),
        "/gooddeeds": ({"staff", "officer", "council", "admin"}, "Người tốt, việc tốt"),
        "/admin": ({"admin"}, "Quản trị"),
    }
    wrong = []
    for command, (who, marker) in expectations.items():
        for actor, tg in ACTORS.items():
            replies = await h.text(tg, command)
            got = any(marker in str(r.get("text", "")) for r in replies)
            if got != (actor in who):
                wrong.append(f"{command} by {actor} in private: {got}")
            group_replies = await h.feed(h.core.send_text(tg, command, GROUP))
            text = " ".join(str(r.get("text", "")) for r in group_replies)
            if command in ("/review", "/audit", "/ballots", "/admin") and marker in text:
                wrong.append(f"{command} by {actor} in the group showed its content")
    assert wrong == [], "\n".join(wrong)


BAD_DATA = [
    "rv",
    "rv:ok",
    "rv:ok:g",
    "rv:ok:x:1:1",
    "rv:ok:g:abc:1",
    "rv:ok:g:1:-1",
    "rv:ok:g:" + "9" * 13 + ":1",
    "rv:rr:g:1:1:zz",
    "rv:zz:g:1",
    "rv:ok:g:1:1:" + "x" * 60,
    "vt:c:1:z",
    "vt:c:abc:a",
    "vt:c",
    "ex:l:1.2:0",
    "ex:l:0.0.0.0.9.0:0",
    "ex:l:0.0.0.99999.0.0:0",
    "ex:v:1:x:0",
    "ex:rv:abc",
    "fd:a:-1:0",
    "fd:a",
    "au:l:nomination:abc:0",
    "au:l:Robert);--:1:0",
    "au:zz",
    "adm:mrole:1:z",
    "💥:ok",
    "x" * 65,
    "rv:" + "o" * 200,
]


async def test_malformed_and_oversized_presses_change_nothing(harness: BotHarness) -> None:
    h = harness
    w = await setup(h)
    d = await add_deed(h.services.db, w)
    n = await add_nomination(h.services.db, w)

    async def snapshot() -> tuple[int, ...]:
        return (
            await _count(h, select(func.count()).select_from(Decision)),
            await _count(h, select(func.count()).select_from(Ballot)),
            await _count(
                h, select(func.count()).select_from(GoodDeed).where(GoodDeed.status == "submitted")
            ),
            await _count(
                h,
                select(func.count())
                .select_from(Nomination)
                .where(Nomination.status == "submitted"),
            ),
            await _count(h, select(func.count()).select_from(Member).where(Member.role == "admin")),
        )

    before = await snapshot()
    for actor, tg in ACTORS.items():
        for data in BAD_DATA:
            calls = len(h.core.calls("answerCallbackQuery"))
            await h.forge_press(tg, data)
            assert len(h.core.calls("answerCallbackQuery")) > calls, (actor, data)
    # a stale version (the item changed since the card was sent) does nothing either
    await h.forge_press(ADMIN_TG, f"rv:ok:g:{d}:7")
    await h.forge_press(ADMIN_TG, f"rv:ok:n:{n}:2")
    assert await snapshot() == before


async def test_pending_items_never_reach_groups_exemplars_or_other_staff(
    harness: BotHarness,
) -> None:
    h = harness
    w = await setup(h)
    n = await add_nomination(
        h.services.db, w, name=PENDING_MARK, achievements=PENDING_MARK + " thành tích"
    )
    d = await add_deed(h.services.db, w, description=PENDING_MARK + " việc tốt")
    probes = [
        "/exemplars",
        f"/exemplars {PENDING_MARK[:6]}",
        "/gooddeeds",
        "/review",
        "/ballots",
        "/audit",
        f"/start ex-{n}",
    ]
    presses = [
        f"rv:o:n:{n}",
        f"rv:o:g:{d}",
        f"rv:nx:g:{d}",
        "rv:q:a:0",
        f"ex:v:{n}:0.0.0.0.0.0:0",
        "ex:l:0.0.0.0.1.0:0",
        f"fd:a:{d}:0",
    ]
    for tg in ACTORS.values():
        for text in probes:
            await h.text(tg, text)
            await h.feed(h.core.send_text(tg, text.split("@")[0], GROUP))
        for data in presses:
            await h.forge_press(tg, data)
            await h.forge_press(tg, data, chat_id=GROUP)
    seen_by = {
        name
        for name, tg in ACTORS.items()
        if any(PENDING_MARK in t for t in h.texts(tg))
        or any(PENDING_MARK in str(m.get("caption", "")) for m in h.core.sent(tg))
    }
    assert seen_by == {"council", "admin", "officer"}  # the officer: the deed of their unit
    officer_saw = [t for t in h.texts(OFFICER_TG) if PENDING_MARK in t]
    assert all("thành tích" not in t for t in officer_saw)  # but not the nomination
    assert not [t for t in h.texts(GROUP) if PENDING_MARK in t]
    assert not [a for a in h.core.calls("answerCallbackQuery") if PENDING_MARK in str(a)]
    # nothing was decided by all this looking around
    async with h.services.db.read() as session:
        statuses = (
            await session.scalar(select(Nomination.status).where(Nomination.id == n)),
            await session.scalar(select(GoodDeed.status).where(GoodDeed.id == d)),
        )
    assert statuses == ("submitted", "submitted")
    assert ItemType.NOMINATION.code == "n"
