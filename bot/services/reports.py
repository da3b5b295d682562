"""Sơ kết / tổng kết: the report engine (figures and lists for interim and final reviews).

Decisions (kept here so the code and its rules stay together):

* **Period.** A `ReportPeriod` is a movement, a calendar year or a date range, always in
  office-local calendar dates (Asia/Ho_Chi_Minh unless told otherwise). Datetimes in the database
  are UTC, so a local day [d 00:00, d+1 00:00) is turned into UTC bounds before querying.
  - Nominations fall in a period by `submitted_at` (the day they were put forward; drafts are
    never reported). For a *movement* period they are selected by `movement_id` alone: the
    movement *is* the period, and a nomination filed for it (even before its start or after its
    end, e.g. up to a late deadline) belongs to it.
  - Good deeds fall in a period by `occurred_on` (the day of the deed), falling back to the local
    day of `submitted_at` when the reporter gave no date. Good deeds have no movement, so a
    movement period uses the movement's `starts_on..ends_on` for them.
* **Scope.** The whole office, or one unit *with its descendants* (units whose `parent_id` chain
  leads to it) *and its predecessors* (units merged into it, `merged_into_id`, recursively): a
  unit that absorbed another in the 2025 reorganisation answers for that unit's history.
* **Authorisation.** admin: any scope. unit_officer: only the scope of their own unit (office-wide
  or another unit raises `NotAllowed`). Everyone else (staff, council, inactive, unknown) is
  refused.
* **What a unit officer sees.** Counts by status are aggregates, so they are given for every status
  within the officer's scope. The *rows* of the nominations list, however, are limited to approved
  nominations and to the officer's own submissions: pending, rejected, withdrawn… nominations of
  other people are only ever listed for admins (docs/ARCHITECTURE.md, decision 5).
* **Exemplars.** Only approved nominations are exemplars. An approved nomination later revoked
  (`revoked_at` set) is listed and marked, never counted.
* **Good deeds.** Only approved good deeds are counted and listed.
* **Unit names.** Rows show `unit_name_at_time`, the name the unit had when the item was filed (the
  2025 mergers do not rewrite history). Statistics group by `unit_id`, one row per unit, labelled
  with the unit's current name followed by the other names it had on the period's items in
  parentheses ("Chi cục Thống kê khu vực I (trước đây: Chi cục Thống kê thành phố A)"); a merged
  unit keeps its own row, noted "đã sáp nhập vào …". "Units with no exemplar and no good deed" lists
  active units in scope, except the office-level unit itself (kind `office`).
* **Scale.** Statistics are aggregated in SQL (GROUP BY); lists select plain columns of one table
  (no ORM objects, no joins: the names of units, fields, titles, movements and people come from
  small id -> name maps read once) and are streamed in partitions into compact `NamedTuple` rows;
  repeated strings are shared. Lists are sorted in Python by local day, then id. On PostgreSQL
  the whole report reads one REPEATABLE READ snapshot, so figures and lists agree.
* **Month of a good deed.** On PostgreSQL, computed with the office zone (`AT TIME ZONE`); on
  SQLite with the zone's UTC offset at the period's middle (exact for Asia/Ho_Chi_Minh, which has
  no daylight saving time).

`render_summary` returns Telegram HTML chunks (each < 4096 characters, split at line boundaries,
tags never split); every user-supplied text is escaped with `html.escape`. Labels live here rather
than in the gettext catalogs because `bot/services` must not import `bot.texts` (which imports
`telegram`); they are the report's vocabulary (vi with full diacritics, en).
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, DateTime, and_, cast, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.services.clock import Clock
from bot.services.errors import N_, InvalidInput, NotAllowed, NotFound
from bot.services.text import fold
from storage.db import Database
from storage.models import (
    Field,
    GoodDeed,
    Member,
    Movement,
    Nomination,
    NomineeKind,
    Role,
    SubmissionStatus,
    Title,
    Unit,
    UnitKind,
)

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
MESSAGE_LIMIT = 4096
# what `render_summary` aims at: well below Telegram's limit, whatever the entity parser counts
CHUNK_LIMIT = 4000
STREAM_PARTITION = 2000

Lang = Literal["vi", "en"]
PeriodKind = Literal["movement", "year", "range"]
NominationDetail = Literal["all", "approved_and_own"]

# the order statuses are shown in (drafts are private to their author and never reported)
STATUS_ORDER: tuple[str, ...] = (
    SubmissionStatus.SUBMITTED.value,
    SubmissionStatus.IN_REVIEW.value,
    SubmissionStatus.CHANGES_REQUESTED.value,
    SubmissionStatus.APPROVED.value,
    SubmissionStatus.REJECTED.value,
    SubmissionStatus.WITHDRAWN.value,
)
APPROVED = SubmissionStatus.APPROVED.value
DRAFT = SubmissionStatus.DRAFT.value
INDIVIDUAL = NomineeKind.INDIVIDUAL.value
COLLECTIVE = NomineeKind.COLLECTIVE.value

# Error messages new with this module (translated in locales/{vi,en}/reports.po).
MSG_REPORTS_ROLE = N_("Reports are for administrators and unit officers.")
MSG_BAD_PERIOD = N_("That period is not valid.")
MSG_BAD_TZ = N_("Unknown time zone {tz}.")


# --- period and scope ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """What the report covers: a movement, a calendar year or a range of local dates."""

    kind: PeriodKind
    movement_id: int | None = None
    year: int | None = None
    start: date | None = None
    end: date | None = None

    @classmethod
    def for_movement(cls, movement_id: int) -> ReportPeriod:
        return cls("movement", movement_id=movement_id)

    @classmethod
    def for_year(cls, year: int) -> ReportPeriod:
        return cls("year", year=year)

    @classmethod
    def between(cls, start: date, end: date) -> ReportPeriod:
        """Both ends included."""
        return cls("range", start=start, end=end)


@dataclass(frozen=True, slots=True)
class ResolvedPeriod:
    """A period with its dates known (a movement's dates read from the database)."""

    kind: PeriodKind
    start: date
    end: date
    movement_id: int | None = None
    movement_name: str | None = None
    year: int | None = None

    def months(self) -> list[str]:
        """Every month the period touches, as "YYYY-MM"."""
        out: list[str] = []
        y, m = self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def utc_bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """[start 00:00 local, end+1 00:00 local) as UTC datetimes."""
        lo = datetime.combine(self.start, time.min, tzinfo=zone).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        return lo, hi


@dataclass(frozen=True, slots=True)
class ReportScope:
    """The whole office (unit_id None) or one unit with its descendants and predecessors."""

    unit_id: int | None = None

    @classmethod
    def office(cls) -> ReportScope:
        return cls(None)

    @classmethod
    def unit(cls, unit_id: int) -> ReportScope:
        return cls(unit_id)

    @property
    def is_office(self) -> bool:
        return self.unit_id is None


# --- the data ------------------------------------------------------------------------------------


class NominationRow(NamedTuple):
    id: int
    status: str
    revoked: bool
    nominee_kind: str
    nominee_name: str
    unit_id: int | None
    unit_name: str | None  # the name the unit had at the time
    field_name: str | None
    title_name: str | None
    movement_name: str | None
    nominator_name: str | None
    achievements: str | None
    good_practices: str | None
    submitted_on: date | None  # office-local dates
    decided_on: date | None
    revoked_on: date | None
    revoke_reason: str | None


class GoodDeedRow(NamedTuple):
    id: int
    subject_kind: str
    subject_name: str
    unit_id: int | None
    unit_name: str | None  # the name the unit had at the time
    occurred_on: date | None
    submitted_on: date | None
    place: str | None
    description: str | None
    reporter_name: str | None

    @property
    def day(self) -> date | None:
        """The day the deed counts on: when it happened, else when it was reported."""
        return self.occurred_on or self.submitted_on


class PracticeRow(NamedTuple):
    nomination_id: int
    nominee_name: str
    nominee_kind: str
    unit_name: str | None
    field_name: str | None
    text: str


@dataclass(slots=True)
class FieldStat:
    field_id: int | None  # None: nominations without a field
    name: str | None
    individual: int = 0
    collective: int = 0

    @property
    def total(self) -> int:
        return self.individual + self.collective


@dataclass(slots=True)
class UnitStat:
    unit_id: int | None  # None: items without a unit (office scope only)
    name: str | None  # the unit's current name
    kind: str | None = None
    active: bool = True
    merged_into_name: str | None = None
    # the other names the unit had on this period's items, most used first
    former_names: tuple[str, ...] = ()
    exemplars_individual: int = 0
    exemplars_collective: int = 0
    revoked: int = 0  # approved then revoked: shown, not counted
    good_deeds: int = 0
    nominations: int = 0  # every non-draft status

    @property
    def exemplars(self) -> int:
        return self.exemplars_individual + self.exemplars_collective


@dataclass(slots=True)
class ReportData:
    period: ResolvedPeriod
    scope_unit_id: int | None
    scope_unit_name: str | None
    scope_unit_ids: frozenset[int] | None  # None: the whole office
    viewer_member_id: int
    viewer_role: str
    tz_name: str
    generated_at: datetime
    nominations_detail: NominationDetail
    nominations_by_status: dict[str, int]
    revoked_count: int
    exemplars_individual: int
    exemplars_collective: int
    good_deeds_total: int
    by_field: list[FieldStat]
    by_unit: list[UnitStat]
    months: list[str]
    # unit_id -> "YYYY-MM" -> approved good deeds
    deeds_by_unit_month: dict[int | None, dict[str, int]]
    units_without_activity: list[UnitStat]
    good_practices: list[PracticeRow]
    good_practices_total: int
    lists_included: bool = True
    nominations: list[NominationRow] = field(default_factory=list)
    exemplars: list[NominationRow] = field(default_factory=list)  # approved, revoked marked
    good_deeds: list[GoodDeedRow] = field(default_factory=list)

    @property
    def nominations_total(self) -> int:
        return sum(self.nominations_by_status.values())

    @property
    def exemplars_total(self) -> int:
        """Counted exemplars: approved and not revoked."""
        return self.exemplars_individual + self.exemplars_collective

    def unit_stat(self, unit_id: int | None) -> UnitStat | None:
        for stat in self.by_unit:
            if stat.unit_id == unit_id:
                return stat
        return None


# --- labels --------------------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Báo cáo phong trào thi đua và điển hình tiên tiến",
        "report_period": "Kỳ báo cáo",
        "period_movement": "Phong trào «{name}» ({start} – {end})",
        "period_year": "Năm {year} ({start} – {end})",
        "period_range": "Từ ngày {start} đến ngày {end}",
        "scope": "Phạm vi",
        "scope_office": "Toàn cơ quan",
        "scope_unit": "{name} (kể cả các đơn vị trực thuộc, đơn vị đã sáp nhập)",
        "as_of": "Số liệu tính đến {time} ngày {date}",
        "nominations": "Đề cử",
        "nominations_total": "Tổng số đề cử",
        "exemplars": "Điển hình tiên tiến",
        "exemplars_line": "{total} (cá nhân {individual} · tập thể {collective})",
        "revoked_line": "Đã thu hồi (không tính): {n}",
        "good_deeds": "Người tốt, việc tốt",
        "top_fields": "Lĩnh vực có nhiều điển hình",
        "field_line": "{total} (cá nhân {individual}, tập thể {collective})",
        "top_units": "Đơn vị tiêu biểu",
        "unit_line": "{exemplars} điển hình · {deeds} việc tốt",
        "no_activity": "Đơn vị chưa có điển hình, người tốt việc tốt",
        "practices": "Kinh nghiệm, cách làm hay cần nhân rộng",
        "more_practices": "… và {n} cách làm hay khác (xem tệp Excel).",
        "none": "Không có.",
        "all_units_active": "Tất cả đơn vị đều đã có điển hình hoặc người tốt, việc tốt.",
        "detail_restricted": (
            "Danh sách đề cử chỉ gồm đề cử đã duyệt và đề cử do chính Anh/Chị gửi."
        ),
        "individual": "Cá nhân",
        "collective": "Tập thể",
        "unknown_unit": "(Chưa xác định đơn vị)",
        "unclassified": "(Chưa phân loại lĩnh vực)",
        "formerly": "trước đây: {names}",
        "merged_into": "đã sáp nhập vào {name}",
        "revoked": "Đã thu hồi",
        "revoked_on": "Đã thu hồi ngày {date}",
        "total": "Tổng cộng",
        "no_data": "Chưa có dữ liệu trong kỳ báo cáo",
        "chart_deeds": "Người tốt, việc tốt theo đơn vị và tháng",
        "chart_fields": "Điển hình tiên tiến theo lĩnh vực",
        "other_units": "Các đơn vị khác",
        "count": "Số lượng",
        "month": "Tháng",
        # sheets (at most 31 characters) and their headers
        "sheet_exemplars": "Điển hình",
        "sheet_nominations": "Đề cử",
        "sheet_good_deeds": "Người tốt việc tốt",
        "sheet_units": "Thống kê theo đơn vị",
        "h_no": "STT",
        "h_nomination_id": "Mã đề cử",
        "h_deed_id": "Mã báo cáo",
        "h_nominee": "Họ tên / Tập thể",
        "h_kind": "Cá nhân / Tập thể",
        "h_unit_at_time": "Đơn vị (tại thời điểm)",
        "h_field": "Lĩnh vực",
        "h_title": "Danh hiệu",
        "h_movement": "Phong trào",
        "h_achievements": "Thành tích",
        "h_practices": "Kinh nghiệm, cách làm hay",
        "h_submitted": "Ngày đề cử",
        "h_approved": "Ngày duyệt",
        "h_decided": "Ngày quyết định",
        "h_revoked": "Thu hồi",
        "h_nominator": "Người đề cử",
        "h_status": "Trạng thái",
        "h_note": "Ghi chú",
        "h_subject": "Người / Tập thể được biểu dương",
        "h_occurred": "Ngày diễn ra",
        "h_place": "Địa điểm",
        "h_deed": "Nội dung việc tốt",
        "h_reporter": "Người báo cáo",
        "h_reported": "Ngày báo cáo",
        "h_unit": "Đơn vị",
        "h_ex_individual": "Điển hình cá nhân",
        "h_ex_collective": "Điển hình tập thể",
        "h_ex_total": "Tổng số điển hình",
        "h_revoked_count": "Đã thu hồi (không tính)",
        "h_deeds": "Người tốt, việc tốt",
        "h_nominations": "Tổng số đề cử",
        # statuses
        "status_draft": "Bản nháp",
        "status_submitted": "Chờ duyệt",
        "status_in_review": "Đang bình xét",
        "status_changes_requested": "Yêu cầu bổ sung",
        "status_approved": "Đã duyệt",
        "status_rejected": "Từ chối",
        "status_withdrawn": "Đã rút",
    },
    "en": {
        "title": "Emulation movement and advanced exemplars report",
        "report_period": "Period",
        "period_movement": "Movement “{name}” ({start} – {end})",
        "period_year": "Year {year} ({start} – {end})",
        "period_range": "From {start} to {end}",
        "scope": "Scope",
        "scope_office": "Whole office",
        "scope_unit": "{name} (with its sub-units and merged units)",
        "as_of": "Figures as of {date} {time}",
        "nominations": "Nominations",
        "nominations_total": "Total nominations",
        "exemplars": "Advanced exemplars",
        "exemplars_line": "{total} (individuals {individual} · collectives {collective})",
        "revoked_line": "Revoked (not counted): {n}",
        "good_deeds": "Good people, good deeds",
        "top_fields": "Fields with the most exemplars",
        "field_line": "{total} (individuals {individual}, collectives {collective})",
        "top_units": "Leading units",
        "unit_line": "{exemplars} exemplars · {deeds} good deeds",
        "no_activity": "Units with no exemplar and no good deed",
        "practices": "Good practices to replicate",
        "more_practices": "… and {n} more good practices (see the Excel file).",
        "none": "None.",
        "all_units_active": "Every unit has an exemplar or a good deed.",
        "detail_restricted": (
            "The nominations list only holds approved nominations and the ones you submitted."
        ),
        "individual": "Individual",
        "collective": "Collective",
        "unknown_unit": "(No unit)",
        "unclassified": "(No field)",
        "formerly": "formerly: {names}",
        "merged_into": "merged into {name}",
        "revoked": "Revoked",
        "revoked_on": "Revoked on {date}",
        "total": "Total",
        "no_data": "No data for this period",
        "chart_deeds": "Good deeds per unit and month",
        "chart_fields": "Advanced exemplars per field",
        "other_units": "Other units",
        "count": "Count",
        "month": "Month",
        "sheet_exemplars": "Exemplars",
        "sheet_nominations": "Nominations",
        "sheet_good_deeds": "Good deeds",
        "sheet_units": "Statistics by unit",
        "h_no": "No.",
        "h_nomination_id": "Nomination ID",
        "h_deed_id": "Report ID",
        "h_nominee": "Name / Collective",
        "h_kind": "Individual / Collective",
        "h_unit_at_time": "Unit (at the time)",
        "h_field": "Field",
        "h_title": "Title",
        "h_movement": "Movement",
        "h_achievements": "Achievements",
        "h_practices": "Good practices",
        "h_submitted": "Submitted",
        "h_approved": "Approved",
        "h_decided": "Decided",
        "h_revoked": "Revoked",
        "h_nominator": "Nominated by",
        "h_status": "Status",
        "h_note": "Note",
        "h_subject": "Person / Collective praised",
        "h_occurred": "Date of the deed",
        "h_place": "Place",
        "h_deed": "Good deed",
        "h_reporter": "Reported by",
        "h_reported": "Reported on",
        "h_unit": "Unit",
        "h_ex_individual": "Individual exemplars",
        "h_ex_collective": "Collective exemplars",
        "h_ex_total": "Total exemplars",
        "h_revoked_count": "Revoked (not counted)",
        "h_deeds": "Good deeds",
        "h_nominations": "Total nominations",
        "status_draft": "Draft",
        "status_submitted": "Pending",
        "status_in_review": "In review",
        "status_changes_requested": "Changes requested",
        "status_approved": "Approved",
        "status_rejected": "Rejected",
        "status_withdrawn": "Withdrawn",
    },
}


