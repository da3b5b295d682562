"""Schedule rules for announcements: parsing, next occurrence, due slots, descriptions.

Pure functions, no I/O and no Telegram. Times are stored and compared in UTC (aware datetimes);
a rule is evaluated in the office time zone (default ``Asia/Ho_Chi_Minh``, UTC+7, no DST).

Rule syntax
===========

Case-insensitive; Vietnamese may be written with or without diacritics; the time ``HH:MM`` (also
``8h``, ``8h30``, optionally preceded by ``lúc``/``at``) always comes last. Text in parentheses
is ignored. Store the canonical form given by :meth:`Rule.to_text`.

English (canonical first) and Vietnamese forms:

* ``once 2026-12-01 08:00`` · ``once 01/12/2026 08:00`` · ``một lần 01/12/2026 08:00``
* ``daily 08:00`` · ``hằng ngày 08:00`` (also ``hàng ngày``, ``mỗi ngày``)
* ``weekly mon 08:00`` · ``weekly mon,thu 08:00`` · ``weekly t2,t5 08:00`` ·
  ``hàng tuần thứ 2 08:00`` · ``hằng tuần thứ hai, thứ năm 08:00`` ·
  ``Thứ Hai và Thứ Năm hằng tuần lúc 08:00`` (``cn``/``chủ nhật`` = Sunday)
* ``monthly 15 08:00`` · ``hằng tháng ngày 15 08:00`` · ``ngày 15 hằng tháng 08:00``
* ``monthly first-workday 08:00`` · ``ngày làm việc đầu tiên của tháng lúc 08:00``
* ``monthly last-workday 16:30`` · ``ngày làm việc cuối cùng của tháng lúc 16:30``
* ``yearly 11/06 08:00`` (dd/mm) · ``hằng năm 11/06 08:00`` · ``ngày 11/6 hằng năm lúc 08:00``

The English descriptions produced by :func:`describe_rule` ("Every Monday and Thursday at
08:00", "On day 15 of every month at 08:00", ...) and the Vietnamese ones are accepted back.

Semantics
=========

* ``monthly N``: a day beyond the month's length means the month's last day (31 → 30/04, 28/02).
  ``yearly 29/02`` falls on 28/02 in common years.
* ``working_days_only``: a slot falling on a Saturday, a Sunday or a Vietnamese public holiday
  (the ``holidays`` package, with its in-lieu days: e.g. Tết 2027 is 04/02–10/02/2027) is skipped
  and the next slot of the rule is used. Saturdays that the government turned into working days
  (làm bù, e.g. 22/08/2026) count as working days. ``monthly first-workday``/``last-workday`` are
  defined by working days anyway, and an explicit ``once`` date is always kept: the admin chose it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_TZ",
    "DueSlots",
    "Frequency",
    "InvalidRule",
    "MonthAnchor",
    "Rule",
    "describe_rule",
    "due_slots",
    "is_working_day",
    "next_occurrence",
    "next_working_day",
    "parse_rule",
    "working_days_between",
]

DEFAULT_TZ = "Asia/Ho_Chi_Minh"

# How far ahead next_occurrence() looks before concluding that a rule never fires again
# (e.g. "weekly sat" with working_days_only has only the rare make-up Saturdays).
_HORIZON_DAYS = 366 * 10
_HORIZON_MONTHS = 12 * 20
_HORIZON_YEARS = 30

_USAGE_VI = (
    "Ví dụ: once 01/12/2026 08:00 · daily 08:00 · weekly t2,t5 08:00 · monthly 15 08:00 · "
    "monthly first-workday 08:00 · monthly last-workday 16:30 · yearly 11/06 08:00"
)
_USAGE_EN = (
    "Examples: once 2026-12-01 08:00 · daily 08:00 · weekly mon,thu 08:00 · monthly 15 08:00 · "
    "monthly first-workday 08:00 · monthly last-workday 16:30 · yearly 11/06 08:00"
)


class InvalidRule(ValueError):
    """A schedule rule (or time zone) that cannot be understood; carries both languages."""

    def __init__(self, message_vi: str, message_en: str) -> None:
        super().__init__(message_vi, message_en)
        self.message_vi = message_vi
        self.message_en = message_en

    def message(self, lang: str = "vi") -> str:
        return self.message_en if lang == "en" else self.message_vi

    def __str__(self) -> str:
        return f"{self.message_vi} / {self.message_en}"


class Frequency(StrEnum):
    ONCE = "once"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"


class MonthAnchor(StrEnum):
    DAY = "day"
    FIRST_WORKDAY = "first-workday"
    LAST_WORKDAY = "last-workday"


_WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed schedule rule. Build it with :func:`parse_rule` or the constructor.

    ``weekdays`` uses 0 = Monday … 6 = Sunday (``date.weekday()``).
    """

    frequency: Frequency
    at: time
    on: date | None = None
    weekdays: tuple[int, ...] = ()
    day: int | None = None
    month: int | None = None
    anchor: MonthAnchor = MonthAnchor.DAY

    def __post_init__(self) -> None:
        if self.at.tzinfo is not None or self.at.second or self.at.microsecond:
            raise ValueError("Rule.at must be a naive HH:MM time")
        f = self.frequency
        if f is Frequency.ONCE and self.on is None:
            raise ValueError("a once rule needs a date")
        if f is Frequency.WEEKLY and (
            not self.weekdays
            or tuple(sorted(set(self.weekdays))) != self.weekdays
            or not all(0 <= w <= 6 for w in self.weekdays)
        ):
            raise ValueError("a weekly rule needs sorted, unique weekdays in 0..6")
        if (
            f is Frequency.MONTHLY
            and self.anchor is MonthAnchor.DAY
            and not (self.day is not None and 1 <= self.day <= 31)
        ):
            raise ValueError("a monthly rule needs a day in 1..31")
        if f is Frequency.YEARLY:
            if self.day is None or self.month is None:
                raise ValueError("a yearly rule needs a day and a month")
            date(2000, self.month, self.day)  # leap year: accepts 29/02, rejects 31/04

    @property
    def skips_non_working_days(self) -> bool:
        """Whether ``working_days_only`` applies (it does not to explicit/working-day rules)."""
        if self.frequency is Frequency.ONCE:
            return False
        return not (self.frequency is Frequency.MONTHLY and self.anchor is not MonthAnchor.DAY)

    def to_text(self) -> str:
        """The canonical form, accepted by :func:`parse_rule` (store this)."""
        hhmm = f"{self.at:%H:%M}"
        match self.frequency:
            case Frequency.ONCE:
                assert self.on is not None
                return f"once {self.on.isoformat()} {hhmm}"
            case Frequency.DAILY:
                return f"daily {hhmm}"
            case Frequency.WEEKLY:
                days = ",".join(_WEEKDAY_CODES[w] for w in self.weekdays)
                return f"weekly {days} {hhmm}"
            case Frequency.MONTHLY:
                what = str(self.day) if self.anchor is MonthAnchor.DAY else self.anchor.value
                return f"monthly {what} {hhmm}"
            case Frequency.YEARLY:
                return f"yearly {self.day:02d}/{self.month:02d} {hhmm}"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lowercase, strip Vietnamese diacritics (đ → d) and collapse whitespace."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split())


