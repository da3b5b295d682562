"""Submissions: nominations of advanced exemplars (đề cử điển hình tiên tiến) and reports of good
deeds (người tốt, việc tốt), from the first draft to "submitted", plus the author's own view of
them (/my) and the author's notifications.

A draft is a real row (status draft) written step by step, so nothing typed is lost when the bot
restarts; the step a person is at lives in `flow_states` (the handlers' business). Every rule is
checked here: when a step is taken and again at Submit, because time passes between the two
(a deadline, a merged unit, a deactivated colleague).

Moderation (approve / reject / request changes / ballots) belongs to the moderation service; it
tells authors through `notify_author`, which is also what `set_status` here uses.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, literal, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from bot.config import SubmissionSettings
from bot.services import audit
from bot.services.clock import Clock
from bot.services.directory import Page, Viewer
from bot.services.errors import N_, AlreadyDecided, Conflict, InvalidInput, NotAllowed, NotFound
from bot.services.outbox import Kind, enqueue
from bot.services.outbox import button as outbox_button
from storage.db import Database, affected
from storage.models import (
    AppliesTo,
    Attachment,
    Criterion,
    Field,
    GoodDeed,
    Member,
    Movement,
    MovementStatus,
    Nomination,
    NominationCriterion,
    NomineeKind,
    Role,
    SubmissionStatus,
    Unit,
)

__all__ = [
    "ALLOWED_EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_QUERY_LENGTH",
    "OLDEST_DEED_DAYS",
    "PLACE_LIMIT",
    "AttachmentInput",
    "AttachmentView",
    "CriterionRef",
    "GoodDeedView",
    "ItemType",
    "MyItem",
    "NominationView",
    "NomineeKind",
    "SubmissionService",
    "SubmissionStatus",
    "SubmitHook",
    "clean_long_text",
    "notify_author",
    "parse_day",
]

PLACE_LIMIT = 200  # "where" of a good deed: a short line
CAPTION_LIMIT = 1024  # Telegram's caption limit
MAX_QUERY_LENGTH = 100  # a name search
MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download through the Bot API
OLDEST_DEED_DAYS = 366  # good deeds are praised while they are fresh
MY_PAGE_SIZE = 8

# Evidence: photos, and documents of these kinds only.
ALLOWED_EXTENSIONS = frozenset(
    {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "jpg", "jpeg", "png"}
)
ALLOWED_MIME_TYPES = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "image/jpeg",
        "image/pjpeg",
        "image/png",
    }
)
# sent by some clients for any file; the extension decides then
GENERIC_MIME_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})

EDITABLE = (SubmissionStatus.DRAFT.value, SubmissionStatus.CHANGES_REQUESTED.value)
# a nomination that still stands: a second one for the same nominee, movement and field is refused
LIVE = (
    SubmissionStatus.SUBMITTED.value,
    SubmissionStatus.IN_REVIEW.value,
    SubmissionStatus.APPROVED.value,
    SubmissionStatus.CHANGES_REQUESTED.value,
)


class ItemType(StrEnum):
    NOMINATION = "n"
    GOOD_DEED = "d"


# --- views -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachmentInput:
    """A photo or document as the handler received it (the largest size of a photo)."""

    kind: str  # photo | document
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class AttachmentView:
    id: int
    kind: str
    file_id: str
    file_name: str | None
    mime_type: str | None
    file_size: int | None
    caption: str | None


@dataclass(frozen=True, slots=True)
class CriterionRef:
    id: int
    text: str


@dataclass(frozen=True, slots=True)
class NominationView:
    id: int
    nominator_id: int
    kind: NomineeKind
    nominee_member_id: int | None
    nominee_unit_id: int | None
    nominee_name: str | None
    unit_id: int | None
    unit_name: str | None
    movement_id: int | None
    movement_name: str | None
    field_id: int | None
    field_name: str | None
    criteria: tuple[CriterionRef, ...]
    achievements: str | None
    good_practices: str | None
    status: SubmissionStatus
    review_note: str | None
    attachments: tuple[AttachmentView, ...]
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None

    @property
    def has_nominee(self) -> bool:
        return self.nominee_member_id is not None or self.nominee_unit_id is not None

    @property
    def is_empty(self) -> bool:
        """Nothing worth keeping has been entered yet."""
        return not (self.has_nominee or self.movement_id or self.achievements)


@dataclass(frozen=True, slots=True)
class GoodDeedView:
    id: int
    reporter_id: int
    kind: NomineeKind
    subject_member_id: int | None
    subject_unit_id: int | None
    subject_name: str | None
    unit_id: int | None
    unit_name: str | None
    description: str | None
    occurred_on: date | None
    place: str | None
    status: SubmissionStatus
    review_note: str | None
    attachments: tuple[AttachmentView, ...]
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None

    @property
    def has_subject(self) -> bool:
        return self.subject_member_id is not None or self.subject_unit_id is not None

    @property
    def is_empty(self) -> bool:
        return not (self.has_subject or self.description)


@dataclass(frozen=True, slots=True)
class MyItem:
    type: ItemType
    id: int
    name: str | None
    status: SubmissionStatus
    at: datetime


# --- text and dates ----------------------------------------------------------------------------


def clean_long_text(raw: str | None, *, limit: int, required: bool = True) -> str | None:
    """Free text kept exactly as typed (after NFC): HTML, Markdown, emoji, RTL and zero-width
    characters included. Refused: blank text when required, text over the limit, and control
    characters other than line breaks and tabs (no database stores a NUL)."""
    text = unicodedata.normalize("NFC", raw or "")
    for char in text:
        if char not in "\n\r\t" and unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidInput(
                N_(
                    "The text contains invisible control characters that cannot be kept. "
                    "Please type it again."
                )
            )
    if not text.strip():
        if required:
            raise InvalidInput(N_("Please type some text."))
        return None
    if len(text) > limit:
        raise InvalidInput(
            N_("That is too long ({length} characters): at most {limit} characters."),
            length=len(text),
            limit=limit,
        )
    return text


def parse_day(raw: str) -> date:
    """dd/mm/yyyy (also d/m/yyyy, with "-" or "." between) as a calendar date."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    for sep in ("-", "."):
        text = text.replace(sep, "/")
    parts = text.split("/")
    problem = InvalidInput(
        N_("Please type the date as dd/mm/yyyy, for example {example}."), example="05/03/2026"
    )
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise problem
    day, month, year = parts
    if not (1 <= len(day) <= 2 and 1 <= len(month) <= 2 and len(year) == 4):
        raise problem
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise InvalidInput(N_("There is no such date: {text}."), text=raw.strip()[:20]) from None


