"""The authorization matrix: every callback scope the bot registers, and every moderation and
administration action, tried by a staff member, a unit officer, a council member, an
administrator and a stranger, in a private chat, in a registered group and in the moderators'
chat, through its command or button (as Telegram would deliver a forged, replayed, malformed or
oversized press). Only the allowed combinations take effect, checked in the database or in what
the bot showed; pending submissions never show in groups, in /exemplars or to other staff. The
scopes are read from the built application, so a scope added without an entry here fails."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from bot.services.clock import FixedClock
from bot.services.flows import Flow
from bot.services.moderation import ItemType
from bot.texts import translator
from handlers.chats import registered_scopes
from storage.models import (
    AccessRequest,
    Announcement,
    Applause,
    Ballot,
    BallotVoter,
    Decision,
    Field,
    GoodDeed,
    GroupChat,
    Invite,
    Member,
    Nomination,
    Unit,
)
from tests.conftest import make_settings
from tests.harness import BotHarness, close_harness, make_harness
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
MODERATORS = -100700  # the configured moderators' chat (moderation.admin_chat_id)
UNKNOWN_TG = 9009
ACTORS = {
    "staff": STAFF_TG,
    "officer": OFFICER_TG,
    "council": COUNCIL_TG[0],
    "admin": ADMIN_TG,
    "unknown": UNKNOWN_TG,
}
CHATS = ("private", "group", "moderators")
CHAT_IDS = {"group": GROUP, "moderators": MODERATORS}
PRIVATE_ONLY = "private"
PENDING_MARK = "ZZ-CHỜ-DUYỆT"


def allowed(*actors: str, chats: tuple[str, ...] = (PRIVATE_ONLY,)) -> set[tuple[str, str]]:
    return {(a, c) for a in actors for c in chats}


Prepared = dict[str, Any]
Effect = Callable[[BotHarness, Prepared], Awaitable[int]]
JSON = dict[str, Any]


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

    @property
    def scope(self) -> str:
        return self.data(defaultdict(lambda: 1)).split(":")[0]


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


# --- every other callback scope: a person's own things, the feed, the group setup ---------------
# Effects read the database, or what the bot showed after the press (p["mark"]) anywhere: an
# allowed press shows it in the presser's private chat only (checked at the end of the run).

MEMBERS = ("staff", "officer", "council", "admin")
EVERYONE = (*MEMBERS, "unknown")
_serial = count(1)


def _marker() -> str:
    return f"RIÊNG-TƯ-{next(_serial)}"


async def _member_of(h: BotHarness, tg: int) -> int | None:
    async with h.services.db.read() as session:
        return await session.scalar(select(Member.id).where(Member.telegram_user_id == tg))


def _shown(h: BotHarness, p: Prepared) -> list[JSON]:
    return h.replies_since(p["mark"])


async def disclosed(h: BotHarness, p: Prepared) -> int:
    return sum(p["marker"] in str(r.get("text") or r.get("caption") or "") for r in _shown(h, p))


async def files_sent(h: BotHarness, p: Prepared) -> int:
    return sum(r["method"].lower() in ("sendphoto", "sendmediagroup") for r in _shown(h, p))


async def anything_shown(h: BotHarness, p: Prepared) -> int:
    return len(_shown(h, p))


def rows(model: Any, where: Callable[[Prepared], Any]) -> Effect:
    """The effect: how many rows of `model` match `where(prepared)`."""

    async def check(h: BotHarness, p: Prepared) -> int:
        return await _count(h, select(func.count()).select_from(model).where(where(p)))

    return check


opted_out = rows(Member, lambda p: (Member.telegram_user_id == p["tg"]) & Member.notify_opt_out)
requested = rows(AccessRequest, lambda p: AccessRequest.telegram_user_id == p["tg"])
request_approved = rows(
    AccessRequest, lambda p: (AccessRequest.id == p["id"]) & (AccessRequest.status == "approved")
)
withdrawn = rows(
    Nomination, lambda p: (Nomination.id == p["id"]) & (Nomination.status == "withdrawn")
)
field_gone = rows(Field, lambda p: (Field.id == p["id"]) & ~Field.active)
paused = rows(Announcement, lambda p: (Announcement.id == p["id"]) & ~Announcement.enabled)
group_in_english = rows(
    GroupChat, lambda p: (GroupChat.id == p["id"]) & (GroupChat.language == "en")
)


async def nothing(h: BotHarness, w: World) -> Prepared:
    return {}


async def reset_settings(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        await session.execute(update(Member).values(language="vi", notify_opt_out=False))
    h.app.user_data.get(UNKNOWN_TG, {}).pop("language", None)
    return {}


async def language_en(h: BotHarness, p: Prepared) -> int:
    async with h.services.db.read() as session:
        language = await session.scalar(
            select(Member.language).where(Member.telegram_user_id == p["tg"])
        )
    if language is None:  # a stranger's choice lives with their chat data
        language = h.app.user_data.get(p["tg"], {}).get("language")
    return int(language == "en")


async def joining(h: BotHarness, p: Prepared) -> int:
    flow = await h.services.flows.get(p["tg"])
    return int(flow is not None and flow.name == "join")


async def half_joined(h: BotHarness, w: World) -> Prepared:
    """Everybody has typed a name in the joining flow; no request is pending."""
    async with h.services.db.transaction() as session:
        await session.execute(delete(AccessRequest))
    for tg in ACTORS.values():
        await h.services.flows.set(tg, Flow("join", "unit", {"name": "Người Xin Vào"}))
    return {"unit": w.units["a"]}


async def access_request(h: BotHarness, w: World) -> Prepared:
    tg = 7000 + next(_serial)
    h.user(tg, "Xin Vào")
    async with h.services.db.transaction() as session:
        request = AccessRequest(
            telegram_user_id=tg, full_name="Người Xin Vào", unit_id=w.units["a"]
        )
        session.add(request)
        await session.flush()
        return {"id": request.id}


async def no_drafts(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        await session.execute(delete(Nomination).where(Nomination.status == "draft"))
        await session.execute(delete(GoodDeed).where(GoodDeed.status == "draft"))
    return {}


async def draft_nomination(h: BotHarness, w: World) -> Prepared:
    marker = _marker()
    return {
        "id": await add_nomination(h.services.db, w, status="draft", achievements=marker),
        "marker": marker,
    }


async def draft_deed(h: BotHarness, w: World) -> Prepared:
    marker = _marker()
    return {
        "id": await add_deed(h.services.db, w, status="draft", description=marker),
        "marker": marker,
    }


def wizard_at(flow_name: str) -> Callable[[BotHarness, Prepared], Awaitable[int]]:
    """The presser's draft opened: its wizard now runs on it, and showed it."""

    async def check(h: BotHarness, p: Prepared) -> int:
        flow = await h.services.flows.get(p["tg"])
        running = flow is not None and flow.name == flow_name and flow.data.get("id") == p["id"]
        return int(running) + await disclosed(h, p)

    return check