_TIME_RE = re.compile(
    r"^(?P<body>.*?)(?:^|\s+)(?:(?:luc|at|vao luc|vao)\s+)?"
    r"(?P<h>\d{1,2})(?::(?P<m>\d{1,2})|h(?P<m2>\d{2})?)$"
)

_DAY_NAMES: dict[str, int] = {
    **{name: i for i, name in enumerate(_WEEKDAY_CODES)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": 1,
    "thur": 3,
    "thurs": 3,
    **{f"t{n}": n - 2 for n in range(2, 8)},
    "cn": 6,
}
_VI_ORDINALS = {"hai": 2, "ba": 3, "tu": 4, "nam": 5, "sau": 6, "bay": 7}

_ONCE_KW = r"(?:once|one-off|one time|mot lan|1 lan)"
_DAILY_KW = r"(?:daily|every day|each day|hang ngay|moi ngay)"
_WEEKLY_KW = r"(?:weekly|every week|each week|hang tuan|moi tuan)"
_MONTHLY_KW = r"(?:monthly|every month|each month|hang thang|moi thang)"
_YEARLY_KW = r"(?:yearly|annually|every year|each year|hang nam|moi nam)"
_FIRST_WD = r"(?:the\s+)?first[- ]?work(?:ing)?[- ]?day|ngay lam viec dau tien|ngay lam viec dau"
_LAST_WD = r"(?:the\s+)?last[- ]?work(?:ing)?[- ]?day|ngay lam viec cuoi cung|ngay lam viec cuoi"
_OF_MONTH = (
    r"(?:\s+(?:of\s+(?:the|each|every)\s+month|cua\s+(?:moi\s+)?thang|trong\s+thang"
    r"|hang\s+thang|moi\s+thang))?"
)

_PATTERNS: tuple[tuple[Frequency, re.Pattern[str]], ...] = tuple(
    (freq, re.compile(pattern))
    for freq, pattern in (
        (Frequency.ONCE, rf"{_ONCE_KW}(?:\s+on)?(?:\s+vao)?(?:\s+ngay)?\s+(?P<date>\S+)"),
        (Frequency.DAILY, _DAILY_KW),
        (
            Frequency.YEARLY,
            rf"{_YEARLY_KW}(?:\s+on)?(?:\s+vao)?(?:\s+ngay)?\s+(?P<dm>\d{{1,2}}[/.]\d{{1,2}})",
        ),
        (Frequency.YEARLY, r"(?:ngay\s+)?(?P<dm>\d{1,2}[/.]\d{1,2})\s+(?:hang|moi)\s+nam"),
        (Frequency.MONTHLY, rf"(?:{_MONTHLY_KW}\s+)?(?P<anchor>{_FIRST_WD}|{_LAST_WD}){_OF_MONTH}"),
        (
            Frequency.MONTHLY,
            rf"{_MONTHLY_KW}(?:\s+on)?(?:\s+vao)?(?:\s+(?:day|ngay))?\s+(?P<day>\d{{1,2}})",
        ),
        (Frequency.MONTHLY, r"(?:on\s+)?day\s+(?P<day>\d{1,2})\s+of\s+(?:every|each|the)\s+month"),
        (Frequency.MONTHLY, r"ngay\s+(?P<day>\d{1,2})\s+(?:hang|moi)\s+thang"),
        (Frequency.WEEKLY, rf"{_WEEKLY_KW}(?:\s+(?:on|vao))?\s+(?P<days>.+)"),
        (Frequency.WEEKLY, r"(?P<days>.+?)\s+(?:hang|moi)\s+tuan"),
        (Frequency.WEEKLY, r"(?:every|each)\s+(?P<days>.+)"),
    )
)

_KIND_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        _ONCE_KW,
        "Lịch một lần cần ngày dd/mm/yyyy, ví dụ: once 01/12/2026 08:00.",
        "A one-off schedule needs a date, e.g. once 2026-12-01 08:00.",
    ),
    (
        _WEEKLY_KW,
        "Lịch hằng tuần cần các thứ trong tuần, ví dụ: weekly t2,t5 08:00.",
        "A weekly schedule needs weekdays, e.g. weekly mon,thu 08:00.",
    ),
    (
        _MONTHLY_KW,
        "Lịch hằng tháng cần ngày (1–31), first-workday hoặc last-workday, "
        "ví dụ: monthly 15 08:00.",
        "A monthly schedule needs a day (1-31), first-workday or last-workday, "
        "e.g. monthly 15 08:00.",
    ),
    (
        _YEARLY_KW,
        "Lịch hằng năm cần ngày/tháng dd/mm, ví dụ: yearly 11/06 08:00.",
        "A yearly schedule needs a day/month dd/mm, e.g. yearly 11/06 08:00.",
    ),
    (
        _DAILY_KW,
        "Lịch hằng ngày chỉ cần giờ, ví dụ: daily 08:00.",
        "A daily schedule only takes a time, e.g. daily 08:00.",
    ),
)


