"""The submission rules (nominations and good deeds), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.config import SubmissionSettings
from bot.services.clock import FixedClock
from bot.services.directory import DirectoryService, Viewer
from bot.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed, NotFound
from bot.services.submissions import (
    AttachmentInput,
    ItemType,
    NomineeKind,
    SubmissionService,
    SubmissionStatus,
    clean_long_text,
    parse_day,
)
from bot.texts import Translator, escape
from handlers.my import deed_card, nomination_card
from storage.db import Database
from storage.models import (
    AppliesTo,
    Criterion,
    Field,
    GoodDeed,
    Movement,
    MovementStatus,
    Nomination,
    OutboxMessage,
)
from tests.fake_telegram.formatting import parse_text

ADMIN_TG = 1001
LAN_TG, AN_TG, HOA_TG = 4001, 4002, 4003


@dataclass
class Seed:
    admin: Viewer
    lan: Viewer  # staff, Phòng Tổng hợp, writes in Vietnamese
    an: Viewer  # staff, Phòng Tổng hợp, reads English
    hoa: Viewer  # council member
    binh_id: int  # staff in the Chi cục, no Telegram account
    unit_a: int
    unit_b: int
    movement: int  # open, deadline in 30 days
    closed_movement: int
    soon_movement: int  # open, deadline in 2 hours
    field: int
    field2: int
    c_general: int  # both kinds, every field
    c_field: int  # both kinds, field 1
    c_person: int  # individuals, field 1
    c_unit: int  # collectives, field 1
    c_field2: int  # field 2 only


async def seed(db: Database, clock: FixedClock, directory: DirectoryService | None = None) -> Seed:
    directory = directory or DirectoryService(db, clock, admin_ids=[ADMIN_TG])
    admin = await directory.ensure_bootstrap_admin(ADMIN_TG, "Trần Quản Trị", "vi")
    a = await directory.add_unit(admin, "Phòng Tổng hợp")
    b = await directory.add_unit(admin, "Chi cục Thống kê khu vực I")
    from bot.services.directory import Role

    await directory.add_member(admin, "Lê Thị Lan", a.id, telegram_user_id=LAN_TG)
    await directory.add_member(admin, "Nguyễn Văn An", a.id, telegram_user_id=AN_TG)
    await directory.add_member(admin, "Phạm Thị Hoa", b.id, Role.COUNCIL, telegram_user_id=HOA_TG)
    binh = await directory.add_member(admin, "Trần Văn Bình", b.id)
    await directory.set_language(await directory.identify(AN_TG), "en")
    now = clock.now()
    async with db.transaction() as session:
        movements = [
            Movement(
                name="Thi đua thường xuyên năm 2026",
                starts_on=date(2026, 1, 1),
                ends_on=date(2026, 12, 31),
                nomination_deadline=now + timedelta(days=30),
                status=MovementStatus.OPEN.value,
            ),
            Movement(
                name="Phong trào đã kết thúc",
                starts_on=date(2025, 1, 1),
                ends_on=date(2025, 12, 31),
                nomination_deadline=now - timedelta(days=30),
                status=MovementStatus.CLOSED.value,
            ),
            Movement(
                name="Thi đua chào mừng 6/5",
                kind="campaign",
                starts_on=date(2026, 3, 1),
                ends_on=date(2026, 5, 6),
                nomination_deadline=now + timedelta(hours=2),
                status=MovementStatus.OPEN.value,
            ),
        ]
        fields = [
            Field(name="Nghiệp vụ thống kê", sort_order=1),
            Field(name="Công nghệ thông tin", sort_order=2),
        ]
        session.add_all([*movements, *fields])
        await session.flush()
        criteria = [
            Criterion(field_id=None, text="Chấp hành tốt chủ trương, chính sách", sort_order=1),
            Criterion(field_id=fields[0].id, text="Hoàn thành xuất sắc nhiệm vụ", sort_order=1),
            Criterion(
                field_id=fields[0].id,
                text="Có sáng kiến được công nhận",
                applies_to=AppliesTo.INDIVIDUAL.value,
                sort_order=2,
            ),
            Criterion(
                field_id=fields[0].id,
                text="Tập thể đoàn kết, 100% hoàn thành nhiệm vụ",
                applies_to=AppliesTo.COLLECTIVE.value,
                sort_order=3,
            ),
            Criterion(field_id=fields[1].id, text="Ứng dụng CNTT hiệu quả", sort_order=1),
        ]
        session.add_all(criteria)
        await session.flush()
    return Seed(
        admin=admin,
        lan=await directory.identify(LAN_TG),
        an=await directory.identify(AN_TG),
        hoa=await directory.identify(HOA_TG),
        binh_id=binh.id,
        unit_a=a.id,
        unit_b=b.id,
        movement=movements[0].id,
        closed_movement=movements[1].id,
        soon_movement=movements[2].id,
        field=fields[0].id,
        field2=fields[1].id,
        c_general=criteria[0].id,
        c_field=criteria[1].id,
        c_person=criteria[2].id,
        c_unit=criteria[3].id,
        c_field2=criteria[4].id,
    )


@pytest.fixture
def directory(db: Database, clock: FixedClock) -> DirectoryService:
    return DirectoryService(db, clock, admin_ids=[ADMIN_TG])


@pytest.fixture
def service(db: Database, clock: FixedClock) -> SubmissionService:
    return SubmissionService(db, clock, SubmissionSettings())


@pytest.fixture
async def s(db: Database, clock: FixedClock, directory: DirectoryService) -> Seed:
    return await seed(db, clock, directory)


def photo(n: int = 1, size: int = 50_000) -> AttachmentInput:
    return AttachmentInput("photo", f"PHOTO-{n}", f"uniq-{n}", file_size=size)


def document(name: str, mime: str | None, size: int = 10_000, n: int = 1) -> AttachmentInput:
    return AttachmentInput("document", f"DOC-{n}", f"docuniq-{n}", name, mime, size)


async def nominate(
    service: SubmissionService,
    s: Seed,
    *,
    viewer: Viewer | None = None,
    member: int | None = None,
    field: int | None = None,
    movement: int | None = None,
    submit: bool = True,
) -> int:
    viewer = viewer or s.lan
    draft = await service.start_nomination(viewer)
    await service.set_nominee_kind(viewer, draft.id, NomineeKind.INDIVIDUAL)
    await service.set_nominee_member(viewer, draft.id, member or s.binh_id)
    await service.set_movement(viewer, draft.id, movement or s.movement)
    await service.set_field(viewer, draft.id, field or s.field)
    criterion = s.c_general
    await service.toggle_criterion(viewer, draft.id, criterion)
    await service.set_achievements(viewer, draft.id, "Hoàn thành 120% kế hoạch điều tra.")
    if submit:
        await service.submit_nomination(viewer, draft.id)
    return draft.id


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- nominations -------------------------------------------------------------------------------


async def test_nomination_of_a_colleague_step_by_step(
    service: SubmissionService, s: Seed, db: Database, clock: FixedClock
) -> None:
    draft = await service.start_nomination(s.lan)
    assert draft.status is SubmissionStatus.DRAFT and draft.is_empty
    await service.set_nominee_kind(s.lan, draft.id, NomineeKind.INDIVIDUAL)
    view = await service.set_nominee_member(s.lan, draft.id, s.binh_id)
    assert view.nominee_name == "Trần Văn Bình"
    assert (view.unit_id, view.unit_name) == (s.unit_b, "Chi cục Thống kê khu vực I")
    await service.set_movement(s.lan, draft.id, s.movement)
    await service.set_field(s.lan, draft.id, s.field)
    await service.toggle_criterion(s.lan, draft.id, s.c_general)
    await service.toggle_criterion(s.lan, draft.id, s.c_person)
    await service.toggle_criterion(s.lan, draft.id, s.c_field)
    view = await service.toggle_criterion(s.lan, draft.id, s.c_field)  # untick
    assert [c.id for c in view.criteria] == [s.c_person, s.c_general]
    await service.set_achievements(s.lan, draft.id, "Hoàn thành xuất sắc <b>điều tra</b> 🌸")
    await service.set_good_practices(s.lan, draft.id, "Số hoá phiếu điều tra")
    assert await service.add_nomination_attachment(s.lan, draft.id, photo(1)) == 1
    assert await service.add_nomination_attachment(s.lan, draft.id, photo(1)) == 1  # same file
    pdf = document("bao-cao.pdf", "application/pdf")
    assert await service.add_nomination_attachment(s.lan, draft.id, pdf) == 2
    clock.advance(timedelta(minutes=5))
    sent = await service.submit_nomination(s.lan, draft.id)
    assert sent.status is SubmissionStatus.SUBMITTED
    assert sent.submitted_at == clock.now()
    assert sent.movement_name == "Thi đua thường xuyên năm 2026"
    assert sent.field_name == "Nghiệp vụ thống kê"
    assert sent.achievements == "Hoàn thành xuất sắc <b>điều tra</b> 🌸"
    assert [a.kind for a in sent.attachments] == ["photo", "document"]
    messages = await outbox(db)
    assert len(messages) == 1
    assert messages[0].chat_id == LAN_TG and messages[0].language == "vi"
    assert messages[0].params == {"name": "Trần Văn Bình", "id": draft.id}
    assert messages[0].buttons == [[{"text": "Open", "data": f"my:o:n:{draft.id}"}]]
    # nothing can be changed any more
    with pytest.raises(AlreadyDecided):
        await service.set_achievements(s.lan, draft.id, "khác")
    with pytest.raises(AlreadyDecided):
        await service.submit_nomination(s.lan, draft.id)
    # another person cannot see or touch it; the council can see it
    with pytest.raises(NotFound):
        await service.get_nomination(s.an, draft.id)
    assert (await service.get_nomination(s.hoa, draft.id)).id == draft.id


async def test_nomination_of_a_unit(service: SubmissionService, s: Seed, db: Database) -> None:
    draft = await service.start_nomination(s.lan)
    await service.set_nominee_kind(s.lan, draft.id, NomineeKind.COLLECTIVE)
    with pytest.raises(InvalidInput):
        await service.set_nominee_member(s.lan, draft.id, s.binh_id)
    await service.set_nominee_unit(s.lan, draft.id, s.unit_b)
    await service.set_movement(s.lan, draft.id, s.movement)
    await service.set_field(s.lan, draft.id, s.field)
    with pytest.raises(NotFound):  # for individuals only
        await service.toggle_criterion(s.lan, draft.id, s.c_person)
    await service.toggle_criterion(s.lan, draft.id, s.c_unit)
    await service.set_achievements(s.lan, draft.id, "Đơn vị dẫn đầu khối.")
    sent = await service.submit_nomination(s.lan, draft.id)
    assert sent.kind is NomineeKind.COLLECTIVE
    assert (sent.nominee_unit_id, sent.nominee_name) == (s.unit_b, "Chi cục Thống kê khu vực I")
    assert sent.unit_name == "Chi cục Thống kê khu vực I"


async def test_one_draft_at_a_time_and_abandon(service: SubmissionService, s: Seed) -> None:
    first = await service.start_nomination(s.lan)
    second = await service.start_nomination(s.lan)
    with pytest.raises(NotFound):
        await service.get_nomination(s.lan, first.id)
    current = await service.current_nomination_draft(s.lan)
    assert current is not None and current.id == second.id
    assert await service.abandon_nomination(s.an, second.id) is False  # not theirs
    assert await service.abandon_nomination(s.lan, second.id) is True
    assert await service.current_nomination_draft(s.lan) is None


async def test_only_open_movements_before_their_deadline(
    service: SubmissionService, s: Seed, clock: FixedClock
) -> None:
    draft = await nominate(service, s, movement=s.soon_movement, submit=False)
    with pytest.raises(Conflict) as closed:
        await service.set_movement(s.lan, draft, s.closed_movement)
    assert closed.value.message == "The movement {name} is not accepting nominations."
    # the deadline passes while the person is typing: a clear message, the draft is kept
    clock.advance(timedelta(hours=3))
    with pytest.raises(Conflict) as late:
        await service.submit_nomination(s.lan, draft)
    assert "deadline" in late.value.message
    assert late.value.params["deadline"] == clock.now() - timedelta(hours=1)
    kept = await service.get_nomination(s.lan, draft)
    assert kept.status is SubmissionStatus.DRAFT and kept.achievements
    with pytest.raises(Conflict):
        await service.set_movement(s.lan, draft, s.soon_movement)
    await service.set_movement(s.lan, draft, s.movement)  # another open movement: fine
    assert (await service.submit_nomination(s.lan, draft)).status is SubmissionStatus.SUBMITTED


async def test_no_self_nomination_unless_allowed(
    db: Database, clock: FixedClock, s: Seed, service: SubmissionService
) -> None:
    draft = await service.start_nomination(s.lan)
    assert s.lan.member_id is not None
    with pytest.raises(NotAllowed):
        await service.set_nominee_member(s.lan, draft.id, s.lan.member_id)
    lenient = SubmissionService(db, clock, SubmissionSettings(allow_self_nomination=True))
    view = await lenient.set_nominee_member(s.lan, draft.id, s.lan.member_id)
    assert view.nominee_name == "Lê Thị Lan"
    # and the strict service refuses it again at Submit
    await nominate(service, s, submit=False)  # replaces the draft
    again = await lenient.start_nomination(s.lan)
    await lenient.set_nominee_member(s.lan, again.id, s.lan.member_id)
    await lenient.set_movement(s.lan, again.id, s.movement)
    await lenient.set_field(s.lan, again.id, s.field)
    await lenient.toggle_criterion(s.lan, again.id, s.c_general)
    await lenient.set_achievements(s.lan, again.id, "Tự đề cử")
    with pytest.raises(NotAllowed):
        await service.submit_nomination(s.lan, again.id)
    assert (await lenient.submit_nomination(s.lan, again.id)).status is SubmissionStatus.SUBMITTED


async def test_one_live_nomination_per_nominee_movement_and_field(
    service: SubmissionService, s: Seed
) -> None:
    first = await nominate(service, s)
    second = await nominate(service, s, submit=False)
    duplicate = await service.live_duplicate(s.lan, second)
    assert duplicate is not None and duplicate.id == first
    with pytest.raises(Conflict) as refused:
        await service.submit_nomination(s.lan, second)
    assert refused.value.params["id"] == first
    # another field is another nomination
    await service.set_field(s.lan, second, s.field2)
    assert await service.live_duplicate(s.lan, second) is None
    # another nominator may nominate the same person
    assert await nominate(service, s, viewer=s.an)
    # once the first is withdrawn the same field is free again
    await service.set_field(s.lan, second, s.field)  # the general criterion stayed ticked
    await service.withdraw(s.lan, ItemType.NOMINATION, first)
    assert await service.live_duplicate(s.lan, second) is None
    assert (await service.submit_nomination(s.lan, second)).status is SubmissionStatus.SUBMITTED


async def test_criteria_at_least_one_and_follow_the_field(
    service: SubmissionService, s: Seed
) -> None:
    draft = await nominate(service, s, submit=False)
    await service.toggle_criterion(s.lan, draft, s.c_general)  # untick the only one
    with pytest.raises(InvalidInput):
        await service.check_criteria(s.lan, draft)
    with pytest.raises(InvalidInput):
        await service.submit_nomination(s.lan, draft)
    await service.toggle_criterion(s.lan, draft, s.c_general)
    await service.toggle_criterion(s.lan, draft, s.c_field)
    with pytest.raises(NotFound):
        await service.toggle_criterion(s.lan, draft, s.c_field2)  # another field's
    view = await service.set_field(s.lan, draft, s.field2)
    assert [c.id for c in view.criteria] == [s.c_general]  # the field's own were dropped
    await service.check_criteria(s.lan, draft)


async def test_texts_have_limits_that_the_message_states(
    db: Database, clock: FixedClock, s: Seed
) -> None:
    service = SubmissionService(db, clock, SubmissionSettings(max_text_length=100))
    draft = await nominate(service, s, submit=False)
    with pytest.raises(InvalidInput) as long:
        await service.set_achievements(s.lan, draft, "x" * 101)
    assert long.value.params == {"length": 101, "limit": 100}
    with pytest.raises(InvalidInput):
        await service.set_good_practices(s.lan, draft, "y" * 101)
    with pytest.raises(InvalidInput):
        await service.set_achievements(s.lan, draft, "   \n ")
    with pytest.raises(InvalidInput):
        await service.set_achievements(s.lan, draft, "a\x00b")
    assert await service.set_achievements(s.lan, draft, "x" * 100) == "x" * 100
    deed = await service.start_deed(s.lan)
    with pytest.raises(InvalidInput) as place:
        await service.set_deed_place(s.lan, deed.id, "p" * 201)
    assert place.value.params["limit"] == 200
    with pytest.raises(InvalidInput):
        await service.set_deed_description(s.lan, deed.id, "d" * 101)


async def test_daily_cap_counts_office_local_days(db: Database, clock: FixedClock, s: Seed) -> None:
    service = SubmissionService(db, clock, SubmissionSettings(daily_cap=2))
    await nominate(service, s, field=s.field)
    await nominate(service, s, field=s.field2)
    third = await service.start_deed(s.lan)
    await service.set_deed_member(s.lan, third.id, s.binh_id)
    await service.set_deed_description(s.lan, third.id, "Giúp đồng nghiệp")
    await service.set_deed_day(s.lan, third.id, service.today())
    with pytest.raises(NotAllowed) as capped:
        await service.submit_deed(s.lan, third.id)
    assert capped.value.params == {"cap": 2}
    assert (await service.get_deed(s.lan, third.id)).status is SubmissionStatus.DRAFT
    # another person is not affected
    assert await nominate(service, s, viewer=s.an)
    # 09:00 in Hà Nội now; at 23:59 it is still the same day, at 00:00 the next
    clock.advance(timedelta(hours=14, minutes=59))
    with pytest.raises(NotAllowed):
        await service.submit_deed(s.lan, third.id)
    clock.advance(timedelta(minutes=1))
    assert (await service.submit_deed(s.lan, third.id)).status is SubmissionStatus.SUBMITTED


async def test_deactivated_members_and_merged_units_cannot_be_nominated(
    service: SubmissionService, s: Seed, directory: DirectoryService
) -> None:
    draft = await nominate(service, s, submit=False)
    await directory.change_member(s.admin, s.binh_id, active=False)
    with pytest.raises(Conflict):
        await service.submit_nomination(s.lan, draft)  # deactivated after the pick
    with pytest.raises(Conflict):
        await service.set_nominee_member(s.lan, draft, s.binh_id)
    await directory.change_member(s.admin, s.binh_id, active=True)
    await service.submit_nomination(s.lan, draft)

    unit_draft = await service.start_nomination(s.lan)
    await service.set_nominee_kind(s.lan, unit_draft.id, NomineeKind.COLLECTIVE)
    await service.set_nominee_unit(s.lan, unit_draft.id, s.unit_b)
    await service.set_movement(s.lan, unit_draft.id, s.movement)
    await service.set_field(s.lan, unit_draft.id, s.field)
    await service.toggle_criterion(s.lan, unit_draft.id, s.c_unit)
    await service.set_achievements(s.lan, unit_draft.id, "Tập thể xuất sắc")
    await directory.merge_units(s.admin, s.unit_b, s.unit_a)
    with pytest.raises(Conflict) as merged:
        await service.submit_nomination(s.lan, unit_draft.id)
    assert merged.value.params["name"] == "Chi cục Thống kê khu vực I"
    with pytest.raises(Conflict):
        await service.set_nominee_unit(s.lan, unit_draft.id, s.unit_b)
    # the first nomination keeps the unit's name of its time
    first = await service.get_nomination(s.lan, draft)
    assert first.unit_name == "Chi cục Thống kê khu vực I"


async def test_attachments_are_checked(db: Database, clock: FixedClock, s: Seed) -> None:
    service = SubmissionService(db, clock, SubmissionSettings(max_attachments=3))
    draft = await nominate(service, s, submit=False)
    ok = [
        document("a.PDF", "application/pdf", n=1),
        document("b.docx", "application/octet-stream", n=2),
        document("c.jpg", "image/jpeg", n=3),
    ]
    for item in ok:
        await service.add_nomination_attachment(s.lan, draft, item)
    with pytest.raises(InvalidInput) as full:
        await service.add_nomination_attachment(s.lan, draft, photo(9))
    assert full.value.params == {"limit": 3}
    await service.clear_nomination_attachments(s.lan, draft)
    for bad in (
        document("virus.exe", "application/x-msdownload", n=4),
        document("script.pdf.js", "text/javascript", n=5),
        document("noext", "application/zip", n=6),
        document("fake.pdf", "application/zip", n=7),
        photo(8, size=21 * 1024 * 1024),
        AttachmentInput("voice", "V", "v"),
    ):
        with pytest.raises(InvalidInput):
            await service.add_nomination_attachment(s.lan, draft, bad)
    assert (await service.get_nomination(s.lan, draft)).attachments == ()
    await service.add_nomination_attachment(s.lan, draft, photo(10, size=20 * 1024 * 1024))


# --- good deeds --------------------------------------------------------------------------------


async def test_good_deed_report(service: SubmissionService, s: Seed, db: Database) -> None:
    deed = await service.start_deed(s.lan)
    assert s.lan.member_id is not None
    with pytest.raises(NotAllowed):
        await service.set_deed_member(s.lan, deed.id, s.lan.member_id)  # not oneself
    view = await service.set_deed_member(s.lan, deed.id, s.binh_id)
    assert view.subject_name == "Trần Văn Bình" and view.unit_name == "Chi cục Thống kê khu vực I"
    await service.set_deed_description(s.lan, deed.id, "Nhặt được ví, trả lại người đánh rơi.")
    today = service.today()
    assert today == date(2026, 3, 2)
    with pytest.raises(InvalidInput):
        await service.set_deed_day(s.lan, deed.id, today + timedelta(days=1))
    with pytest.raises(InvalidInput) as old:
        await service.set_deed_day(s.lan, deed.id, "01/01/2025")
    assert "more than a year" in old.value.message
    with pytest.raises(InvalidInput):
        await service.set_deed_day(s.lan, deed.id, "2026-03-01")
    with pytest.raises(InvalidInput):
        await service.set_deed_day(s.lan, deed.id, "31/02/2026")
    assert await service.set_deed_day(s.lan, deed.id, "1/3/2026") == date(2026, 3, 1)
    await service.set_deed_place(s.lan, deed.id, "Sảnh tầng 1")
    with pytest.raises(InvalidInput):
        await service.set_deed_photo(s.lan, deed.id, document("a.pdf", "application/pdf"))
    assert await service.set_deed_photo(s.lan, deed.id, photo(1)) == 1
    assert await service.set_deed_photo(s.lan, deed.id, photo(2)) == 1  # replaces
    sent = await service.submit_deed(s.lan, deed.id)
    assert sent.status is SubmissionStatus.SUBMITTED
    assert [a.file_id for a in sent.attachments] == ["PHOTO-2"]
    assert sent.occurred_on == date(2026, 3, 1) and sent.place == "Sảnh tầng 1"
    (message,) = await outbox(db)
    assert message.chat_id == LAN_TG and "good deed" in message.message


async def test_good_deed_of_a_unit_and_required_parts(service: SubmissionService, s: Seed) -> None:
    deed = await service.start_deed(s.lan)
    with pytest.raises(InvalidInput):
        await service.submit_deed(s.lan, deed.id)
    await service.set_deed_unit(s.lan, deed.id, s.unit_a)  # one's own unit is fine
    with pytest.raises(InvalidInput):
        await service.submit_deed(s.lan, deed.id)
    await service.set_deed_description(s.lan, deed.id, "Cả phòng hiến máu")
    with pytest.raises(InvalidInput):
        await service.submit_deed(s.lan, deed.id)
    await service.set_deed_day(s.lan, deed.id, service.today())
    sent = await service.submit_deed(s.lan, deed.id)
    assert sent.kind is NomineeKind.COLLECTIVE and sent.subject_name == "Phòng Tổng hợp"
    assert sent.place is None and sent.attachments == ()


# --- /my, withdrawing, status changes and notifications ----------------------------------------


async def test_my_items_paginate_newest_first_without_drafts(
    service: SubmissionService, s: Seed, clock: FixedClock
) -> None:
    ids = []
    for i in range(5):
        clock.advance(timedelta(minutes=1))
        ids.append(await nominate(service, s, field=s.field if i % 2 else s.field2, member=None))
        await service.withdraw(s.lan, ItemType.NOMINATION, ids[-1])
    deed = await service.start_deed(s.lan)
    await service.set_deed_member(s.lan, deed.id, s.binh_id)
    await service.set_deed_description(s.lan, deed.id, "Việc tốt")
    await service.set_deed_day(s.lan, deed.id, service.today())
    clock.advance(timedelta(minutes=1))
    await service.submit_deed(s.lan, deed.id)
    await service.start_nomination(s.lan)  # a draft is not listed
    first = await service.my_items(s.lan, 0, page_size=4)
    assert (first.total, first.pages) == (6, 2)
    assert [(i.type, i.id) for i in first.items] == [
        (ItemType.GOOD_DEED, deed.id),
        *[(ItemType.NOMINATION, i) for i in reversed(ids[2:])],
    ]
    assert first.items[0].at == clock.now() and first.items[0].at.tzinfo is not None
    assert first.items[1].status is SubmissionStatus.WITHDRAWN
    second = await service.my_items(s.lan, 1, page_size=4)
    assert [i.id for i in second.items] == [ids[1], ids[0]]
    assert (await service.my_items(s.an)).total == 0


async def test_withdraw_only_while_pending(
    service: SubmissionService, s: Seed, db: Database
) -> None:
    first = await nominate(service, s)
    with pytest.raises(NotFound):
        await service.withdraw(s.an, ItemType.NOMINATION, first)  # not theirs
    await service.set_status(ItemType.NOMINATION, first, SubmissionStatus.IN_REVIEW, actor=s.hoa)
    with pytest.raises(AlreadyDecided):
        await service.withdraw(s.lan, ItemType.NOMINATION, first)
    second = await nominate(service, s, field=s.field2)
    await service.withdraw(s.lan, ItemType.NOMINATION, second)
    assert (await service.get_nomination(s.lan, second)).status is SubmissionStatus.WITHDRAWN
    with pytest.raises(AlreadyDecided):
        await service.withdraw(s.lan, ItemType.NOMINATION, second)
    draft = await nominate(service, s, field=s.field2, submit=False)
    with pytest.raises(NotFound):
        await service.withdraw(s.lan, ItemType.NOMINATION, draft)
    messages = [m.message for m in await outbox(db)]
    assert messages[-1].startswith("You withdrew your nomination")
    assert sum("being voted on" in m for m in messages) == 1


async def test_status_changes_notify_the_author_in_their_language(
    service: SubmissionService, s: Seed, db: Database
) -> None:
    item = await nominate(service, s, viewer=s.an)
    with pytest.raises(NotAllowed):
        await service.set_status(ItemType.NOMINATION, item, SubmissionStatus.APPROVED, actor=s.lan)
    await service.set_status(
        ItemType.NOMINATION,
        item,
        SubmissionStatus.CHANGES_REQUESTED,
        actor=s.hoa,
        note="Thiếu minh chứng <số liệu>",
    )
    last = (await outbox(db))[-1]
    assert last.chat_id == AN_TG and last.language == "en"
    assert last.params["note"] == "Thiếu minh chứng <số liệu>"
    assert "needs more information: {note}" in last.message
    # the author corrects it and resubmits: submitted again, without the daily cap
    await service.reopen(s.an, ItemType.NOMINATION, item)
    await service.set_achievements(s.an, item, "Bổ sung số liệu: 98% phiếu hợp lệ")
    await service.add_nomination_attachment(s.an, item, photo(3))
    again = await service.submit_nomination(s.an, item)
    assert again.status is SubmissionStatus.SUBMITTED
    assert again.achievements == "Bổ sung số liệu: 98% phiếu hợp lệ"
    assert "corrected nomination" in (await outbox(db))[-1].message
    with pytest.raises(AlreadyDecided):
        await service.reopen(s.an, ItemType.NOMINATION, item)
    await service.set_status(ItemType.NOMINATION, item, SubmissionStatus.APPROVED)  # the system
    assert "was approved" in (await outbox(db))[-1].message
    with pytest.raises(AlreadyDecided):
        await service.set_status(ItemType.NOMINATION, item, SubmissionStatus.APPROVED)
    # a reporter without a linked Telegram account is simply not messaged
    count = len(await outbox(db))
    async with db.transaction() as session:
        deed = GoodDeed(
            reporter_id=s.binh_id,
            subject_kind="individual",
            subject_member_id=s.lan.member_id,
            subject_name_at_time="Lê Thị Lan",
            status="submitted",
        )
        session.add(deed)
    await service.set_status(ItemType.GOOD_DEED, deed.id, SubmissionStatus.REJECTED, actor=s.hoa)
    assert len(await outbox(db)) == count


async def test_submit_hooks_run_inside_the_submit_transaction(
    service: SubmissionService, s: Seed, db: Database
) -> None:
    seen: list[tuple[str, int, str]] = []

    async def hook(session: Any, item: Nomination | GoodDeed, *, now: datetime) -> None:
        seen.append((type(item).__name__, item.id, item.status))

    async def failing(session: Any, item: Nomination | GoodDeed, *, now: datetime) -> None:
        raise RuntimeError("the admin chat is gone")

    service.add_submitted_hook(hook)
    first = await nominate(service, s)
    assert seen == [("Nomination", first, "submitted")]
    service.add_submitted_hook(failing)
    second = await nominate(service, s, field=s.field2, submit=False)
    with pytest.raises(RuntimeError):
        await service.submit_nomination(s.lan, second)
    assert (await service.get_nomination(s.lan, second)).status is SubmissionStatus.DRAFT
    assert len(await outbox(db)) == 1  # the second confirmation was rolled back too


async def test_abandoning_keeps_an_item_being_corrected(
    service: SubmissionService, s: Seed, db: Database
) -> None:
    item = await nominate(service, s)
    await service.set_status(ItemType.NOMINATION, item, SubmissionStatus.CHANGES_REQUESTED)
    assert await service.abandon_nomination(s.lan, item) is False
    assert (await service.get_nomination(s.lan, item)).status is (
        SubmissionStatus.CHANGES_REQUESTED
    )
    deed = await service.start_deed(s.lan)
    assert await service.abandon_deed(s.lan, deed.id) is True
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(GoodDeed)) == 0
        assert await session.scalar(select(func.count()).select_from(Nomination)) == 1


# --- arbitrary text ----------------------------------------------------------------------------

TRICKY = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "<b>đậm</b> & <script>alert(1)</script>",
            "*bold* _it_ `code` [link](http://x)",
            "مرحبا \u202eabc\u202c שלום",
            "a\u200bb\u200c\u200d\ufeff",
            "🌸👍🏽👨‍👩‍👧",
            "Nguye\u0302\u0303n",  # decomposed: stored composed (NFC)
            "&lt;not an entity&gt; &amp;",
            "\x00\x07",
            "  ",
            "x" * 2001,
        ]
    ),
)
PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _visible(html: str) -> str:
    return parse_text(html, "HTML")[0]


@PROPERTY
@given(achievements=TRICKY, practices=TRICKY)
async def test_any_nomination_text_is_refused_or_kept_exactly(
    service: SubmissionService, s: Seed, achievements: str, practices: str
) -> None:
    draft = await service.current_nomination_draft(s.lan)
    draft_id = draft.id if draft else await nominate(service, s, submit=False)
    for setter, raw in (
        (service.set_achievements, achievements),
        (service.set_good_practices, practices),
    ):
        try:
            await setter(s.lan, draft_id, raw)
        except InvalidInput:
            continue
        view = await service.get_nomination(s.lan, draft_id)
        stored = view.achievements if setter == service.set_achievements else view.good_practices
        assert stored == unicodedata.normalize("NFC", raw)
    view = await service.get_nomination(s.lan, draft_id)
    for language in ("vi", "en"):
        card = nomination_card(Translator(language), view)
        visible = _visible(card)  # valid Telegram HTML whatever was typed
        for value in (view.achievements, view.good_practices):
            if value:
                assert escape(value) in card
                assert _visible(escape(value)) in visible


@PROPERTY
@given(description=TRICKY, place=TRICKY, day=st.text(max_size=20))
async def test_any_good_deed_text_is_refused_or_kept_exactly(
    service: SubmissionService, s: Seed, description: str, place: str, day: str
) -> None:
    draft = await service.current_deed_draft(s.lan)
    deed_id = draft.id if draft else (await service.start_deed(s.lan)).id
    for setter, raw in (
        (service.set_deed_description, description),
        (service.set_deed_place, place),
    ):
        try:
            await setter(s.lan, deed_id, raw)
        except InvalidInput:
            continue
        view = await service.get_deed(s.lan, deed_id)
        stored = view.description if setter == service.set_deed_description else view.place
        assert stored == unicodedata.normalize("NFC", raw)
    with contextlib.suppress(InvalidInput):
        await service.set_deed_day(s.lan, deed_id, day)
    view = await service.get_deed(s.lan, deed_id)
    card = deed_card(Translator("vi"), view)
    visible = _visible(card)
    for value in (view.description, view.place):
        if value:
            assert _visible(escape(value)) in visible


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_parse_day_never_crashes(raw: str) -> None:
    try:
        day = parse_day(raw)
    except InvalidInput:
        return
    assert isinstance(day, date)


def test_parse_day_formats() -> None:
    assert parse_day("05/03/2026") == date(2026, 3, 5)
    assert parse_day(" 5-3-2026 ") == date(2026, 3, 5)
    assert parse_day("5.3.2026") == date(2026, 3, 5)
    for bad in ("2026/03/05", "5/3/26", "hôm qua", "", "05/03/2026/1", "٠٥/٠٣/٢٠٢٦"):
        with pytest.raises(InvalidInput):
            parse_day(bad)


def test_clean_long_text_keeps_what_was_typed() -> None:
    assert clean_long_text("  a\u200b<b>\n", limit=10) == "  a\u200b<b>\n"
    assert clean_long_text("", limit=10, required=False) is None
    with pytest.raises(InvalidInput):
        clean_long_text("a\x1bb", limit=10)


async def test_datetime_of_seed_clock_is_aware(clock: FixedClock) -> None:
    assert isinstance(clock.now(), datetime) and clock.now().tzinfo is not None
