"""Schedule rules: parsing, next occurrence across holidays and time zones, due slots."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.services.schedule import (
    DueSlots,
    Frequency,
    InvalidRule,
    MonthAnchor,
    Rule,
    describe_rule,
    due_slots,
    is_working_day,
    next_occurrence,
    next_working_day,
    parse_rule,
    working_days_between,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """An instant given in office time, as an aware UTC datetime."""
    return datetime(y, mo, d, h, mi, tzinfo=HCM).astimezone(UTC)


def nxt(rule: str, after: datetime, working_days_only: bool = False) -> datetime | None:
    return next_occurrence(parse_rule(rule), after, "Asia/Ho_Chi_Minh", working_days_only)


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("once 2026-12-01 08:00", "once 2026-12-01 08:00"),
        ("ONCE 01/12/2026 08:00", "once 2026-12-01 08:00"),
        ("Một lần vào ngày 01/12/2026 lúc 08:00", "once 2026-12-01 08:00"),
        ("daily 08:00", "daily 08:00"),
        ("Hằng ngày lúc 8h", "daily 08:00"),
        ("hang ngay 7h30", "daily 07:30"),
        ("weekly mon 08:00", "weekly mon 08:00"),
        ("Weekly Mon,Thu 08:00", "weekly mon,thu 08:00"),
        ("weekly thu,mon 08:00", "weekly mon,thu 08:00"),
        ("weekly t2,t5 08:00", "weekly mon,thu 08:00"),
        ("hàng tuần thứ 2 08:00", "weekly mon 08:00"),
        ("hằng tuần thứ hai, thứ năm 08:00", "weekly mon,thu 08:00"),
        ("weekly cn 07:00", "weekly sun 07:00"),
        ("hằng tuần chủ nhật 07:00", "weekly sun 07:00"),
        ("Thứ Hai và Thứ Năm hằng tuần lúc 08:00", "weekly mon,thu 08:00"),
        ("monthly 15 08:00", "monthly 15 08:00"),
        ("hằng tháng ngày 15 08:00", "monthly 15 08:00"),
        ("monthly first-workday 08:00", "monthly first-workday 08:00"),
        ("monthly last-workday 16:30", "monthly last-workday 16:30"),
        ("Ngày làm việc đầu tiên của tháng lúc 08:00", "monthly first-workday 08:00"),
        ("yearly 11/06 08:00", "yearly 11/06 08:00"),
        ("yearly 6/5 08:00", "yearly 06/05 08:00"),
        ("hằng năm 11/6 lúc 08:00", "yearly 11/06 08:00"),
    ],
)
def test_parse_forms(text: str, canonical: str) -> None:
    rule = parse_rule(text)
    assert rule.to_text() == canonical
    assert parse_rule(canonical) == rule


@pytest.mark.parametrize(
    ("text", "fragment_vi", "fragment_en"),
    [
        ("", "Chưa nhập lịch", "empty"),
        ("   ", "Chưa nhập lịch", "empty"),
        ("daily", "Thiếu giờ", "Missing the time"),
        ("daily 08:00 please", "Thiếu giờ", "Missing the time"),
        ("daily 24:00", "Giờ không hợp lệ", "Invalid time"),
        ("daily 08:60", "Giờ không hợp lệ", "Invalid time"),
        ("fortnightly 08:00", "Không hiểu loại lịch", "Unknown schedule"),
        ("once 08:00", "Lịch một lần cần ngày", "needs a date"),
        ("once 31/02/2026 08:00", "Ngày không hợp lệ", "Invalid date"),
        ("once 2026-13-01 08:00", "Ngày không hợp lệ", "Invalid date"),
        ("weekly 08:00", "các thứ trong tuần", "needs weekdays"),
        ("weekly funday 08:00", "Không hiểu thứ", "Unknown weekday"),
        ("weekly t8 08:00", "Không hiểu thứ", "Unknown weekday"),
        ("monthly 08:00", "Lịch hằng tháng cần", "monthly schedule needs"),
        ("monthly 0 08:00", "từ 1 đến 31", "1-31"),
        ("monthly 32 08:00", "từ 1 đến 31", "1-31"),
        ("yearly 31/04 08:00", "Ngày/tháng không hợp lệ", "Invalid day/month"),
        ("yearly 2026 08:00", "Lịch hằng năm cần", "yearly schedule needs"),
    ],
)
def test_invalid_rules_explain_in_both_languages(
    text: str, fragment_vi: str, fragment_en: str
) -> None:
    with pytest.raises(InvalidRule) as info:
        parse_rule(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert fragment_vi in err.message_vi
    assert fragment_en in err.message_en
    assert err.message("en") == err.message_en
    assert err.message("vi") == err.message_vi
    assert fragment_vi in str(err) and fragment_en in str(err)


def test_unknown_time_zone_is_an_invalid_rule() -> None:
    with pytest.raises(InvalidRule, match="Asia/Ho_Chi_Minh"):
        next_occurrence(parse_rule("daily 08:00"), local(2026, 1, 1), "Mars/Olympus")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_occurrence(parse_rule("daily 08:00"), datetime(2026, 1, 1))


# ------------------------------------------------------------------------------ descriptions


def test_describe_vietnamese_and_english() -> None:
    cases = {
        "weekly mon 08:00": ("Thứ Hai hằng tuần lúc 08:00", "Every Monday at 08:00"),
        "weekly mon,wed,fri 08:00": (
            "Thứ Hai, Thứ Tư và Thứ Sáu hằng tuần lúc 08:00",
            "Every Monday, Wednesday and Friday at 08:00",
        ),
        "weekly sun 07:00": ("Chủ nhật hằng tuần lúc 07:00", "Every Sunday at 07:00"),
        "monthly first-workday 08:00": (
            "Ngày làm việc đầu tiên của tháng lúc 08:00",
            "First working day of the month at 08:00",
        ),
        "monthly last-workday 16:30": (
            "Ngày làm việc cuối cùng của tháng lúc 16:30",
            "Last working day of the month at 16:30",
        ),
        "monthly 15 08:00": ("Ngày 15 hằng tháng lúc 08:00", "On day 15 of every month at 08:00"),
        "yearly 11/06 08:00": ("Ngày 11/06 hằng năm lúc 08:00", "Every year on 11/06 at 08:00"),
        "daily 08:00": ("Hằng ngày lúc 08:00", "Every day at 08:00"),
        "once 01/12/2026 08:00": (
            "Một lần vào ngày 01/12/2026 lúc 08:00",
            "Once on 01/12/2026 at 08:00",
        ),
    }
    for text, (vi, en) in cases.items():
        rule = parse_rule(text)
        assert describe_rule(rule, "vi") == vi
        assert describe_rule(rule, "en") == en
    assert "ngày cuối tháng" in describe_rule(parse_rule("monthly 31 08:00"), "vi")
    assert describe_rule(parse_rule("daily 08:00"), "vi", working_days_only=True).endswith(
        "(bỏ qua thứ Bảy, Chủ nhật và ngày lễ)"
    )


# ------------------------------------------------------------------------------ working days


def test_tet_2027_and_public_holidays_are_days_off() -> None:
    # Tết Đinh Mùi: 06/02/2027 is a Saturday; days off 04/02 (Thu) .. 10/02 (Wed) with in-lieu days
    assert is_working_day(date(2027, 2, 3))
    for day in range(4, 11):
        assert not is_working_day(date(2027, 2, day)), day
    assert is_working_day(date(2027, 2, 11))
    # 30/4 and 1/5
    assert not is_working_day(date(2026, 4, 30)) and not is_working_day(date(2026, 5, 1))
    assert not is_working_day(date(2027, 5, 3))  # 1/5/2027 is a Saturday: Monday in lieu
    # 2/9: 2026 swaps Saturday 22/08 (worked) for Monday 31/08 (off)
    assert not is_working_day(date(2026, 8, 31))
    assert not is_working_day(date(2026, 9, 1)) and not is_working_day(date(2026, 9, 2))
    assert is_working_day(date(2026, 8, 22))  # a Saturday, officially worked (làm bù)
    assert not is_working_day(date(2026, 8, 29))  # an ordinary Saturday


def test_working_day_helpers() -> None:
    assert next_working_day(date(2027, 2, 4)) == date(2027, 2, 11)
    assert next_working_day(date(2027, 2, 3)) == date(2027, 2, 3)
    assert next_working_day(date(2027, 2, 3), inclusive=False) == date(2027, 2, 11)
    assert working_days_between(date(2027, 2, 1), date(2027, 2, 12)) == 4  # 2, 3, 11, 12
    assert working_days_between(date(2027, 2, 12), date(2027, 2, 1)) == -4
    assert working_days_between(date(2027, 2, 1), date(2027, 2, 1)) == 0


# ------------------------------------------------------------------------------ next occurrence


def test_weekly_rules() -> None:
    # 2026-11-23 is a Monday
    assert nxt("weekly mon 08:00", local(2026, 11, 23, 7, 59)) == local(2026, 11, 23, 8)
    assert nxt("weekly mon 08:00", local(2026, 11, 23, 8)) == local(2026, 11, 30, 8)
    assert nxt("weekly mon,thu 08:00", local(2026, 11, 23, 8)) == local(2026, 11, 26, 8)
    assert nxt("weekly mon,thu 08:00", local(2026, 11, 26, 9)) == local(2026, 11, 30, 8)


def test_monthly_rules() -> None:
    assert nxt("monthly 15 08:00", local(2026, 11, 15, 8)) == local(2026, 12, 15, 8)
    # a day beyond the month's length means the last day
    assert nxt("monthly 31 08:00", local(2026, 4, 1)) == local(2026, 4, 30, 8)
    assert nxt("monthly 31 08:00", local(2027, 2, 1)) == local(2027, 2, 28, 8)
    assert nxt("monthly 30 08:00", local(2028, 2, 1)) == local(2028, 2, 29, 8)
    assert nxt("monthly 31 08:00", local(2026, 5, 1)) == local(2026, 5, 31, 8)
    assert nxt("yearly 29/02 08:00", local(2026, 1, 1)) == local(2026, 2, 28, 8)
    assert nxt("yearly 11/06 08:00", local(2026, 6, 11, 8)) == local(2027, 6, 11, 8)


def test_first_and_last_working_day_of_month() -> None:
    first = "monthly first-workday 08:00"
    # 1/1/2027 is a Friday holiday, then a weekend: Monday 4/1
    assert nxt(first, local(2026, 12, 1, 9)) == local(2027, 1, 4, 8)
    # 1/5/2027 Saturday, 3/5 in lieu: Tuesday 4/5
    assert nxt(first, local(2027, 4, 30)) == local(2027, 5, 4, 8)
    # 1/9 and 2/9/2026 off: Thursday 3/9
    assert nxt(first, local(2026, 8, 5)) == local(2026, 9, 3, 8)
    # a month starting on a weekend: 1/11/2026 is a Sunday
    assert nxt(first, local(2026, 10, 5)) == local(2026, 11, 2, 8)
    # working_days_only changes nothing for working-day rules
    assert nxt(first, local(2026, 10, 5), True) == local(2026, 11, 2, 8)
    last = "monthly last-workday 16:30"
    assert nxt(last, local(2026, 4, 1)) == local(2026, 4, 29, 16, 30)  # 30/4 is off
    assert nxt(last, local(2026, 8, 1)) == local(2026, 8, 28, 16, 30)  # 31/8/2026 is off
    assert nxt(last, local(2026, 2, 1)) == local(2026, 2, 27, 16, 30)
    assert nxt(last, local(2026, 4, 29, 16, 30)) == local(2026, 5, 29, 16, 30)


def test_working_days_only_skips_tet_2027() -> None:
    assert nxt("daily 08:00", local(2027, 2, 3, 8), True) == local(2027, 2, 11, 8)
    assert nxt("daily 08:00", local(2027, 2, 3, 8), False) == local(2027, 2, 4, 8)
    # Monday 8/2/2027 (Mùng 3 Tết) is skipped to the next slot of the rule
    assert nxt("weekly mon 08:00", local(2027, 2, 1, 8), True) == local(2027, 2, 15, 8)
    assert nxt("monthly 5 08:00", local(2027, 1, 5, 8), True) == local(2027, 3, 5, 8)


def test_working_days_only_around_reunification_and_national_day() -> None:
    assert nxt("daily 08:00", local(2026, 4, 29, 8), True) == local(2026, 5, 4, 8)
    assert nxt("daily 08:00", local(2027, 4, 29, 8), True) == local(2027, 5, 4, 8)
    assert nxt("daily 08:00", local(2026, 8, 28, 8), True) == local(2026, 9, 3, 8)
    assert nxt("daily 08:00", local(2027, 9, 1, 8), True) == local(2027, 9, 6, 8)
    # the worked Saturday 22/08/2026 is a working day
    assert nxt("daily 08:00", local(2026, 8, 21, 8), True) == local(2026, 8, 22, 8)
    # a yearly slot on a weekend moves to the rule's next slot: 11/06/2028 is a Sunday
    assert nxt("yearly 11/06 08:00", local(2027, 6, 11, 8), True) == local(2029, 6, 11, 8)
    # a yearly slot on a fixed public holiday never falls on a working day
    assert nxt("yearly 02/09 08:00", local(2026, 1, 1), True) is None


def test_utc_plus_7_at_midnight_boundaries() -> None:
    # a 06:30 local slot is 23:30 UTC the previous day
    after = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)  # 07:00 local on 10/06
    assert nxt("daily 06:30", after) == datetime(2026, 6, 10, 23, 30, tzinfo=UTC)
    assert nxt("daily 00:00", after) == datetime(2026, 6, 10, 17, 0, tzinfo=UTC)
    # 23:59 UTC on Sunday 22/11 is already Monday 06:59 local: Monday's 06:30 is past
    sunday_late = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    assert nxt("weekly mon 06:30", sunday_late) == datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert nxt("weekly mon 07:00", sunday_late) == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    # working days are judged on the local date: Monday 31/08/2026 06:30 local (Sunday in UTC)
    # is a day off; Saturday 22/08/2026 06:30 local (Friday in UTC) is a worked Saturday
    assert nxt("daily 06:30", datetime(2026, 8, 30, 12, tzinfo=UTC), True) == datetime(
        2026, 9, 2, 23, 30, tzinfo=UTC
    )
    assert nxt("daily 06:30", datetime(2026, 8, 21, 0, tzinfo=UTC), True) == datetime(
        2026, 8, 21, 23, 30, tzinfo=UTC
    )
    # the result is UTC whatever the input's offset
    result = nxt("daily 08:00", local(2026, 1, 1).astimezone(HCM))
    assert result is not None and result.utcoffset() == timedelta(0)


def test_once_rules() -> None:
    rule = "once 01/12/2026 08:00"
    assert nxt(rule, local(2026, 11, 30)) == local(2026, 12, 1, 8)
    assert nxt(rule, local(2026, 12, 1, 8)) is None
    assert nxt(rule, local(2027, 1, 1)) is None
    # an explicit date is kept even on a day off (Sunday 06/12/2026)
    assert nxt("once 06/12/2026 08:00", local(2026, 12, 1), True) == local(2026, 12, 6, 8)


# ------------------------------------------------------------------------------ due slots


def test_slot_missed_during_downtime_is_due_once_within_grace() -> None:
    rule = parse_rule("daily 08:00")
    last = local(2026, 11, 24, 8)
    now = local(2026, 11, 25, 9, 30)  # restarted 1h30 after the 08:00 slot
    result = due_slots(rule, last, now, timedelta(hours=2))
    assert result == DueSlots(
        due=local(2026, 11, 25, 8), missed=[], next_run_at=local(2026, 11, 26, 8)
    )
    # the caller stores the posted slot; the next tick finds nothing more to do
    again = due_slots(rule, result.due or last, now + timedelta(minutes=1), timedelta(hours=2))
    assert again.due is None and again.missed == []


def test_older_slots_are_reported_missed() -> None:
    rule = parse_rule("daily 08:00")
    last = local(2026, 11, 20, 8)
    now = local(2026, 11, 25, 9)
    result = due_slots(rule, last, now, timedelta(hours=2))
    assert result.due == local(2026, 11, 25, 8)
    assert result.missed == [local(2026, 11, d, 8) for d in (21, 22, 23, 24)]
    assert result.next_run_at == local(2026, 11, 26, 8)
    # all too old
    late = due_slots(rule, last, now, timedelta(minutes=30))
    assert late.due is None
    assert late.missed == [local(2026, 11, d, 8) for d in (21, 22, 23, 24, 25)]
    # working days only: 21-22/11/2026 are a weekend and 24/11/2026 is the new Vietnam
    # Cultural Day (a public holiday from 2026): they never were slots
    wd = due_slots(rule, last, now, timedelta(hours=2), working_days_only=True)
    assert wd.due == local(2026, 11, 25, 8)
    assert wd.missed == [local(2026, 11, 23, 8)]


def test_due_slots_nothing_due_and_finished_once() -> None:
    rule = parse_rule("weekly mon 08:00")
    result = due_slots(rule, local(2026, 11, 23, 8), local(2026, 11, 25), timedelta(hours=1))
    assert result == DueSlots(due=None, missed=[], next_run_at=local(2026, 11, 30, 8))
    once = parse_rule("once 01/12/2026 08:00")
    past = due_slots(once, local(2026, 11, 1), local(2026, 12, 3), timedelta(hours=1))
    assert past == DueSlots(due=None, missed=[local(2026, 12, 1, 8)], next_run_at=None)
    late = due_slots(once, local(2026, 11, 1), local(2026, 12, 1, 8, 20), timedelta(hours=1))
    assert late == DueSlots(due=local(2026, 12, 1, 8), missed=[], next_run_at=None)
    done = due_slots(once, local(2026, 12, 1, 8), local(2027, 1, 1), timedelta(hours=1))
    assert done == DueSlots(due=None, missed=[], next_run_at=None)


# ------------------------------------------------------------------------------ properties

TIMES = st.builds(time, st.integers(0, 23), st.integers(0, 59))
RULES = st.one_of(
    st.builds(
        lambda at, d: Rule(Frequency.ONCE, at, on=d),
        TIMES,
        st.dates(date(2000, 1, 1), date(2090, 12, 31)),
    ),
    st.builds(lambda at: Rule(Frequency.DAILY, at), TIMES),
    st.builds(
        lambda at, days: Rule(Frequency.WEEKLY, at, weekdays=tuple(sorted(days))),
        TIMES,
        st.sets(st.integers(0, 6), min_size=1),
    ),
    st.builds(lambda at, d: Rule(Frequency.MONTHLY, at, day=d), TIMES, st.integers(1, 31)),
    st.builds(
        lambda at, a: Rule(Frequency.MONTHLY, at, anchor=a),
        TIMES,
        st.sampled_from([MonthAnchor.FIRST_WORKDAY, MonthAnchor.LAST_WORKDAY]),
    ),
    st.builds(
        lambda at, d: Rule(Frequency.YEARLY, at, day=d.day, month=d.month),
        TIMES,
        st.dates(date(2000, 1, 1), date(2000, 12, 31)),
    ),
)
INSTANTS = st.datetimes(datetime(2000, 1, 1), datetime(2090, 1, 1), timezones=st.just(UTC))
ZONES = st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Asia/Tokyo", "America/Sao_Paulo"])


@settings(max_examples=300, deadline=None)
@given(rule=RULES, after=INSTANTS, tz=ZONES, working_days_only=st.booleans())
def test_next_occurrence_properties(
    rule: Rule, after: datetime, tz: str, working_days_only: bool
) -> None:
    zone = ZoneInfo(tz)
    current = after
    for _ in range(3):
        slot = next_occurrence(rule, current, tz, working_days_only)
        if slot is None:
            weekend_only = rule.frequency is Frequency.WEEKLY and min(rule.weekdays) >= 5
            # yearly on a fixed holiday (01/01, 30/04, 01/05, 02/09, 24/11) with working days
            yearly = rule.frequency is Frequency.YEARLY
            assert rule.frequency is Frequency.ONCE or (
                working_days_only and (weekend_only or yearly)
            )
            return
        assert slot > current
        assert slot.utcoffset() == timedelta(0)
        local_slot = slot.astimezone(zone)
        if local_slot.replace(tzinfo=None).astimezone(zone) == local_slot:  # not in a DST gap
            assert local_slot.time() == rule.at
        day = local_slot.date()
        if rule.frequency is Frequency.WEEKLY:
            assert day.weekday() in rule.weekdays
        if rule.frequency is Frequency.MONTHLY and rule.anchor is MonthAnchor.DAY:
            assert day.day == rule.day or (day + timedelta(days=1)).day == 1
        if rule.frequency is Frequency.MONTHLY and rule.anchor is not MonthAnchor.DAY:
            assert is_working_day(day)
        if working_days_only and rule.skips_non_working_days:
            assert is_working_day(day)
        current = slot


@settings(max_examples=200, deadline=None)
@given(rule=RULES, lang=st.sampled_from(["vi", "en"]))
def test_rules_round_trip_through_text_and_descriptions(rule: Rule, lang: str) -> None:
    assert parse_rule(rule.to_text()) == rule
    assert parse_rule(describe_rule(rule, lang)) == rule