def parse_rule(text: str) -> Rule:
    """Parse a schedule rule (see the module docstring); raise :class:`InvalidRule`."""
    original = " ".join(unicodedata.normalize("NFC", text or "").split())
    if not original:
        raise InvalidRule(f"Chưa nhập lịch. {_USAGE_VI}", f"The schedule is empty. {_USAGE_EN}")
    folded = _fold(re.sub(r"\([^)]*\)", " ", original))
    folded = re.sub(r"\s*([,;])\s*", r"\1 ", folded).strip(" ,;.")

    m = _TIME_RE.match(folded)
    if m is None:
        raise InvalidRule(
            f"Thiếu giờ (HH:MM) ở cuối lịch “{original}”. {_USAGE_VI}",
            f"Missing the time (HH:MM) at the end of “{original}”. {_USAGE_EN}",
        )
    hour, minute = int(m["h"]), int(m["m"] or m["m2"] or 0)
    if hour > 23 or minute > 59:
        raise InvalidRule(
            f"Giờ không hợp lệ: {hour}:{minute:02d} (giờ từ 0 đến 23, phút từ 0 đến 59).",
            f"Invalid time: {hour}:{minute:02d} (hours 0-23, minutes 0-59).",
        )
    at = time(hour, minute)
    body = m["body"].strip(" ,;")

    for freq, pattern in _PATTERNS:
        pm = pattern.fullmatch(body)
        if pm is None:
            continue
        groups = pm.groupdict()
        match freq:
            case Frequency.ONCE:
                return Rule(Frequency.ONCE, at, on=_parse_full_date(groups["date"]))
            case Frequency.DAILY:
                return Rule(Frequency.DAILY, at)
            case Frequency.WEEKLY:
                return Rule(Frequency.WEEKLY, at, weekdays=_parse_weekdays(groups["days"]))
            case Frequency.MONTHLY:
                if groups.get("anchor"):
                    first = re.fullmatch(_FIRST_WD, groups["anchor"]) is not None
                    anchor = MonthAnchor.FIRST_WORKDAY if first else MonthAnchor.LAST_WORKDAY
                    return Rule(Frequency.MONTHLY, at, anchor=anchor)
                day = int(groups["day"])
                if not 1 <= day <= 31:
                    raise InvalidRule(
                        f"Ngày trong tháng phải từ 1 đến 31 (nhận được {day}).",
                        f"The day of the month must be 1-31 (got {day}).",
                    )
                return Rule(Frequency.MONTHLY, at, day=day)
            case Frequency.YEARLY:
                day_s, month_s = re.split(r"[/.]", groups["dm"])
                day, month = int(day_s), int(month_s)
                try:
                    date(2000, month, day)
                except ValueError:
                    raise InvalidRule(
                        f"Ngày/tháng không hợp lệ: {groups['dm']} (định dạng dd/mm).",
                        f"Invalid day/month: {groups['dm']} (format dd/mm).",
                    ) from None
                return Rule(Frequency.YEARLY, at, day=day, month=month)

    for keyword, hint_vi, hint_en in _KIND_HINTS:
        if re.search(rf"\b{keyword}\b", body):
            raise InvalidRule(
                f"Không hiểu lịch “{original}”. {hint_vi}",
                f"Cannot understand “{original}”. {hint_en}",
            )
    raise InvalidRule(
        f"Không hiểu loại lịch “{original}”: dùng once, daily, weekly, monthly hoặc yearly. "
        f"{_USAGE_VI}",
        f"Unknown schedule “{original}”: use once, daily, weekly, monthly or yearly. {_USAGE_EN}",
    )


