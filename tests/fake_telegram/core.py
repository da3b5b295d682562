"""Transport-independent fake of the Telegram Bot API: ``FakeTelegramCore``.

The core holds a small simulated world (users, private chats, groups, channels, messages,
files), answers Bot API calls the way Telegram does (same status codes and error texts for the
cases that matter to a bot), checks every call against the published spec
(:mod:`.spec`), and lets a test drive and observe the bot:

* world and updates: :meth:`FakeTelegramCore.user`, :meth:`~FakeTelegramCore.group`,
  :meth:`~FakeTelegramCore.send_text`, :meth:`~FakeTelegramCore.press_button` ...
* observation: :attr:`~FakeTelegramCore.requests`, :meth:`~FakeTelegramCore.sent`,
  :meth:`~FakeTelegramCore.wait_for_request`, :meth:`~FakeTelegramCore.wait_for_message`
* faults: :meth:`~FakeTelegramCore.inject`, :meth:`~FakeTelegramCore.enforce_limits`

Transports: :mod:`.server` (real HTTP, aiohttp) and :mod:`.offline` (a PTB request class).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import math
import re
import struct
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import spec as spec_module
from .faults import ApiError, Delay, Fault, Injection
from .formatting import EntityParseError, parse_text, utf16_len

JSONDict = dict[str, Any]
FileTuple = tuple[str, bytes, str]

BOT_ID = 7000000001
DEFAULT_TOKEN = "7000000001:AAHoaDepFakeTokenForTestsOnly_000000"
BOT_FIRST_NAME = "Hoa Đẹp"
BOT_USERNAME = "hoadep_test_bot"

GROUP_ANONYMOUS_BOT: JSONDict = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT: JSONDict = {
    "id": 136817688,
    "is_bot": True,
    "first_name": "Channel",
    "username": "Channel_Bot",
}

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_UPLOAD = 50 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Telegram's default when allowed_updates was never given (or given as []).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"
OLD_QUERY = "Bad Request: query is too old and response timeout expired or query ID is invalid"
# Telegram does not publish how long a callback query may wait for its answer; bots see
# OLD_QUERY after roughly 10-15 s, so the fake uses the short end.
CALLBACK_TIMEOUT = 10.0

# Media-sending methods: method -> (parameter, Message field, spec type, file kind)
_MEDIA_METHODS: dict[str, tuple[str, str, str]] = {
    "sendPhoto": ("photo", "photo", "PhotoSize"),
    "sendDocument": ("document", "document", "Document"),
    "sendAudio": ("audio", "audio", "Audio"),
    "sendVideo": ("video", "video", "Video"),
    "sendAnimation": ("animation", "animation", "Animation"),
    "sendVoice": ("voice", "voice", "Voice"),
    "sendVideoNote": ("video_note", "video_note", "VideoNote"),
    "sendSticker": ("sticker", "sticker", "Sticker"),
}
_MEDIA_KEYS = ("photo", "document", "audio", "video", "animation", "voice", "video_note", "sticker")
_CONTENT_KEYS = (
    "text",
    "entities",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    *_MEDIA_KEYS,
    "location",
    "venue",
    "contact",
    "dice",
    "poll",
)
_MEMBER_TYPES = {
    "creator": "ChatMemberOwner",
    "administrator": "ChatMemberAdministrator",
    "member": "ChatMemberMember",
    "restricted": "ChatMemberRestricted",
    "left": "ChatMemberLeft",
    "kicked": "ChatMemberBanned",
}
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANG_RE = re.compile(r"^[a-z]{2}$")


# =========================================================================== records


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes, {self.content_type!r})"


class RecordedRequest(NamedTuple):
    """One Bot API call as the fake received it (params after type coercion)."""

    method: str
    params: JSONDict


@dataclass
class Exchange:
    """A request and (once answered) its response."""

    request: RecordedRequest
    token: str
    files: dict[str, UploadedFile]
    status: int | None = None
    response: JSONDict | None = None


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo, document, audio, ...
    data: bytes = field(repr=False)
    file_path: str
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    url: str | None = None  # sent by URL


@dataclass
class StoredMessage:
    message: JSONDict
    by_bot: bool
    created: int  # index into requests of the call that created it; -1 for updates
    touched: int  # index into requests of the last call that changed it
    deleted: bool = False


@dataclass
class ChatState:
    chat: JSONDict
    bot_status: str = "member"  # creator/administrator/member/left/kicked
    blocked: bool = False  # private chats: the user blocked the bot
    migrated_to: int | None = None
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    pinned: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.chat["id"])

    @property
    def type(self) -> str:
        return str(self.chat["type"])

    def take_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


@dataclass
class Limits:
    global_per_sec: int | None = 30
    per_group_per_min: int | None = 20
    per_chat_per_sec: int | None = 1


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    deliveries: int = 0


class _Poll:
    def __init__(self) -> None:
        self.terminated = False


class _Notifier:
    """Wake-up for coroutines waiting on state changes; loop-agnostic (futures per wait)."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, seconds: float | None) -> bool:
        """Wait for the next :meth:`notify` (True) or ``seconds`` passing (False)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            async with asyncio.timeout(seconds):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(fut)


# =========================================================================== helpers


def make_png(width: int = 8, height: int = 6, rgb: tuple[int, int, int] = (220, 40, 90)) -> bytes:
    """A valid little PNG (for photo uploads in tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF, WEBP or BMP image, None if not recognised."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"BM") and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(int(w)), abs(int(h))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + length
        return None
    return None


def _now() -> int:
    return int(time.time())


def _as_upload(value: Any) -> UploadedFile:
    if isinstance(value, UploadedFile):
        return value
    filename, data, content_type = value
    if hasattr(data, "read"):
        data = data.read()
    return UploadedFile(str(filename), bytes(data), str(content_type or "application/octet-stream"))


def _user_id(user: JSONDict | int) -> int:
    return int(user["id"]) if isinstance(user, dict) else int(user)


def _chat_id(chat: JSONDict | int) -> int:
    return int(chat["id"]) if isinstance(chat, dict) else int(chat)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _buttons(markup: Any) -> list[JSONDict]:
    if not isinstance(markup, dict):
        return []
    rows = markup.get("inline_keyboard") or []
    return [b for row in rows if isinstance(row, list) for b in row if isinstance(b, dict)]


def _inline_markup(markup: Any) -> JSONDict | None:
    """The reply_markup a Message carries (inline keyboards only, and only non-empty ones)."""
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        return {"inline_keyboard": copy.deepcopy(markup["inline_keyboard"])}
    return None


_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


# =========================================================================== the core


class FakeTelegramCore:
    """State machine behind the fake Bot API (see module docstring).

    Args:
        token: the one token the fake accepts (others get 401 Unauthorized).
        strict_chats: sending to a chat the world does not know answers
            ``400 Bad Request: chat not found`` (as Telegram does). With False, unknown
            positive ids become private chats on the fly.
        privacy_mode: the bot's group privacy mode; when on, plain group messages (not
            commands, not replies to the bot, not mentioning it) are not delivered.
        strict_images: photo uploads must be real images (PNG/JPEG/GIF/WEBP/BMP), otherwise
            ``400 Bad Request: IMAGE_PROCESS_FAILED``. See :func:`make_png`.
        allow_http_webhooks: accept ``http://`` webhook URLs (Telegram requires HTTPS).
        callback_timeout: seconds (on ``clock``) within which a callback query must be
            answered; later, or a second time, answers ``400`` with Telegram's OLD_QUERY text.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = BOT_ID,
        bot_first_name: str = BOT_FIRST_NAME,
        bot_username: str = BOT_USERNAME,
        strict_chats: bool = True,
        privacy_mode: bool = False,
        strict_images: bool = True,
        allow_http_webhooks: bool = True,
        clock: Callable[[], float] = time.monotonic,
        callback_timeout: float = CALLBACK_TIMEOUT,
    ) -> None:
        self.token = token
        self.callback_timeout = callback_timeout
        self.spec = spec_module.load_spec()
        self.strict_chats = strict_chats
        self.privacy_mode = privacy_mode
        self.strict_images = strict_images
        self.allow_http_webhooks = allow_http_webhooks
        self._clock = clock
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.me: JSONDict = {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

        # observation
        self.exchanges: list[Exchange] = []
        self.requests: list[RecordedRequest] = []
        self.unknown_fields: list[tuple[str, str]] = []
        self.callback_answers: list[JSONDict] = []
        self.callback_attempts: Counter[str] = Counter()  # answers tried, per query id
        self.chat_actions: list[tuple[int, str]] = []
        self.update_log: list[JSONDict] = []
        self.undelivered_updates: list[JSONDict] = []  # hidden from the bot by privacy mode
        self.webhook_deliveries: list[JSONDict] = []
        self.too_many_requests = 0
        self.delivered: Counter[int] = Counter()

        # world
        self.users: dict[int, JSONDict] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._sent_log: list[StoredMessage] = []
        self._pending_callbacks: dict[str, JSONDict] = {}
        self._pressed_at: dict[str, float] = {}  # every query id ever issued -> when
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self.settings: dict[str, Any] = {}

        # updates
        self._updates: list[JSONDict] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] | None = None
        self._active_poll: _Poll | None = None
        self._updates_changed = _Notifier()
        self._changed = _Notifier()

        # webhook
        self.webhook: Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        # faults and limits
        self.injections: list[Injection] = []
        self.limits: Limits | None = None
        self._windows: dict[Any, deque[float]] = {}

        self._counter = 0
        self._handlers: dict[str, Callable[[JSONDict, dict[str, UploadedFile], int], Any]] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageMedia": self._edit_message_media,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "leaveChat": self._leave_chat,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChatMemberCount": self._get_chat_member_count,
            "copyMessage": self._copy_message,
            "forwardMessage": self._forward_message,
            "pinChatMessage": self._pin_chat_message,
            "unpinChatMessage": self._unpin_chat_message,
        }
        for method in _MEDIA_METHODS:
            self._handlers[method] = self._send_media

    # ================================================================== entry point

    async def handle(
        self,
        token: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, FileTuple | UploadedFile] | None = None,
    ) -> tuple[int, JSONDict]:
        """Answer one Bot API call: ``(HTTP status, JSON body)``.

        ``params`` may hold JSON values or strings (form / multipart fields); ``files`` maps
        multipart part names to ``(filename, bytes, content_type)``.
        """
        raw = {k: v for k, v in (params or {}).items()}
        uploads = {name: _as_upload(v) for name, v in (files or {}).items()}
        mspec = self.spec.method(method)
        name = mspec.name if mspec is not None else method
        if token != self.token:
            index = self._record(name, raw, token, uploads)
            return self._finish(index, ApiError(401, "Unauthorized"))
        if mspec is None:
            index = self._record(name, raw, token, uploads)
            return self._finish(index, ApiError(404, "Not Found"))
        try:
            params_c = self._coerce(mspec, raw, uploads)
        except ApiError as exc:
            index = self._record(name, raw, token, uploads)
            return self._finish(index, exc)
        index = self._record(name, params_c, token, uploads)
        if name == "getUpdates":
            return await self._process(mspec, index, params_c, uploads)
        # Like Telegram, carry a call out even when the client stops waiting for the answer
        # (a timed-out sendMessage may well have been delivered); only long polls end early.
        return await asyncio.shield(self._process(mspec, index, params_c, uploads))

    async def _process(
        self,
        mspec: spec_module.MethodSpec,
        index: int,
        params_c: JSONDict,
        uploads: dict[str, UploadedFile],
    ) -> tuple[int, JSONDict]:
        name = mspec.name
        try:
            self._validate(mspec, params_c, uploads)
            fault = self._take_injection(name, params_c)
            if isinstance(fault, Delay):
                await asyncio.sleep(fault.seconds)
            elif fault is not None:
                error = fault.to_error()
                if error is not None:
                    raise error
            self._check_rate_limits(name, params_c)
            handler = self._handlers.get(name, self._generic)
            result = handler(params_c, uploads, index)
            if isinstance(result, Awaitable):
                result = await result
        except ApiError as exc:
            return self._finish(index, exc)
        return self._finish(index, result)

    def _record(
        self, method: str, params: JSONDict, token: str, files: dict[str, UploadedFile]
    ) -> int:
        request = RecordedRequest(method, params)
        self.requests.append(request)
        self.exchanges.append(Exchange(request, token, files))
        self._changed.notify()
        return len(self.requests) - 1

    def _finish(self, index: int, outcome: Any) -> tuple[int, JSONDict]:
        if isinstance(outcome, ApiError):
            status, body = outcome.status, outcome.body
        else:
            status, body = 200, {"ok": True, "result": outcome}
        exchange = self.exchanges[index]
        exchange.status, exchange.response = status, body
        self._changed.notify()
        return status, body

    # ================================================================== spec checks

    def _coerce(
        self, mspec: spec_module.MethodSpec, raw: JSONDict, uploads: dict[str, UploadedFile]
    ) -> JSONDict:
        out: JSONDict = {}
        for key, value in raw.items():
            if value is None:
                continue
            fspec = mspec.fields.get(key)
            if fspec is None:
                out[key] = value
                continue
            out[key] = self._coerce_value(key, fspec.types, value)
        for key, upload in uploads.items():
            if key in mspec.fields and key not in out:
                out[key] = upload
        return out

    @staticmethod
    def _coerce_value(key: str, types: tuple[str, ...], value: Any) -> Any:
        bases = [spec_module.split_array(t) for t in types]
        structured = any(depth > 0 or base not in spec_module.PRIMITIVES for depth, base in bases)
        if isinstance(value, str):
            stripped = value.strip()
            if structured and stripped[:1] in ("{", "["):
                try:
                    return json.loads(stripped)
                except ValueError:
                    raise ApiError.bad_request(f"can't parse {key} JSON object") from None
            if structured and "String" not in types and "InputFile" not in types:
                raise ApiError.bad_request(f"can't parse {key} JSON object")
            if "Integer" in types and re.fullmatch(r"[+-]?\d+", stripped):
                return int(stripped)
            if "Float" in types:
                with contextlib.suppress(ValueError):
                    return float(stripped)
            if "Boolean" in types and stripped.lower() in ("true", "false", "1", "0"):
                return stripped.lower() in ("true", "1")
            return value
        if types == ("String",) and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if "Integer" in types and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def _validate(
        self,
        mspec: spec_module.MethodSpec,
        params: JSONDict,
        uploads: dict[str, UploadedFile],
    ) -> None:
        for key in params:
            if key not in mspec.fields:
                self.unknown_fields.append((mspec.name, key))
        missing = [name for name in mspec.required if name not in params]
        errors: list[str] = [f"Bad Request: {name} is required" for name in missing]
        for key, value in params.items():
            fspec = mspec.fields.get(key)
            if fspec is None:
                continue
            check = self.spec.check_value(fspec.types, value, key, lenient=True)
            for path in check.unknown:
                self.unknown_fields.append((mspec.name, path))
            errors.extend(spec_module.describe_problem(p) for p in check.errors)
        if errors:
            raise ApiError.bad_request(errors[0])

    # ================================================================== faults & limits

    def inject(
        self,
        method: str,
        error: Fault,
        *,
        chat_id: int | str | None = None,
        times: int | None = 1,
    ) -> Injection:
        """Make the next ``times`` calls of ``method`` (``"*"``: any) fail with ``error``.

        ``chat_id`` restricts it to calls for that chat; ``times=None`` arms it forever.
        Injections fire after the spec check and before normal handling.
        """
        injection = Injection(method.lower(), error, chat_id, times)
        self.injections.append(injection)
        return injection

    def clear_injections(self) -> None:
        self.injections.clear()

    def _take_injection(self, method: str, params: JSONDict) -> Fault | None:
        for injection in self.injections:
            if injection.matches(method, params):
                if injection.remaining is not None:
                    injection.remaining -= 1
                injection.fired += 1
                return injection.fault
        return None

    def enforce_limits(
        self,
        global_per_sec: int | None = 30,
        per_group_per_min: int | None = 20,
        per_chat_per_sec: int | None = 1,
    ) -> None:
        """Answer 429 like Telegram's broadcast limits (strict sliding windows).

        Applies to message-sending methods (``send*`` except ``sendChatAction``,
        ``copyMessage(s)``, ``forwardMessage(s)``); a group is a negative chat id. None
        switches one limit off.
        """
        self.limits = Limits(global_per_sec, per_group_per_min, per_chat_per_sec)
        self._windows.clear()

    def disable_limits(self) -> None:
        self.limits = None
        self._windows.clear()

    @staticmethod
    def is_sending_method(method: str) -> bool:
        return (method.startswith("send") and method != "sendChatAction") or method in (
            "copyMessage",
            "copyMessages",
            "forwardMessage",
            "forwardMessages",
        )

    def _check_rate_limits(self, method: str, params: JSONDict) -> None:
        limits = self.limits
        if limits is None or not self.is_sending_method(method):
            return
        chat_key: Any = params.get("chat_id")
        if isinstance(chat_key, str):
            with contextlib.suppress(ApiError):
                chat_key = self._find_chat(chat_key).id
        now = self._clock()
        rules: list[tuple[Any, float, int]] = []
        if limits.global_per_sec:
            rules.append(("global", 1.0, limits.global_per_sec))
        if limits.per_chat_per_sec and chat_key is not None:
            rules.append((("chat", chat_key), 1.0, limits.per_chat_per_sec))
        if limits.per_group_per_min and isinstance(chat_key, int) and chat_key < 0:
            rules.append((("group", chat_key), 60.0, limits.per_group_per_min))
        wait = 0.0
        for key, window, limit in rules:
            times = self._windows.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                wait = max(wait, times[0] + window - now)
        if wait > 0:
            self.too_many_requests += 1
            raise ApiError.too_many_requests(max(1, math.ceil(wait)))
        for key, _, _ in rules:
            self._windows[key].append(now)

    # ================================================================== world

    def user(
        self,
        id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
        *,
        is_premium: bool | None = None,
    ) -> JSONDict:
        """Register a user (and their private chat with the bot); returns the User object."""
        if id <= 0:
            raise ValueError("user ids are positive")
        user: JSONDict = {"id": id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if is_premium:
            user["is_premium"] = True
        self.users[id] = user
        self.private_chat(user)
        return dict(user)

    def private_chat(self, user: JSONDict | int) -> JSONDict:
        """The private chat of ``user`` with the bot (Chat object)."""
        uid = _user_id(user)
        if uid not in self.users:
            if not isinstance(user, dict):
                raise KeyError(f"unknown user {uid}; create it with core.user(...)")
            self.users[uid] = dict(user)
        state = self.chats.get(uid)
        if state is None:
            u = self.users[uid]
            chat: JSONDict = {"id": uid, "type": "private", "first_name": u["first_name"]}
            for key in ("last_name", "username"):
                if key in u:
                    chat[key] = u[key]
            state = self.chats[uid] = ChatState(chat)
        return dict(state.chat)

    def group(
        self,
        chat_id: int,
        title: str,
        type: str = "group",
        *,
        username: str | None = None,
        is_forum: bool = False,
        bot_status: str = "member",
        creator: JSONDict | int | None = None,
    ) -> JSONDict:
        """Register a group or supergroup (the bot is a member by default)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if type not in ("group", "supergroup"):
            raise ValueError("type must be 'group' or 'supergroup'")
        chat: JSONDict = {"id": chat_id, "type": type, "title": title}
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        state = ChatState(chat, bot_status=bot_status)
        if creator is not None:
            state.members[_user_id(creator)] = "creator"
        self.chats[chat_id] = state
        return dict(chat)

    def channel(
        self,
        chat_id: int,
        title: str,
        *,
        username: str | None = None,
        bot_status: str = "administrator",
    ) -> JSONDict:
        """Register a channel (the bot is an administrator by default)."""
        if chat_id >= 0:
            raise ValueError("channel ids are negative")
        chat: JSONDict = {"id": chat_id, "type": "channel", "title": title}
        if username:
            chat["username"] = username
        self.chats[chat_id] = ChatState(chat, bot_status=bot_status)
        return dict(chat)

    def chat(self, chat: JSONDict | int) -> JSONDict:
        """The current Chat object of a registered chat."""
        return dict(self._state(_chat_id(chat)).chat)

    def set_member(self, chat: JSONDict | int, user: JSONDict | int, status: str) -> None:
        """Set a user's status in a group (creator/administrator/member/restricted/left/kicked).

        ``user`` may be the bot itself (``core.bot_user``).
        """
        if status not in _MEMBER_TYPES:
            raise ValueError(f"unknown status {status!r}")
        state = self._state(_chat_id(chat))
        uid = _user_id(user)
        if uid == self.bot_user["id"]:
            state.bot_status = status
        else:
            state.members[uid] = status

    def _state(self, chat_id: int) -> ChatState:
        state = self.chats.get(chat_id)
        if state is None:
            raise KeyError(f"unknown chat {chat_id}; create it with core.group/user/channel")
        return state

    # ================================================================== updates (builders)

    def enqueue(self, update: JSONDict) -> JSONDict:
        """Queue an arbitrary update (``update_id`` is assigned); returns it."""
        update = {
            "update_id": self._next_update_id,
            **{k: v for k, v in update.items() if k != "update_id"},
        }
        self._next_update_id += 1
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query and str(query["id"]) not in self._pressed_at:
            self.register_callback(query)
        self.update_log.append(update)
        self._updates.append(update)
        self._updates_changed.notify()
        self._ensure_webhook_task()
        return copy.deepcopy(update)

    def _user_message(
        self,
        sender: JSONDict,
        chat_id: int,
        content: JSONDict,
        *,
        sender_chat: JSONDict | None = None,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        state = self._state(chat_id)
        msg: JSONDict = {"message_id": state.take_message_id()}
        if sender:
            msg["from"] = dict(sender)
        if sender_chat is not None:
            msg["sender_chat"] = dict(sender_chat)
        msg["date"] = _now()
        msg["chat"] = dict(state.chat)
        if reply_to is not None:
            original = self._stored(chat_id, int(reply_to["message_id"]))
            replied = copy.deepcopy(original.message if original else reply_to)
            replied.pop("reply_to_message", None)
            msg["reply_to_message"] = replied
        msg.update(content)
        state.messages[msg["message_id"]] = StoredMessage(msg, False, -1, len(self.requests))
        if sender and not sender.get("is_bot") and state.type in ("group", "supergroup"):
            state.members.setdefault(int(sender["id"]), "member")
        return msg

    def _message_update(self, msg: JSONDict, *, channel: bool = False) -> JSONDict:
        key = "channel_post" if channel else "message"
        if not self._visible_to_bot(msg):
            self.undelivered_updates.append({key: copy.deepcopy(msg)})
            return {"update_id": None, key: copy.deepcopy(msg)}
        return self.enqueue({key: copy.deepcopy(msg)})

    def _visible_to_bot(self, msg: JSONDict) -> bool:
        chat = msg["chat"]
        state = self._state(int(chat["id"]))
        if chat["type"] != "private" and state.bot_status in ("left", "kicked"):
            return False  # the bot is not in that chat any more
        if chat["type"] not in ("group", "supergroup") or not self.privacy_mode:
            return True
        if state.bot_status in ("administrator", "creator"):
            return True
        text = msg.get("text") or msg.get("caption") or ""
        if text.startswith("/") or f"@{self.bot_user['username']}" in text:
            return True
        reply = msg.get("reply_to_message") or {}
        if (reply.get("from") or {}).get("id") == self.bot_user["id"]:
            return True
        return "text" not in msg and "caption" not in msg and not any(k in msg for k in _MEDIA_KEYS)

    def _text_entities(self, text: str) -> list[JSONDict]:
        entities: list[JSONDict] = []
        for regex, kind in (
            (_COMMAND_RE, "bot_command"),
            (_MENTION_RE, "mention"),
            (_URL_RE, "url"),
        ):
            for match in regex.finditer(text):
                entities.append(
                    {
                        "type": kind,
                        "offset": utf16_len(text[: match.start()]),
                        "length": utf16_len(match.group(0)),
                    }
                )
        entities.sort(key=lambda e: e["offset"])
        return entities

    def send_text(
        self,
        user: JSONDict | int,
        text: str,
        chat: JSONDict | int | None = None,
        *,
        reply_to: JSONDict | None = None,
    ) -> JSONDict:
        """A user writes ``text`` (to the bot, or in ``chat``); commands get entities."""
        sender = self._user_obj(user)
        chat_id = self._target_chat(sender, chat)
        content: JSONDict = {"text": text}
        entities = self._text_entities(text)
        if entities:
            content["entities"] = entities
        msg = self._user_message(sender, chat_id, content, reply_to=reply_to)
        return self._message_update(msg)

    def send_photo(
        self,
        user: JSONDict | int,
        caption: str | None = None,
        chat: JSONDict | int | None = None,
        *,
        data: bytes | None = None,
    ) -> JSONDict:
        """A user sends a photo (a real little PNG unless ``data`` is given)."""
        sender = self._user_obj(user)
        chat_id = self._target_chat(sender, chat)
        photo_data = data if data is not None else make_png(64, 48)
        sizes = self._photo_sizes(photo_data)
        content: JSONDict = {"photo": sizes}
        if caption:
            content["caption"] = caption
            entities = self._text_entities(caption)
            if entities:
                content["caption_entities"] = entities
        msg = self._user_message(sender, chat_id, content)
        return self._message_update(msg)

    def send_document(
        self,
        user: JSONDict | int,
        filename: str,
        content_type: str,
        data: bytes,
        chat: JSONDict | int | None = None,
        *,
        caption: str | None = None,
    ) -> JSONDict:
        """A user sends a file."""
        sender = self._user_obj(user)
        chat_id = self._target_chat(sender, chat)
        stored = self._new_file("document", data, mime_type=content_type, file_name=filename)
        content: JSONDict = {"document": self._document_obj(stored)}
        if caption:
            content["caption"] = caption
        msg = self._user_message(sender, chat_id, content)
        return self._message_update(msg)

    def press_button(
        self,
        user: JSONDict | int,
        message: JSONDict,
        callback_data: str | None = None,
        *,
        text: str | None = None,
    ) -> JSONDict:
        """``user`` presses an inline button of a message the bot sent.

        The button is found by ``callback_data`` or by its ``text`` (handy with PTB's
        arbitrary callback data); ValueError if the message has no such button.
        """
        sender = self._user_obj(user)
        chat_id = int(message["chat"]["id"])
        stored = self._stored(chat_id, int(message["message_id"]))
        if stored is None or stored.deleted:
            raise ValueError(f"message {message['message_id']} in chat {chat_id} does not exist")
        buttons = _buttons(stored.message.get("reply_markup"))
        match = [
            b
            for b in buttons
            if "callback_data" in b
            and (callback_data is None or b["callback_data"] == callback_data)
            and (text is None or b.get("text") == text)
        ]
        if not match or (callback_data is None and text is None):
            raise ValueError(
                f"no callback button (callback_data={callback_data!r}, text={text!r}) on "
                f"message {message['message_id']}; buttons: "
                f"{[(b.get('text'), b.get('callback_data')) for b in buttons]}"
            )
        self._counter += 1
        query_id = str(4_000_000_000_000_000_000 + self._counter * 7919)
        query: JSONDict = {
            "id": query_id,
            "from": dict(sender),
            "message": copy.deepcopy(stored.message),
            "chat_instance": str(abs(chat_id) * 1_000_003 % 10**19),
            "data": match[0]["callback_data"],
        }
        self.register_callback(query)
        return self.enqueue({"callback_query": query})

    def register_callback(self, query: JSONDict) -> None:
        """Telegram issued this callback query now: it may be answered once, in time."""
        query_id = str(query["id"])
        self._pending_callbacks[query_id] = query
        self._pressed_at[query_id] = self._clock()

    def callback_problems(self, query_ids: Iterable[str] | None = None) -> list[str]:
        """What went wrong with answering callback queries (all issued ones by default): a
        query never answered, answered more than once, or answered too late."""
        answered = Counter(str(a["callback_query_id"]) for a in self.callback_answers)
        problems = []
        for query_id in self._pressed_at if query_ids is None else query_ids:
            attempts = self.callback_attempts[query_id]
            data = (self._pending_callbacks.get(query_id) or {}).get("data")
            if attempts == 0:
                problems.append(f"callback query {query_id} ({data!r}) was never answered")
            elif answered[query_id] == 0:
                problems.append(f"no answer to callback query {query_id} succeeded (too late?)")
            elif attempts > 1:
                problems.append(f"callback query {query_id} was answered {attempts} times")
        return problems

    def add_bot_to_group(self, by_user: JSONDict | int, chat: JSONDict | int) -> JSONDict:
        """The bot is added to a group: a my_chat_member update (left -> member, returned)
        followed by a message with ``new_chat_members``."""
        sender = self._user_obj(by_user)
        state = self._state(_chat_id(chat))
        old = state.bot_status if state.bot_status not in ("member",) else "left"
        state.bot_status = "member"
        state.members.setdefault(sender["id"], "member")
        update = self.enqueue(
            {
                "my_chat_member": {
                    "chat": dict(state.chat),
                    "from": dict(sender),
                    "date": _now(),
                    "old_chat_member": self._member_obj(self.bot_user, old),
                    "new_chat_member": self._member_obj(self.bot_user, "member"),
                }
            }
        )
        msg = self._user_message(sender, state.id, {"new_chat_members": [dict(self.bot_user)]})
        self._message_update(msg)
        return update

    def remove_bot_from_group(self, by_user: JSONDict | int, chat: JSONDict | int) -> JSONDict:
        """The bot is removed from a group (my_chat_member member -> left/kicked)."""
        sender = self._user_obj(by_user)
        state = self._state(_chat_id(chat))
        old = state.bot_status
        state.bot_status = "kicked"
        new = "kicked" if state.type == "supergroup" else "left"
        return self.enqueue(
            {
                "my_chat_member": {
                    "chat": dict(state.chat),
                    "from": dict(sender),
                    "date": _now(),
                    "old_chat_member": self._member_obj(self.bot_user, old),
                    "new_chat_member": self._member_obj(self.bot_user, new),
                }
            }
        )

    def migrate_group(
        self, old_chat: JSONDict | int, new_id: int, by_user: JSONDict | int | None = None
    ) -> JSONDict:
        """A group becomes a supergroup ``new_id``.

        Queues the service message with ``migrate_to_chat_id`` in the old chat (returned) and
        the one with ``migrate_from_chat_id`` in the new one. Later calls for the old id fail
        with 400 and ``parameters.migrate_to_chat_id``.
        """
        old = self._state(_chat_id(old_chat))
        if old.type != "group":
            raise ValueError("only basic groups migrate")
        sender = self._user_obj(by_user) if by_user is not None else self._any_member(old)
        new = ChatState(
            {"id": new_id, "type": "supergroup", "title": old.chat.get("title", "")},
            bot_status=old.bot_status,
            members=dict(old.members),
        )
        self.chats[new_id] = new
        first = self._user_message(sender, old.id, {"migrate_to_chat_id": new_id})
        update = self._message_update(first)
        old.migrated_to = new_id
        second = self._user_message(sender, new_id, {"migrate_from_chat_id": old.id})
        self._message_update(second)
        return update

    def block_bot(self, user: JSONDict | int) -> JSONDict:
        """The user blocks the bot: sends to them fail with 403; my_chat_member is queued."""
        sender = self._user_obj(user)
        state = self._state(sender["id"])
        state.blocked = True
        return self.enqueue(
            {
                "my_chat_member": {
                    "chat": dict(state.chat),
                    "from": dict(sender),
                    "date": _now(),
                    "old_chat_member": self._member_obj(self.bot_user, "member"),
                    "new_chat_member": self._member_obj(self.bot_user, "kicked"),
                }
            }
        )

    def unblock_bot(self, user: JSONDict | int) -> JSONDict:
        sender = self._user_obj(user)
        state = self._state(sender["id"])
        state.blocked = False
        return self.enqueue(
            {
                "my_chat_member": {
                    "chat": dict(state.chat),
                    "from": dict(sender),
                    "date": _now(),
                    "old_chat_member": self._member_obj(self.bot_user, "kicked"),
                    "new_chat_member": self._member_obj(self.bot_user, "member"),
                }
            }
        )

    def send_as_channel(
        self, chat: JSONDict | int, text: str, *, channel: JSONDict | int | None = None
    ) -> JSONDict:
        """A message with ``sender_chat``.

        In a channel: a ``channel_post`` by the channel. In a group: a user posting on behalf
        of ``channel`` (default: a channel made up for the purpose), from ``Channel_Bot``.
        """
        state = self._state(_chat_id(chat))
        content: JSONDict = {"text": text}
        entities = self._text_entities(text)
        if entities:
            content["entities"] = entities
        if state.type == "channel":
            msg = self._user_message({}, state.id, content, sender_chat=state.chat)
            return self._message_update(msg, channel=True)
        if channel is None:
            channel_id = -1009990000000 - abs(state.id) % 1_000_000
            if channel_id not in self.chats:
                self.channel(channel_id, "Kênh Hoa Đẹp", bot_status="left")
            channel_chat = self.chats[channel_id].chat
        else:
            channel_chat = self.chat(channel) if not isinstance(channel, dict) else channel
        msg = self._user_message(CHANNEL_BOT, state.id, content, sender_chat=channel_chat)
        return self._message_update(msg)

    def send_as_anonymous_admin(self, chat: JSONDict | int, text: str) -> JSONDict:
        """An anonymous group admin writes: from GroupAnonymousBot, sender_chat = the group."""
        state = self._state(_chat_id(chat))
        content: JSONDict = {"text": text}
        entities = self._text_entities(text)
        if entities:
            content["entities"] = entities
        msg = self._user_message(GROUP_ANONYMOUS_BOT, state.id, content, sender_chat=state.chat)
        return self._message_update(msg)

    def _target_chat(self, sender: JSONDict, chat: JSONDict | int | None) -> int:
        """The chat a user message goes to; writing to a bot one blocked unblocks it first."""
        if chat is not None:
            state = self._state(_chat_id(chat))
            if state.migrated_to is not None:
                raise ValueError(f"chat {state.id} was migrated to {state.migrated_to}")
            return state.id
        self.private_chat(sender)
        if self.chats[sender["id"]].blocked:
            self.unblock_bot(sender)
        return int(sender["id"])

    def _user_obj(self, user: JSONDict | int) -> JSONDict:
        uid = _user_id(user)
        if uid not in self.users:
            if isinstance(user, dict):
                self.users[uid] = dict(user)
            else:
                raise KeyError(f"unknown user {uid}; create it with core.user(...)")
        return self.users[uid]

    def _any_member(self, state: ChatState) -> JSONDict:
        for uid, status in state.members.items():
            if status in ("creator", "administrator") and uid in self.users:
                return self.users[uid]
        for uid in state.members:
            if uid in self.users:
                return self.users[uid]
        return self.user(1000, "Quản trị viên")

    def _member_obj(self, user: JSONDict, status: str) -> JSONDict:
        type_name = _MEMBER_TYPES[status]
        overrides: JSONDict = {"status": status, "user": dict(user)}
        if status == "administrator":
            spec = self.spec.types[type_name]
            for name, fspec in spec.fields.items():
                if fspec.required and name.startswith("can_"):
                    overrides[name] = name != "can_be_edited"
            overrides["can_be_edited"] = False
            overrides["is_anonymous"] = False
        if status == "kicked":
            overrides["until_date"] = 0
        if status == "restricted":
            overrides["until_date"] = 0
        result = self.spec.synthesize(type_name, overrides)
        assert isinstance(result, dict)
        return result

    # ================================================================== observation

    def mark(self) -> int:
        """Current position in :attr:`requests` (for the ``after`` of the wait helpers)."""
        return len(self.requests)

    def sent(
        self, chat_id: int | str | None = None, *, include_deleted: bool = False
    ) -> list[JSONDict]:
        """Messages the bot sent (oldest first), with later edits applied."""
        wanted: int | None = None
        if chat_id is not None:
            wanted = self._find_chat(chat_id).id if isinstance(chat_id, str) else int(chat_id)
        return [
            copy.deepcopy(s.message)
            for s in self._sent_log
            if (include_deleted or not s.deleted)
            and (wanted is None or s.message["chat"]["id"] == wanted)
        ]

    def calls(self, method: str) -> list[JSONDict]:
        """Params of every recorded call of ``method`` (case-insensitive)."""
        low = method.lower()
        return [r.params for r in self.requests if r.method.lower() == low]

    @property
    def errors(self) -> list[Exchange]:
        """Exchanges answered with a non-2xx status."""
        return [e for e in self.exchanges if e.status is not None and e.status >= 300]

    @property
    def pending_updates(self) -> list[JSONDict]:
        return copy.deepcopy(self._updates)

    def describe_requests(self, last: int = 15) -> str:
        lines = []
        start = max(0, len(self.exchanges) - last)
        for i, ex in enumerate(self.exchanges[start:], start):
            outcome = "…" if ex.status is None else str(ex.status)
            if ex.response and not ex.response.get("ok"):
                outcome += f" {ex.response.get('description')}"
            lines.append(f"  #{i} {ex.request.method} {_short(ex.request.params)} -> {outcome}")
        return "\n".join(lines) or "  (no requests)"

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool] | str,
        timeout: float = 10.0,
        *,
        after: int = 0,
    ) -> RecordedRequest:
        """The first request at position >= ``after`` matching ``predicate`` (or a method name).

        Returns at once if one is already recorded; AssertionError on timeout.
        """
        check: Callable[[RecordedRequest], bool]
        if isinstance(predicate, str):
            low = predicate.lower()

            def check(r: RecordedRequest) -> bool:
                return r.method.lower() == low

        else:
            check = predicate
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for request in self.requests[after:]:
                if check(request):
                    return request
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"no matching Bot API request within {timeout}s "
                    f"(after #{after}); last requests:\n{self.describe_requests()}"
                )
            await self._changed.wait(remaining)

    async def wait_for_message(
        self,
        chat_id: int | str | None,
        predicate: Callable[[JSONDict], bool] | None = None,
        timeout: float = 10.0,
        *,
        after: int = 0,
    ) -> JSONDict:
        """The first message the bot sent to ``chat_id`` (None: any chat) matching ``predicate``.

        Only messages created or edited by requests at position >= ``after`` count; the
        message is returned with edits applied. AssertionError on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wanted: int | None = None
            if chat_id is not None:
                wanted = self._find_chat(chat_id).id if isinstance(chat_id, str) else int(chat_id)
            for stored in self._sent_log:
                msg = stored.message
                if stored.deleted or stored.touched < after:
                    continue
                if wanted is not None and msg["chat"]["id"] != wanted:
                    continue
                if predicate is None or predicate(msg):
                    return copy.deepcopy(msg)
            remaining = deadline - loop.time()
            if remaining <= 0:
                texts = [
                    _short(m.get("text") or m.get("caption") or "", 60)
                    for m in self.sent(wanted)[-5:]
                ]
                raise AssertionError(
                    f"no matching message from the bot in chat {chat_id} within {timeout}s "
                    f"(after #{after}); last messages there: {texts}; last requests:\n"
                    f"{self.describe_requests()}"
                )
            await self._changed.wait(remaining)

    async def wait_for_updates_consumed(self, timeout: float = 10.0) -> None:
        """Wait until every queued update was confirmed (getUpdates offset) or delivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._updates:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(self._updates)} update(s) still pending after {timeout}s"
                )
            await self._updates_changed.wait(min(remaining, 0.05))

    # ================================================================== chats & messages

    def _find_chat(self, chat_id: Any) -> ChatState:
        """Resolve a chat_id parameter; raises the API errors Telegram gives."""
        if isinstance(chat_id, str):
            if chat_id.startswith("@"):
                name = chat_id[1:].lower()
                for state in self.chats.values():
                    if str(state.chat.get("username", "")).lower() == name:
                        return self._not_migrated(state)
                raise ApiError.bad_request("chat not found")
            try:
                chat_id = int(chat_id)
            except ValueError:
                raise ApiError.bad_request("chat not found") from None
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise ApiError.bad_request("chat not found")
        found = self.chats.get(chat_id)
        if found is None:
            if not self.strict_chats and chat_id > 0:
                uid = chat_id
                self.users.setdefault(
                    uid, {"id": uid, "is_bot": False, "first_name": f"User {uid}"}
                )
                self.private_chat(uid)
                return self.chats[uid]
            raise ApiError.bad_request("chat not found")
        return self._not_migrated(found)

    @staticmethod
    def _not_migrated(state: ChatState) -> ChatState:
        if state.migrated_to is not None:
            raise ApiError.migrated(state.migrated_to)
        return state

    def _sendable_chat(self, chat_id: Any) -> ChatState:
        state = self._find_chat(chat_id)
        if state.type == "private":
            if state.blocked:
                raise ApiError.forbidden("bot was blocked by the user")
            return state
        kind = {"group": "group", "supergroup": "supergroup", "channel": "channel"}[state.type]
        if state.bot_status == "kicked":
            raise ApiError.forbidden(f"bot was kicked from the {kind} chat")
        if state.bot_status == "left":
            raise ApiError.forbidden(f"bot is not a member of the {kind} chat")
        if state.type == "channel" and state.bot_status not in ("administrator", "creator"):
            raise ApiError.bad_request("need administrator rights in the channel chat")
        return state

    def _stored(self, chat_id: int, message_id: int) -> StoredMessage | None:
        state = self.chats.get(chat_id)
        return state.messages.get(message_id) if state else None

    def _check_markup(self, markup: Any) -> None:
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return
        for button in _buttons(markup):
            actions = [a for a in _INLINE_BUTTON_ACTIONS if a in button]
            if not actions:
                raise ApiError.bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and (
                not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA
            ):
                raise ApiError.bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
                raise ApiError.bad_request("BUTTON_URL_INVALID")

    def _parse(
        self,
        text: str,
        parse_mode: Any,
        entities: Any,
        *,
        limit: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str, list[JSONDict]]:
        try:
            visible, parsed = parse_text(
                text, parse_mode if isinstance(parse_mode, str) else None, entities or None
            )
        except EntityParseError as exc:
            raise ApiError.bad_request(f"can't parse entities: {exc}") from None
        except ValueError:
            raise ApiError.bad_request("unsupported parse_mode") from None
        if empty is not None and not visible:
            raise ApiError.bad_request(empty)
        if len(visible) > limit:
            raise ApiError.bad_request(too_long)
        return visible, parsed

    def _text_content(self, p: JSONDict) -> JSONDict:
        text, entities = self._parse(
            str(p.get("text", "")),
            p.get("parse_mode"),
            p.get("entities"),
            limit=MAX_TEXT,
            too_long="message is too long",
            empty="message text is empty",
        )
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    def _caption_content(self, p: JSONDict) -> JSONDict:
        if "caption" not in p:
            return {}
        caption, entities = self._parse(
            str(p["caption"]),
            p.get("parse_mode"),
            p.get("caption_entities"),
            limit=MAX_CAPTION,
            too_long="message caption is too long",
            empty=None,
        )
        content: JSONDict = {}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        if p.get("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return content

    def _bot_message(
        self,
        state: ChatState,
        content: JSONDict,
        p: JSONDict,
        index: int,
        *,
        count_delivery: bool = True,
    ) -> JSONDict:
        msg: JSONDict = {"message_id": 0}
        thread = p.get("message_thread_id")
        if thread is not None:
            if state.chat.get("is_forum"):
                msg["message_thread_id"] = thread
                msg["is_topic_message"] = True
            elif state.type in ("group", "supergroup", "channel"):
                raise ApiError.bad_request("message thread not found")
        msg["from"] = dict(self.bot_user)
        if state.type == "channel":
            msg.pop("from")
            msg["sender_chat"] = dict(state.chat)
        msg["date"] = _now()
        msg["chat"] = dict(state.chat)
        reply = p.get("reply_parameters")
        if isinstance(reply, dict):
            target_chat = state
            if reply.get("chat_id") is not None:
                target_chat = self._find_chat(reply["chat_id"])
            original = target_chat.messages.get(int(reply["message_id"]))
            if original is None or original.deleted:
                if not reply.get("allow_sending_without_reply"):
                    raise ApiError.bad_request("message to be replied not found")
            else:
                replied = copy.deepcopy(original.message)
                replied.pop("reply_to_message", None)
                if target_chat is state:
                    msg["reply_to_message"] = replied
                else:
                    msg["external_reply"] = {
                        "origin": self._origin(original.message),
                        "chat": dict(target_chat.chat),
                        "message_id": original.message["message_id"],
                    }
        if p.get("protect_content"):
            msg["has_protected_content"] = True
        msg.update(content)
        markup = p.get("reply_markup")
        self._check_markup(markup)
        inline = _inline_markup(markup)
        if inline:
            msg["reply_markup"] = inline
        msg["message_id"] = state.take_message_id()
        stored = StoredMessage(msg, True, index, index)
        state.messages[msg["message_id"]] = stored
        self._sent_log.append(stored)
        if count_delivery:
            self.delivered[state.id] += 1
        self._changed.notify()
        return copy.deepcopy(msg)

    def _origin(self, msg: JSONDict) -> JSONDict:
        chat = msg["chat"]
        if chat["type"] == "channel":
            return {
                "type": "channel",
                "date": msg["date"],
                "chat": dict(chat),
                "message_id": msg["message_id"],
            }
        if "sender_chat" in msg:
            return {"type": "chat", "date": msg["date"], "sender_chat": dict(msg["sender_chat"])}
        return {"type": "user", "date": msg["date"], "sender_user": dict(msg.get("from") or {})}

    def _editable(self, p: JSONDict) -> StoredMessage:
        if p.get("inline_message_id") is not None:
            raise ApiError.bad_request("MESSAGE_ID_INVALID")
        if p.get("chat_id") is None or p.get("message_id") is None:
            raise ApiError.bad_request("message identifier is not specified")
        state = self._find_chat(p["chat_id"])
        stored = state.messages.get(int(p["message_id"]))
        if stored is None or stored.deleted:
            raise ApiError.bad_request("message to edit not found")
        if not stored.by_bot:
            raise ApiError.bad_request("message can't be edited")
        return stored

    def _apply_edit(self, stored: StoredMessage, new: JSONDict, index: int) -> JSONDict:
        old = stored.message
        keys = set(_CONTENT_KEYS) | {"reply_markup"}
        if all(old.get(k) == new.get(k) for k in keys):
            raise ApiError.bad_request(NOT_MODIFIED)
        for k in keys:
            old.pop(k, None)
        old.update({k: v for k, v in new.items() if v is not None})
        old["edit_date"] = _now()
        stored.touched = index
        self._changed.notify()
        return copy.deepcopy(old)

    # ================================================================== files

    def _new_id(self, prefix: str) -> tuple[str, str]:
        self._counter += 1
        digest = hashlib.sha256(f"{self.token}/{self._counter}".encode()).hexdigest()
        file_id = f"{prefix}AxkBAAI{self._counter:06d}{digest[:40]}"
        unique = f"AQAD{self._counter:06d}{digest[40:52]}"
        return file_id, unique

    def _new_file(
        self,
        kind: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        file_name: str | None = None,
        url: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> StoredFile:
        prefix = {"photo": "AgACAgIAA", "document": "BQACAgIAA", "sticker": "CAACAgIAA"}.get(
            kind, "BAACAgIAA"
        )
        file_id, unique = self._new_id(prefix)
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1][:8]
        elif kind == "photo":
            ext = ".jpg"
        folder = {"photo": "photos", "document": "documents", "video_note": "video_notes"}.get(
            kind, kind + "s"
        )
        path = f"{folder}/file_{self._counter}{ext}"
        stored = StoredFile(
            file_id,
            unique,
            kind,
            data,
            path,
            mime_type=mime_type,
            file_name=file_name,
            width=size[0] if size else None,
            height=size[1] if size else None,
            url=url,
        )
        self.files[file_id] = stored
        self._files_by_path[path] = stored
        return stored

    def _photo_sizes(self, data: bytes, *, url: str | None = None) -> list[JSONDict]:
        size = image_size(data)
        if size is None:
            if self.strict_images and url is None:
                raise ApiError.bad_request("IMAGE_PROCESS_FAILED")
            size = (1280, 960)
        width, height = size
        sizes: list[JSONDict] = []
        longest = max(width, height, 1)
        for target in (90, 320, 800):
            if target < longest:
                w = max(1, round(width * target / longest))
                h = max(1, round(height * target / longest))
                sizes.append(self._photo_size(data, w, h, url))
        sizes.append(self._photo_size(data, width, height, url))
        return sizes

    def _photo_size(self, data: bytes, w: int, h: int, url: str | None) -> JSONDict:
        stored = self._new_file("photo", data, mime_type="image/jpeg", url=url, size=(w, h))
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(data),
            "width": w,
            "height": h,
        }

    def _document_obj(self, stored: StoredFile) -> JSONDict:
        doc: JSONDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.file_name:
            doc["file_name"] = stored.file_name
        if stored.mime_type:
            doc["mime_type"] = stored.mime_type
        doc["file_size"] = len(stored.data)
        return doc

    def _input_file(self, value: Any, uploads: dict[str, UploadedFile]) -> UploadedFile | str:
        """An upload, an URL (str starting with http) or a known file_id (str)."""
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
            if upload is None:
                raise ApiError.bad_request(WRONG_FILE)
            return upload
        if isinstance(value, str) and value:
            return value
        raise ApiError.bad_request(WRONG_FILE)

    def _media_object(self, kind: str, value: Any, uploads: dict[str, UploadedFile]) -> Any:
        """The Message field value (PhotoSize list or a media object) for a sent file."""
        source = self._input_file(value, uploads)
        type_name = _MEDIA_METHODS["send" + "".join(w.title() for w in kind.split("_"))][2]
        if isinstance(source, UploadedFile):
            if not source.data:
                raise ApiError.bad_request("file must be non-empty")
            if len(source.data) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo":
                return self._photo_sizes(source.data)
            stored = self._new_file(
                kind,
                source.data,
                mime_type=source.content_type,
                file_name=source.filename,
                size=image_size(source.data),
            )
        elif source.startswith(("http://", "https://")):
            if kind == "photo":
                return self._photo_sizes(b"", url=source)
            name = source.rstrip("/").rsplit("/", 1)[-1] or "file"
            stored = self._new_file(kind, b"", file_name=name, url=source)
        else:
            known = self.files.get(source)
            if known is None:
                raise ApiError.bad_request(WRONG_FILE)
            if known.kind != kind:
                raise ApiError.bad_request(
                    f"can't use file of type {known.kind.title()} as {kind.title()}"
                )
            if kind == "photo":
                return self._photo_sizes_for_known(known)
            stored = known
        if kind == "document":
            return self._document_obj(stored)
        overrides: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            overrides["file_name"] = stored.file_name
        if stored.mime_type:
            overrides["mime_type"] = stored.mime_type
        w, h = stored.width or 512, stored.height or 512
        overrides.update({"width": w, "height": h, "length": w, "duration": 1})
        if kind == "sticker":
            overrides.update({"type": "regular", "is_animated": False, "is_video": False})
        obj = self.spec.synthesize(type_name, overrides)
        fields = self.spec.types[type_name].fields
        return {k: v for k, v in obj.items() if k in fields}

    def _photo_sizes_for_known(self, known: StoredFile) -> list[JSONDict]:
        return [
            {
                "file_id": known.file_id,
                "file_unique_id": known.file_unique_id,
                "file_size": len(known.data),
                "width": known.width or 1280,
                "height": known.height or 960,
            }
        ]

    def file_bytes(self, token: str, file_path: str) -> bytes | None:
        """Contents served at ``/file/bot<token>/<file_path>`` (None: 404)."""
        if token != self.token:
            return None
        stored = self._files_by_path.get(file_path)
        return stored.data if stored is not None else None

    def file_content_type(self, file_path: str) -> str:
        stored = self._files_by_path.get(file_path)
        return (stored.mime_type if stored else None) or "application/octet-stream"

    # ================================================================== handlers: bot & updates

    def _true(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        return True

    def _get_me(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        return dict(self.me)

    def _update_type(self, update: JSONDict) -> str:
        return next((k for k in update if k != "update_id"), "")

    def _wanted(self, update: JSONDict, allowed: list[str] | None) -> bool:
        kind = self._update_type(update)
        if not allowed:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in allowed

    def _deliverable(self, limit: int, allowed: list[str] | None) -> list[JSONDict]:
        kept = [u for u in self._updates if self._wanted(u, allowed)]
        if len(kept) != len(self._updates):
            self._updates = kept
        return copy.deepcopy(kept[:limit])

    def _confirm(self, offset: int | None) -> None:
        if offset is None or offset == 0:
            return
        before = len(self._updates)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        else:
            self._updates = self._updates[offset:]
        if len(self._updates) != before:
            self._updates_changed.notify()

    async def _get_updates(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        limit = min(max(int(p.get("limit", 100)), 1), 100)
        timeout = max(float(p.get("timeout", 0)), 0.0)
        if "allowed_updates" in p:
            self._allowed_updates = list(p["allowed_updates"] or [])
        self._confirm(p.get("offset"))
        if self._active_poll is not None:
            self._active_poll.terminated = True
            self._updates_changed.notify()
        poll = self._active_poll = _Poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if poll.terminated:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only "
                        "one bot instance is running",
                    )
                batch = self._deliverable(limit, self._allowed_updates)
                remaining = deadline - loop.time()
                if batch or remaining <= 0 or self.webhook is not None:
                    return batch
                await self._updates_changed.wait(remaining)
        finally:
            if self._active_poll is poll:
                self._active_poll = None

    def release_pollers(self) -> None:
        """End pending long polls now (they answer with what they have)."""
        if self._active_poll is not None:
            self._active_poll.terminated = True
        self._updates_changed.notify()

    def _set_webhook(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        url = str(p.get("url", ""))
        if not url:
            return self._delete_webhook(p, uploads, index)
        if not url.startswith("https://") and not (
            self.allow_http_webhooks and url.startswith("http://")
        ):
            raise ApiError.bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise ApiError.bad_request("secret token contains unallowed characters")
        max_connections = int(p.get("max_connections", 40))
        if not 1 <= max_connections <= 100:
            raise ApiError.bad_request("bad webhook: max_connections must be between 1 and 100")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in p:
            self._allowed_updates = list(p["allowed_updates"] or [])
        self.webhook = Webhook(
            url=url,
            secret_token=str(secret) if secret is not None else None,
            max_connections=max_connections,
            ip_address=p.get("ip_address"),
            allowed_updates=self._allowed_updates,
        )
        self.release_pollers()
        self._ensure_webhook_task()
        return True

    def _delete_webhook(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        self._updates_changed.notify()
        return True

    def _get_webhook_info(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        pending = len([u for u in self._updates if self._wanted(u, self._allowed_updates)])
        wh = self.webhook
        if wh is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        info: JSONDict = {
            "url": wh.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": wh.max_connections,
        }
        if wh.ip_address:
            info["ip_address"] = wh.ip_address
        if wh.allowed_updates:
            info["allowed_updates"] = wh.allowed_updates
        if wh.last_error_date is not None:
            info["last_error_date"] = wh.last_error_date
            info["last_error_message"] = wh.last_error_message
        return info

    def _ensure_webhook_task(self) -> None:
        if self.webhook is None:
            return
        if self._webhook_task is not None and not self._webhook_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the next call made inside a loop
        self._webhook_task = loop.create_task(self._webhook_loop())

    async def _webhook_loop(self) -> None:
        import aiohttp

        backoff = 0.05
        async with aiohttp.ClientSession() as session:
            while self.webhook is not None:
                wh = self.webhook
                batch = self._deliverable(1, self._allowed_updates)
                if not batch:
                    await self._updates_changed.wait(1.0)
                    continue
                update = batch[0]
                headers = {"Content-Type": "application/json"}
                if wh.secret_token:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = wh.secret_token
                try:
                    async with session.post(
                        wh.url,
                        data=json.dumps(update, ensure_ascii=False).encode(),
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        status, reason = resp.status, resp.reason
                        body = await resp.read()
                        content_type = resp.content_type
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    wh.last_error_date = _now()
                    wh.last_error_message = f"Connection failed: {exc!r}"
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                if not 200 <= status < 300:
                    wh.last_error_date = _now()
                    wh.last_error_message = f"Wrong response from the webhook: {status} {reason}"
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                backoff = 0.05
                wh.deliveries += 1
                self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                self.webhook_deliveries.append(update)
                self._changed.notify()
                if content_type == "application/json" and body:
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        reply = json.loads(body)
                        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                            method = reply.pop("method")
                            await self.handle(self.token, method, reply)

    async def shutdown(self) -> None:
        """Stop webhook delivery and release long polls (the state is kept)."""
        self.release_pollers()
        task, self._webhook_task = self._webhook_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ================================================================== handlers: sending

    def _send_message(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        state = self._sendable_chat(p["chat_id"])
        content = self._text_content(p)
        lpo = p.get("link_preview_options")
        if isinstance(lpo, dict) and lpo:
            content["link_preview_options"] = lpo
        return self._bot_message(state, content, p, index)

    def _send_media(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        method = self.requests[index].method
        param, message_field, _ = _MEDIA_METHODS[method]
        state = self._sendable_chat(p["chat_id"])
        content = self._caption_content(p) if method not in ("sendSticker", "sendVideoNote") else {}
        obj = self._media_object(param, p[param], uploads)
        content[message_field] = obj
        if method == "sendAnimation":
            content["document"] = {
                k: v
                for k, v in obj.items()
                if k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")
            }
        if p.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._bot_message(state, content, p, index)

    def _send_media_group(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> list[JSONDict]:
        state = self._sendable_chat(p["chat_id"])
        media = p["media"]
        if not isinstance(media, list) or not media:
            raise ApiError.bad_request("media must be a non-empty array")
        if len(media) > 10:
            raise ApiError.bad_request("too many messages to send as an album")
        if len(media) < 2:
            raise ApiError.bad_request("media group must contain at least 2 items")
        kinds = {item.get("type") for item in media}
        if len(kinds) > 1 and kinds & {"document", "audio"}:
            raise ApiError.bad_request(
                f"{sorted(kinds & {'document', 'audio'})[0]} can't be mixed with other media types"
            )
        prepared: list[JSONDict] = []
        for item in media:
            kind = str(item.get("type"))
            if kind not in ("photo", "video", "document", "audio", "animation"):
                raise ApiError.bad_request(f"unsupported media type {kind!r} in a media group")
            content = self._caption_content(item)
            content[kind] = self._media_object(kind, item.get("media"), uploads)
            if item.get("has_spoiler"):
                content["has_media_spoiler"] = True
            prepared.append(content)
        self._counter += 1
        group_id = str(13_000_000_000_000_000 + self._counter)
        messages = []
        for i, content in enumerate(prepared):
            content["media_group_id"] = group_id
            params = dict(p) if i == 0 else {k: v for k, v in p.items() if k != "reply_markup"}
            messages.append(self._bot_message(state, content, params, index))
        return messages

    def _send_chat_action(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        state = self._sendable_chat(p["chat_id"])
        action = str(p["action"])
        if action not in CHAT_ACTIONS:
            raise ApiError.bad_request("wrong parameter action in request")
        self.chat_actions.append((state.id, action))
        return True

    def _copy_or_forward_source(self, p: JSONDict, what: str) -> StoredMessage:
        source_chat = self._find_chat(p["from_chat_id"])
        stored = source_chat.messages.get(int(p["message_id"]))
        if stored is None or stored.deleted:
            raise ApiError.bad_request(f"message to {what} not found")
        if not any(k in stored.message for k in _CONTENT_KEYS):
            verb = "copied" if what == "copy" else "forwarded"
            raise ApiError.bad_request(f"message can't be {verb}")
        return stored

    def _copy_message(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        state = self._sendable_chat(p["chat_id"])
        source = self._copy_or_forward_source(p, "copy")
        content = {k: copy.deepcopy(v) for k, v in source.message.items() if k in _CONTENT_KEYS}
        if "caption" in p:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption_content(p))
        msg = self._bot_message(state, content, p, index)
        return {"message_id": msg["message_id"]}

    def _forward_message(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        state = self._sendable_chat(p["chat_id"])
        source = self._copy_or_forward_source(p, "forward")
        if source.message.get("has_protected_content"):
            raise ApiError.bad_request("message can't be forwarded")
        content = {k: copy.deepcopy(v) for k, v in source.message.items() if k in _CONTENT_KEYS}
        content["forward_origin"] = copy.deepcopy(
            source.message.get("forward_origin") or self._origin(source.message)
        )
        params = {k: v for k, v in p.items() if k != "reply_markup"}
        return self._bot_message(state, content, params, index)

    # ================================================================== handlers: editing

    def _edit_message_text(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        stored = self._editable(p)
        if "text" not in stored.message:
            raise ApiError.bad_request("there is no text in the message to edit")
        if "text" not in p:
            raise ApiError.bad_request("message text is empty")
        new = self._text_content(p)
        self._check_markup(p.get("reply_markup"))
        markup = _inline_markup(p.get("reply_markup"))
        if markup:
            new["reply_markup"] = markup
        lpo = p.get("link_preview_options")
        if isinstance(lpo, dict) and lpo:
            new["link_preview_options"] = lpo
        keep = {k: stored.message[k] for k in _CONTENT_KEYS if k in stored.message and k not in new}
        keep.pop("entities", None)
        return self._apply_edit(stored, {**keep, **new}, index)

    def _edit_message_caption(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        stored = self._editable(p)
        if not any(k in stored.message for k in _MEDIA_KEYS):
            raise ApiError.bad_request("there is no caption in the message to edit")
        new = {
            k: v
            for k, v in stored.message.items()
            if k in _CONTENT_KEYS and k not in ("caption", "caption_entities")
        }
        new.update(self._caption_content({**p, "caption": p.get("caption", "")}))
        self._check_markup(p.get("reply_markup"))
        markup = _inline_markup(p.get("reply_markup"))
        if markup:
            new["reply_markup"] = markup
        return self._apply_edit(stored, new, index)

    def _edit_message_reply_markup(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        stored = self._editable(p)
        new = {k: v for k, v in stored.message.items() if k in _CONTENT_KEYS}
        self._check_markup(p.get("reply_markup"))
        markup = _inline_markup(p.get("reply_markup"))
        if markup:
            new["reply_markup"] = markup
        return self._apply_edit(stored, new, index)

    def _edit_message_media(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        stored = self._editable(p)
        if not any(k in stored.message for k in _MEDIA_KEYS):
            raise ApiError.bad_request("there is no media in the message to edit")
        media = p["media"]
        kind = str(media.get("type"))
        if kind not in ("photo", "video", "document", "audio", "animation"):
            raise ApiError.bad_request(f"unsupported media type {kind!r}")
        new = self._caption_content(media)
        new[kind] = self._media_object(kind, media.get("media"), uploads)
        self._check_markup(p.get("reply_markup"))
        markup = _inline_markup(p.get("reply_markup"))
        if markup:
            new["reply_markup"] = markup
        return self._apply_edit(stored, new, index)

    def _delete_message(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        state = self._find_chat(p["chat_id"])
        stored = state.messages.get(int(p["message_id"]))
        if stored is None or stored.deleted:
            raise ApiError.bad_request("message to delete not found")
        if (
            not stored.by_bot
            and state.type != "private"
            and state.bot_status not in ("administrator", "creator")
        ):
            raise ApiError.bad_request("message can't be deleted")
        stored.deleted = True
        stored.touched = index
        self._changed.notify()
        return True

    def _delete_messages(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        state = self._find_chat(p["chat_id"])
        for mid in p["message_ids"]:
            stored = state.messages.get(int(mid))
            if stored is not None and not stored.deleted:
                stored.deleted = True
                stored.touched = index
        self._changed.notify()
        return True

    def _answer_callback_query(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> bool:
        query_id = str(p["callback_query_id"])
        self.callback_attempts[query_id] += 1
        if query_id not in self._pending_callbacks:
            raise ApiError.bad_request(OLD_QUERY)  # unknown, or answered already
        if self._clock() - self._pressed_at[query_id] > self.callback_timeout:
            del self._pending_callbacks[query_id]
            raise ApiError.bad_request(OLD_QUERY)
        if len(str(p.get("text", ""))) > 200:
            raise ApiError.bad_request("MESSAGE_TOO_LONG")
        del self._pending_callbacks[query_id]
        self.callback_answers.append(dict(p))
        return True

    # ================================================================== handlers: files

    def _get_file(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        stored = self.files.get(str(p["file_id"]))
        if stored is None:
            raise ApiError.bad_request("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD:
            raise ApiError.bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # ================================================================== handlers: commands & menu

    def _commands_key(self, p: JSONDict) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        if isinstance(scope, dict) and scope.get("chat_id") is not None:
            scope = {**scope, "chat_id": self._find_chat(scope["chat_id"]).id}
        language = str(p.get("language_code") or "")
        if language and not _LANG_RE.match(language):
            raise ApiError.bad_request("invalid language code specified")
        return json.dumps(scope, sort_keys=True), language

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """The commands stored for ``scope`` (default scope if None) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        return copy.deepcopy(self.commands.get(key, []))

    def _set_my_commands(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        commands = p["commands"]
        if len(commands) > 100:
            raise ApiError.bad_request("too many commands")
        for command in commands:
            if not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise ApiError.bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise ApiError.bad_request("command description is empty or too long")
        key = self._commands_key(p)
        if commands:
            self.commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self.commands.pop(key, None)
        return True

    def _get_my_commands(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> list[JSONDict]:
        return copy.deepcopy(self.commands.get(self._commands_key(p), []))

    def _delete_my_commands(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    def _set_chat_menu_button(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> bool:
        chat_id = p.get("chat_id")
        if chat_id is not None:
            state = self._find_chat(chat_id)
            if state.type != "private":
                raise ApiError.bad_request("chat_id must be a private chat")
            chat_id = state.id
        self.menu_buttons[chat_id] = p.get("menu_button") or {"type": "default"}
        return True

    def _get_chat_menu_button(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        chat_id = p.get("chat_id")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        if button is None or button.get("type") == "default":
            return {"type": "commands"}
        return copy.deepcopy(button)

    # ================================================================== handlers: chats

    def _leave_chat(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        state = self._find_chat(p["chat_id"])
        if state.type == "private":
            raise ApiError.bad_request("chat member status can't be changed in private chats")
        if state.bot_status in ("left", "kicked"):
            raise ApiError.forbidden(f"bot is not a member of the {state.type} chat")
        old = state.bot_status
        state.bot_status = "left"
        self.enqueue(
            {
                "my_chat_member": {
                    "chat": dict(state.chat),
                    "from": dict(self.bot_user),
                    "date": _now(),
                    "old_chat_member": self._member_obj(self.bot_user, old),
                    "new_chat_member": self._member_obj(self.bot_user, "left"),
                }
            }
        )
        return True

    def _get_chat(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> JSONDict:
        state = self._find_chat(p["chat_id"])
        if state.type != "private" and state.bot_status == "kicked":
            raise ApiError.forbidden(f"bot was kicked from the {state.type} chat")
        info = self.spec.synthesize("ChatFullInfo", dict(state.chat))
        assert isinstance(info, dict)
        info["max_reaction_count"] = 11
        info["accepted_gift_types"] = {
            "unlimited_gifts": True,
            "limited_gifts": True,
            "unique_gifts": True,
            "premium_subscription": True,
            "gifts_from_channels": True,
        }
        if state.pinned:
            pinned = state.messages.get(state.pinned[-1])
            if pinned is not None and not pinned.deleted:
                info["pinned_message"] = copy.deepcopy(pinned.message)
        if state.type in ("group", "supergroup"):
            info["permissions"] = {
                "can_send_messages": True,
                "can_send_photos": True,
                "can_send_documents": True,
                "can_invite_users": True,
                "can_pin_messages": state.type == "group",
            }
        return info

    def _member_status(self, state: ChatState, user_id: int) -> str | None:
        if user_id == self.bot_user["id"]:
            return state.bot_status if state.type != "private" else "member"
        if state.type == "private":
            return "member" if user_id == state.id else None
        return state.members.get(user_id)

    def _get_chat_member(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> JSONDict:
        state = self._find_chat(p["chat_id"])
        user_id = int(p["user_id"])
        status = self._member_status(state, user_id)
        user = self.bot_user if user_id == self.bot_user["id"] else self.users.get(user_id)
        if user is None:
            raise ApiError.bad_request("user not found")
        return self._member_obj(user, status or "left")

    def _get_chat_administrators(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> list[JSONDict]:
        state = self._find_chat(p["chat_id"])
        if state.type == "private":
            raise ApiError.bad_request("there are no administrators in the private chat")
        admins = [
            self._member_obj(self.users[uid], status)
            for uid, status in state.members.items()
            if status in ("creator", "administrator") and uid in self.users
        ]
        if state.bot_status in ("creator", "administrator"):
            admins.append(self._member_obj(self.bot_user, state.bot_status))
        return admins

    def _get_chat_member_count(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> int:
        state = self._find_chat(p["chat_id"])
        if state.type == "private":
            return 2
        present = [s for s in state.members.values() if s not in ("left", "kicked")]
        return len(present) + (1 if state.bot_status not in ("left", "kicked") else 0)

    def _pin_chat_message(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> bool:
        state = self._find_chat(p["chat_id"])
        stored = state.messages.get(int(p["message_id"]))
        if stored is None or stored.deleted:
            raise ApiError.bad_request("message to pin not found")
        if state.type == "channel" and state.bot_status not in ("administrator", "creator"):
            raise ApiError.bad_request("not enough rights to manage pinned messages in the chat")
        state.pinned.append(int(p["message_id"]))
        return True

    def _unpin_chat_message(
        self, p: JSONDict, uploads: dict[str, UploadedFile], index: int
    ) -> bool:
        state = self._find_chat(p["chat_id"])
        mid = p.get("message_id")
        if mid is None:
            if state.pinned:
                state.pinned.pop()
        elif int(mid) in state.pinned:
            state.pinned.remove(int(mid))
        return True

    # ================================================================== handlers: the rest

    def _generic(self, p: JSONDict, uploads: dict[str, UploadedFile], index: int) -> Any:
        """Methods not modelled in detail: a well-formed answer of the documented type."""
        method = self.requests[index].method
        mspec = self.spec.methods[method]
        returns = mspec.returns
        if "chat_id" in p and "chat_id" in mspec.fields:
            state = (
                self._sendable_chat(p["chat_id"])
                if self.is_sending_method(method)
                else self._find_chat(p["chat_id"])
            )
        else:
            state = None
        if returns == ("Boolean",):
            return True
        if "Message" in returns and self.is_sending_method(method) and state is not None:
            field_name = re.sub(r"(?<!^)([A-Z])", r"_\1", method[4:]).lower()
            content: JSONDict = {}
            mfield = self.spec.types["Message"].fields.get(field_name)
            if mfield is not None:
                type_name = mfield.types[0]
                obj = self.spec.synthesize(type_name)
                if isinstance(obj, dict):
                    tfields = (
                        self.spec.types[type_name].fields if type_name in self.spec.types else {}
                    )
                    for key, value in p.items():
                        if (
                            key in tfields
                            and tfields[key].types[0] in ("Integer", "String", "Float", "Boolean")
                            and isinstance(value, str | int | float)
                        ):
                            obj[key] = value
                content[field_name] = obj
            content.update(self._caption_content(p))
            return self._bot_message(state, content, p, index)
        if "Message" in returns:
            if p.get("inline_message_id") is not None and "Boolean" in returns:
                return True
            if state is not None and p.get("message_id") is not None:
                stored = state.messages.get(int(p["message_id"]))
                if stored is None or stored.deleted:
                    raise ApiError.bad_request("message to edit not found")
                stored.message["edit_date"] = _now()
                stored.touched = index
                return copy.deepcopy(stored.message)
        if not returns:
            return True
        return self.spec.synthesize(returns[0])


def iter_buttons(message: JSONDict) -> Iterable[JSONDict]:
    """The inline buttons of a message (row by row)."""
    return iter(_buttons(message.get("reply_markup")))