def normalise_lang(lang: str | None) -> Lang:
    return "en" if (lang or "").lower().startswith("en") else "vi"


def label(lang: str, key: str, **params: Any) -> str:
    text = TEXTS[normalise_lang(lang)][key]
    return text.format(**params) if params else text


def fmt_date(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value is not None else ""


def fmt_int(value: int, lang: str) -> str:
    """12345 -> "12.345" (vi) or "12,345" (en)."""
    text = f"{value:,}"
    return text.replace(",", ".") if normalise_lang(lang) == "vi" else text


def status_label(status: str, lang: str) -> str:
    return TEXTS[normalise_lang(lang)].get(f"status_{status}", status)


def kind_label(kind: str, lang: str) -> str:
    return label(lang, "collective") if kind == COLLECTIVE else label(lang, "individual")


def unit_label(stat: UnitStat, lang: str) -> str:
    """Current name, with the names it had on the period's items and a merger note."""
    if stat.unit_id is None:
        return label(lang, "unknown_unit")
    base = stat.name or f"#{stat.unit_id}"
    notes: list[str] = []
    if stat.former_names:
        notes.append(label(lang, "formerly", names="; ".join(stat.former_names)))
    if stat.merged_into_name:
        notes.append(label(lang, "merged_into", name=stat.merged_into_name))
    return f"{base} ({'; '.join(notes)})" if notes else base


def field_label(stat: FieldStat, lang: str) -> str:
    return stat.name if stat.name else label(lang, "unclassified")


def period_label(period: ResolvedPeriod, lang: str) -> str:
    start, end = fmt_date(period.start), fmt_date(period.end)
    if period.kind == "movement":
        return label(lang, "period_movement", name=period.movement_name or "", start=start, end=end)
    if period.kind == "year":
        return label(lang, "period_year", year=period.year, start=start, end=end)
    return label(lang, "period_range", start=start, end=end)


def scope_label(data: ReportData, lang: str) -> str:
    if data.scope_unit_id is None:
        return label(lang, "scope_office")
    return label(lang, "scope_unit", name=data.scope_unit_name or f"#{data.scope_unit_id}")


def revoke_note(row: NominationRow, lang: str) -> str:
    if not row.revoked:
        return ""
    note = (
        label(lang, "revoked_on", date=fmt_date(row.revoked_on))
        if row.revoked_on
        else label(lang, "revoked")
    )
    return f"{note}: {row.revoke_reason}" if row.revoke_reason else note


def resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return ZoneInfo(DEFAULT_TZ)
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(MSG_BAD_TZ, tz=tz) from exc
    return tz


def _tz_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


# --- building the report -------------------------------------------------------------------------


@dataclass(slots=True)
class _UnitInfo:
    id: int
    name: str
    kind: str
    parent_id: int | None
    merged_into_id: int | None
    active: bool


@dataclass(slots=True)
class _UnitAcc:
    names: Counter[str] = field(default_factory=Counter)
    ex_individual: int = 0
    ex_collective: int = 0
    revoked: int = 0
    deeds: int = 0
    nominations: int = 0


class _Interner:
    """Shares equal strings among rows (unit, field, people's names repeat a lot)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self._cache.setdefault(value, value)


async def build_report(
    db: Database,
    viewer_member_id: int,
    period: ReportPeriod,
    scope: ReportScope,
    tz: str | tzinfo = DEFAULT_TZ,
    *,
    include_lists: bool = True,
    max_practices: int = 50,
    clock: Clock | None = None,
) -> ReportData:
    """Build the figures (and, unless `include_lists` is false, the lists) of a report.

    Raises `NotAllowed` when the viewer may not see this scope, `NotFound` for an unknown movement
    or unit, `InvalidInput` for a reversed or out-of-range period or an unknown time zone.
    """
    zone = resolve_tz(tz)
    now = (clock or Clock()).now()
    async with db.read() as session:
        if db.is_postgres:
            # one snapshot for every query of the report: figures and lists agree
            await session.connection(
                execution_options={
                    "isolation_level": "REPEATABLE READ",
                    "postgresql_readonly": True,
                }
            )
        viewer = (
            await session.execute(
                select(Member.id, Member.role, Member.unit_id, Member.active).where(
                    Member.id == viewer_member_id
                )
            )
        ).one_or_none()
        units = await _load_units(session)
        scope_ids = _authorise(viewer, scope, units)
        resolved = await _resolve_period(session, period)
        lo, hi = resolved.utc_bounds(zone)

        nom_where = _nomination_filter(resolved, scope_ids, lo, hi)
        deed_where = _deed_filter(resolved, scope_ids, lo, hi)

        acc: dict[int | None, _UnitAcc] = defaultdict(_UnitAcc)
        by_status = dict.fromkeys(STATUS_ORDER, 0)
        revoked_count = 0
        ex_individual = ex_collective = 0

        n = Nomination
        revoked_expr = n.revoked_at.is_not(None)
        stmt = (
            select(
                n.unit_id,
                n.unit_name_at_time,
                n.status,
                n.nominee_kind,
                revoked_expr.label("revoked"),
                func.count().label("n"),
            )
            .where(*nom_where)
            .group_by(n.unit_id, n.unit_name_at_time, n.status, n.nominee_kind, revoked_expr)
        )
        for unit_id, name, status, kind, revoked, count in await session.execute(stmt):
            a = acc[unit_id]
            if name:
                a.names[name] += count
            a.nominations += count
            by_status[status] = by_status.get(status, 0) + count
            if status != APPROVED:
                continue
            if revoked:
                a.revoked += count
                revoked_count += count
            elif kind == COLLECTIVE:
                a.ex_collective += count
                ex_collective += count
            else:
                a.ex_individual += count
                ex_individual += count

        by_field = await _field_stats(session, nom_where)

        month_expr = _deed_month_expr(db, zone, resolved)
        inner = (
            select(
                GoodDeed.unit_id.label("unit_id"),
                GoodDeed.unit_name_at_time.label("unit_name"),
                month_expr.label("month"),
            )
            .where(*deed_where)
            .subquery()
        )
        deed_stmt = select(
            inner.c.unit_id, inner.c.unit_name, inner.c.month, func.count().label("n")
        ).group_by(inner.c.unit_id, inner.c.unit_name, inner.c.month)
        deeds_by_unit_month: dict[int | None, dict[str, int]] = {}
        deeds_total = 0
        for unit_id, name, month, count in await session.execute(deed_stmt):
            a = acc[unit_id]
            if name:
                a.names[name] += count
            a.deeds += count
            deeds_total += count
            per_month = deeds_by_unit_month.setdefault(unit_id, {})
            per_month[str(month)] = per_month.get(str(month), 0) + count

        by_unit = _unit_stats(units, scope_ids, acc)
        without = [
            s
            for s in by_unit
            if s.unit_id is not None
            and s.active
            and s.kind != UnitKind.OFFICE.value
            and s.exemplars == 0
            and s.good_deeds == 0
        ]

        practices, practices_total = await _good_practices(session, nom_where, max_practices)

        role = str(viewer.role) if viewer is not None else ""
        detail: NominationDetail = "all" if role == Role.ADMIN.value else "approved_and_own"
        nominations: list[NominationRow] = []
        deeds: list[GoodDeedRow] = []
        if include_lists:
            list_where = list(nom_where)
            if detail != "all":
                list_where.append(
                    or_(Nomination.status == APPROVED, Nomination.nominator_id == viewer_member_id)
                )
            names = await _load_names(session, units)
            nominations = await _nomination_rows(session, list_where, zone, names)
            deeds = await _deed_rows(session, deed_where, zone, names)

    scope_name = units[scope.unit_id].name if scope.unit_id is not None else None
    return ReportData(
        period=resolved,
        scope_unit_id=scope.unit_id,
        scope_unit_name=scope_name,
        scope_unit_ids=scope_ids,
        viewer_member_id=viewer_member_id,
        viewer_role=role,
        tz_name=_tz_name(zone),
        generated_at=now,
        nominations_detail=detail,
        nominations_by_status=by_status,
        revoked_count=revoked_count,
        exemplars_individual=ex_individual,
        exemplars_collective=ex_collective,
        good_deeds_total=deeds_total,
        by_field=by_field,
        by_unit=by_unit,
        months=resolved.months(),
        deeds_by_unit_month=deeds_by_unit_month,
        units_without_activity=without,
        good_practices=practices,
        good_practices_total=practices_total,
        lists_included=include_lists,
        nominations=nominations,
        exemplars=[r for r in nominations if r.status == APPROVED],
        good_deeds=deeds,
    )


async def _load_units(session: AsyncSession) -> dict[int, _UnitInfo]:
    rows = await session.execute(
        select(Unit.id, Unit.name, Unit.kind, Unit.parent_id, Unit.merged_into_id, Unit.active)
    )
    return {
        r.id: _UnitInfo(r.id, r.name, r.kind, r.parent_id, r.merged_into_id, bool(r.active))
        for r in rows
    }


def _scope_unit_ids(units: dict[int, _UnitInfo], root: int) -> frozenset[int]:
    """The unit, its descendants (parent_id) and its predecessors (merged_into_id), recursively."""
    children: dict[int, list[int]] = defaultdict(list)
    for u in units.values():
        if u.parent_id is not None:
            children[u.parent_id].append(u.id)
        if u.merged_into_id is not None and u.merged_into_id != u.parent_id:
            children[u.merged_into_id].append(u.id)
    seen = {root}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return frozenset(seen)


def _authorise(
    viewer: Any, scope: ReportScope, units: dict[int, _UnitInfo]
) -> frozenset[int] | None:
    if viewer is None or not viewer.active:
        raise NotAllowed(N_("You are not a member yet."))
    role = viewer.role
    if role == Role.ADMIN.value:
        pass
    elif role == Role.UNIT_OFFICER.value:
        # the whole office, another unit, or no unit of their own: an administrator's report
        if viewer.unit_id is None or scope.unit_id != viewer.unit_id:
            raise NotAllowed(N_("Only administrators can do that."))
    else:
        raise NotAllowed(MSG_REPORTS_ROLE)
    if scope.unit_id is None:
        return None
    if scope.unit_id not in units:
        raise NotFound(N_("That unit no longer exists."))
    return _scope_unit_ids(units, scope.unit_id)


async def _resolve_period(session: AsyncSession, period: ReportPeriod) -> ResolvedPeriod:
    if period.kind == "movement":
        if period.movement_id is None:
            raise InvalidInput(MSG_BAD_PERIOD)
        row = (
            await session.execute(
                select(Movement.name, Movement.starts_on, Movement.ends_on).where(
                    Movement.id == period.movement_id
                )
            )
        ).one_or_none()
        if row is None:
            raise NotFound(N_("That movement no longer exists."))
        start, end = row.starts_on, row.ends_on
        if end < start:
            start, end = end, start
        return ResolvedPeriod("movement", start, end, period.movement_id, row.name)
    if period.kind == "year":
        if period.year is None or not 1900 <= period.year <= 2999:
            raise InvalidInput(MSG_BAD_PERIOD)
        y = period.year
        return ResolvedPeriod("year", date(y, 1, 1), date(y, 12, 31), year=y)
    if period.kind == "range":
        if period.start is None or period.end is None:
            raise InvalidInput(MSG_BAD_PERIOD)
        if period.end < period.start or period.end >= date(9999, 12, 31):
            raise InvalidInput(MSG_BAD_PERIOD)
        return ResolvedPeriod("range", period.start, period.end)
    raise InvalidInput(MSG_BAD_PERIOD)


def _nomination_filter(
    period: ResolvedPeriod, scope_ids: frozenset[int] | None, lo: datetime, hi: datetime
) -> list[ColumnElement[bool]]:
    n = Nomination
    conds: list[ColumnElement[bool]] = [n.status != DRAFT]
    if period.movement_id is not None:
        conds.append(n.movement_id == period.movement_id)
    else:
        conds += [n.submitted_at >= lo, n.submitted_at < hi]
    if scope_ids is not None:
        conds.append(n.unit_id.in_(sorted(scope_ids)))
    return conds


def _deed_filter(
    period: ResolvedPeriod, scope_ids: frozenset[int] | None, lo: datetime, hi: datetime
) -> list[ColumnElement[bool]]:
    d = GoodDeed
    conds: list[ColumnElement[bool]] = [
        d.status == APPROVED,
        or_(
            and_(d.occurred_on >= period.start, d.occurred_on <= period.end),
            and_(d.occurred_on.is_(None), d.submitted_at >= lo, d.submitted_at < hi),
        ),
    ]
    if scope_ids is not None:
        conds.append(d.unit_id.in_(sorted(scope_ids)))
    return conds


def _deed_month_expr(db: Database, zone: tzinfo, period: ResolvedPeriod) -> ColumnElement[Any]:
    d = GoodDeed
    if db.is_postgres:
        local_day = cast(func.timezone(_tz_name(zone), d.submitted_at), Date)
        return func.to_char(func.coalesce(d.occurred_on, local_day), "YYYY-MM")
    middle = period.start + (period.end - period.start) / 2
    offset = datetime.combine(middle, time(12), tzinfo=zone).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    local_day_sqlite = func.date(d.submitted_at, f"{minutes:+d} minutes")
    return func.strftime("%Y-%m", func.coalesce(d.occurred_on, local_day_sqlite))


async def _field_stats(
    session: AsyncSession, nom_where: Sequence[ColumnElement[bool]]
) -> list[FieldStat]:
    fields = {
        r.id: r
        for r in await session.execute(select(Field.id, Field.name, Field.active, Field.sort_order))
    }
    stats: dict[int | None, FieldStat] = {
        fid: FieldStat(fid, r.name) for fid, r in fields.items() if r.active
    }
    n = Nomination
    stmt = (
        select(n.field_id, n.nominee_kind, func.count())
        .where(*nom_where, n.status == APPROVED, n.revoked_at.is_(None))
        .group_by(n.field_id, n.nominee_kind)
    )
    for field_id, kind, count in await session.execute(stmt):
        stat = stats.get(field_id)
        if stat is None:
            name = fields[field_id].name if field_id in fields else None
            stat = stats[field_id] = FieldStat(field_id, name)
        if kind == COLLECTIVE:
            stat.collective += count
        else:
            stat.individual += count

    def order(s: FieldStat) -> tuple[int, int, int, str]:
        info = fields.get(s.field_id) if s.field_id is not None else None
        return (-s.total, s.field_id is None, info.sort_order if info else 0, fold(s.name or ""))

    return sorted(stats.values(), key=order)


def _unit_stats(
    units: dict[int, _UnitInfo], scope_ids: frozenset[int] | None, acc: dict[int | None, _UnitAcc]
) -> list[UnitStat]:
    ids: Iterable[int] = scope_ids if scope_ids is not None else units.keys()
    wanted = {i for i in ids if i in units and (units[i].active or i in acc)}
    wanted |= {i for i in acc if i is not None and (scope_ids is None or i in scope_ids)}
    out: list[UnitStat] = []
    for uid in wanted:
        info = units.get(uid)
        a = acc.get(uid) or _UnitAcc()
        name = info.name if info else None
        merged = units.get(info.merged_into_id) if info and info.merged_into_id else None
        out.append(
            UnitStat(
                unit_id=uid,
                name=name,
                kind=info.kind if info else None,
                active=info.active if info else False,
                merged_into_name=merged.name if merged else None,
                former_names=tuple(nm for nm, _ in a.names.most_common() if nm != name),
                exemplars_individual=a.ex_individual,
                exemplars_collective=a.ex_collective,
                revoked=a.revoked,
                good_deeds=a.deeds,
                nominations=a.nominations,
            )
        )
    out.sort(key=lambda s: (not s.active, fold(s.name or ""), s.unit_id or 0))
    if None in acc and scope_ids is None:
        a = acc[None]
        out.append(
            UnitStat(
                unit_id=None,
                name=None,
                exemplars_individual=a.ex_individual,
                exemplars_collective=a.ex_collective,
                revoked=a.revoked,
                good_deeds=a.deeds,
                nominations=a.nominations,
            )
        )
    return out


_RAW_DATETIME = DateTime(timezone=True)


def _raw(column: Any) -> Any:
    """A UTC datetime column read without the UTCDateTime decorator (the list loops handle the
    naive values SQLite returns): the same values, less Python work per row."""
    return type_coerce(column, _RAW_DATETIME)


def _day_of(value: datetime | None, zone: tzinfo) -> date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).date()


@dataclass(slots=True)
class _Names:
    """id -> name of the small tables, so list queries read one table and join nothing.

    Each name is one shared string object however many rows show it.
    """

    units: dict[int, str]
    fields: dict[int, str]
    titles: dict[int, str]
    movements: dict[int, str]
    members: dict[int, str]


async def _load_names(session: AsyncSession, units: dict[int, _UnitInfo]) -> _Names:
    async def pairs(stmt: Any) -> dict[int, str]:
        return {row[0]: row[1] for row in await session.execute(stmt)}

    return _Names(
        units={uid: u.name for uid, u in units.items()},
        fields=await pairs(select(Field.id, Field.name)),
        titles=await pairs(select(Title.id, Title.name)),
        movements=await pairs(select(Movement.id, Movement.name)),
        members=await pairs(select(Member.id, Member.full_name)),
    )


async def _nomination_rows(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], zone: tzinfo, names: _Names
) -> list[NominationRow]:
    n = Nomination
    stmt = (
        select(
            n.id,
            n.status,
            _raw(n.revoked_at),
            n.nominee_kind,
            n.nominee_name_at_time,
            n.nominee_member_id,
            n.nominee_unit_id,
            n.unit_id,
            n.unit_name_at_time,
            n.field_id,
            n.title_id,
            n.movement_id,
            n.nominator_id,
            n.achievements,
            n.good_practices,
            _raw(n.submitted_at),
            _raw(n.decided_at),
            n.revoke_reason,
        )
        .where(*where)
        .execution_options(yield_per=STREAM_PARTITION)
    )
    share = _Interner()
    units, fields, titles = names.units.get, names.fields.get, names.titles.get
    movements, members = names.movements.get, names.members.get
    out: list[NominationRow] = []
    append = out.append
    result = await session.stream(stmt)
    async for part in result.partitions():
        for (
            nid,
            status,
            revoked_at,
            kind,
            nominee_name,
            nominee_member,
            nominee_unit,
            unit_id,
            unit_name,
            field_id,
            title_id,
            movement_id,
            nominator_id,
            achievements,
            practices,
            submitted_at,
            decided_at,
            revoke_reason,
        ) in part:
            if nominee_name is None:
                nominee_name = (
                    members(nominee_member) if nominee_member is not None else None
                ) or (units(nominee_unit) if nominee_unit is not None else None)
            append(
                NominationRow(
                    nid,
                    share(status) or "",
                    revoked_at is not None,
                    share(kind) or INDIVIDUAL,
                    share(nominee_name) or "",
                    unit_id,
                    share(unit_name) or (units(unit_id) if unit_id is not None else None),
                    fields(field_id) if field_id is not None else None,
                    titles(title_id) if title_id is not None else None,
                    movements(movement_id) if movement_id is not None else None,
                    members(nominator_id),
                    achievements,
                    practices,
                    _day_of(submitted_at, zone),
                    _day_of(decided_at, zone),
                    _day_of(revoked_at, zone),
                    revoke_reason,
                )
            )
    # by the local day of submission, then id (the same order on both backends)
    out.sort(key=lambda row: (row.submitted_on or date.min, row.id))
    return out


async def _deed_rows(
    session: AsyncSession, where: Sequence[ColumnElement[bool]], zone: tzinfo, names: _Names
) -> list[GoodDeedRow]:
    d = GoodDeed
    stmt = (
        select(
            d.id,
            d.subject_kind,
            d.subject_name_at_time,
            d.subject_member_id,
            d.subject_unit_id,
            d.unit_id,
            d.unit_name_at_time,
            d.occurred_on,
            _raw(d.submitted_at),
            d.place,
            d.description,
            d.reporter_id,
        )
        .where(*where)
        .execution_options(yield_per=STREAM_PARTITION)
    )
    share = _Interner()
    units, members = names.units.get, names.members.get
    out: list[GoodDeedRow] = []
    append = out.append
    result = await session.stream(stmt)
    async for part in result.partitions():
        for (
            did,
            kind,
            subject_name,
            subject_member,
            subject_unit,
            unit_id,
            unit_name,
            occurred_on,
            submitted_at,
            place,
            description,
            reporter_id,
        ) in part:
            if subject_name is None:
                subject_name = (
                    members(subject_member) if subject_member is not None else None
                ) or (units(subject_unit) if subject_unit is not None else None)
            append(
                GoodDeedRow(
                    did,
                    share(kind) or INDIVIDUAL,
                    share(subject_name) or "",
                    unit_id,
                    share(unit_name) or (units(unit_id) if unit_id is not None else None),
                    occurred_on,
                    _day_of(submitted_at, zone),
                    share(place),
                    description,
                    members(reporter_id),
                )
            )
    # by the deed's day, then id (the same order on both backends)
    out.sort(key=lambda row: (row.day or date.min, row.id))
    return out


async def _good_practices(
    session: AsyncSession, nom_where: Sequence[ColumnElement[bool]], limit: int
) -> tuple[list[PracticeRow], int]:
    n = Nomination
    nominee = aliased(Member)
    nominee_unit = aliased(Unit)
    unit = aliased(Unit)
    where = [
        *nom_where,
        n.status == APPROVED,
        n.revoked_at.is_(None),
        n.good_practices.is_not(None),
        func.length(func.trim(n.good_practices)) > 0,
    ]
    total = (await session.execute(select(func.count()).select_from(n).where(*where))).scalar_one()
    if limit <= 0 or not total:
        return [], int(total)
    stmt = (
        select(
            n.id,
            func.coalesce(n.nominee_name_at_time, nominee.full_name, nominee_unit.name),
            n.nominee_kind,
            func.coalesce(n.unit_name_at_time, unit.name),
            Field.name,
            n.good_practices,
        )
        .select_from(n)
        .outerjoin(nominee, nominee.id == n.nominee_member_id)
        .outerjoin(nominee_unit, nominee_unit.id == n.nominee_unit_id)
        .outerjoin(unit, unit.id == n.unit_id)
        .outerjoin(Field, Field.id == n.field_id)
        .where(*where)
        .order_by(n.decided_at.desc().nulls_last(), n.id.desc())
        .limit(limit)
    )
    rows = [
        PracticeRow(r[0], r[1] or "", r[2] or INDIVIDUAL, r[3], r[4], (r[5] or "").strip())
        for r in await session.execute(stmt)
    ]
    return rows, int(total)


# --- the Telegram summary ------------------------------------------------------------------------

TOP_N = 5
PRACTICES_SHOWN = 5
PRACTICE_CHARS = 300
NAME_CHARS = 120


def _short(text: str | None, limit: int) -> str:
    """One line, at most `limit` characters (cut before escaping, so no entity is cut)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _e(text: str | None, limit: int = NAME_CHARS) -> str:
    return html.escape(_short(text, limit), quote=False)


def render_summary(data: ReportData, lang: str = "vi") -> list[str]:
    """The report as Telegram HTML messages: one chunk normally, more when it is long.

    Every chunk is under `MESSAGE_LIMIT` characters and is cut at a line boundary; no tag spans
    two lines, so every chunk is well-formed on its own.
    """
    lang = normalise_lang(lang)
    tx = TEXTS[lang]
    at = data.generated_at.astimezone(resolve_tz(data.tz_name))

    def num(value: int) -> str:
        return fmt_int(value, lang)

    lines: list[str] = [
        f"📊 <b>{html.escape(tx['title'])}</b>",
        f"<b>{tx['report_period']}:</b> {html.escape(period_label(data.period, lang))}",
        f"<b>{tx['scope']}:</b> {html.escape(scope_label(data, lang))}",
        f"<i>{html.escape(label(lang, 'as_of', time=f'{at:%H:%M}', date=fmt_date(at.date())))}</i>",
        "",
        f"📝 <b>{tx['nominations']}:</b> {num(data.nominations_total)}",
    ]
    for status, count in data.nominations_by_status.items():
        lines.append(f"• {html.escape(status_label(status, lang))}: {num(count)}")
    if data.nominations_detail != "all" and data.lists_included:
        lines.append(f"<i>{html.escape(tx['detail_restricted'])}</i>")
    lines += [
        "",
        f"🌸 <b>{tx['exemplars']}:</b> "
        + label(
            lang,
            "exemplars_line",
            total=num(data.exemplars_total),
            individual=num(data.exemplars_individual),
            collective=num(data.exemplars_collective),
        ),
    ]
    if data.revoked_count:
        lines.append(f"<i>{label(lang, 'revoked_line', n=num(data.revoked_count))}</i>")
    lines.append(f"🤝 <b>{tx['good_deeds']}:</b> {num(data.good_deeds_total)}")

    top_fields = [f for f in data.by_field if f.total > 0][:TOP_N]
    if top_fields:
        lines += ["", f"🏷 <b>{tx['top_fields']}</b>"]
        for i, f in enumerate(top_fields, 1):
            figures = label(
                lang,
                "field_line",
                total=num(f.total),
                individual=num(f.individual),
                collective=num(f.collective),
            )
            lines.append(f"{i}. {_e(field_label(f, lang))} — {figures}")

    ranked = sorted(
        (u for u in data.by_unit if u.exemplars + u.good_deeds > 0),
        key=lambda u: (-u.exemplars, -u.good_deeds, fold(u.name or "")),
    )[:TOP_N]
    if ranked:
        lines += ["", f"🏆 <b>{tx['top_units']}</b>"]
        for i, u in enumerate(ranked, 1):
            figures = label(lang, "unit_line", exemplars=num(u.exemplars), deeds=num(u.good_deeds))
            lines.append(f"{i}. {_e(unit_label(u, lang), 2 * NAME_CHARS)} — {figures}")

    lines += ["", f"⚠️ <b>{tx['no_activity']}</b>"]
    if data.units_without_activity:
        lines += [
            f"• {_e(unit_label(u, lang), 2 * NAME_CHARS)}" for u in data.units_without_activity
        ]
    else:
        lines.append(html.escape(tx["all_units_active"]))

    if data.good_practices:
        lines += ["", f"💡 <b>{tx['practices']}</b>"]
        for p in data.good_practices[:PRACTICES_SHOWN]:
            who = _e(p.nominee_name)
            where = f" ({_e(p.unit_name)})" if p.unit_name and p.unit_name != p.nominee_name else ""
            lines.append(
                f"<blockquote><b>{who}</b>{where}: {_e(p.text, PRACTICE_CHARS)}</blockquote>"
            )
        more = data.good_practices_total - min(len(data.good_practices), PRACTICES_SHOWN)
        if more > 0:
            lines.append(f"<i>{html.escape(label(lang, 'more_practices', n=num(more)))}</i>")
    return split_lines(lines)


def split_lines(lines: Sequence[str], limit: int = CHUNK_LIMIT) -> list[str]:
    """Pack lines into chunks of at most `limit` characters, cutting only between lines."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if len(line) > limit:  # cannot happen with the truncation above; stay safe regardless
            line = html.escape(_short(_strip_tags(line), limit - 10), quote=False)
        extra = len(line) + (1 if current else 0)
        if current and size + extra > limit:
            chunks.append(_trim_blank("\n".join(current)))
            current, size = [], 0
            extra = len(line)
        current.append(line)
        size += extra
    if current:
        chunks.append(_trim_blank("\n".join(current)))
    return [c for c in chunks if c]


def _trim_blank(text: str) -> str:
    return text.strip("\n")


def _strip_tags(line: str) -> str:
    out: list[str] = []
    inside = False
    for ch in line:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return html.unescape("".join(out))