def _parse_full_date(raw: str) -> date:
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", raw)
    dmy = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", raw)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if dmy:
            return date(int(dmy[3]), int(dmy[2]), int(dmy[1]))
    except ValueError:
        pass
    raise InvalidRule(
        f"Ngày không hợp lệ: “{raw}” (định dạng dd/mm/yyyy, ví dụ 01/12/2026).",
        f"Invalid date: “{raw}” (format yyyy-mm-dd or dd/mm/yyyy, e.g. 2026-12-01).",
    )


def _parse_weekdays(raw: str) -> tuple[int, ...]:
    text = re.sub(r"\bthu\s*([2-7])\b", r"t\1", raw)
    text = re.sub(r"\bthu\s+(hai|ba|tu|nam|sau|bay)\b", lambda m: f"t{_VI_ORDINALS[m[1]]}", text)
    text = re.sub(r"\bchu\s*nhat\b", "cn", text)
    tokens = [t for t in re.split(r"[,;\s]+|\b(?:and|va)\b", text) if t and t.strip()]
    days: set[int] = set()
    for token in tokens:
        token = token.strip()
        if token not in _DAY_NAMES:
            raise InvalidRule(
                f"Không hiểu thứ “{token}”: dùng t2…t7, cn, thứ 2…thứ 7, chủ nhật hoặc mon…sun.",
                f"Unknown weekday “{token}”: use mon…sun (or t2…t7, cn).",
            )
        days.add(_DAY_NAMES[token])
    if not days:
        raise InvalidRule(
            "Lịch hằng tuần cần các thứ trong tuần, ví dụ: weekly t2,t5 08:00.",
            "A weekly schedule needs weekdays, e.g. weekly mon,thu 08:00.",
        )
    return tuple(sorted(days))