def _check_attachment(item: AttachmentInput) -> None:
    if item.kind not in ("photo", "document"):
        raise InvalidInput(N_("Only photos and documents can be attached."))
    if item.file_size is not None and item.file_size > MAX_FILE_BYTES:
        raise InvalidInput(
            N_("That file is too large ({size} MB): at most {limit} MB."),
            size=round(item.file_size / 1024 / 1024, 1),
            limit=MAX_FILE_BYTES // 1024 // 1024,
        )
    if not item.file_id or len(item.file_id) > 256 or len(item.file_unique_id) > 128:
        raise InvalidInput(N_("Only photos and documents can be attached."))
    if item.kind == "document":
        name = (item.file_name or "").strip()
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mime = (item.mime_type or "").lower()
        by_name = extension in ALLOWED_EXTENSIONS
        by_mime = mime in ALLOWED_MIME_TYPES
        ok = (by_name and (by_mime or not mime or mime in GENERIC_MIME_TYPES)) or (
            not extension and by_mime
        )
        if not ok:
            raise InvalidInput(
                N_(
                    "This kind of file cannot be attached. Please send photos, or PDF, Word, "
                    "Excel, PowerPoint, ODT, JPG or PNG documents."
                )
            )


# --- notifications -----------------------------------------------------------------------------

# (item type, status, with a note) -> message id; {name} is the nominee or the deed's subject
_STATUS_MESSAGES: dict[tuple[ItemType, str, bool], str] = {
    (ItemType.NOMINATION, "submitted", False): N_(
        "Your nomination of {name} (no. {id}) was received and is waiting for review."
    ),
    (ItemType.NOMINATION, "resubmitted", False): N_(
        "Your corrected nomination of {name} (no. {id}) was sent again for review."
    ),
    (ItemType.NOMINATION, "in_review", False): N_(
        "Your nomination of {name} (no. {id}) is now being voted on by the Emulation and "
        "Commendation Council."
    ),
    (ItemType.NOMINATION, "approved", False): N_(
        "Good news: your nomination of {name} (no. {id}) was approved."
    ),
    (ItemType.NOMINATION, "rejected", False): N_(
        "Your nomination of {name} (no. {id}) was not approved."
    ),
    (ItemType.NOMINATION, "rejected", True): N_(
        "Your nomination of {name} (no. {id}) was not approved. Reason: {note}"
    ),
    (ItemType.NOMINATION, "changes_requested", False): N_(
        "Your nomination of {name} (no. {id}) needs more information. Open it in /my to edit "
        "and resubmit it."
    ),
    (ItemType.NOMINATION, "changes_requested", True): N_(
        "Your nomination of {name} (no. {id}) needs more information: {note}\nOpen it in /my "
        "to edit and resubmit it."
    ),
    (ItemType.NOMINATION, "withdrawn", False): N_(
        "You withdrew your nomination of {name} (no. {id})."
    ),
    (ItemType.GOOD_DEED, "submitted", False): N_(
        "Your report of a good deed by {name} (no. {id}) was received and is waiting for review."
    ),
    (ItemType.GOOD_DEED, "resubmitted", False): N_(
        "Your corrected report of a good deed by {name} (no. {id}) was sent again for review."
    ),
    (ItemType.GOOD_DEED, "in_review", False): N_(
        "Your report of a good deed by {name} (no. {id}) is being reviewed."
    ),
    (ItemType.GOOD_DEED, "approved", False): N_(
        "Good news: your report of a good deed by {name} (no. {id}) was approved."
    ),
    (ItemType.GOOD_DEED, "rejected", False): N_(
        "Your report of a good deed by {name} (no. {id}) was not approved."
    ),
    (ItemType.GOOD_DEED, "rejected", True): N_(
        "Your report of a good deed by {name} (no. {id}) was not approved. Reason: {note}"
    ),
    (ItemType.GOOD_DEED, "changes_requested", False): N_(
        "Your report of a good deed by {name} (no. {id}) needs more information. Open it in "
        "/my to edit and resubmit it."
    ),
    (ItemType.GOOD_DEED, "changes_requested", True): N_(
        "Your report of a good deed by {name} (no. {id}) needs more information: {note}\nOpen "
        "it in /my to edit and resubmit it."
    ),
    (ItemType.GOOD_DEED, "withdrawn", False): N_(
        "You withdrew your report of a good deed by {name} (no. {id})."
    ),
}
OPEN_BUTTON = N_("Open")


def open_callback(item_type: ItemType, item_id: int) -> str:
    """The callback data of /my's "open" action (the codec of bot.keyboards, written by hand
    because services know nothing of Telegram)."""
    return f"my:o:{item_type.value}:{item_id}"


async def notify_author(
    session: AsyncSession,
    item: Nomination | GoodDeed,
    *,
    now: datetime,
    note: str | None = None,
    event: str | None = None,
) -> bool:
    """Tell the author of `item` about its current status, in their language, through the
    outbox, inside the caller's transaction. `event` overrides the status (e.g. "resubmitted").
    False when the author cannot be reached (no Telegram account linked) or nothing applies."""
    if isinstance(item, Nomination):
        item_type, author_id, name = (
            ItemType.NOMINATION,
            item.nominator_id,
            item.nominee_name_at_time,
        )
    else:
        item_type, author_id, name = ItemType.GOOD_DEED, item.reporter_id, item.subject_name_at_time
    key = event or item.status
    message = _STATUS_MESSAGES.get((item_type, key, bool(note)))
    if message is None:
        message = _STATUS_MESSAGES.get((item_type, key, False))
    if message is None:
        return False
    row = (
        await session.execute(
            select(Member.telegram_user_id, Member.language).where(Member.id == author_id)
        )
    ).first()
    if row is None or row.telegram_user_id is None:
        return False
    params: dict[str, Any] = {"name": name or "—", "id": item.id}
    if note:
        params["note"] = note
    enqueue(
        session,
        chat_id=int(row.telegram_user_id),
        message=message,
        language=row.language,
        now=now,
        kind=Kind.DECISION,
        buttons=[[outbox_button(OPEN_BUTTON, data=open_callback(item_type, item.id))]],
        **params,
    )
    return True


# --- the service -------------------------------------------------------------------------------


