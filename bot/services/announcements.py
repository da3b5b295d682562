"""Scheduled announcements to the group chats: what is announced, when, and the record of every
group's outcome. No Telegram here: the bot's ticker (``bot/scheduler.py``) calls :meth:`plan`,
and the broadcaster (``bot/broadcast.py``) sends what :meth:`deliverable` returns and reports
each outcome back through the run transitions.

Schedules are rows (``announcements``) and each (announcement, slot, group) is claimed by
inserting its ``announcement_runs`` row (a unique key) *before* anything is sent, so two
instances or a restart never post a slot twice. A run's life::

    claimed ──begin_send──> sending ──> sent
      ^  ^                    │ │────> failed (403, 400; or "uncertain": no answer)
      │  └──── release ───────┘ │      (an error answer: nothing was delivered)
      │  └──── part_sent ───────┘      (one part of a long message arrived)
      └─ retry (429, 5xx, no connection; next_attempt_at) ─ begin_send again
    claimed/retry ──> skipped (group inactive, announcement paused, too late)

``begin_send`` is a conditional UPDATE made just before the request goes on the wire (the
broadcaster calls it from inside the HTTP layer, after the rate limiter's wait), so at most one
process ever puts a run on the wire; it returns the attempt number, and every later transition
of that attempt is conditional on it. An error answer from Telegram proves nothing was
delivered: the run is released at once. A run found in ``sending`` after a crash is *in doubt*:
the message may or may not have reached Telegram. It is never resent (at most once): it is
recorded ``failed`` with ``last_error`` starting with "uncertain". The doubt window is the HTTP
exchange itself; everything still waiting for its turn is ``claimed`` and goes out after a
restart.

On PostgreSQL, :meth:`exclusive` also takes a transaction-level advisory lock for the whole
tick, so other instances stay idle; on SQLite a file lock next to the database does the same
for several processes. The unique key and the conditional transitions are the guarantee; the
locks only keep the instances from doing the same work twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import AnnouncementSettings
from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Viewer
from bot.services.errors import N_, InvalidInput, NotAllowed, NotFound
from bot.services.schedule import (
    InvalidRule,
    Rule,
    describe_rule,
    due_slots,
    next_occurrence,
    parse_rule,
)
from bot.services.text import clean_text
from storage.db import Database, affected
from storage.models import (
    Announcement,
    AnnouncementRun,
    AuditEntry,
    Field,
    GoodDeed,
    GroupChat,
    Movement,
    MovementStatus,
    Nomination,
    RunStatus,
    SubmissionStatus,
    Title,
    Unit,
)

log = logging.getLogger("hoadep.announcements")

# --- kinds and targets -----------------------------------------------------------------------

WEEKLY_DIGEST = "weekly_digest"
SPOTLIGHT = "spotlight"
MOVEMENT_NOTICES = "movement_notices"
KEY_DATE = "key_date"
CUSTOM = "custom"
KINDS = (WEEKLY_DIGEST, SPOTLIGHT, MOVEMENT_NOTICES, KEY_DATE, CUSTOM)

TARGET_ALL = "all"  # every active group; digests follow each group's scope
TARGET_OFFICE = "office"  # groups of the whole office
TARGET_UNITS = "units"  # groups linked to a unit
TARGET_UNIT = "unit:"  # "unit:<id>": the groups of one unit

# key dates the office marks (occasion -> the year it began)
OCCASIONS = {"emulation_call": 1948, "statistics_day": 1946}

BODY_LIMIT = 4000
DIGEST_ITEMS = 20  # deeds listed in one digest; the rest are counted
DIGEST_MAX_DAYS = 31  # a digest never reaches further back than this
EVENT_WINDOW = timedelta(days=14)  # a movement notice is still worth posting this long
INTERIM_MIN_DAYS = 60  # a movement this long gets a sơ kết (interim review) notice
CONTENT_REF_LIMIT = 64
LOCK_KEY = 0x486F6144  # "HoaD": the PostgreSQL advisory lock of the announcement ticker
DOUBT_AFTER = timedelta(minutes=2)  # a run left "sending" this long is in doubt
UNCERTAIN = "uncertain"  # how last_error begins for a run that may or may not have arrived

# why a run was skipped (shown to administrators, translated)
SKIP_NO_DEEDS = N_("no approved good deeds to announce")
SKIP_NO_EXEMPLAR = N_("no exemplar to spotlight")
SKIP_GROUP_INACTIVE = N_("the group is inactive")
SKIP_STOPPED = N_("the announcement was paused or deleted")
SKIP_PAUSED = N_("the announcement was paused")
SKIP_DELETED = N_("the announcement was deleted")
SKIP_LATE = N_("missed while the bot was down, beyond the grace window")
SKIP_NOTHING = N_("nothing to post any more")
SKIP_EXPIRED = N_("expired: its date had passed before it could be posted")
IN_DOUBT = N_(
    "uncertain: the bot stopped while the message was being sent; it may have arrived, so it "
    "is not sent again"
)


@dataclass(frozen=True, slots=True)
class Seed:
    key: str
    kind: str
    rule: str
    working_days_only: bool
    payload: dict[str, Any] = field(default_factory=dict)


SEEDS: tuple[Seed, ...] = (
    Seed("weekly_digest", WEEKLY_DIGEST, "weekly mon 08:00", True),
    Seed("spotlight", SPOTLIGHT, "weekly wed 08:30", True),
    Seed("movement_notices", MOVEMENT_NOTICES, "daily 08:00", True),
    Seed(
        "key_date_emulation_call",
        KEY_DATE,
        "yearly 11/06 08:00",
        False,
        {"occasion": "emulation_call"},
    ),
    Seed(
        "key_date_statistics_day",
        KEY_DATE,
        "yearly 06/05 08:00",
        False,
        {"occasion": "statistics_day"},
    ),
)


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnouncementView:
    id: int
    kind: str
    title: str | None
    body: str | None
    target: str
    rule: str
    working_days_only: bool
    timezone: str
    next_run_at: datetime | None
    enabled: bool
    occasion: str | None = None
    seed: str | None = None
    target_unit_name: str | None = None

    @property
    def finished(self) -> bool:
        return self.enabled and self.next_run_at is None

    def describe(self, language: str) -> str:
        """The schedule in words, e.g. "Thứ Hai hằng tuần lúc 08:00"."""
        try:
            rule = parse_rule(self.rule)
        except InvalidRule:
            return self.rule
        return describe_rule(rule, language, working_days_only=self.working_days_only)


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    slot_at: datetime
    group_id: int
    group_title: str | None
    chat_id: int
    status: RunStatus
    message_id: int | None
    attempts: int
    last_error: str | None
    updated_at: datetime

    @property
    def uncertain(self) -> bool:
        return self.status is RunStatus.FAILED and (self.last_error or "").startswith(UNCERTAIN)


@dataclass(frozen=True, slots=True)
class PendingRun:
    """A run the broadcaster should (re)send now."""

    id: int
    announcement_id: int
    kind: str
    slot_at: datetime
    group_id: int
    chat_id: int
    language: str
    status: RunStatus
    attempts: int
    content_ref: str | None

    @property
    def parts_done(self) -> int:
        return split_progress(self.content_ref)[1]


@dataclass(frozen=True, slots=True)
class DeedItem:
    subject: str
    unit: str | None
    description: str
    occurred_on: date | None


@dataclass(frozen=True, slots=True)
class ExemplarItem:
    nomination_id: int
    name: str
    unit: str | None
    title: str | None
    field: str | None
    movement: str | None
    achievements: str | None
    good_practices: str | None


class EventKind:
    LAUNCHED = "o"  # phát động: the movement was opened (audit id)
    WEEK = "w"  # the nomination deadline is within 7 days
    DAY = "d"  # the nomination deadline is tomorrow (or today)
    INTERIM = "s"  # sơ kết: half-way through the movement's period
    FINAL = "f"  # tổng kết: the movement's period has ended
    CLOSED = "c"  # the movement was closed (audit id)


@dataclass(frozen=True, slots=True)
class MovementEvent:
    key: str
    kind: str  # an EventKind
    movement_id: int
    name: str
    starts_on: date
    ends_on: date
    deadline: datetime
    at: datetime  # when it became worth saying
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class Content:
    """What one run posts, independent of language (the bot renders it)."""

    kind: str  # digest | digest_invitation | spotlight | movement | key_date | custom | nothing
    slot_at: datetime
    scope: str | None = None  # the unit of a unit digest; None: the whole office
    since: datetime | None = None
    deeds: tuple[DeedItem, ...] = ()
    more: int = 0
    exemplar: ExemplarItem | None = None
    events: tuple[MovementEvent, ...] = ()
    occasion: str | None = None
    years: int | None = None
    title: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class PlanReport:
    announcements: int = 0
    claimed: int = 0
    skipped: int = 0
    missed: int = 0


def split_progress(ref: str | None) -> tuple[str | None, int]:
    """A content reference and how many parts of a long message were delivered ("…#2")."""
    if ref is None or "#" not in ref:
        return ref, 0
    base, _, count = ref.rpartition("#")
    return (base or None), int(count) if count.isdigit() else 0


def with_progress(ref: str | None, parts: int) -> str:
    base = split_progress(ref)[0] or ""
    return f"{base}#{parts}"


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can manage announcements."))


def _lock_file_path(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".scheduler.lock"


def _try_file_lock(path: str) -> int | None:
    """An exclusive, non-blocking lock held by an open file (released by the OS if the process
    dies, SIGKILL included); None when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the in-process lock must do
        return os.open(os.devnull, os.O_RDONLY)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _release_file_lock(fd: int) -> None:
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class AnnouncementService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: AnnouncementSettings,
        *,
        timezone: str = "Asia/Ho_Chi_Minh",
        default_language: str = "vi",
        use_db_lock: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.default_language = default_language
        # tests switch the cross-instance lock off to show the unique key alone suffices
        self.use_db_lock = use_db_lock
        self._lock_path = _lock_file_path(db.url)
        self._busy = False

    @property
    def grace(self) -> timedelta:
        """The grace window for late slots; never shorter than two ticks."""
        return max(
            timedelta(minutes=self.settings.grace_minutes),
            timedelta(seconds=2 * self.settings.tick_seconds),
        )

    # ============================================================== one ticker at a time

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[bool]:
        """Yields True when this instance may tick now: no tick of its own is running, and no
        other instance holds the PostgreSQL advisory lock (or the SQLite lock file)."""
        if self._busy:
            yield False
            return
        self._busy = True
        try:
            if not self.use_db_lock:
                yield True
            elif self.db.is_postgres:
                async with self.db.engine.connect() as conn, conn.begin():
                    got = await conn.scalar(
                        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
                    )
                    yield bool(got)
            elif self._lock_path is not None:
                fd = _try_file_lock(self._lock_path)
                if fd is None:
                    yield False
                else:
                    try:
                        yield True
                    finally:
                        _release_file_lock(fd)
            else:
                yield True
        finally:
            self._busy = False

    # ============================================================== defaults

    async def seed_defaults(self) -> int:
        """Create the default announcements that were never created (a deleted one stays
        deleted). Call it under :meth:`exclusive`; returns how many were created."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            await self._serialize(session)
            rows = await session.scalars(
                select(Announcement).where(Announcement.kind.in_([s.kind for s in SEEDS]))
            )
            present = {(r.payload or {}).get("seed") for r in rows}
            created = 0
            for seed in SEEDS:
                if seed.key in present:
                    continue
                rule = parse_rule(seed.rule)
                session.add(
                    Announcement(
                        kind=seed.kind,
                        title=None,
                        body=None,
                        target=TARGET_ALL,
                        rule=rule.to_text(),
                        working_days_only=seed.working_days_only,
                        timezone=self.timezone,
                        payload={"seed": seed.key, **seed.payload},
                        next_run_at=next_occurrence(
                            rule, now, self.timezone, seed.working_days_only
                        ),
                        enabled=True,
                        created_at=now,
                    )
                )
                created += 1
        if created:
            log.info("created %d default announcement(s)", created)
        return created

    async def _serialize(self, session: AsyncSession) -> None:
        """Make concurrent callers of this transaction wait for each other."""
        if self.db.is_postgres:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY + 1})
        else:  # any write takes SQLite's write lock for the rest of the transaction
            await session.execute(
                update(Announcement)
                .where(Announcement.id == -1)
                .values(enabled=False)
                .execution_options(synchronize_session=False)
            )

    # ============================================================== planning (claims)

    async def plan(self, now: datetime | None = None) -> PlanReport:
        """Claim the due slot of every due announcement for each of its groups; advance
        ``next_run_at``; log and skip slots older than the grace window."""
        now = now or self.clock.now()
        async with self.db.read() as session:
            due_ids = list(
                await session.scalars(
                    select(Announcement.id)
                    .where(
                        Announcement.enabled.is_(True),
                        Announcement.next_run_at.is_not(None),
                        Announcement.next_run_at <= now,
                    )
                    .order_by(Announcement.next_run_at, Announcement.id)
                )
            )
        report = PlanReport()
        for announcement_id in due_ids:
            try:
                claimed, skipped, missed = await self._plan_one(announcement_id, now)
            except _PlannedElsewhere:
                continue
            except Exception:  # one broken announcement must not hold up the others
                log.exception(
                    "could not plan announcement %s; trying again next tick", announcement_id
                )
                continue
            report = PlanReport(
                report.announcements + 1,
                report.claimed + claimed,
                report.skipped + skipped,
                report.missed + missed,
            )
        return report

    async def _plan_one(self, announcement_id: int, now: datetime) -> tuple[int, int, int]:
        async with self.db.transaction() as session:
            # write first: planners of one announcement queue here (a row lock on PostgreSQL,
            # the write lock on SQLite) instead of racing
            await session.execute(
                update(Announcement)
                .where(Announcement.id == announcement_id)
                .values(enabled=Announcement.enabled)
                .execution_options(synchronize_session=False)
            )
            ann = await session.get(Announcement, announcement_id)
            if ann is None or not ann.enabled or ann.next_run_at is None or ann.next_run_at > now:
                return 0, 0, 0
            expected = ann.next_run_at
            try:
                rule = parse_rule(ann.rule)
                slots = due_slots(
                    rule,
                    expected - timedelta(seconds=1),
                    now,
                    self.grace,
                    ann.timezone,
                    ann.working_days_only,
                )
            except (InvalidRule, ValueError) as exc:
                log.error("announcement %s has a broken schedule %r: %s", ann.id, ann.rule, exc)
                await self._advance(session, ann.id, expected, None)
                return 0, 0, 0
            for slot in slots.missed:
                log.warning(
                    "announcement %s (%s): the slot %s was missed by more than the grace window "
                    "(%s) and is skipped",
                    ann.id,
                    ann.kind,
                    slot.astimezone(self.tz).strftime("%H:%M %d/%m/%Y"),
                    self.grace,
                )
            claimed = skipped = 0
            if slots.due is not None:
                if slots.due < now - timedelta(seconds=2 * self.settings.tick_seconds):
                    log.info(
                        "announcement %s (%s): posting the slot %s late",
                        ann.id,
                        ann.kind,
                        slots.due.astimezone(self.tz).strftime("%H:%M %d/%m/%Y"),
                    )
                claimed, skipped = await self._claim(session, ann, slots.due, now)
            if not await self._advance(session, ann.id, expected, slots.next_run_at):
                # another instance planned it meanwhile; our inserts were no-ops or duplicates
                # the unique key refused, so nothing is lost by rolling back
                raise _PlannedElsewhere
            return claimed, skipped, len(slots.missed)

    @staticmethod
    async def _advance(
        session: AsyncSession, announcement_id: int, expected: datetime, nxt: datetime | None
    ) -> bool:
        return bool(
            affected(
                await session.execute(
                    update(Announcement)
                    .where(Announcement.id == announcement_id, Announcement.next_run_at == expected)
                    .values(next_run_at=nxt)
                    .execution_options(synchronize_session=False)
                )
            )
        )

    async def _claim(
        self, session: AsyncSession, ann: Announcement, slot: datetime, now: datetime
    ) -> tuple[int, int]:
        groups = await self._targets(session, ann.target)
        if not groups:
            return 0, 0
        rows: list[dict[str, Any]] = []

        def add(group: GroupChat, ref: str | None, status: RunStatus, note: str | None) -> None:
            rows.append(
                {
                    "announcement_id": ann.id,
                    "slot_at": slot,
                    "group_chat_id": group.id,
                    "status": status.value,
                    "attempts": 0,
                    "content_ref": ref,
                    "last_error": note,
                    "next_attempt_at": now,
                    "claimed_at": now,
                    "updated_at": now,
                }
            )

        if ann.kind == WEEKLY_DIGEST:
            counts = await self._digest_counts(session, ann.id, slot, groups)
            for group in groups:
                count = counts[group.id]
                if count:
                    add(group, f"deeds:{count}", RunStatus.CLAIMED, None)
                elif self.settings.post_invitation_when_empty:
                    add(group, "invite", RunStatus.CLAIMED, None)
                else:
                    add(group, "empty", RunStatus.SKIPPED, SKIP_NO_DEEDS)
        elif ann.kind == SPOTLIGHT:
            chosen = await self._next_exemplar(session, ann.id, slot)
            for group in groups:
                if chosen is None:
                    add(group, None, RunStatus.SKIPPED, SKIP_NO_EXEMPLAR)
                else:
                    add(group, f"nom:{chosen}", RunStatus.CLAIMED, None)
        elif ann.kind == MOVEMENT_NOTICES:
            events = await self._movement_events(session, slot)
            if events:
                posted = await self._posted_event_keys(session, ann.id, slot)
                for group in groups:
                    ref = _events_ref([e for e in events if e.key not in posted.get(group.id, ())])
                    if ref is not None:
                        add(group, ref, RunStatus.CLAIMED, None)
        else:
            for group in groups:
                add(group, None, RunStatus.CLAIMED, None)
        inserted = await self._insert_runs(session, rows)
        skipped = sum(1 for r in rows if r["status"] == RunStatus.SKIPPED.value)
        return max(0, inserted - skipped), skipped

    async def _insert_runs(self, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
        """INSERT … ON CONFLICT DO NOTHING: the unique key decides who claimed a slot first."""
        if not rows:
            return 0
        if self.db.is_postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            make: Any = pg_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            make = sqlite_insert
        inserted = 0
        for start in range(0, len(rows), 50):
            stmt = (
                make(AnnouncementRun)
                .values(rows[start : start + 50])
                .on_conflict_do_nothing(
                    index_elements=["announcement_id", "slot_at", "group_chat_id"]
                )
            )
            inserted += affected(await session.execute(stmt))
        return inserted

    async def _targets(self, session: AsyncSession, target: str) -> list[GroupChat]:
        stmt = select(GroupChat).where(GroupChat.active.is_(True)).order_by(GroupChat.id)
        if target == TARGET_OFFICE:
            stmt = stmt.where(or_(GroupChat.office_wide.is_(True), GroupChat.unit_id.is_(None)))
        elif target == TARGET_UNITS:
            stmt = stmt.where(GroupChat.office_wide.is_(False), GroupChat.unit_id.is_not(None))
        elif target.startswith(TARGET_UNIT):
            stmt = stmt.where(GroupChat.unit_id == int(target[len(TARGET_UNIT) :]))
        return list(await session.scalars(stmt))

    # ============================================================== digests

    async def _unit_scopes(self, session: AsyncSession) -> dict[int, set[int]]:
        """Each unit and the units below it or merged into it (a unit group's digest)."""
        rows = (await session.execute(select(Unit.id, Unit.parent_id, Unit.merged_into_id))).all()
        children: dict[int, set[int]] = {}
        for unit_id, parent_id, merged_into in rows:
            for owner in (parent_id, merged_into):
                if owner is not None:
                    children.setdefault(owner, set()).add(unit_id)
        scopes: dict[int, set[int]] = {}
        for unit_id, _, _ in rows:
            seen = {unit_id}
            stack = [unit_id]
            while stack:
                for child in children.get(stack.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            scopes[unit_id] = seen
        return scopes

    async def _digest_since(
        self, session: AsyncSession, announcement_id: int, slot: datetime, group_ids: list[int]
    ) -> dict[int, datetime]:
        """Where each group's digest starts: its previous slot of this announcement (so a
        skipped Monday loses nothing), else a week back; never more than a month back."""
        floor = slot - timedelta(days=DIGEST_MAX_DAYS)
        rows = (
            await session.execute(
                select(AnnouncementRun.group_chat_id, func.max(AnnouncementRun.slot_at))
                .where(
                    AnnouncementRun.announcement_id == announcement_id,
                    AnnouncementRun.slot_at < slot,
                    AnnouncementRun.slot_at >= floor,
                    AnnouncementRun.group_chat_id.in_(group_ids),
                )
                .group_by(AnnouncementRun.group_chat_id)
            )
        ).all()
        previous = {gid: _aware(at) for gid, at in rows}
        return {gid: previous.get(gid, slot - timedelta(days=7)) for gid in group_ids}

    async def _approved_deeds(
        self, session: AsyncSession, since: datetime, until: datetime
    ) -> list[GoodDeed]:
        return list(
            await session.scalars(
                select(GoodDeed)
                .where(
                    GoodDeed.status == SubmissionStatus.APPROVED.value,
                    GoodDeed.decided_at >= since,
                    GoodDeed.decided_at < until,
                )
                .order_by(GoodDeed.decided_at, GoodDeed.id)
            )
        )

    @staticmethod
    def _in_scope(deed: GoodDeed, group: GroupChat, scopes: dict[int, set[int]]) -> bool:
        if group.office_wide or group.unit_id is None:
            return True
        return deed.unit_id is not None and deed.unit_id in scopes.get(group.unit_id, set())

    async def _digest_counts(
        self, session: AsyncSession, announcement_id: int, slot: datetime, groups: list[GroupChat]
    ) -> dict[int, int]:
        since = await self._digest_since(session, announcement_id, slot, [g.id for g in groups])
        earliest = min(since.values())
        deeds = await self._approved_deeds(session, earliest, slot)
        scopes = await self._unit_scopes(session)
        return {
            g.id: sum(
                1
                for d in deeds
                if d.decided_at is not None
                and _aware(d.decided_at) >= since[g.id]
                and self._in_scope(d, g, scopes)
            )
            for g in groups
        }

    async def _digest_content(
        self, session: AsyncSession, ann: Announcement, slot: datetime, group: GroupChat
    ) -> Content:
        since = (await self._digest_since(session, ann.id, slot, [group.id]))[group.id]
        scopes = await self._unit_scopes(session)
        deeds = [
            d
            for d in await self._approved_deeds(session, since, slot)
            if self._in_scope(d, group, scopes)
        ]
        scope_name = None
        if not (group.office_wide or group.unit_id is None):
            scope_name = await session.scalar(select(Unit.name).where(Unit.id == group.unit_id))
        items = tuple(
            DeedItem(
                d.subject_name_at_time or "",
                d.unit_name_at_time,
                d.description or "",
                d.occurred_on,
            )
            for d in deeds[:DIGEST_ITEMS]
        )
        return Content(
            "digest",
            slot,
            scope=scope_name,
            since=since,
            deeds=items,
            more=max(0, len(deeds) - DIGEST_ITEMS),
        )

    # ============================================================== spotlight

    async def _exemplar_candidates(self, session: AsyncSession, slot: datetime) -> list[int]:
        rows = await session.scalars(
            select(Nomination.id)
            .outerjoin(Movement, Movement.id == Nomination.movement_id)
            .where(
                Nomination.status == SubmissionStatus.APPROVED.value,
                Nomination.revoked_at.is_(None),
                Nomination.decided_at < slot,
                or_(
                    Nomination.movement_id.is_(None),
                    Movement.status != MovementStatus.ARCHIVED.value,
                ),
            )
            .order_by(Nomination.decided_at, Nomination.id)
        )
        return list(rows)

    async def _next_exemplar(
        self, session: AsyncSession, announcement_id: int, slot: datetime
    ) -> int | None:
        """Fair rotation: exemplars never shown first (oldest approval first), then the one
        shown longest ago; never the one of the previous slot. Depends only on what happened
        before ``slot``, so every instance and every group agree."""
        candidates = await self._exemplar_candidates(session, slot)
        if not candidates:
            return None
        rows = (
            await session.execute(
                select(AnnouncementRun.content_ref, func.max(AnnouncementRun.slot_at))
                .where(
                    AnnouncementRun.announcement_id == announcement_id,
                    AnnouncementRun.slot_at < slot,
                    AnnouncementRun.content_ref.like("nom:%"),
                )
                .group_by(AnnouncementRun.content_ref)
            )
        ).all()
        last_shown: dict[int, datetime] = {}
        for ref, at in rows:
            base = split_progress(ref)[0] or ""
            with contextlib.suppress(ValueError):
                nid = int(base.split(":", 1)[1])
                when = _aware(at)
                if nid not in last_shown or when > last_shown[nid]:
                    last_shown[nid] = when
        previous = max(last_shown, key=lambda n: last_shown[n]) if last_shown else None
        never = [c for c in candidates if c not in last_shown]
        if never:
            return never[0]
        order = sorted(candidates, key=lambda c: (last_shown[c], candidates.index(c)))
        choice = next((c for c in order if c != previous), None)
        return choice

    async def _exemplar_item(
        self, session: AsyncSession, nomination_id: int
    ) -> ExemplarItem | None:
        row = (
            await session.execute(
                select(Nomination, Title.name, Field.name, Movement.name)
                .outerjoin(Title, Title.id == Nomination.title_id)
                .outerjoin(Field, Field.id == Nomination.field_id)
                .outerjoin(Movement, Movement.id == Nomination.movement_id)
                .where(Nomination.id == nomination_id)
            )
        ).first()
        if row is None:
            return None
        n, title, field_name, movement = row
        if n.status != SubmissionStatus.APPROVED.value or n.revoked_at is not None:
            return None
        return ExemplarItem(
            n.id,
            n.nominee_name_at_time or "",
            n.unit_name_at_time,
            title,
            field_name,
            movement,
            n.achievements,
            n.good_practices,
        )

    # ============================================================== movement notices

    async def _movement_events(self, session: AsyncSession, slot: datetime) -> list[MovementEvent]:
        """What is worth saying about the movements at ``slot``, oldest first."""
        day = slot.astimezone(self.tz).date()
        movements = {
            m.id: m
            for m in await session.scalars(
                select(Movement).where(
                    Movement.status.in_([MovementStatus.OPEN.value, MovementStatus.CLOSED.value])
                )
            )
        }
        events: list[MovementEvent] = []

        def event(m: Movement, kind: str, key: str, at: datetime, reopened: bool = False) -> None:
            events.append(
                MovementEvent(
                    key,
                    kind,
                    m.id,
                    m.name,
                    m.starts_on,
                    m.ends_on,
                    _aware(m.nomination_deadline),
                    at,
                    reopened,
                )
            )

        entries = await session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action.in_(["movement.open", "movement.close"]),
                AuditEntry.target_type == "movement",
                AuditEntry.at <= slot,
                AuditEntry.at >= slot - EVENT_WINDOW,
            )
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        for entry in entries:
            m = movements.get(entry.target_id or 0)
            if m is None:
                continue
            at = _aware(entry.at)
            if entry.action == "movement.open":
                deadline = _aware(m.nomination_deadline)
                if m.status == MovementStatus.OPEN.value and deadline > slot:
                    reopened = bool((entry.details or {}).get("reopened"))
                    event(m, EventKind.LAUNCHED, f"o{entry.id}", at, reopened)
            elif m.status == MovementStatus.CLOSED.value:
                event(m, EventKind.CLOSED, f"c{entry.id}", at)

        for m in movements.values():
            deadline = _aware(m.nomination_deadline)
            deadline_day = deadline.astimezone(self.tz).date()
            if m.status == MovementStatus.OPEN.value and deadline > slot:
                if deadline_day - timedelta(days=7) <= day < deadline_day - timedelta(days=1):
                    event(m, EventKind.WEEK, f"w{m.id}", self._local(deadline_day, -7))
                elif day >= deadline_day - timedelta(days=1):
                    event(m, EventKind.DAY, f"d{m.id}", self._local(deadline_day, -1))
            if (m.ends_on - m.starts_on).days >= INTERIM_MIN_DAYS:
                middle = m.starts_on + timedelta(days=(m.ends_on - m.starts_on).days // 2)
                if middle <= day < m.ends_on:
                    event(m, EventKind.INTERIM, f"s{m.id}", self._local(middle))
            if m.ends_on <= day <= m.ends_on + EVENT_WINDOW:
                event(m, EventKind.FINAL, f"f{m.id}", self._local(m.ends_on))
        events.sort(key=lambda e: (e.at, e.key))
        return events

    def _local(self, day: date, offset_days: int = 0) -> datetime:
        start = datetime.combine(day + timedelta(days=offset_days), datetime.min.time())
        return start.replace(tzinfo=self.tz).astimezone(UTC)

    async def _posted_event_keys(
        self, session: AsyncSession, announcement_id: int, slot: datetime
    ) -> dict[int, set[str]]:
        horizon = slot - EVENT_WINDOW - timedelta(days=90)
        rows = (
            await session.execute(
                select(AnnouncementRun.group_chat_id, AnnouncementRun.content_ref).where(
                    AnnouncementRun.announcement_id == announcement_id,
                    AnnouncementRun.slot_at < slot,
                    AnnouncementRun.slot_at >= horizon,
                    AnnouncementRun.content_ref.is_not(None),
                )
            )
        ).all()
        posted: dict[int, set[str]] = {}
        for group_id, ref in rows:
            posted.setdefault(group_id, set()).update(_event_keys(ref))
        return posted

    async def _movement_content(
        self, session: AsyncSession, slot: datetime, ref: str | None
    ) -> Content:
        keys = _event_keys(ref)
        by_audit = (EventKind.LAUNCHED, EventKind.CLOSED)
        audit_ids = [int(k[1:]) for k in keys if k[0] in by_audit]
        entries: dict[int, AuditEntry] = {}
        if audit_ids:
            found = await session.scalars(select(AuditEntry).where(AuditEntry.id.in_(audit_ids)))
            entries = {e.id: e for e in found}
        movement_ids = {int(k[1:]) for k in keys if k[0] not in by_audit}
        movement_ids |= {e.target_id for e in entries.values() if e.target_id is not None}
        movements: dict[int, Movement] = {}
        if movement_ids:
            found_m = await session.scalars(select(Movement).where(Movement.id.in_(movement_ids)))
            movements = {m.id: m for m in found_m}
        events: list[MovementEvent] = []
        for key in keys:
            kind, number = key[0], int(key[1:])
            entry = entries.get(number) if kind in by_audit else None
            movement_id = entry.target_id if entry is not None else number
            m = movements.get(movement_id or 0)
            if m is None:
                continue
            at = _aware(entry.at) if entry is not None else slot
            reopened = bool((entry.details or {}).get("reopened")) if entry is not None else False
            events.append(
                MovementEvent(
                    key,
                    kind,
                    m.id,
                    m.name,
                    m.starts_on,
                    m.ends_on,
                    _aware(m.nomination_deadline),
                    at,
                    reopened,
                )
            )
        return Content("movement", slot, events=tuple(events))

    # ============================================================== delivery support

    async def settle_in_doubt(self, now: datetime | None = None) -> list[int]:
        """Runs left ``sending`` by a process that died mid-request: the message may have
        arrived, so they are recorded as failed ("uncertain") and never resent."""
        now = now or self.clock.now()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(AnnouncementRun)
                .where(
                    AnnouncementRun.status == RunStatus.SENDING.value,
                    AnnouncementRun.updated_at < now - DOUBT_AFTER,
                )
                .values(
                    status=RunStatus.FAILED.value,
                    last_error=IN_DOUBT,
                    updated_at=now,
                )
                .returning(AnnouncementRun.id)
                .execution_options(synchronize_session=False)
            )
            ids = sorted(int(i) for i in result.scalars())
        for run_id in ids:
            log.warning("announcement run %s was in doubt after a restart: not resent", run_id)
        return ids

    async def deliverable(
        self,
        *,
        now: datetime | None = None,
        tick_started: datetime | None = None,
        limit: int = 500,
        exclude: Iterable[int] = (),
    ) -> list[PendingRun]:
        """Runs to send now (claimed, or due for a retry), oldest slot first. Runs of inactive
        groups or paused announcements are skipped here; claimed runs a crash left behind are
        skipped when their slot is older than the grace window (like a missed slot)."""
        now = now or self.clock.now()
        tick_started = tick_started or now
        waiting = (RunStatus.CLAIMED.value, RunStatus.RETRY.value)
        excluded = list(exclude)
        async with self.db.transaction() as session:
            inactive = select(GroupChat.id).where(GroupChat.active.is_(False))
            await self._skip_where(
                session, AnnouncementRun.group_chat_id.in_(inactive), SKIP_GROUP_INACTIVE, now
            )
            stopped = select(Announcement.id).where(Announcement.enabled.is_(False))
            await self._skip_where(
                session,
                AnnouncementRun.announcement_id.in_(stopped),
                SKIP_STOPPED,
                now,
            )
            late = await session.scalars(
                select(AnnouncementRun.id).where(
                    AnnouncementRun.status == RunStatus.CLAIMED.value,
                    AnnouncementRun.attempts == 0,
                    AnnouncementRun.claimed_at < tick_started,
                    AnnouncementRun.slot_at < now - self.grace,
                )
            )
            late_ids = list(late)
            if late_ids:
                await self._skip_where(
                    session,
                    AnnouncementRun.id.in_(late_ids),
                    SKIP_LATE,
                    now,
                )
                log.warning(
                    "%d announcement run(s) left by a stop are older than the grace window "
                    "and are skipped",
                    len(late_ids),
                )
            stmt = (
                select(AnnouncementRun, GroupChat.chat_id, GroupChat.language, Announcement.kind)
                .join(GroupChat, GroupChat.id == AnnouncementRun.group_chat_id)
                .join(Announcement, Announcement.id == AnnouncementRun.announcement_id)
                .where(
                    AnnouncementRun.status.in_(waiting),
                    or_(
                        AnnouncementRun.next_attempt_at.is_(None),
                        AnnouncementRun.next_attempt_at <= now,
                    ),
                )
                .order_by(AnnouncementRun.slot_at, AnnouncementRun.id)
                .limit(limit)
            )
            if excluded:
                stmt = stmt.where(AnnouncementRun.id.not_in(excluded))
            rows = (await session.execute(stmt)).all()
        return [
            PendingRun(
                run.id,
                run.announcement_id,
                kind,
                _aware(run.slot_at),
                run.group_chat_id,
                chat_id,
                language or self.default_language,
                RunStatus(run.status),
                run.attempts,
                run.content_ref,
            )
            for run, chat_id, language, kind in rows
        ]

    @staticmethod
    async def _skip_where(session: AsyncSession, condition: Any, reason: str, now: datetime) -> int:
        return affected(
            await session.execute(
                update(AnnouncementRun)
                .where(
                    AnnouncementRun.status.in_((RunStatus.CLAIMED.value, RunStatus.RETRY.value)),
                    condition,
                )
                .values(status=RunStatus.SKIPPED.value, last_error=reason, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )

    async def content_for(self, run: PendingRun) -> Content | None:
        """What the run posts (the same every time it is asked: a retry sends the same)."""
        async with self.db.read() as session:
            ann = await session.get(Announcement, run.announcement_id)
            group = await session.get(GroupChat, run.group_id)
            if ann is None or group is None:
                return None
            return await self._content(session, ann, run.slot_at, group, run.content_ref)

    async def _content(
        self,
        session: AsyncSession,
        ann: Announcement,
        slot: datetime,
        group: GroupChat | None,
        ref: str | None,
    ) -> Content | None:
        base = split_progress(ref)[0]
        if ann.kind == WEEKLY_DIGEST:
            if base == "invite":
                return Content("digest_invitation", slot)
            if group is None:
                return None
            return await self._digest_content(session, ann, slot, group)
        if ann.kind == SPOTLIGHT:
            if base is None or not base.startswith("nom:"):
                return None
            item = await self._exemplar_item(session, int(base.split(":", 1)[1]))
            return Content("spotlight", slot, exemplar=item) if item else None
        if ann.kind == MOVEMENT_NOTICES:
            content = await self._movement_content(session, slot, base)
            return content if content.events else None
        if ann.kind == KEY_DATE:
            occasion = (ann.payload or {}).get("occasion")
            if occasion in OCCASIONS:
                years = slot.astimezone(self.tz).year - OCCASIONS[occasion]
                return Content("key_date", slot, occasion=occasion, years=years)
            return Content("custom", slot, title=ann.title, body=ann.body)
        return Content("custom", slot, title=ann.title, body=ann.body)

    # --- run transitions (all conditional: a run changes hands once) ----------------------------

    async def begin_send(self, run_id: int, expected_ref: str | None) -> int | None:
        """Just before a request goes on the wire: claimed/retry → sending. Returns the attempt
        number, the token of every later transition of this attempt; None when the run is not
        ours to send (another instance, a pause, a newer part): then nothing is sent."""
        now = self.clock.now()
        ref_matches = (
            AnnouncementRun.content_ref.is_(None)
            if expected_ref is None
            else AnnouncementRun.content_ref == expected_ref
        )
        async with self.db.transaction() as session:
            result = await session.execute(
                update(AnnouncementRun)
                .where(
                    AnnouncementRun.id == run_id,
                    AnnouncementRun.status.in_((RunStatus.CLAIMED.value, RunStatus.RETRY.value)),
                    ref_matches,
                )
                .values(
                    status=RunStatus.SENDING.value,
                    attempts=AnnouncementRun.attempts + 1,
                    updated_at=now,
                )
                .returning(AnnouncementRun.attempts)
                .execution_options(synchronize_session=False)
            )
            attempt = result.scalar_one_or_none()
        return None if attempt is None else int(attempt)

    async def release(self, run_id: int, attempt: int) -> bool:
        """Telegram answered with an error (429, 400, 403, 5xx): nothing was delivered, the run
        is no longer on the wire (sending → claimed) until its next request or outcome."""
        return await self._move(
            run_id,
            (RunStatus.SENDING,),
            attempt,
            status=RunStatus.CLAIMED.value,
        )

    async def part_sent(self, run_id: int, attempt: int, ref: str, message_id: int | None) -> bool:
        """One part of a long message arrived; the next part waits for its turn."""
        values: dict[str, Any] = {
            "status": RunStatus.CLAIMED.value,
            "content_ref": ref,
            "next_attempt_at": self.clock.now(),
        }
        if message_id is not None:
            values["message_id"] = func.coalesce(AnnouncementRun.message_id, message_id)
        return await self._move(run_id, (RunStatus.SENDING,), attempt, **values)

    async def sent(self, run_id: int, attempt: int, message_id: int | None) -> bool:
        values: dict[str, Any] = {
            "status": RunStatus.SENT.value,
            "last_error": None,
            "next_attempt_at": None,
        }
        if message_id is not None:
            values["message_id"] = func.coalesce(AnnouncementRun.message_id, message_id)
        return await self._move(run_id, (RunStatus.SENDING,), attempt, **values)

    async def retry(self, run_id: int, attempt: int, error: str, delay: timedelta) -> bool:
        """Telegram refused for now (429, 5xx, no connection): try again at a later tick."""
        return await self._move(
            run_id,
            (RunStatus.SENDING, RunStatus.CLAIMED),
            attempt,
            status=RunStatus.RETRY.value,
            last_error=error[:500],
            next_attempt_at=self.clock.now() + delay,
        )

    async def failed(self, run_id: int, attempt: int | None, error: str) -> bool:
        """Given up (or, with no attempt, it could not even be prepared)."""
        sources = (
            (RunStatus.CLAIMED, RunStatus.RETRY)
            if attempt is None
            else (RunStatus.SENDING, RunStatus.CLAIMED)
        )
        return await self._move(
            run_id,
            sources,
            attempt,
            status=RunStatus.FAILED.value,
            last_error=error[:500],
            next_attempt_at=None,
        )

    async def skip(self, run_id: int, reason: str) -> bool:
        return await self._move(
            run_id,
            (RunStatus.CLAIMED, RunStatus.RETRY),
            None,
            status=RunStatus.SKIPPED.value,
            last_error=reason[:500],
            next_attempt_at=None,
        )

    async def _move(
        self, run_id: int, sources: Sequence[RunStatus], attempt: int | None, **values: Any
    ) -> bool:
        """A conditional transition: from one of `sources`, and (with `attempt`) only while the
        run is still at that attempt, so a late outcome never overwrites a newer one."""
        values["updated_at"] = self.clock.now()
        conditions = [
            AnnouncementRun.id == run_id,
            AnnouncementRun.status.in_([s.value for s in sources]),
        ]
        if attempt is not None:
            conditions.append(AnnouncementRun.attempts == attempt)
        async with self.db.transaction() as session:
            return bool(
                affected(
                    await session.execute(
                        update(AnnouncementRun)
                        .where(*conditions)
                        .values(**values)
                        .execution_options(synchronize_session=False)
                    )
                )
            )

    # ============================================================== administration

    async def list_announcements(self, viewer: Viewer) -> list[AnnouncementView]:
        _require_admin(viewer)
        async with self.db.read() as session:
            rows = list(await session.scalars(select(Announcement).order_by(Announcement.id)))
            units = await self._unit_names(session, rows)
        views = [self._view(r, units) for r in rows if not (r.payload or {}).get("deleted")]
        order = {kind: i for i, kind in enumerate(KINDS)}
        return sorted(views, key=lambda v: (order.get(v.kind, 99), v.id))

    async def get(self, viewer: Viewer, announcement_id: int) -> AnnouncementView:
        _require_admin(viewer)
        async with self.db.read() as session:
            row = await self._live(session, announcement_id)
            return self._view(row, await self._unit_names(session, [row]))

    async def _live(self, session: AsyncSession, announcement_id: int) -> Announcement:
        row = await session.get(Announcement, announcement_id)
        if row is None or (row.payload or {}).get("deleted"):
            raise NotFound(N_("That announcement no longer exists."))
        return row

    @staticmethod
    async def _unit_names(session: AsyncSession, rows: list[Announcement]) -> dict[int, str]:
        ids = {
            int(r.target[len(TARGET_UNIT) :])
            for r in rows
            if r.target.startswith(TARGET_UNIT) and r.target[len(TARGET_UNIT) :].isdigit()
        }
        if not ids:
            return {}
        result = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids)))
        return {int(row[0]): str(row[1]) for row in result.all()}

    @staticmethod
    def _view(row: Announcement, units: dict[int, str]) -> AnnouncementView:
        payload = row.payload or {}
        unit_name = None
        if row.target.startswith(TARGET_UNIT) and row.target[len(TARGET_UNIT) :].isdigit():
            unit_name = units.get(int(row.target[len(TARGET_UNIT) :]))
        return AnnouncementView(
            row.id,
            row.kind,
            row.title,
            row.body,
            row.target,
            row.rule,
            row.working_days_only,
            row.timezone,
            _aware(row.next_run_at) if row.next_run_at else None,
            row.enabled,
            payload.get("occasion"),
            payload.get("seed"),
            unit_name,
        )

    def check_rule(
        self, viewer: Viewer, text_: str, working_days_only: bool = False
    ) -> tuple[Rule, datetime]:
        """A schedule an administrator typed: the parsed rule and its first slot."""
        _require_admin(viewer)
        language = viewer.language or self.default_language
        try:
            rule = parse_rule(text_)
        except InvalidRule as exc:
            raise InvalidInput(
                N_("I could not understand that schedule. {problem}"),
                problem=exc.message(language),
            ) from None
        first = next_occurrence(rule, self.clock.now(), self.timezone, working_days_only)
        if first is None:
            raise InvalidInput(N_("That time has already passed. Please give a time to come."))
        return rule, first

    def authorise(self, viewer: Viewer) -> None:
        """Raise unless the viewer may manage announcements."""
        _require_admin(viewer)

    def check_body(self, viewer: Viewer, body: str) -> str:
        """The text of an announcement an administrator typed, cleaned and within limits."""
        _require_admin(viewer)
        return clean_text(body, limit=BODY_LIMIT)

    async def check_target(self, viewer: Viewer, target: str) -> str:
        _require_admin(viewer)
        if target in (TARGET_ALL, TARGET_OFFICE, TARGET_UNITS):
            return target
        if target.startswith(TARGET_UNIT) and target[len(TARGET_UNIT) :].isdigit():
            async with self.db.read() as session:
                unit = await session.get(Unit, int(target[len(TARGET_UNIT) :]))
            if unit is not None and unit.active:
                return f"{TARGET_UNIT}{unit.id}"
        raise NotFound(N_("That unit no longer exists."))

    async def create_custom(
        self,
        viewer: Viewer,
        *,
        body: str,
        rule: str,
        working_days_only: bool = False,
        target: str = TARGET_ALL,
    ) -> AnnouncementView:
        """An announcement written by an administrator: once, or on a recurring schedule."""
        _require_admin(viewer)
        body = clean_text(body, limit=BODY_LIMIT)
        parsed, first = self.check_rule(viewer, rule, working_days_only)
        target = await self.check_target(viewer, target)
        title = body.splitlines()[0][:100]
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = Announcement(
                kind=CUSTOM,
                title=title,
                body=body,
                target=target,
                rule=parsed.to_text(),
                working_days_only=working_days_only and parsed.skips_non_working_days,
                timezone=self.timezone,
                payload={},
                next_run_at=first,
                enabled=True,
                created_by=viewer.member_id,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            self._audit(session, viewer, "announcement.create", row.id, now, rule=row.rule)
            return self._view(row, await self._unit_names(session, [row]))

    async def pause(self, viewer: Viewer, announcement_id: int) -> AnnouncementView:
        """Nothing more goes out (runs waiting for a retry are skipped too)."""
        return await self._set_enabled(viewer, announcement_id, enabled=False)

    async def resume(self, viewer: Viewer, announcement_id: int) -> AnnouncementView:
        """From the next slot to come (slots during the pause are not made up)."""
        return await self._set_enabled(viewer, announcement_id, enabled=True)

    async def _set_enabled(
        self, viewer: Viewer, announcement_id: int, *, enabled: bool
    ) -> AnnouncementView:
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await self._live(session, announcement_id)
            if enabled:
                rule = parse_rule(row.rule)
                row.next_run_at = next_occurrence(rule, now, row.timezone, row.working_days_only)
                if row.next_run_at is None:
                    raise InvalidInput(
                        N_("This one-off announcement has already gone out; it cannot resume.")
                    )
            else:
                await self._skip_where(
                    session,
                    AnnouncementRun.announcement_id == row.id,
                    SKIP_PAUSED,
                    now,
                )
            row.enabled = enabled
            action = "announcement.resume" if enabled else "announcement.pause"
            self._audit(session, viewer, action, row.id, now)
            await session.flush()
            return self._view(row, await self._unit_names(session, [row]))

    async def delete(self, viewer: Viewer, announcement_id: int) -> None:
        """Gone from the lists; the history of its runs is kept (and a default announcement
        is not created again at the next start)."""
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            row = await self._live(session, announcement_id)
            row.enabled = False
            row.next_run_at = None
            row.payload = {**(row.payload or {}), "deleted": now.isoformat()}
            await self._skip_where(
                session,
                AnnouncementRun.announcement_id == row.id,
                SKIP_DELETED,
                now,
            )
            self._audit(session, viewer, "announcement.delete", row.id, now)

    async def last_runs(
        self, viewer: Viewer, announcement_id: int, *, slots: int = 3
    ) -> list[RunView]:
        """Every group's outcome in the announcement's latest ``slots`` slots, newest first."""
        _require_admin(viewer)
        async with self.db.read() as session:
            await self._live(session, announcement_id)
            recent = list(
                await session.scalars(
                    select(AnnouncementRun.slot_at)
                    .where(AnnouncementRun.announcement_id == announcement_id)
                    .group_by(AnnouncementRun.slot_at)
                    .order_by(AnnouncementRun.slot_at.desc())
                    .limit(slots)
                )
            )
            if not recent:
                return []
            rows = (
                await session.execute(
                    select(AnnouncementRun, GroupChat.title, GroupChat.chat_id)
                    .join(GroupChat, GroupChat.id == AnnouncementRun.group_chat_id)
                    .where(
                        AnnouncementRun.announcement_id == announcement_id,
                        AnnouncementRun.slot_at.in_(recent),
                    )
                    .order_by(AnnouncementRun.slot_at.desc(), GroupChat.title, GroupChat.id)
                )
            ).all()
        return [
            RunView(
                run.id,
                _aware(run.slot_at),
                run.group_chat_id,
                title,
                chat_id,
                RunStatus(run.status),
                run.message_id,
                run.attempts,
                run.last_error,
                _aware(run.updated_at),
            )
            for run, title, chat_id in rows
        ]

    async def preview(self, viewer: Viewer, announcement_id: int) -> Content:
        """What the announcement would post now to a group of the whole office."""
        _require_admin(viewer)
        now = self.clock.now()
        async with self.db.read() as session:
            ann = await self._live(session, announcement_id)
            office = GroupChat(id=0, chat_id=0, office_wide=True, unit_id=None)
            if ann.kind == WEEKLY_DIGEST:
                scopes = await self._unit_scopes(session)
                since = now - timedelta(days=7)
                deeds = [
                    d
                    for d in await self._approved_deeds(session, since, now)
                    if self._in_scope(d, office, scopes)
                ]
                if not deeds:
                    return Content("digest_invitation", now)
                items = tuple(
                    DeedItem(
                        d.subject_name_at_time or "",
                        d.unit_name_at_time,
                        d.description or "",
                        d.occurred_on,
                    )
                    for d in deeds[:DIGEST_ITEMS]
                )
                return Content(
                    "digest", now, since=since, deeds=items, more=max(0, len(deeds) - DIGEST_ITEMS)
                )
            if ann.kind == SPOTLIGHT:
                chosen = await self._next_exemplar(session, ann.id, now)
                if chosen is None:
                    return Content("nothing", now)
                content = await self._content(session, ann, now, office, f"nom:{chosen}")
                return content or Content("nothing", now)
            if ann.kind == MOVEMENT_NOTICES:
                events = await self._movement_events(session, now)
                if not events:
                    return Content("nothing", now)
                return Content("movement", now, events=tuple(events))
            content = await self._content(session, ann, now, office, None)
            return content or Content("nothing", now)

    @staticmethod
    def _audit(
        session: AsyncSession,
        viewer: Viewer,
        action: str,
        announcement_id: int,
        now: datetime,
        **details: Any,
    ) -> None:
        audit.record(
            session,
            actor_member_id=viewer.member_id,
            actor_user_id=viewer.telegram_user_id,
            action=action,
            target_type="announcement",
            target_id=announcement_id,
            at=now,
            **details,
        )


class _PlannedElsewhere(Exception):
    """Raised inside a planning transaction to roll it back."""


_DEADLINE_BOUND = (EventKind.LAUNCHED, EventKind.WEEK, EventKind.DAY)


def expires_at(content: Content, tz: ZoneInfo) -> datetime | None:
    """When a post stops meaning anything, however long delivery failed: a call to nominate
    after the nomination deadline, a key date's greeting after its day. None: still worth
    posting late (a digest, a spotlight, a review notice, an administrator's text)."""
    if content.kind == "movement" and content.events:
        if all(e.kind in _DEADLINE_BOUND for e in content.events):
            return max(e.deadline for e in content.events)
        return None
    if content.kind == "key_date":
        day = content.slot_at.astimezone(tz).date() + timedelta(days=1)
        return datetime.combine(day, datetime.min.time()).replace(tzinfo=tz).astimezone(UTC)
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _event_keys(ref: str | None) -> list[str]:
    base = split_progress(ref)[0]
    if not base or not base.startswith("mv:"):
        return []
    return [k for k in base[3:].split(",") if len(k) >= 2 and k[1:].isdigit()]


def _events_ref(events: list[MovementEvent]) -> str | None:
    """The keys that fit in a content reference (the rest go out at the next slot); room is
    kept for the progress suffix of a long message."""
    keys: list[str] = []
    for event in events:
        candidate = "mv:" + ",".join([*keys, event.key])
        if len(candidate) > CONTENT_REF_LIMIT - 4:
            break
        keys.append(event.key)
    return "mv:" + ",".join(keys) if keys else None


__all__ = [
    "CUSTOM",
    "KEY_DATE",
    "MOVEMENT_NOTICES",
    "SPOTLIGHT",
    "TARGET_ALL",
    "TARGET_OFFICE",
    "TARGET_UNIT",
    "TARGET_UNITS",
    "UNCERTAIN",
    "WEEKLY_DIGEST",
    "AnnouncementService",
    "AnnouncementView",
    "Content",
    "DeedItem",
    "EventKind",
    "ExemplarItem",
    "MovementEvent",
    "PendingRun",
    "PlanReport",
    "RunStatus",
    "RunView",
]