# --------------------------------------------------------------------------------------------
# Working days
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _days_off(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("VN", years=year).keys())


@functools.cache
def _makeup_workdays() -> frozenset[date]:
    """Saturdays/Sundays officially worked in exchange for a day off (ngày làm bù).

    The ``holidays`` package lists the day off ("substituted from dd/mm/yyyy") but not the
    worked weekend day; it keeps both in ``VietnamStaticHolidays.special_public_holidays`` as
    ``(month, day, from_month, from_day[, from_year])``.
    """
    try:
        from holidays.countries.vietnam import VietnamStaticHolidays
    except ImportError:  # pragma: no cover - layout of a future holidays release
        return frozenset()
    found: set[date] = set()
    table = getattr(VietnamStaticHolidays, "special_public_holidays", {})
    for year, entries in table.items():
        items = entries if entries and isinstance(entries[0], tuple) else (entries,)
        for entry in items:
            if len(entry) >= 4 and all(isinstance(x, int) for x in entry[:4]):
                from_year = entry[4] if len(entry) >= 5 else year
                try:
                    found.add(date(from_year, entry[2], entry[3]))
                except (TypeError, ValueError):  # pragma: no cover
                    continue
    return frozenset(found)


def is_working_day(d: date) -> bool:
    """Monday-Friday that is not a Vietnamese public holiday or in-lieu day off, or an
    officially worked weekend day (làm bù)."""
    if d in _makeup_workdays():
        return True
    return d.weekday() < 5 and d not in _days_off(d.year)


def next_working_day(d: date, *, inclusive: bool = True) -> date:
    """The first working day on or after ``d`` (strictly after when ``inclusive=False``)."""
    current = d if inclusive else d + timedelta(days=1)
    while not is_working_day(current):
        current += timedelta(days=1)
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days ``d`` with ``start < d <= end`` (negative when ``end < start``).

    ``working_days_between(d, d) == 0``; a deadline of "5 working days" after ``start`` is the
    first ``end`` where this reaches 5.
    """
    if end < start:
        return -working_days_between(end, start)
    count = 0
    current = start + timedelta(days=1)
    while current <= end:
        count += is_working_day(current)
        current += timedelta(days=1)
    return count


# --------------------------------------------------------------------------------------------
# Occurrences
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRule(
            f"Múi giờ không hợp lệ: “{tz}” (ví dụ Asia/Ho_Chi_Minh).",
            f"Unknown time zone: “{tz}” (e.g. Asia/Ho_Chi_Minh).",
        ) from None


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got {value!r}")


def _month_length(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _candidate_dates(rule: Rule, start: date) -> Iterator[date]:
    """Local dates on which the rule has a slot, from ``start`` on, increasing, bounded."""
    match rule.frequency:
        case Frequency.ONCE:
            assert rule.on is not None
            yield rule.on
        case Frequency.DAILY | Frequency.WEEKLY:
            wanted = set(rule.weekdays) if rule.frequency is Frequency.WEEKLY else set(range(7))
            for offset in range(_HORIZON_DAYS):
                d = start + timedelta(days=offset)
                if d.weekday() in wanted:
                    yield d
        case Frequency.MONTHLY:
            for n in range(_HORIZON_MONTHS):
                year, month = _add_months(start.year, start.month, n)
                length = _month_length(year, month)
                if rule.anchor is MonthAnchor.DAY:
                    assert rule.day is not None
                    yield date(year, month, min(rule.day, length))
                    continue
                days = [date(year, month, i) for i in range(1, length + 1)]
                if rule.anchor is MonthAnchor.LAST_WORKDAY:
                    days.reverse()
                found = next((d for d in days if is_working_day(d)), None)
                if found is not None:
                    yield found
        case Frequency.YEARLY:
            assert rule.day is not None and rule.month is not None
            for year in range(start.year, start.year + _HORIZON_YEARS):
                yield date(year, rule.month, min(rule.day, _month_length(year, rule.month)))


def _slot_utc(d: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(d, at, tzinfo=zone).astimezone(UTC)


def next_occurrence(
    rule: Rule,
    after: datetime,
    tz: str = DEFAULT_TZ,
    working_days_only: bool = False,
) -> datetime | None:
    """The rule's first slot strictly after ``after`` (aware), in UTC; ``None`` if none.

    Computed in ``tz``: a 06:30 slot in Asia/Ho_Chi_Minh is 23:30 UTC the day before.
    """
    _require_aware("after", after)
    zone = _zone(tz)
    start = after.astimezone(zone).date() - timedelta(days=1)
    skip = working_days_only and rule.skips_non_working_days
    for d in _candidate_dates(rule, start):
        slot = _slot_utc(d, rule.at, zone)
        if slot <= after or (skip and not is_working_day(d)):
            continue
        return slot
    return None


@dataclass(frozen=True, slots=True)
class DueSlots:
    """What the ticker should do now for one announcement.

    ``due``: the slot to post now (possibly late, within the grace window), or ``None``.
    ``missed``: slots to skip and log (older than the grace window, or superseded by ``due``).
    ``next_run_at``: the rule's first slot after ``now`` (``None``: the rule is finished).
    """

    due: datetime | None
    missed: list[datetime] = field(default_factory=list)
    next_run_at: datetime | None = None


def due_slots(
    rule: Rule,
    after: datetime,
    now: datetime,
    grace: timedelta,
    tz: str = DEFAULT_TZ,
    working_days_only: bool = False,
) -> DueSlots:
    """Slots in ``(after, now]``: the newest one not older than ``now - grace`` is due (posted
    once, late if need be); every other one is missed. ``after`` is the last slot handled, or
    the announcement's creation time."""
    _require_aware("after", after)
    _require_aware("now", now)
    slots: list[datetime] = []
    cursor = after
    upcoming = next_occurrence(rule, cursor, tz, working_days_only)
    while upcoming is not None and upcoming <= now:
        slots.append(upcoming)
        cursor = upcoming
        upcoming = next_occurrence(rule, cursor, tz, working_days_only)
    cutoff = now - grace
    due = slots[-1] if slots and slots[-1] >= cutoff else None
    missed = [s for s in slots if s != due]
    return DueSlots(due=due, missed=missed, next_run_at=upcoming)