def _require_staff(viewer: Viewer) -> int:
    if viewer.member_id is None or not viewer.at_least(Role.STAFF):
        raise NotAllowed(N_("You are not a member yet."))
    return viewer.member_id


def _attachment_view(a: Attachment) -> AttachmentView:
    return AttachmentView(a.id, a.kind, a.file_id, a.file_name, a.mime_type, a.file_size, a.caption)


@asynccontextmanager
async def _settled() -> AsyncIterator[None]:
    """A concurrent change (optimistic version check) becomes a clear domain error."""
    try:
        yield
    except StaleDataError:
        raise AlreadyDecided(
            N_("Someone changed this item at the same moment. Please open it again.")
        ) from None


# called inside the transaction that moves an item to "submitted" (first time or again), after a
# flush: e.g. ModerationService.announce_new_submission(session, item, now=…)
SubmitHook = Callable[..., Awaitable[None]]


# what a person may still change: their draft, or an item sent back to them for changes
EDITABLE = (SubmissionStatus.DRAFT, SubmissionStatus.CHANGES_REQUESTED)
_Resumable = TypeVar("_Resumable", NominationView, GoodDeedView)


def _worth_resuming(item: _Resumable | None) -> _Resumable | None:
    if item is None:
        return None
    if item.status is SubmissionStatus.CHANGES_REQUESTED or not item.is_empty:
        return item
    return None


