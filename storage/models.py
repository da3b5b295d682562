"""Declarative models: the whole Hoa Đẹp data model.

Datetimes are stored as timezone-aware UTC; dates (a deed's day, a movement's dates) are calendar
dates in the office's time zone. Enumerations are stored as short strings so that SQLite and
PostgreSQL hold the same values and migrations need no native enum types.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Role(StrEnum):
    STAFF = "staff"
    UNIT_OFFICER = "unit_officer"
    COUNCIL = "council"
    ADMIN = "admin"


class UnitKind(StrEnum):
    OFFICE = "office"  # the whole office (Cục / Văn phòng)
    DEPARTMENT = "department"  # Phòng
    SUB_DEPARTMENT = "sub_department"  # Chi cục
    OTHER = "other"


class NomineeKind(StrEnum):
    INDIVIDUAL = "individual"  # cá nhân
    COLLECTIVE = "collective"  # tập thể


class AppliesTo(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"
    BOTH = "both"


class MovementKind(StrEnum):
    REGULAR = "regular"  # thường xuyên
    CAMPAIGN = "campaign"  # theo đợt, chuyên đề


class MovementStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"


class SubmissionStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # chờ duyệt
    IN_REVIEW = "in_review"  # the council is voting
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    WITHDRAWN = "withdrawn"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class VoteChoice(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    ABSTAIN = "abstain"


class RunStatus(StrEnum):
    CLAIMED = "claimed"  # the slot is reserved for the group; nothing is on the wire
    SENDING = "sending"  # a request is on the wire (after a crash: in doubt, never resent)
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # a request is on the wire (found after a crash: in doubt)
    SENT = "sent"
    FAILED = "failed"  # gave up: the chat is gone or the message can never be sent
    EXPIRED = "expired"  # its deadline passed before it could be delivered; never sent
    UNCERTAIN = "uncertain"  # no answer from Telegram; may have arrived; never resent


# --- directory ---------------------------------------------------------------------------------


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default=UnitKind.DEPARTMENT.value)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(
        remote_side="Unit.id", foreign_keys=[parent_id], lazy="raise"
    )


class UnitName(Base):
    """Every name a unit has had, so history shows the name in force at the time."""

    __tablename__ = "unit_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[datetime] = mapped_column(default=utcnow)
    valid_to: Mapped[datetime | None] = mapped_column()


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    # lower-case, diacritics removed: "nguyen van a" finds "Nguyễn Văn A"
    name_folded: Mapped[str] = mapped_column(String(200), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(20), default=Role.STAFF.value)
    position: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    under_discipline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        # a unit's members in name order: a page is an index range, no sort
        Index("ix_members_unit_active_name", "unit_id", "active", "name_folded", "id"),
    )


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by_user_id: Mapped[int | None] = mapped_column(BigInteger)


class AccessRequest(Base):
    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))


class FlowState(Base):
    """The step a person is at in a multi-step flow, so a restart continues it."""

    __tablename__ = "flow_states"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)


# --- catalogue ---------------------------------------------------------------------------------


class Field(Base):
    __tablename__ = "fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Criterion(Base):
    __tablename__ = "criteria"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    field_id: Mapped[int | None] = mapped_column(
        ForeignKey("fields.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    applies_to: Mapped[str] = mapped_column(String(20), default=AppliesTo.BOTH.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Title(Base):
    __tablename__ = "titles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    applies_to: Mapped[str] = mapped_column(String(20), default=AppliesTo.INDIVIDUAL.value)
    description: Mapped[str | None] = mapped_column(Text)
    # approval threshold for this title (share of the council members entitled to vote);
    # None = the setting
    approval_threshold: Mapped[float | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Movement(Base):
    __tablename__ = "movements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20), default=MovementKind.REGULAR.value)
    description: Mapped[str | None] = mapped_column(Text)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    nomination_deadline: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default=MovementStatus.DRAFT.value, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("movements.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- submissions -------------------------------------------------------------------------------


class Nomination(Base):
    __tablename__ = "nominations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nominator_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    nominee_kind: Mapped[str] = mapped_column(String(20))
    nominee_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    nominee_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    # the unit the item belongs to (the nominee's unit, or the nominated unit) and its name then
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    unit_name_at_time: Mapped[str | None] = mapped_column(String(200))
    nominee_name_at_time: Mapped[str | None] = mapped_column(String(200))
    movement_id: Mapped[int | None] = mapped_column(ForeignKey("movements.id", ondelete="RESTRICT"))
    field_id: Mapped[int | None] = mapped_column(ForeignKey("fields.id", ondelete="RESTRICT"))
    title_id: Mapped[int | None] = mapped_column(ForeignKey("titles.id", ondelete="RESTRICT"))
    achievements: Mapped[str | None] = mapped_column(Text)
    good_practices: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=SubmissionStatus.DRAFT.value)
    review_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_nominations_status_submitted", "status", "submitted_at"),
        Index("ix_nominations_nominator_status", "nominator_id", "status"),
        Index("ix_nominations_movement_status", "movement_id", "status"),
        Index("ix_nominations_unit_status", "unit_id", "status"),
        # the exemplar registry: live exemplars newest first, filtered without a table scan
        Index(
            "ix_nominations_registry",
            "status",
            "decided_at",
            "id",
            "movement_id",
            "field_id",
            "unit_id",
            "nominee_member_id",
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
        CheckConstraint(
            "(nominee_member_id IS NOT NULL) OR (nominee_unit_id IS NOT NULL) OR status = 'draft'",
            name="nominee_present",
        ),
    )


class NominationCriterion(Base):
    __tablename__ = "nomination_criteria"

    nomination_id: Mapped[int] = mapped_column(
        ForeignKey("nominations.id", ondelete="CASCADE"), primary_key=True
    )
    criterion_id: Mapped[int] = mapped_column(
        ForeignKey("criteria.id", ondelete="RESTRICT"), primary_key=True
    )
    evidence: Mapped[str | None] = mapped_column(Text)


class GoodDeed(Base):
    __tablename__ = "good_deeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="RESTRICT"))
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), index=True
    )
    subject_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    unit_name_at_time: Mapped[str | None] = mapped_column(String(200))
    subject_name_at_time: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    occurred_on: Mapped[date | None] = mapped_column(Date)
    place: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=SubmissionStatus.DRAFT.value)
    review_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_good_deeds_status_submitted", "status", "submitted_at"),
        Index("ix_good_deeds_reporter_status", "reporter_id", "status"),
        Index("ix_good_deeds_unit_status", "unit_id", "status"),
    )


class Applause(Base):
    __tablename__ = "applause"

    good_deed_id: Mapped[int] = mapped_column(
        ForeignKey("good_deeds.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int | None] = mapped_column(
        ForeignKey("nominations.id", ondelete="CASCADE"), index=True
    )
    good_deed_id: Mapped[int | None] = mapped_column(
        ForeignKey("good_deeds.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # photo | document
    file_id: Mapped[str] = mapped_column(String(256))
    file_unique_id: Mapped[str] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(String(256))
    mime_type: Mapped[str | None] = mapped_column(String(128))
    file_size: Mapped[int | None] = mapped_column(Integer)
    caption: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("(nomination_id IS NULL) <> (good_deed_id IS NULL)", name="one_owner"),
    )


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int | None] = mapped_column(
        ForeignKey("nominations.id", ondelete="CASCADE"), index=True
    )
    good_deed_id: Mapped[int | None] = mapped_column(
        ForeignKey("good_deeds.id", ondelete="CASCADE"), index=True
    )
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ModerationCard(Base):
    """A review card the bot sent to a moderator, so it can be updated after a decision."""

    __tablename__ = "moderation_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_type: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_moderation_cards_item", "item_type", "item_id"),)


# --- council ballot ----------------------------------------------------------------------------


class Ballot(Base):
    __tablename__ = "ballots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int] = mapped_column(
        ForeignKey("nominations.id", ondelete="CASCADE"), index=True
    )
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # members entitled to vote at opening (ballots issued): the threshold is counted on them
    council_size: Mapped[int] = mapped_column(Integer)
    # the whole council at opening, and the names of those left out (nominator, nominee)
    council_total: Mapped[int] = mapped_column(Integer, default=0)
    left_out: Mapped[list[str]] = mapped_column(JSON, default=list)
    threshold: Mapped[float] = mapped_column()
    agree: Mapped[int | None] = mapped_column(Integer)
    disagree: Mapped[int | None] = mapped_column(Integer)
    abstain: Mapped[int | None] = mapped_column(Integer)
    approved: Mapped[bool | None] = mapped_column(Boolean)
    reminded_at: Mapped[datetime | None] = mapped_column()
    minutes: Mapped[str | None] = mapped_column(Text)


class BallotVoter(Base):
    """Who may vote, and whether they have: never what. `pending` marks the one voter whose
    vote is being counted (see bot/services/ballot_box.py); at most one per ballot."""

    __tablename__ = "ballot_voters"

    ballot_id: Mapped[int] = mapped_column(
        ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    voted: Mapped[bool] = mapped_column(Boolean, default=False)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (CheckConstraint("NOT (voted AND pending)", name="one_state"),)


class BallotTally(Base):
    """An open ballot's running count for one choice: no voter, no time, no order. `count` is
    stored plus TALLY_BASE (bot/services/ballot_box.py) so that every value takes the same
    bytes on disk and a page's layout cannot tell which count grew first."""

    __tablename__ = "ballot_tallies"

    ballot_id: Mapped[int] = mapped_column(
        ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True
    )
    choice: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