def wizard_or_link(model: Any, author: Any) -> Callable[[BotHarness, Prepared], Awaitable[int]]:
    """A new draft in the private chat, or (in a group) an answer that links there."""

    async def check(h: BotHarness, p: Prepared) -> int:
        member = await _member_of(h, p["tg"])
        drafts = await _count(
            h,
            select(func.count())
            .select_from(model)
            .where(model.status == "draft", author == member),
        )
        linked = bool(h.core.callback_answers[-1].get("url"))
        return drafts + int(linked)

    return check


async def pending_nomination(h: BotHarness, w: World) -> Prepared:
    marker = _marker()
    file_id = h.core.send_photo(STAFF_TG)["message"]["photo"][-1]["file_id"]
    n = await add_nomination(h.services.db, w, achievements=marker, photos=[file_id])
    return {"id": n, "marker": marker}


async def pending_deed(h: BotHarness, w: World) -> Prepared:
    marker = _marker()
    return {"id": await add_deed(h.services.db, w, description=marker), "marker": marker}


async def approved_exemplar(h: BotHarness, w: World) -> Prepared:
    marker = _marker()
    n = await add_nomination(
        h.services.db,
        w,
        status="approved",
        name=marker,
        decided_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    return {"id": n, "marker": marker}


async def published_deed(h: BotHarness, w: World) -> Prepared:
    d = await add_deed(
        h.services.db, w, status="approved", decided_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    return {"id": d}


async def applauded(h: BotHarness, p: Prepared) -> int:
    member = await _member_of(h, p["tg"])
    return await _count(
        h,
        select(func.count())
        .select_from(Applause)
        .where(Applause.good_deed_id == p["id"], Applause.member_id == member),
    )


async def in_flow(h: BotHarness, p: Prepared) -> int:
    flow = await h.services.flows.get(p["tg"])
    return int(flow is not None and flow.name == p["flow"])


async def new_field(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        f = Field(name=f"Lĩnh vực {next(_serial)}")
        session.add(f)
        await session.flush()
        return {"id": f.id}


async def announcement(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        a = Announcement(kind="custom", title="Thông báo", body="Nội dung", rule="weekly mon 08:00")
        session.add(a)
        await session.flush()
        return {"id": a.id}


async def the_group(h: BotHarness, w: World) -> Prepared:
    async with h.services.db.transaction() as session:
        row = await session.scalar(select(GroupChat).where(GroupChat.chat_id == GROUP))
        assert row is not None
        row.language = "vi"
        return {"id": row.id}


def shows(text: str) -> Callable[[BotHarness, World], Awaitable[Prepared]]:
    async def prepare(h: BotHarness, w: World) -> Prepared:
        return {"marker": text}

    return prepare


def flow_named(name: str) -> Callable[[BotHarness, World], Awaitable[Prepared]]:
    async def prepare(h: BotHarness, w: World) -> Prepared:
        return {"flow": name}

    return prepare


VI = translator("vi")
ANYWHERE = ("private", "group", "moderators")

SCOPE_ACTIONS = [
    Action("press a page counter", set(), nothing, lambda p: "nav:noop", anything_shown),
    Action(
        "choose one's language",
        allowed(*EVERYONE),
        reset_settings,
        lambda p: "lang:set:en",
        language_en,
    ),
    Action(
        "turn one's notifications off",
        allowed(*MEMBERS),
        reset_settings,
        lambda p: "set:notify:0",
        opted_out,
    ),
    Action("start asking to join", allowed("unknown"), nothing, lambda p: "join:ask", joining),
    Action(
        "send one's request to join",
        allowed("unknown"),
        half_joined,
        lambda p: f"join:unit:{p['unit']}",
        requested,
    ),
    Action(
        "approve a request to join",
        allowed("admin"),
        access_request,
        lambda p: f"acc:ok:{p['id']}",
        request_approved,
    ),
    Action(
        "continue one's draft nomination",
        allowed("staff"),
        draft_nomination,
        lambda p: f"nom:cont:{p['id']}.0",
        wizard_at("nominate"),
    ),
    # "go" only answers with a link to the private chat when pressed in a group: harmless
    Action(
        "open the nomination wizard",
        allowed(*MEMBERS, chats=ANYWHERE) | allowed("unknown", chats=("group", "moderators")),
        no_drafts,
        lambda p: "nom:go",
        wizard_or_link(Nomination, Nomination.nominator_id),
        replayable=False,
    ),
    Action(
        "continue one's draft good deed report",
        allowed("staff"),
        draft_deed,
        lambda p: f"gd:cont:{p['id']}.0",
        wizard_at("gooddeed"),
    ),
    Action(
        "open the good deed wizard",
        allowed(*MEMBERS, chats=ANYWHERE) | allowed("unknown", chats=("group", "moderators")),
        no_drafts,
        lambda p: "gd:go",
        wizard_or_link(GoodDeed, GoodDeed.reporter_id),
        replayable=False,
    ),
    # the author and the council (admins included) may see a sent nomination; privately only
    Action(
        "open one's pending nomination in /my",
        allowed("staff", "council", "admin"),
        pending_nomination,
        lambda p: f"my:o:n:{p['id']}",
        disclosed,
    ),
    Action(
        "show the evidence of one's pending nomination",
        allowed("staff", "council", "admin"),
        pending_nomination,
        lambda p: f"my:f:n:{p['id']}",
        files_sent,
    ),
    Action(
        "withdraw one's pending nomination",
        allowed("staff"),
        pending_nomination,
        lambda p: f"my:wy:n:{p['id']}",
        withdrawn,
    ),
    # from the moderators' chat the card goes to the presser's private chat
    Action(
        "open a pending nomination's moderation card",
        allowed(*COUNCIL_AND_ADMIN, chats=("private", "moderators")),
        pending_nomination,
        lambda p: f"rv:o:n:{p['id']}",
        disclosed,
    ),
    Action(
        "open a pending good deed's moderation card",
        allowed(*MODERATORS_OF_DEEDS, chats=("private", "moderators")),
        pending_deed,
        lambda p: f"rv:o:g:{p['id']}",
        disclosed,
    ),
    Action(
        "open an exemplar in the registry",
        allowed(*MEMBERS),
        approved_exemplar,
        lambda p: f"ex:v:{p['id']}:0.0.0.0.0.0:0",
        disclosed,
    ),
    Action(
        "search the registry by name",
        allowed(*MEMBERS),
        flow_named("exemplars"),
        lambda p: "ex:s:0.0.0.0.0.0",
        in_flow,
    ),
    Action(
        "applaud a published good deed",
        allowed(*MEMBERS, chats=ANYWHERE),
        published_deed,
        lambda p: f"fd:a:{p['id']}:0",
        applauded,
        replayable=False,  # a second press takes the applause back, by design
    ),
    Action(
        "deactivate a field of the catalogue",
        allowed("admin"),
        new_field,
        lambda p: f"cat:fdel:{p['id']}",
        field_gone,
    ),
    Action(
        "read the audit log",
        allowed("admin"),
        shows(VI("Audit log")),
        lambda p: "au:l:all:0:0",
        disclosed,
    ),
    Action(
        "open the reports menu",
        allowed("admin", "officer"),
        shows(VI("Which period?")),
        lambda p: "rp:menu",
        disclosed,
    ),
    Action(
        "pause an announcement",
        allowed("admin"),
        announcement,
        lambda p: f"ann:pause:{p['id']}",
        paused,
    ),
    # a group's own setup card works in that group; another group's id there does not
    Action(
        "switch a group to English",
        allowed("admin", chats=("private", "group")),
        the_group,
        lambda p: f"grp:lang:{p['id']}:en",
        group_in_english,
    ),
]
ACTIONS += SCOPE_ACTIONS


async def setup(h: BotHarness) -> World:
    from handlers.gate import Throttle

    h.app.bot_data["throttle"] = Throttle(10**6, 1.0)  # hundreds of presses, no flood control
    w = await seed(h.services.db)
    for key, tg in w.tg.items():
        h.user(tg, key)
    h.user(UNKNOWN_TG, "Người Lạ")
    async with h.services.db.transaction() as session:
        session.add(GroupChat(chat_id=GROUP, title="Cơ quan", language="vi"))
        session.add(GroupChat(chat_id=MODERATORS, title="Tổ thư ký", language="vi"))
    for chat_id, title in ((GROUP, "Cơ quan"), (MODERATORS, "Tổ thư ký")):
        group = h.core.group(chat_id, title)
        await h.feed(h.core.send_text(ADMIN_TG, "/help", group))  # a message to press buttons on
    return w


async def press(h: BotHarness, actor: str, chat: str, data: str) -> None:
    await h.forge_press(ACTORS[actor], data, chat_id=CHAT_IDS.get(chat))


@pytest.fixture
async def harness(db_url: str, clock: FixedClock) -> AsyncIterator[BotHarness]:
    """The shared harness, with a moderators' chat configured."""
    settings = make_settings(db_url, moderation={"admin_chat_id": MODERATORS})
    h, _ = await make_harness(settings, clock)
    try:
        yield h
    finally:
        await close_harness(h)


async def test_only_allowed_presses_take_effect(harness: BotHarness) -> None:
    h = harness
    w = await setup(h)
    wrong: list[str] = []
    for action in ACTIONS:
        for actor in ACTORS:
            for chat in CHATS:
                prepared = await action.prepare(h, w)
                data = action.data(prepared)
                prepared.update(tg=ACTORS[actor], mark=h.core.mark())
                await press(h, actor, chat, data)
                if action.typed is not None:
                    if chat == "private":
                        await h.text(ACTORS[actor], action.typed)
                    else:  # typed text in a group is never a reason
                        await h.feed(h.core.send_text(ACTORS[actor], action.typed, CHAT_IDS[chat]))
                effect = await action.effect(h, prepared)
                expected = (actor, chat) in action.allowed
                if bool(effect) != expected:
                    wrong.append(f"{action.name} by {actor} in {chat}: effect={effect}")
                if effect and action.replayable:
                    prepared["mark"] = h.core.mark()
                    await press(h, actor, chat, data)  # replayed
                    if action.typed is not None and chat == "private":
                        await h.text(ACTORS[actor], action.typed)
                    again = await action.effect(h, prepared)
                    if again != effect:
                        wrong.append(f"{action.name} by {actor} in {chat}: replay took effect")
                await h.services.flows.clear(ACTORS[actor])
    assert wrong == [], "\n".join(wrong)
    # whatever was allowed, nothing private was shown in a group
    for chat_id in CHAT_IDS.values():
        texts = [str(m.get("text") or m.get("caption") or "") for m in h.core.sent(chat_id)]
        assert not [t for t in texts if "RIÊNG-TƯ" in t], chat_id
        assert not [m for m in h.core.sent(chat_id) if "photo" in m or "document" in m], chat_id


def test_every_registered_scope_is_in_the_matrix() -> None:
    """A callback scope added later without an entry in ACTIONS fails here."""
    from bot.app import build_application

    app = build_application(make_settings())
    scopes = registered_scopes(app)
    assert len(scopes) >= 18
    assert {a.scope for a in ACTIONS} == scopes


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


async def _everything(h: BotHarness) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the test database is small)."""
    from storage.models import Base

    out = {}
    async with h.services.db.read() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            out[table.name] = sorted((tuple(map(repr, r)) for r in rows), key=repr)
    return out


def _broken(scope: str) -> list[str]:
    return [scope, f"{scope}:zz:1", f"{scope}:o:💥", f"{scope}:" + "o" * 70]


async def test_malformed_presses_of_every_scope_change_nothing_anywhere(
    harness: BotHarness,
) -> None:
    """For every registered scope: unknown actions, bad characters, data over 64 bytes, by each
    role, in each kind of chat: each press is answered once and nothing changes."""
    h = harness
    w = await setup(h)
    await add_deed(h.services.db, w)
    await add_nomination(h.services.db, w)
    before = await _everything(h)
    for scope in sorted(registered_scopes(h.app)):
        for data in _broken(scope):
            for actor in ("staff", "council", "admin", "unknown"):
                for chat in CHATS:
                    await press(h, actor, chat, data)  # the harness checks the one answer
    after = await _everything(h)
    assert {k: v for k, v in after.items() if v != before[k]} == {}


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