class SubmissionService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: SubmissionSettings | None = None,
        *,
        tz: ZoneInfo | None = None,
        on_submitted: Sequence[SubmitHook] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or SubmissionSettings()
        self.tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")
        self.on_submitted: list[SubmitHook] = list(on_submitted)

    def add_submitted_hook(self, hook: SubmitHook) -> None:
        """`hook(session, item, now=…)` runs in the transaction of every submit (a failure
        rolls the submit back)."""
        self.on_submitted.append(hook)

    async def _submitted(
        self, session: AsyncSession, item: Nomination | GoodDeed, now: datetime
    ) -> None:
        for hook in self.on_submitted:
            await hook(session, item, now=now)

    # --- shared rules --------------------------------------------------------------------------

    def today(self) -> date:
        """The office-local calendar day now."""
        return self.clock.now().astimezone(self.tz).date()

    def _day_bounds(self, now: datetime) -> tuple[datetime, datetime]:
        start = datetime.combine(now.astimezone(self.tz).date(), time(0), tzinfo=self.tz)
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)

    async def _check_daily_cap(self, session: AsyncSession, member_id: int, now: datetime) -> None:
        start, end = self._day_bounds(now)
        nominations = await session.scalar(
            select(func.count())
            .select_from(Nomination)
            .where(
                Nomination.nominator_id == member_id,
                Nomination.status != SubmissionStatus.DRAFT.value,
                Nomination.submitted_at >= start,
                Nomination.submitted_at < end,
            )
        )
        deeds = await session.scalar(
            select(func.count())
            .select_from(GoodDeed)
            .where(
                GoodDeed.reporter_id == member_id,
                GoodDeed.status != SubmissionStatus.DRAFT.value,
                GoodDeed.submitted_at >= start,
                GoodDeed.submitted_at < end,
            )
        )
        cap = self.settings.daily_cap
        if int(nominations or 0) + int(deeds or 0) >= cap:
            raise NotAllowed(
                N_(
                    "You have already sent {cap} nominations and reports today, the daily "
                    "limit. Your draft is kept: please send it tomorrow."
                ),
                cap=cap,
            )

    async def _eligible_member(
        self, session: AsyncSession, member_id: int, author_id: int, *, deed: bool
    ) -> tuple[Member, str | None]:
        member = await session.get(Member, member_id)
        if member is None:
            raise NotFound(N_("That person is not in the directory."))
        if member.id == author_id:
            if deed:
                raise NotAllowed(
                    N_("You cannot report your own good deed; let a colleague tell it.")
                )
            if not self.settings.allow_self_nomination:
                raise NotAllowed(N_("You cannot nominate yourself."))
        if not member.active:
            raise Conflict(
                N_("{name} is no longer active in the directory; please choose someone else."),
                name=member.full_name,
            )
        unit_name = None
        if member.unit_id is not None:
            unit_name = await session.scalar(select(Unit.name).where(Unit.id == member.unit_id))
        return member, unit_name

    async def _eligible_unit(self, session: AsyncSession, unit_id: int) -> Unit:
        unit = await session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(N_("That unit no longer exists."))
        if not unit.active or unit.merged_into_id is not None:
            raise Conflict(
                N_("The unit {name} was merged or is no longer active; please choose another."),
                name=unit.name,
            )
        return unit

    async def _accepting_movement(
        self, session: AsyncSession, movement_id: int, now: datetime
    ) -> Movement:
        movement = await session.get(Movement, movement_id)
        if movement is None:
            raise NotFound(N_("That movement no longer exists."))
        if movement.status != MovementStatus.OPEN.value:
            raise Conflict(
                N_("The movement {name} is not accepting nominations."), name=movement.name
            )
        if now >= movement.nomination_deadline:
            raise Conflict(
                N_(
                    "The deadline for nominations in {name} passed at {deadline}. Your draft "
                    "is kept; you can choose another movement."
                ),
                name=movement.name,
                deadline=movement.nomination_deadline,
            )
        return movement

    async def _applicable_criteria(
        self, session: AsyncSession, field_id: int | None, kind: str
    ) -> dict[int, str]:
        """Active criteria of the field (and the general ones) for this kind of nominee: a
        private read so the check runs inside the caller's transaction."""
        field_match: ColumnElement[bool] = Criterion.field_id.is_(None)
        if field_id is not None:
            field_match = or_(Criterion.field_id == field_id, Criterion.field_id.is_(None))
        rows = await session.execute(
            select(Criterion.id, Criterion.text).where(
                Criterion.active.is_(True),
                field_match,
                Criterion.applies_to.in_([AppliesTo.BOTH.value, kind]),
            )
        )
        return {int(r.id): r.text for r in rows}

    async def _any_active_field(self, session: AsyncSession) -> bool:
        return (
            await session.scalar(select(Field.id).where(Field.active.is_(True)).limit(1))
        ) is not None

    async def _add_attachment(
        self,
        session: AsyncSession,
        item: AttachmentInput,
        *,
        nomination_id: int | None = None,
        good_deed_id: int | None = None,
        limit: int,
        now: datetime,
    ) -> int:
        _check_attachment(item)
        caption = clean_long_text(item.caption, limit=CAPTION_LIMIT, required=False)
        owner = (
            Attachment.nomination_id == nomination_id
            if nomination_id is not None
            else Attachment.good_deed_id == good_deed_id
        )
        existing = list(await session.scalars(select(Attachment.file_unique_id).where(owner)))
        if item.file_unique_id in existing:
            return len(existing)  # the same file twice (a resent album): kept once
        if len(existing) >= limit:
            raise InvalidInput(
                N_("At most {limit} files can be attached; this one was not added."),
                limit=limit,
            )
        session.add(
            Attachment(
                nomination_id=nomination_id,
                good_deed_id=good_deed_id,
                kind=item.kind,
                file_id=item.file_id,
                file_unique_id=item.file_unique_id,
                file_name=(item.file_name or None) and item.file_name[:256],
                mime_type=(item.mime_type or None) and item.mime_type[:128],
                file_size=item.file_size,
                caption=caption,
                created_at=now,
            )
        )
        return len(existing) + 1

    # --- nominations: the draft ------------------------------------------------------------------

    async def _own_nomination(
        self, session: AsyncSession, viewer: Viewer, nomination_id: int, *, editable: bool = True
    ) -> Nomination:
        member_id = _require_staff(viewer)
        nomination = await session.get(Nomination, nomination_id)
        if nomination is None or nomination.nominator_id != member_id:
            raise NotFound(N_("That nomination no longer exists."))
        if editable and nomination.status not in EDITABLE:
            raise AlreadyDecided(
                N_("This nomination was already sent and can no longer be changed here.")
            )
        return nomination

    async def resumable_nomination(
        self, viewer: Viewer, flow_item_id: int | None
    ) -> NominationView | None:
        """The nomination worth offering to continue: the one the person's flow points at (a
        draft, or one sent back for changes), else their latest draft; None when nothing worth
        keeping has been entered."""
        current: NominationView | None = None
        if flow_item_id is not None:
            with suppress(NotFound):  # gone meanwhile: start afresh
                current = await self.get_nomination(viewer, flow_item_id)
            if current is not None and current.status not in EDITABLE:
                current = None
        if current is None:
            current = await self.current_nomination_draft(viewer)
        return _worth_resuming(current)

    async def current_nomination_draft(self, viewer: Viewer) -> NominationView | None:
        member_id = _require_staff(viewer)
        async with self.db.read() as session:
            draft_id = await session.scalar(
                select(Nomination.id)
                .where(
                    Nomination.nominator_id == member_id,
                    Nomination.status == SubmissionStatus.DRAFT.value,
                )
                .order_by(Nomination.id.desc())
                .limit(1)
            )
            return None if draft_id is None else await self._nomination_view(session, draft_id)

    async def start_nomination(self, viewer: Viewer) -> NominationView:
        """A fresh draft; an older draft of the same person is discarded (one at a time)."""
        member_id = _require_staff(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            nomination = Nomination(
                nominator_id=member_id,
                nominee_kind=NomineeKind.INDIVIDUAL.value,
                status=SubmissionStatus.DRAFT.value,
                created_at=now,
            )
            session.add(nomination)
            await session.flush()  # first, so that the new draft never takes the old one's id
            await session.execute(
                delete(Nomination).where(
                    Nomination.nominator_id == member_id,
                    Nomination.status == SubmissionStatus.DRAFT.value,
                    Nomination.id != nomination.id,
                )
            )
            return await self._nomination_view(session, nomination.id)

    async def set_nominee_kind(
        self, viewer: Viewer, nomination_id: int, kind: NomineeKind
    ) -> NominationView:
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            if n.nominee_kind != kind.value:
                n.nominee_kind = kind.value
                n.nominee_member_id = n.nominee_unit_id = None
                n.nominee_name_at_time = n.unit_id = n.unit_name_at_time = None
                await self._drop_inapplicable_criteria(session, n)
            return await self._nomination_view(session, n.id)

    async def set_nominee_member(
        self, viewer: Viewer, nomination_id: int, member_id: int
    ) -> NominationView:
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            if n.nominee_kind != NomineeKind.INDIVIDUAL.value:
                raise InvalidInput(N_("This nomination is for a collective; choose a unit."))
            member, unit_name = await self._eligible_member(
                session, member_id, n.nominator_id, deed=False
            )
            n.nominee_member_id, n.nominee_unit_id = member.id, None
            n.nominee_name_at_time = member.full_name
            n.unit_id, n.unit_name_at_time = member.unit_id, unit_name
            return await self._nomination_view(session, n.id)

    async def set_nominee_unit(
        self, viewer: Viewer, nomination_id: int, unit_id: int
    ) -> NominationView:
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            if n.nominee_kind != NomineeKind.COLLECTIVE.value:
                raise InvalidInput(N_("This nomination is for an individual; choose a person."))
            unit = await self._eligible_unit(session, unit_id)
            n.nominee_unit_id, n.nominee_member_id = unit.id, None
            n.nominee_name_at_time = unit.name
            n.unit_id, n.unit_name_at_time = unit.id, unit.name
            return await self._nomination_view(session, n.id)

    async def set_movement(
        self, viewer: Viewer, nomination_id: int, movement_id: int
    ) -> NominationView:
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            movement = await self._accepting_movement(session, movement_id, now)
            n.movement_id = movement.id
            return await self._nomination_view(session, n.id)

    async def set_field(self, viewer: Viewer, nomination_id: int, field_id: int) -> NominationView:
        """The field of work; criteria chosen earlier that do not belong to it are dropped."""
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            found = await session.get(Field, field_id)
            if found is None or not found.active:
                raise NotFound(N_("That field is no longer in use; please choose another."))
            n.field_id = found.id
            await self._drop_inapplicable_criteria(session, n)
            return await self._nomination_view(session, n.id)

    async def _drop_inapplicable_criteria(self, session: AsyncSession, n: Nomination) -> None:
        keep = await self._applicable_criteria(session, n.field_id, n.nominee_kind)
        await session.execute(
            delete(NominationCriterion).where(
                NominationCriterion.nomination_id == n.id,
                NominationCriterion.criterion_id.not_in(list(keep) or [-1]),
            )
        )

    async def toggle_criterion(
        self, viewer: Viewer, nomination_id: int, criterion_id: int
    ) -> NominationView:
        """Tick a criterion that was met, or untick it."""
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            unticked = affected(
                await session.execute(
                    delete(NominationCriterion).where(
                        NominationCriterion.nomination_id == n.id,
                        NominationCriterion.criterion_id == criterion_id,
                    )
                )
            )
            if not unticked:
                applicable = await self._applicable_criteria(session, n.field_id, n.nominee_kind)
                if criterion_id not in applicable:
                    raise NotFound(
                        N_("That criterion does not apply here (any more); please look again.")
                    )
                session.add(NominationCriterion(nomination_id=n.id, criterion_id=criterion_id))
                await session.flush()
            return await self._nomination_view(session, n.id)

    async def check_criteria(self, viewer: Viewer, nomination_id: int) -> NominationView:
        """Leaving the criteria step: at least one must be chosen (when any apply)."""
        async with self.db.read() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            await self._require_criteria(session, n)
            return await self._nomination_view(session, n.id)

    async def _require_criteria(self, session: AsyncSession, n: Nomination) -> None:
        applicable = await self._applicable_criteria(session, n.field_id, n.nominee_kind)
        if not applicable:
            return
        chosen = set(
            await session.scalars(
                select(NominationCriterion.criterion_id).where(
                    NominationCriterion.nomination_id == n.id
                )
            )
        )
        if not chosen & set(applicable):
            raise InvalidInput(N_("Please choose at least one criterion that was met."))

    async def set_achievements(self, viewer: Viewer, nomination_id: int, text: str) -> str:
        value = clean_long_text(text, limit=self.settings.max_text_length)
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            n.achievements = value
        assert value is not None
        return value

    async def set_good_practices(
        self, viewer: Viewer, nomination_id: int, text: str | None
    ) -> str | None:
        """Good practices worth replicating (kinh nghiệm, cách làm hay); None skips them."""
        value = None if text is None else clean_long_text(text, limit=self.settings.max_text_length)
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            n.good_practices = value
        return value

    async def add_nomination_attachment(
        self, viewer: Viewer, nomination_id: int, item: AttachmentInput
    ) -> int:
        """Adds evidence; returns how many files the nomination has now."""
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            return await self._add_attachment(
                session,
                item,
                nomination_id=n.id,
                limit=self.settings.max_attachments,
                now=now,
            )

    async def clear_nomination_attachments(self, viewer: Viewer, nomination_id: int) -> None:
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            await session.execute(delete(Attachment).where(Attachment.nomination_id == n.id))

    async def live_duplicate(self, viewer: Viewer, nomination_id: int) -> NominationView | None:
        """The author's standing nomination of the same nominee in the same movement and field."""
        async with self.db.read() as session:
            n = await self._own_nomination(session, viewer, nomination_id, editable=False)
            other = await self._duplicate_of(session, n)
            return None if other is None else await self._nomination_view(session, other)

    async def _duplicate_of(self, session: AsyncSession, n: Nomination) -> int | None:
        if not (n.nominee_member_id or n.nominee_unit_id) or n.movement_id is None:
            return None
        stmt = select(Nomination.id).where(
            Nomination.nominator_id == n.nominator_id,
            Nomination.movement_id == n.movement_id,
            Nomination.status.in_(LIVE),
            Nomination.id != n.id,
        )
        if n.field_id is None:
            stmt = stmt.where(Nomination.field_id.is_(None))
        else:
            stmt = stmt.where(Nomination.field_id == n.field_id)
        if n.nominee_member_id is not None:
            stmt = stmt.where(Nomination.nominee_member_id == n.nominee_member_id)
        else:
            stmt = stmt.where(Nomination.nominee_unit_id == n.nominee_unit_id)
        found = await session.scalar(stmt.order_by(Nomination.id).limit(1))
        return None if found is None else int(found)

    async def submit_nomination(self, viewer: Viewer, nomination_id: int) -> NominationView:
        """Every rule again, then status submitted (also after changes were requested)."""
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            n = await self._own_nomination(session, viewer, nomination_id)
            resubmission = n.status == SubmissionStatus.CHANGES_REQUESTED.value
            # the nominee, as the directory knows them now
            if n.nominee_kind == NomineeKind.INDIVIDUAL.value:
                if n.nominee_member_id is None:
                    raise InvalidInput(N_("Please choose whom you nominate."))
                member, unit_name = await self._eligible_member(
                    session, n.nominee_member_id, n.nominator_id, deed=False
                )
                n.nominee_name_at_time = member.full_name
                n.unit_id, n.unit_name_at_time = member.unit_id, unit_name
            else:
                if n.nominee_unit_id is None:
                    raise InvalidInput(N_("Please choose the unit you nominate."))
                unit = await self._eligible_unit(session, n.nominee_unit_id)
                n.nominee_name_at_time = unit.name
                n.unit_id, n.unit_name_at_time = unit.id, unit.name
            if n.movement_id is None:
                raise InvalidInput(N_("Please choose the emulation movement."))
            if resubmission:
                movement = await session.get(Movement, n.movement_id)
                if movement is None or movement.status != MovementStatus.OPEN.value:
                    raise Conflict(
                        N_("The movement {name} is not accepting nominations."),
                        name=movement.name if movement else "—",
                    )
            else:
                await self._accepting_movement(session, n.movement_id, now)
            if n.field_id is None and await self._any_active_field(session):
                raise InvalidInput(N_("Please choose the field of work."))
            await self._require_criteria(session, n)
            if not n.achievements:
                raise InvalidInput(N_("Please describe the achievements."))
            duplicate = await self._duplicate_of(session, n)
            if duplicate is not None:
                raise Conflict(
                    N_(
                        "You have already nominated {name} in this movement and field (no. "
                        "{id}). Open /my to see it."
                    ),
                    name=n.nominee_name_at_time or "—",
                    id=duplicate,
                )
            if not resubmission:
                await self._check_daily_cap(session, n.nominator_id, now)
            n.status = SubmissionStatus.SUBMITTED.value
            n.submitted_at = now
            await session.flush()
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="nomination.resubmit" if resubmission else "nomination.submit",
                target_type="nomination",
                target_id=n.id,
                at=now,
            )
            await notify_author(session, n, now=now, event="resubmitted" if resubmission else None)
            await self._submitted(session, n, now)
            return await self._nomination_view(session, n.id)

    async def abandon_nomination(self, viewer: Viewer, nomination_id: int) -> bool:
        """Leaving the flow: a draft is deleted (True); an item being corrected after a request
        for changes keeps what was saved and its status (False)."""
        async with self.db.transaction() as session:
            member_id = _require_staff(viewer)
            result = await session.execute(
                delete(Nomination).where(
                    Nomination.id == nomination_id,
                    Nomination.nominator_id == member_id,
                    Nomination.status == SubmissionStatus.DRAFT.value,
                )
            )
            return bool(affected(result))

    async def get_nomination(self, viewer: Viewer, nomination_id: int) -> NominationView:
        """The author sees their own; council members and admins see any that was sent."""
        member_id = _require_staff(viewer)
        async with self.db.read() as session:
            n = await session.get(Nomination, nomination_id)
            visible = n is not None and (
                n.nominator_id == member_id
                or (viewer.is_council and n.status != SubmissionStatus.DRAFT.value)
            )
            if n is None or not visible:
                raise NotFound(N_("That nomination no longer exists."))
            return await self._nomination_view(session, n.id)

    async def _nomination_view(self, session: AsyncSession, nomination_id: int) -> NominationView:
        row = (
            await session.execute(
                select(Nomination, Movement.name, Field.name)
                .outerjoin(Movement, Movement.id == Nomination.movement_id)
                .outerjoin(Field, Field.id == Nomination.field_id)
                .where(Nomination.id == nomination_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        if row is None:
            raise NotFound(N_("That nomination no longer exists."))
        n, movement_name, field_name = row
        criteria = await session.execute(
            select(Criterion.id, Criterion.text)
            .join(NominationCriterion, NominationCriterion.criterion_id == Criterion.id)
            .where(NominationCriterion.nomination_id == n.id)
            .order_by(Criterion.field_id.is_(None), Criterion.sort_order, Criterion.id)
        )
        attachments = await session.scalars(
            select(Attachment).where(Attachment.nomination_id == n.id).order_by(Attachment.id)
        )
        return NominationView(
            id=n.id,
            nominator_id=n.nominator_id,
            kind=NomineeKind(n.nominee_kind),
            nominee_member_id=n.nominee_member_id,
            nominee_unit_id=n.nominee_unit_id,
            nominee_name=n.nominee_name_at_time,
            unit_id=n.unit_id,
            unit_name=n.unit_name_at_time,
            movement_id=n.movement_id,
            movement_name=movement_name,
            field_id=n.field_id,
            field_name=field_name,
            criteria=tuple(CriterionRef(int(c.id), c.text) for c in criteria),
            achievements=n.achievements,
            good_practices=n.good_practices,
            status=SubmissionStatus(n.status),
            review_note=n.review_note,
            attachments=tuple(_attachment_view(a) for a in attachments),
            created_at=n.created_at,
            submitted_at=n.submitted_at,
            decided_at=n.decided_at,
        )

    # --- good deeds: the draft -------------------------------------------------------------------

    async def _own_deed(
        self, session: AsyncSession, viewer: Viewer, deed_id: int, *, editable: bool = True
    ) -> GoodDeed:
        member_id = _require_staff(viewer)
        deed = await session.get(GoodDeed, deed_id)
        if deed is None or deed.reporter_id != member_id:
            raise NotFound(N_("That report no longer exists."))
        if editable and deed.status not in EDITABLE:
            raise AlreadyDecided(
                N_("This report was already sent and can no longer be changed here.")
            )
        return deed

    async def resumable_deed(self, viewer: Viewer, flow_item_id: int | None) -> GoodDeedView | None:
        """As `resumable_nomination`, for good-deed reports."""
        current: GoodDeedView | None = None
        if flow_item_id is not None:
            with suppress(NotFound):
                current = await self.get_deed(viewer, flow_item_id)
            if current is not None and current.status not in EDITABLE:
                current = None
        if current is None:
            current = await self.current_deed_draft(viewer)
        return _worth_resuming(current)

    async def current_deed_draft(self, viewer: Viewer) -> GoodDeedView | None:
        member_id = _require_staff(viewer)
        async with self.db.read() as session:
            deed_id = await session.scalar(
                select(GoodDeed.id)
                .where(
                    GoodDeed.reporter_id == member_id,
                    GoodDeed.status == SubmissionStatus.DRAFT.value,
                )
                .order_by(GoodDeed.id.desc())
                .limit(1)
            )
            return None if deed_id is None else await self._deed_view(session, deed_id)

    async def start_deed(self, viewer: Viewer) -> GoodDeedView:
        member_id = _require_staff(viewer)
        now = self.clock.now()
        async with self.db.transaction() as session:
            deed = GoodDeed(
                reporter_id=member_id,
                subject_kind=NomineeKind.INDIVIDUAL.value,
                status=SubmissionStatus.DRAFT.value,
                created_at=now,
            )
            session.add(deed)
            await session.flush()
            await session.execute(
                delete(GoodDeed).where(
                    GoodDeed.reporter_id == member_id,
                    GoodDeed.status == SubmissionStatus.DRAFT.value,
                    GoodDeed.id != deed.id,
                )
            )
            return await self._deed_view(session, deed.id)

    async def set_deed_member(self, viewer: Viewer, deed_id: int, member_id: int) -> GoodDeedView:
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            member, unit_name = await self._eligible_member(
                session, member_id, deed.reporter_id, deed=True
            )
            deed.subject_kind = NomineeKind.INDIVIDUAL.value
            deed.subject_member_id, deed.subject_unit_id = member.id, None
            deed.subject_name_at_time = member.full_name
            deed.unit_id, deed.unit_name_at_time = member.unit_id, unit_name
            return await self._deed_view(session, deed.id)

    async def set_deed_unit(self, viewer: Viewer, deed_id: int, unit_id: int) -> GoodDeedView:
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            unit = await self._eligible_unit(session, unit_id)
            deed.subject_kind = NomineeKind.COLLECTIVE.value
            deed.subject_unit_id, deed.subject_member_id = unit.id, None
            deed.subject_name_at_time = unit.name
            deed.unit_id, deed.unit_name_at_time = unit.id, unit.name
            return await self._deed_view(session, deed.id)

    async def set_deed_description(self, viewer: Viewer, deed_id: int, text: str) -> str:
        value = clean_long_text(text, limit=self.settings.max_text_length)
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            deed.description = value
        assert value is not None
        return value

    def check_deed_day(self, day: date) -> date:
        today = self.today()
        if day > today:
            raise InvalidInput(
                N_("{date} is in the future. Please give the day the good deed happened."),
                date=day,
            )
        if (today - day).days > OLDEST_DEED_DAYS:
            raise InvalidInput(
                N_(
                    "{date} is more than a year ago. Good deeds are praised while they are "
                    "fresh: please report one from the past twelve months."
                ),
                date=day,
            )
        return day

    async def set_deed_day(self, viewer: Viewer, deed_id: int, day: date | str) -> date:
        """The day it happened: a date, or text typed as dd/mm/yyyy."""
        value = self.check_deed_day(parse_day(day) if isinstance(day, str) else day)
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            deed.occurred_on = value
        return value

    async def set_deed_place(self, viewer: Viewer, deed_id: int, text: str | None) -> str | None:
        value = None if text is None else clean_long_text(text, limit=PLACE_LIMIT)
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            deed.place = value
        return value

    async def set_deed_photo(
        self, viewer: Viewer, deed_id: int, item: AttachmentInput | None
    ) -> int:
        """The deed's one photo (a new one replaces the old); None removes it."""
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            if item is not None:
                _check_attachment(item)
                if item.kind == "document" and (item.mime_type or "").lower() not in (
                    "image/jpeg",
                    "image/pjpeg",
                    "image/png",
                ):
                    raise InvalidInput(N_("Please send a photo."))
            await session.execute(delete(Attachment).where(Attachment.good_deed_id == deed.id))
            if item is None:
                return 0
            return await self._add_attachment(session, item, good_deed_id=deed.id, limit=1, now=now)

    async def submit_deed(self, viewer: Viewer, deed_id: int) -> GoodDeedView:
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            deed = await self._own_deed(session, viewer, deed_id)
            resubmission = deed.status == SubmissionStatus.CHANGES_REQUESTED.value
            if deed.subject_member_id is not None:
                member, unit_name = await self._eligible_member(
                    session, deed.subject_member_id, deed.reporter_id, deed=True
                )
                deed.subject_name_at_time = member.full_name
                deed.unit_id, deed.unit_name_at_time = member.unit_id, unit_name
            elif deed.subject_unit_id is not None:
                unit = await self._eligible_unit(session, deed.subject_unit_id)
                deed.subject_name_at_time = unit.name
                deed.unit_id, deed.unit_name_at_time = unit.id, unit.name
            else:
                raise InvalidInput(N_("Please choose who did the good deed."))
            if not deed.description:
                raise InvalidInput(N_("Please tell what happened."))
            if deed.occurred_on is None:
                raise InvalidInput(N_("Please give the day it happened."))
            if not resubmission:
                self.check_deed_day(deed.occurred_on)
                await self._check_daily_cap(session, deed.reporter_id, now)
            deed.status = SubmissionStatus.SUBMITTED.value
            deed.submitted_at = now
            await session.flush()
            audit.record(
                session,
                actor_member_id=viewer.member_id,
                action="good_deed.resubmit" if resubmission else "good_deed.submit",
                target_type="good_deed",
                target_id=deed.id,
                at=now,
            )
            await notify_author(
                session, deed, now=now, event="resubmitted" if resubmission else None
            )
            await self._submitted(session, deed, now)
            return await self._deed_view(session, deed.id)

    async def abandon_deed(self, viewer: Viewer, deed_id: int) -> bool:
        async with self.db.transaction() as session:
            member_id = _require_staff(viewer)
            result = await session.execute(
                delete(GoodDeed).where(
                    GoodDeed.id == deed_id,
                    GoodDeed.reporter_id == member_id,
                    GoodDeed.status == SubmissionStatus.DRAFT.value,
                )
            )
            return bool(affected(result))

    async def get_deed(self, viewer: Viewer, deed_id: int) -> GoodDeedView:
        """The reporter sees their own; council members, admins and the officers of the deed's
        unit see any that was sent."""
        member_id = _require_staff(viewer)
        async with self.db.read() as session:
            deed = await session.get(GoodDeed, deed_id)
            visible = deed is not None and (
                deed.reporter_id == member_id
                or (
                    deed.status != SubmissionStatus.DRAFT.value
                    and (
                        viewer.is_council
                        or (viewer.is_unit_officer and deed.unit_id == viewer.unit_id)
                    )
                )
            )
            if deed is None or not visible:
                raise NotFound(N_("That report no longer exists."))
            return await self._deed_view(session, deed.id)

    async def _deed_view(self, session: AsyncSession, deed_id: int) -> GoodDeedView:
        deed = (
            await session.scalars(
                select(GoodDeed)
                .where(GoodDeed.id == deed_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        if deed is None:
            raise NotFound(N_("That report no longer exists."))
        attachments = await session.scalars(
            select(Attachment).where(Attachment.good_deed_id == deed.id).order_by(Attachment.id)
        )
        return GoodDeedView(
            id=deed.id,
            reporter_id=deed.reporter_id,
            kind=NomineeKind(deed.subject_kind),
            subject_member_id=deed.subject_member_id,
            subject_unit_id=deed.subject_unit_id,
            subject_name=deed.subject_name_at_time,
            unit_id=deed.unit_id,
            unit_name=deed.unit_name_at_time,
            description=deed.description,
            occurred_on=deed.occurred_on,
            place=deed.place,
            status=SubmissionStatus(deed.status),
            review_note=deed.review_note,
            attachments=tuple(_attachment_view(a) for a in attachments),
            created_at=deed.created_at,
            submitted_at=deed.submitted_at,
            decided_at=deed.decided_at,
        )

    # --- the author's own items (/my) ----------------------------------------------------------

    async def my_items(
        self, viewer: Viewer, page: int = 0, page_size: int = MY_PAGE_SIZE
    ) -> Page[MyItem]:
        """Everything the person sent (drafts excluded), newest first."""
        member_id = _require_staff(viewer)
        draft = SubmissionStatus.DRAFT.value
        nominations = select(
            literal(ItemType.NOMINATION.value).label("type"),
            Nomination.id.label("id"),
            Nomination.nominee_name_at_time.label("name"),
            Nomination.status.label("status"),
            func.coalesce(Nomination.submitted_at, Nomination.created_at).label("at"),
        ).where(Nomination.nominator_id == member_id, Nomination.status != draft)
        deeds = select(
            literal(ItemType.GOOD_DEED.value).label("type"),
            GoodDeed.id.label("id"),
            GoodDeed.subject_name_at_time.label("name"),
            GoodDeed.status.label("status"),
            func.coalesce(GoodDeed.submitted_at, GoodDeed.created_at).label("at"),
        ).where(GoodDeed.reporter_id == member_id, GoodDeed.status != draft)
        async with self.db.read() as session:
            total = int(
                (
                    await session.scalar(
                        select(func.count())
                        .select_from(Nomination)
                        .where(Nomination.nominator_id == member_id, Nomination.status != draft)
                    )
                )
                or 0
            ) + int(
                (
                    await session.scalar(
                        select(func.count())
                        .select_from(GoodDeed)
                        .where(GoodDeed.reporter_id == member_id, GoodDeed.status != draft)
                    )
                )
                or 0
            )
            pages = max(1, -(-total // page_size))
            page = min(max(page, 0), pages - 1)
            both = union_all(nominations, deeds).subquery()
            rows = await session.execute(
                select(both.c.type, both.c.id, both.c.name, both.c.status, both.c.at)
                .order_by(both.c.at.desc(), both.c.id.desc())
                .offset(page * page_size)
                .limit(page_size)
            )
            items = [
                MyItem(
                    ItemType(r.type),
                    int(r.id),
                    r.name,
                    SubmissionStatus(r.status),
                    _aware(r.at),
                )
                for r in rows
            ]
        return Page(items, page, pages, total)

    async def withdraw(self, viewer: Viewer, item_type: ItemType, item_id: int) -> None:
        """The author takes back a pending item (submitted, not yet under review or vote)."""
        member_id = _require_staff(viewer)
        model: type[Nomination] | type[GoodDeed]
        if item_type is ItemType.NOMINATION:
            model, author = Nomination, Nomination.nominator_id
        else:
            model, author = GoodDeed, GoodDeed.reporter_id
        now = self.clock.now()
        async with self.db.transaction() as session:
            won = affected(
                await session.execute(
                    update(model)
                    .where(
                        model.id == item_id,
                        author == member_id,
                        model.status == SubmissionStatus.SUBMITTED.value,
                    )
                    .values(
                        status=SubmissionStatus.WITHDRAWN.value,
                        version=model.version + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            item = await _load(session, item_type, item_id, fresh=True)
            author_id = (
                (item.nominator_id if isinstance(item, Nomination) else item.reporter_id)
                if item is not None
                else None
            )
            if (
                item is None
                or author_id != member_id
                or item.status == SubmissionStatus.DRAFT.value
            ):
                raise NotFound(
                    N_("That nomination no longer exists.")
                    if item_type is ItemType.NOMINATION
                    else N_("That report no longer exists.")
                )
            if not won:
                if item.status == SubmissionStatus.IN_REVIEW.value:
                    raise AlreadyDecided(
                        N_(
                            "It is already under review or being voted on; it can no longer "
                            "be withdrawn."
                        )
                    )
                if item.status == SubmissionStatus.WITHDRAWN.value:
                    raise AlreadyDecided(N_("You have already withdrawn it."))
                raise AlreadyDecided(N_("Only a pending submission can be withdrawn."))
            audit.record(
                session,
                actor_member_id=member_id,
                action=f"{_target(item_type)}.withdraw",
                target_type=_target(item_type),
                target_id=item_id,
                at=now,
            )
            await notify_author(session, item, now=now)

    async def reopen(self, viewer: Viewer, item_type: ItemType, item_id: int) -> None:
        """Checks that the author may edit and resubmit the item (changes were requested)."""
        async with self.db.read() as session:
            item: Nomination | GoodDeed
            if item_type is ItemType.NOMINATION:
                item = await self._own_nomination(session, viewer, item_id, editable=False)
            else:
                item = await self._own_deed(session, viewer, item_id, editable=False)
            if item.status != SubmissionStatus.CHANGES_REQUESTED.value:
                raise AlreadyDecided(N_("Only an item with a request for changes can be edited."))

    async def set_status(
        self,
        item_type: ItemType,
        item_id: int,
        status: SubmissionStatus,
        *,
        actor: Viewer | None = None,
        note: str | None = None,
    ) -> None:
        """A status change by a moderator (or the system when `actor` is None); the author is
        told. The moderation service owns the decisions; this is the primitive they rest on."""
        if actor is not None and not (
            actor.is_council or (item_type is ItemType.GOOD_DEED and actor.is_unit_officer)
        ):
            raise NotAllowed(N_("Only moderators can change the status of a submission."))
        if status is SubmissionStatus.DRAFT:
            raise InvalidInput(N_("A submission cannot go back to being a draft."))
        note_value = (
            None if note is None else clean_long_text(note, limit=self.settings.max_text_length)
        )
        now = self.clock.now()
        async with _settled(), self.db.transaction() as session:
            item = await _load(session, item_type, item_id)
            if item is None or item.status == SubmissionStatus.DRAFT.value:
                raise NotFound(
                    N_("That nomination no longer exists.")
                    if item_type is ItemType.NOMINATION
                    else N_("That report no longer exists.")
                )
            if item.status == status.value:
                raise AlreadyDecided(N_("Nothing to change: the status is already that."))
            if item.status == SubmissionStatus.WITHDRAWN.value:
                raise AlreadyDecided(N_("Its author has withdrawn it."))
            before = item.status
            item.status = status.value
            if note_value is not None:
                item.review_note = note_value
            if status in (SubmissionStatus.APPROVED, SubmissionStatus.REJECTED):
                item.decided_at = now
            await session.flush()
            audit.record(
                session,
                actor_member_id=actor.member_id if actor else None,
                action=f"{_target(item_type)}.status",
                target_type=_target(item_type),
                target_id=item_id,
                at=now,
                before=before,
                after=status.value,
            )
            await notify_author(session, item, now=now, note=note_value)

    async def attachments(
        self, viewer: Viewer, item_type: ItemType, item_id: int
    ) -> Sequence[AttachmentView]:
        if item_type is ItemType.NOMINATION:
            return (await self.get_nomination(viewer, item_id)).attachments
        return (await self.get_deed(viewer, item_id)).attachments


async def _load(
    session: AsyncSession, item_type: ItemType, item_id: int, *, fresh: bool = False
) -> Nomination | GoodDeed | None:
    if item_type is ItemType.NOMINATION:
        return await session.get(Nomination, item_id, populate_existing=fresh)
    return await session.get(GoodDeed, item_id, populate_existing=fresh)


def _target(item_type: ItemType) -> str:
    return "nomination" if item_type is ItemType.NOMINATION else "good_deed"


def _aware(value: Any) -> datetime:
    """A datetime read through a UNION (SQLite hands back text or naive values there)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)