# --- groups and announcements ------------------------------------------------------------------


class GroupChat(Base):
    __tablename__ = "group_chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str | None] = mapped_column(String(256))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    office_wide: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin_chat: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="vi")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    migrated_from_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    inactive_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Announcement(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # weekly_digest, spotlight, movement, custom…
    title: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    # "all" | "office" | "units" | "unit:<id>"
    target: Mapped[str] = mapped_column(String(32), default="all")
    # a schedule rule: "once 2026-12-01T08:00", "weekly mon 08:00", "monthly first-workday 08:00"
    rule: Mapped[str] = mapped_column(String(120))
    working_days_only: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnnouncementRun(Base):
    __tablename__ = "announcement_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"))
    slot_at: Mapped[datetime] = mapped_column()
    group_chat_id: Mapped[int] = mapped_column(ForeignKey("group_chats.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.CLAIMED.value)
    message_id: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # what was posted (e.g. the spotlighted nomination), for fair rotation and the run history
    content_ref: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("announcement_id", "slot_at", "group_chat_id", name="uq_announcement_run"),
        Index("ix_announcement_runs_status_next", "status", "next_attempt_at"),
    )


class OutboxMessage(Base):
    """A message to a person, written in the same transaction as the change it reports and
    sent afterwards with retries: a Telegram error or a restart loses nothing."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # message id (English source text) and its parameters; translated when sent
    message: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    language: Mapped[str | None] = mapped_column(String(8))
    # [[{"text": msgid, "data": callback} | {"text": msgid, "url": url}, …], …]
    buttons: Mapped[list[Any] | None] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # what it is (bot/services/outbox.py KINDS): decides whether a doubtful send is repeated
    kind: Mapped[str] = mapped_column(String(32), default="notice", server_default="notice")
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    # the claim token: every outcome of an attempt is recorded only while this is unchanged
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # when due; while claimed, the end of the lease; while sending, when the request went out
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class DeliveryState(Base):
    """How delivery to Telegram is going, shared by every instance (one row, id 1): the
    current run of network and server failures, and whether administrators were alerted."""

    __tablename__ = "delivery_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    failing_since: Mapped[datetime | None] = mapped_column()  # None: the last attempt worked
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    alerted_at: Mapped[datetime | None] = mapped_column()  # set: an alert went out, no recovery
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