# --------------------------------------------------------------------------------------------
# Descriptions
# --------------------------------------------------------------------------------------------

_VI_WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _join(items: list[str], conjunction: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def describe_rule(rule: Rule, lang: str = "vi", *, working_days_only: bool = False) -> str:
    """A sentence for people, e.g. "Thứ Hai hằng tuần lúc 08:00" / "Every Monday at 08:00"."""
    hhmm = f"{rule.at:%H:%M}"
    en = lang == "en"
    match rule.frequency:
        case Frequency.ONCE:
            assert rule.on is not None
            when = f"{rule.on:%d/%m/%Y}"
            text = f"Once on {when} at {hhmm}" if en else f"Một lần vào ngày {when} lúc {hhmm}"
        case Frequency.DAILY:
            text = f"Every day at {hhmm}" if en else f"Hằng ngày lúc {hhmm}"
        case Frequency.WEEKLY:
            if en:
                days = _join([_EN_WEEKDAYS[w] for w in rule.weekdays], "and")
                text = f"Every {days} at {hhmm}"
            else:
                days = _join([_VI_WEEKDAYS[w] for w in rule.weekdays], "và")
                text = f"{days} hằng tuần lúc {hhmm}"
        case Frequency.MONTHLY if rule.anchor is MonthAnchor.FIRST_WORKDAY:
            text = (
                f"First working day of the month at {hhmm}"
                if en
                else f"Ngày làm việc đầu tiên của tháng lúc {hhmm}"
            )
        case Frequency.MONTHLY if rule.anchor is MonthAnchor.LAST_WORKDAY:
            text = (
                f"Last working day of the month at {hhmm}"
                if en
                else f"Ngày làm việc cuối cùng của tháng lúc {hhmm}"
            )
        case Frequency.MONTHLY:
            if en:
                note = " (or the last day of shorter months)" if (rule.day or 0) > 28 else ""
                text = f"On day {rule.day} of every month{note} at {hhmm}"
            else:
                note = " (tháng ít ngày hơn: ngày cuối tháng)" if (rule.day or 0) > 28 else ""
                text = f"Ngày {rule.day} hằng tháng{note} lúc {hhmm}"
        case Frequency.YEARLY:
            dm = f"{rule.day:02d}/{rule.month:02d}"
            text = f"Every year on {dm} at {hhmm}" if en else f"Ngày {dm} hằng năm lúc {hhmm}"
    if working_days_only and rule.skips_non_working_days:
        text += (
            " (skipping weekends and public holidays)"
            if en
            else " (bỏ qua thứ Bảy, Chủ nhật và ngày lễ)"
        )
    return text
