"""Tests of the fake Bot API (tests/fake_telegram) with the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram import error as tg_error
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import (
    BOT_ID,
    FakeTelegramCore,
    FakeTelegramServer,
    faults,
    make_offline_bot,
    make_png,
    offline_application_builder,
)
from tests.fake_telegram.formatting import EntityParseError, parse_html, parse_text
from tests.fake_telegram.spec import load_spec, validate

pytestmark = [
    pytest.mark.asyncio,
    # PTB 22 warns on every RetryAfter.retry_after read (int now, timedelta in PTB 23)
    pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning"),
]

GROUP_ID = -1001234567890


# --------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest_asyncio.fixture
async def bot(tg: FakeTelegramServer) -> AsyncIterator[Bot]:
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as b:
        yield b


def _assert_conforms(type_name: str, value: Any) -> None:
    """What the fake answers must itself satisfy the spec."""
    check = load_spec().check_object(type_name, value)
    assert not check.errors, [f"{p.path}: {p.message}" for p in check.errors]
    assert not check.unknown, check.unknown


def _seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# --------------------------------------------------------------------------- spec & parsing


async def test_spec_validate_helpers() -> None:
    assert validate("sendMessage", {"chat_id": 1, "text": "hi"}) == []
    assert validate("SENDMESSAGE", {"chat_id": 1}) == ["Bad Request: text is required"]
    assert validate("noSuchMethod", {}) == ["Not Found"]
    bad_button = {"inline_keyboard": [[{"text": "a", "callback_data": 1}]]}
    assert validate("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": bad_button}) == [
        'Bad Request: can\'t parse reply_markup: field "callback_data" must be of type String'
    ]
    assert load_spec().version == "Bot API 10.1"


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_html_errors(html: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error.replace("(", r"\(")):
        parse_html(html)


async def test_html_entities_and_utf16_offsets() -> None:
    text, entities = parse_text(
        '🌸 <b>Hoa</b> &lt;3 <a href="https://x.y">Đẹp</a> &#39;ok&#39;', "HTML"
    )
    assert text == "🌸 Hoa <3 Đẹp 'ok'"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "text_link", "offset": 10, "length": 3, "url": "https://x.y"},
    ]
    with pytest.raises(EntityParseError, match=r"(?i)reserved"):
        parse_text("Xin chào!", "MarkdownV2")


# --------------------------------------------------------------------------- basic calls over HTTP


async def test_get_me(bot: Bot, tg: FakeTelegramServer) -> None:
    me = await bot.get_me()
    assert me.id == BOT_ID == 7000000001
    assert me.is_bot and me.first_name == "Hoa Đẹp" and me.username == "hoadep_test_bot"
    assert me.can_join_groups is True
    assert tg.core.requests[-1].method == "getMe"


async def test_wrong_token_is_rejected(tg: FakeTelegramServer) -> None:
    wrong = Bot("123:WRONG", base_url=tg.base_url)
    with pytest.raises(tg_error.InvalidToken):
        await wrong.initialize()
    assert tg.core.exchanges[-1].status == 401


async def test_send_message_html_with_keyboard(bot: Bot, tg: FakeTelegramServer) -> None:
    alice = tg.core.user(1001, "Alice", username="alice")
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("👍 Bình chọn", callback_data="vote:1")],
            [InlineKeyboardButton("Trang web", url="https://example.org")],
        ]
    )
    msg = await bot.send_message(
        alice["id"], "<b>Chào</b> &amp; <i>mừng</i>", parse_mode="HTML", reply_markup=keyboard
    )
    assert msg.text == "Chào & mừng"
    assert msg.chat.id == 1001 and msg.from_user is not None and msg.from_user.id == BOT_ID
    [sent] = tg.core.sent(1001)
    assert sent["text"] == "Chào & mừng"
    assert [e["type"] for e in sent["entities"]] == ["bold", "italic"]
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "vote:1"
    _assert_conforms("Message", sent)
    assert tg.core.unknown_fields == []
    # message ids increase per chat
    second = await bot.send_message(alice["id"], "again")
    assert second.message_id == msg.message_id + 1


async def test_unknown_method_is_404(bot: Bot, tg: FakeTelegramServer) -> None:
    with pytest.raises(tg_error.EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    assert tg.core.exchanges[-1].status == 404
    assert tg.core.exchanges[-1].response == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found",
    }


async def test_missing_required_field_is_400(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    with pytest.raises(tg_error.BadRequest, match=r"(?i)text is required"):
        await bot.send_message(1001, None)  # type: ignore[arg-type]


async def test_unknown_field_is_flagged_not_rejected(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    await bot.send_message(1001, "hi", api_kwargs={"colour": "pink"})
    bad_button = {"text": "x", "callback_data": "y", "colour": "red"}
    await bot.send_message(
        1001, "hi", api_kwargs={"reply_markup": {"inline_keyboard": [[bad_button]]}}
    )
    assert tg.core.unknown_fields == [
        ("sendMessage", "colour"),
        ("sendMessage", "reply_markup.inline_keyboard[0][0].colour"),
    ]


async def test_validation_errors_like_telegram(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "  "}, "message text is empty"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "<b>x", "parse_mode": "HTML"}, "can't parse entities: Can't find end tag"),
        ({"text": "<p>x</p>", "parse_mode": "HTML"}, 'Unsupported start tag "p"'),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("x", callback_data="é" * 33)]]
                ),
            },
            "BUTTON_DATA_INVALID",
        ),
    ]
    for kwargs, error in cases:
        with pytest.raises(tg_error.BadRequest, match=r"(?i)" + re.escape(error)):
            await bot.send_message(1001, **kwargs)
    # 4096 visible characters are fine even if the HTML source is longer
    await bot.send_message(1001, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(tg_error.BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(1001, make_png(), caption="c" * 1025)
    with pytest.raises(tg_error.BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "who?")


# --------------------------------------------------------------------------- updates


async def test_long_polling_returns_enqueued_update(bot: Bot, tg: FakeTelegramServer) -> None:
    alice = tg.core.user(1001, "Alice")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.core.wait_for_request("getUpdates")
    await asyncio.sleep(0.05)
    assert not poll.done()
    sent = tg.core.send_text(alice, "/start ref_42")
    updates = await asyncio.wait_for(poll, 3)
    assert time.monotonic() - started < 2
    assert [u.update_id for u in updates] == [sent["update_id"]]
    message = updates[0].message
    assert message is not None and message.text == "/start ref_42"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
    # not confirmed yet: delivered again; confirmed with offset: gone
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [sent["update_id"]]
    assert await bot.get_updates(offset=sent["update_id"] + 1, timeout=0) == ()


async def test_allowed_updates_respected(bot: Bot, tg: FakeTelegramServer) -> None:
    alice = tg.core.user(1001, "Alice")
    tg.core.send_text(alice, "hello")
    tg.core.enqueue({"chat_member": {"date": 0}})  # excluded by default, as on Telegram
    updates = await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    assert updates == ()
    assert await bot.get_updates(timeout=0) == ()


async def test_update_builders_conform_to_spec(tg: FakeTelegramServer) -> None:
    core = tg.core
    alice = core.user(1001, "Alice", "Nguyễn", "alice")
    group = core.group(-4001, "Phòng Kế toán")
    updates = [
        core.send_text(alice, "/start payload"),
        core.send_photo(alice, caption="ảnh"),
        core.send_document(alice, "bao_cao.pdf", "application/pdf", b"%PDF-1.4 ..."),
        core.add_bot_to_group(alice, group),
        core.send_text(alice, "/top@hoadep_test_bot", group),
        core.send_as_anonymous_admin(group, "thông báo"),
        core.send_as_channel(group, "từ kênh"),
        core.migrate_group(group, -1004001),
        core.block_bot(alice),
    ]
    for update in [*updates, *core.update_log]:
        _assert_conforms("Update", update)
        assert Update.de_json(update, None) is not None
    anon = updates[5]["message"]
    assert anon["from"]["id"] == 1087968824 and anon["sender_chat"]["id"] == -4001
    assert updates[3]["my_chat_member"]["old_chat_member"]["status"] == "left"
    assert updates[3]["my_chat_member"]["new_chat_member"]["status"] == "member"
    assert updates[7]["message"]["migrate_to_chat_id"] == -1004001


# --------------------------------------------------------------------------- files


async def test_photo_upload_get_file_download_round_trip(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    data = make_png(640, 480)
    msg = await bot.send_photo(1001, data, caption="<i>Hoa</i>", parse_mode="HTML")
    assert msg.caption == "Hoa" and msg.photo[-1].width == 640 and msg.photo[-1].height == 480
    assert len({p.file_id for p in msg.photo}) == len(msg.photo) > 1
    file = await bot.get_file(msg.photo[-1].file_id)
    assert file.file_path is not None and file.file_path.startswith(tg.base_file_url)
    assert bytes(await file.download_as_bytearray()) == data
    # a known file_id can be sent again; an unknown one cannot
    again = await bot.send_photo(1001, msg.photo[-1].file_id)
    assert again.photo[-1].file_id == msg.photo[-1].file_id
    with pytest.raises(tg_error.BadRequest, match=r"(?i)wrong file identifier/HTTP URL specified"):
        await bot.send_photo(1001, "AgACAgIAAxkBAAIunknown")
    with pytest.raises(tg_error.BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(1001, b"not an image")
    _assert_conforms("Message", tg.core.sent(1001)[0])


async def test_document_and_media_group(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    doc = await bot.send_document(1001, b"a,b\n1,2\n", filename="diem.csv", caption="Điểm")
    assert doc.document is not None and doc.document.file_name == "diem.csv"
    file = await bot.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"
    album = await bot.send_media_group(
        1001, [InputMediaPhoto(make_png(), caption="1"), InputMediaPhoto(make_png(30, 20))]
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    for message in tg.core.sent(1001):
        _assert_conforms("Message", message)
    assert tg.core.unknown_fields == []


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (faults.Forbidden("Forbidden: bot was blocked by the user"), tg_error.Forbidden),
        (faults.BadRequest("Bad Request: chat not found"), tg_error.BadRequest),
        (faults.RetryAfter(7), tg_error.RetryAfter),
        (faults.Migrated(-1009999), tg_error.ChatMigrated),
        (faults.ServerError(500), tg_error.NetworkError),
        (faults.ServerError(502), tg_error.NetworkError),
        (faults.Delay(0.6), tg_error.TimedOut),
    ],
)
async def test_injected_faults_map_to_ptb_errors(
    bot: Bot, tg: FakeTelegramServer, fault: faults.Fault, expected: type[Exception]
) -> None:
    tg.core.user(1001, "Alice")
    tg.core.inject("sendMessage", fault, chat_id=1001)
    with pytest.raises(expected) as info:
        await bot.send_message(1001, "hi", read_timeout=0.3)
    if isinstance(fault, faults.RetryAfter):
        assert isinstance(info.value, tg_error.RetryAfter)
        assert _seconds(info.value.retry_after) == 7
    if isinstance(fault, faults.Migrated):
        assert isinstance(info.value, tg_error.ChatMigrated)
        assert info.value.new_chat_id == -1009999
    if isinstance(fault, faults.Delay):
        # the delayed call still goes through on the server, as on Telegram
        await tg.core.wait_for_message(1001, timeout=3)
    # the injection fired once; the next call is normal
    await bot.send_message(1001, "ok")
    assert tg.core.sent(1001)[-1]["text"] == "ok"


async def test_world_errors_blocked_kicked_migrated(bot: Bot, tg: FakeTelegramServer) -> None:
    core = tg.core
    alice = core.user(1001, "Alice")
    group = core.group(-4001, "Nhóm cũ")
    supergroup = core.group(GROUP_ID, "Siêu nhóm", "supergroup")
    core.block_bot(alice)
    with pytest.raises(tg_error.Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(1001, "hi")
    core.remove_bot_from_group(alice, supergroup)
    with pytest.raises(tg_error.Forbidden, match=r"(?i)bot was kicked from the supergroup chat"):
        await bot.send_message(GROUP_ID, "hi")
    core.migrate_group(group, -1004001)
    with pytest.raises(tg_error.ChatMigrated) as info:
        await bot.send_message(-4001, "hi")
    assert info.value.new_chat_id == -1004001
    await bot.send_message(-1004001, "hi again")


async def test_enforce_limits_group_burst(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.group(GROUP_ID, "Cả cơ quan", "supergroup")
    tg.core.enforce_limits(global_per_sec=30, per_group_per_min=20, per_chat_per_sec=None)
    delivered, limited = 0, []
    for i in range(25):
        try:
            await bot.send_message(GROUP_ID, f"tin {i}")
            delivered += 1
        except tg_error.RetryAfter as exc:
            limited.append(_seconds(exc.retry_after))
    assert delivered == 20 and len(limited) == 5
    assert all(30 < s <= 60 for s in limited)
    assert tg.core.too_many_requests == 5 and tg.core.delivered[GROUP_ID] == 20
    body = tg.core.errors[-1].response
    assert body is not None and body["description"].startswith("Too Many Requests: retry after ")


async def test_enforce_limits_default_per_chat(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.group(GROUP_ID, "Cả cơ quan", "supergroup")
    tg.core.enforce_limits()
    results = await asyncio.gather(
        *(bot.send_message(GROUP_ID, f"tin {i}") for i in range(25)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, tg_error.RetryAfter) for r in results if isinstance(r, Exception))
    assert tg.core.too_many_requests == 24


# --------------------------------------------------------------------------- editing, callbacks


async def test_edit_callback_and_not_modified(bot: Bot, tg: FakeTelegramServer) -> None:
    core = tg.core
    alice = core.user(1001, "Alice")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="yes")]])
    msg = await bot.send_message(1001, "Đồng ý?", reply_markup=markup)
    update = core.press_button(alice, core.sent(1001)[0], "yes")
    query = update["callback_query"]
    assert query["message"]["message_id"] == msg.message_id and query["data"] == "yes"
    await bot.answer_callback_query(query["id"], text="Đã ghi nhận")
    with pytest.raises(tg_error.BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query["id"])
    with pytest.raises(tg_error.BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Đồng ý?", 1001, msg.message_id, reply_markup=markup)
    await bot.edit_message_text("Cảm ơn!", 1001, msg.message_id)
    [edited] = core.sent(1001)
    assert edited["text"] == "Cảm ơn!" and "reply_markup" not in edited and "edit_date" in edited
    with pytest.raises(ValueError, match=r"(?i)no callback button"):
        core.press_button(alice, edited, "yes")
    await bot.delete_message(1001, msg.message_id)
    assert core.sent(1001) == []
    with pytest.raises(tg_error.BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(1001, msg.message_id)


async def test_commands_per_scope_and_language(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    await bot.set_my_commands([BotCommand("start", "Bắt đầu"), BotCommand("top", "Bảng vàng")])
    scope = BotCommandScopeChat(1001)
    await bot.set_my_commands([BotCommand("admin", "Quản trị")], scope=scope, language_code="vi")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "top"]
    chat_cmds = await bot.get_my_commands(scope=scope, language_code="vi")
    assert [c.command for c in chat_cmds] == ["admin"]
    assert await bot.get_my_commands(scope=scope) == ()
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(tg_error.BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("/Start", "x")])


async def test_chat_queries(bot: Bot, tg: FakeTelegramServer) -> None:
    alice = tg.core.user(1001, "Alice")
    tg.core.group(GROUP_ID, "Cả cơ quan", "supergroup", creator=alice)
    chat = await bot.get_chat(GROUP_ID)
    assert chat.title == "Cả cơ quan" and chat.type == "supergroup"
    me = await bot.get_chat_member(GROUP_ID, BOT_ID)
    assert me.status == "member"
    admins = await bot.get_chat_administrators(GROUP_ID)
    assert [a.user.id for a in admins] == [1001] and admins[0].status == "creator"
    msg = await bot.send_message(GROUP_ID, "ghim")
    assert await bot.pin_chat_message(GROUP_ID, msg.message_id)
    copied = await bot.copy_message(1001, GROUP_ID, msg.message_id)
    forwarded = await bot.forward_message(1001, GROUP_ID, msg.message_id)
    assert forwarded.forward_origin is not None
    assert [m["text"] for m in tg.core.sent(1001)] == ["ghim", "ghim"]
    assert copied.message_id == 1
    assert await bot.send_chat_action(1001, "typing")
    assert await bot.leave_chat(GROUP_ID)
    with pytest.raises(tg_error.Forbidden, match=r"(?i)not a member"):
        await bot.send_message(GROUP_ID, "còn đó không?")
    # a method without a dedicated model: validated, answered with a well-formed result
    link = await bot.create_chat_invite_link(GROUP_ID)
    assert link.creator is not None


# --------------------------------------------------------------------------- webhook


async def test_webhook_delivery_with_secret(bot: Bot, tg: FakeTelegramServer) -> None:
    received: asyncio.Queue[tuple[dict[str, Any], str | None]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        await received.put((await request.json(), header))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        alice = tg.core.user(1001, "Alice")
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="hoa-dep_123")
        info = await bot.get_webhook_info()
        assert info.url == url
        with pytest.raises(tg_error.Conflict, match=r"(?i)webhook is active"):
            await bot.get_updates(timeout=0)
        sent = tg.core.send_text(alice, "qua webhook")
        update, header = await asyncio.wait_for(received.get(), 5)
        assert update["update_id"] == sent["update_id"]
        assert update["message"]["text"] == "qua webhook"
        assert header == "hoa-dep_123"
        await tg.core.wait_for_updates_consumed(timeout=5)
        assert (await bot.get_webhook_info()).pending_update_count == 0
        assert await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- applications


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    payload = " ".join(context.args or [])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Bình chọn", callback_data="vote")]])
    await update.effective_message.reply_html(
        f"<b>Xin chào</b> {payload}".strip(), reply_markup=keyboard
    )


async def _vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Đã bình chọn")
    await query.edit_message_text("Cảm ơn bạn đã bình chọn")


async def _echo_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.photo
    file = await message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    await message.reply_text(f"{len(data)} bytes")


def _add_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("start", _start))
    app.add_handler(CallbackQueryHandler(_vote, pattern="^vote$"))
    app.add_handler(MessageHandler(filters.PHOTO, _echo_photo))


async def _drive(app: Application[Any, Any, Any, Any, Any, Any], core: FakeTelegramCore) -> None:
    alice = core.user(1001, "Alice")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            mark = core.mark()
            core.send_text(alice, "/start abc")
            hello = await core.wait_for_message(1001, after=mark, timeout=5)
            assert hello["text"] == "Xin chào abc"
            mark = core.mark()
            core.press_button(alice, hello, "vote")
            edited = await core.wait_for_message(
                1001, lambda m: m["text"].startswith("Cảm ơn"), after=mark, timeout=5
            )
            assert edited["message_id"] == hello["message_id"]
            assert core.callback_answers[-1]["text"] == "Đã bình chọn"
            mark = core.mark()
            core.send_photo(alice)
            reply = await core.wait_for_message(1001, after=mark, timeout=5)
            assert reply["text"].endswith(" bytes")
        finally:
            await app.updater.stop()
            await app.stop()
    assert core.unknown_fields == []
    assert [e.request.method for e in core.errors] == []


async def test_offline_application_processes_update_and_replies() -> None:
    core = FakeTelegramCore()
    app = offline_application_builder(core).build()
    _add_handlers(app)
    await _drive(app, core)


async def test_offline_request_with_hand_built_application() -> None:
    from tests.fake_telegram import OfflineRequest

    core = FakeTelegramCore()
    app = (
        Application.builder()
        .token(core.token)
        .request(OfflineRequest(core))
        .get_updates_request(OfflineRequest(core))
        .build()
    )
    app.add_handler(CommandHandler("start", _start))
    alice = core.user(1001, "Alice")
    async with app:
        update = Update.de_json(core.send_text(alice, "/start"), app.bot)
        await app.process_update(update)
    assert core.sent(1001)[0]["text"] == "Xin chào"


async def test_http_application_end_to_end(tg: FakeTelegramServer) -> None:
    app = (
        Application.builder()
        .token(tg.token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .build()
    )
    _add_handlers(app)
    await _drive(app, tg.core)


async def test_offline_bot_files_and_timeouts() -> None:
    bot, core = make_offline_bot()
    core.user(1001, "Alice")
    async with bot:
        msg = await bot.send_document(1001, b"xin chao", filename="a.txt")
        assert msg.document is not None
        file = await bot.get_file(msg.document.file_id)
        assert bytes(await file.download_as_bytearray()) == b"xin chao"
        mark = core.mark()
        core.inject("sendMessage", faults.Delay(0.3))
        with pytest.raises(tg_error.TimedOut):
            await bot.send_message(1001, "slow", read_timeout=0.1)
        # carried out anyway, as Telegram would
        assert (await core.wait_for_message(1001, after=mark, timeout=2))["text"] == "slow"
        with pytest.raises(tg_error.EndPointNotFound):
            await bot.do_api_request("noSuchMethod")


# --------------------------------------------------------------------------- the whole spec


async def test_every_spec_method_answers_well_formed() -> None:
    """Each of the spec's methods, called with its required fields, answers either an error
    Telegram could give or a result of the documented type."""
    from tests.fake_telegram.spec import split_array

    spec = load_spec()
    core = FakeTelegramCore()
    alice = core.user(1001, "Alice")
    core.send_text(alice, "hello")
    for name, method in spec.methods.items():
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes, str]] = {}
        for f in method.fields.values():
            if not f.required:
                continue
            depth, base = split_array(f.types[0])
            if f.name in ("chat_id", "user_id", "from_chat_id"):
                params[f.name] = 1001
            elif depth:
                params[f.name] = [1] if f.name == "message_ids" else []
            elif base == "InputFile":
                files[f.name] = ("f.png", make_png(), "image/png")
            elif base in ("Integer", "Float", "Boolean", "String"):
                params[f.name] = {"Integer": 1, "Float": 1.0, "Boolean": True}.get(
                    base, {"action": "typing", "url": "https://example.org/x"}.get(f.name, "x")
                )
            else:
                params[f.name] = spec.synthesize(base)
        status, body = await core.handle(core.token, name, params, files)
        assert status in (200, 400, 403), (name, body)
        if status != 200:
            assert body["description"].startswith(("Bad Request: ", "Forbidden: ")), body
            continue
        result = body["result"]
        if method.returns == ("Boolean",):
            assert result is True, name
            continue
        depth, base = split_array(method.returns[0])
        items = result if depth else [result]
        assert isinstance(items, list), name
        for item in items:
            if item is True and "Boolean" in method.returns:
                continue
            if base in spec.types:
                _assert_conforms(base, item)
    assert core.unknown_fields == []


# --------------------------------------------------------------------------- more of the world


async def test_privacy_mode_membership_and_unblocking() -> None:
    core = FakeTelegramCore(privacy_mode=True)
    alice = core.user(1001, "Alice")
    group = core.group(-4001, "Phòng Hành chính")
    assert core.send_text(alice, "chuyện phiếm", group)["update_id"] is None
    assert core.send_text(alice, "/top", group)["update_id"] is not None
    core.remove_bot_from_group(alice, group)
    assert core.send_text(alice, "/top", group)["update_id"] is None
    core.block_bot(alice)
    before = len(core.pending_updates)
    core.send_text(alice, "/start")  # writing to a blocked bot unblocks it first
    kinds = [next(k for k in u if k != "update_id") for u in core.pending_updates[before:]]
    assert kinds == ["my_chat_member", "message"]
    status, _ = await core.handle(core.token, "sendMessage", {"chat_id": 1001, "text": "hi"})
    assert status == 200


async def test_markdown_v2(bot: Bot, tg: FakeTelegramServer) -> None:
    tg.core.user(1001, "Alice")
    with pytest.raises(tg_error.BadRequest, match=r"(?i)Character '\.' is reserved"):
        await bot.send_message(1001, "Xong.", parse_mode="MarkdownV2")
    msg = await bot.send_message(1001, r"*Xong*\. _Cảm ơn_", parse_mode="MarkdownV2")
    assert msg.text == "Xong. Cảm ơn"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 4),
        ("italic", 6, 6),
    ]
    assert tg.sent(1001) == tg.core.sent(1001)  # the server passes helpers through


async def test_concurrent_long_polls_conflict() -> None:
    core = FakeTelegramCore()
    first = asyncio.create_task(core.handle(core.token, "getUpdates", {"timeout": 5}))
    await core.wait_for_request("getUpdates")
    second = asyncio.create_task(core.handle(core.token, "getUpdates", {"timeout": 0}))
    status, body = await asyncio.wait_for(first, 2)
    assert status == 409 and "terminated by other getUpdates request" in body["description"]
    assert (await second)[0] == 200


# --------------------------------------------------------------------------- callback queries


async def test_a_callback_query_takes_one_answer_in_time() -> None:
    """Like Telegram: a press is answered once, within seconds; later or twice is refused with
    the same "query is too old" error, and the core reports every press not answered once."""
    now = [1000.0]
    core = FakeTelegramCore(clock=lambda: now[0])
    bot, _ = make_offline_bot(core=core)
    alice = core.user(1001, "Alice")
    async with bot:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
        sent = await bot.send_message(1001, "x", reply_markup=keyboard)
        message = sent.to_dict()
        once, twice, late, never = (
            str(core.press_button(alice, message, "a")["callback_query"]["id"]) for _ in range(4)
        )
        assert await bot.answer_callback_query(once, text="ok")
        assert await bot.answer_callback_query(twice)
        with pytest.raises(tg_error.BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(twice)
        now[0] += core.callback_timeout + 0.5
        with pytest.raises(tg_error.BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(late)
        with pytest.raises(tg_error.BadRequest, match=r"(?i)query id is invalid"):
            await bot.answer_callback_query("12345")  # never issued
    assert core.callback_problems([once]) == []
    assert core.callback_problems() == [
        f"callback query {twice} was answered 2 times",
        f"no answer to callback query {late} succeeded (too late?)",
        f"callback query {never} ('a') was never answered",
    ]
