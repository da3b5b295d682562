"""Handler tests: the real application, fed updates through `process_update`, talking to the
fake Bot API through an offline request (no sockets), on a real database."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram import Update

from bot.app import build_application
from bot.config import Settings
from bot.outbox import deliver
from bot.services.clock import FixedClock
from bot.services.registry import Services
from storage.db import Database
from tests.conftest import make_settings
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.offline import OFFLINE_BASE_FILE_URL, OFFLINE_BASE_URL, OfflineRequest

JSON = dict[str, Any]
ADMIN_ID = 1001


def _background(task: asyncio.Task[Any]) -> bool:
    name = task.get_name()
    return name.startswith("Application:") or name.startswith("report:summary")


async def settle(older: set[asyncio.Task[Any]] | None = None) -> None:
    """Wait for the updates handled with block=False (and the tasks they started), except the
    tasks in `older` (work of earlier updates, left running on purpose)."""
    me = asyncio.current_task()
    older = older or set()
    for _ in range(50):
        pending = [
            t
            for t in asyncio.all_tasks()
            if t is not me and not t.done() and _background(t) and t not in older
        ]
        if not pending:
            return
        await asyncio.wait(pending, timeout=60)


class BotHarness:
    def __init__(self, app: Any, core: FakeTelegramCore, clock: FixedClock) -> None:
        self.app = app
        self.core = core
        self.clock = clock

    @property
    def services(self) -> Services:
        services: Services = self.app.bot_data["services"]
        return services

    def user(
        self,
        user_id: int,
        first_name: str = "Người",
        last_name: str | None = None,
        language: str | None = "vi",
    ) -> JSON:
        return self.core.user(user_id, first_name, last_name, language_code=language)

    async def feed(self, update: JSON, *, wait: bool = True) -> list[JSON]:
        """Process one update; returns the messages the bot sent or edited meanwhile. A button
        press must have been answered exactly once, in time, as Telegram requires. With
        wait=False, work the update left running in the background is not waited for (and the
        answer is checked when the harness closes)."""
        mark = self.core.mark()
        older = asyncio.all_tasks()
        await self.app.process_update(Update.de_json(copy.deepcopy(update), self.app.bot))
        query = update.get("callback_query")
        if wait:
            await settle(older)
        if query is not None and wait:
            problems = self.core.callback_problems([str(query["id"])])
            assert not problems, f"{problems[0]} (data {query.get('data')!r})"
        replies = self.replies_since(mark)
        # then the notices the update queued (in the chats, not among the replies)
        await deliver(self.app, wait=True)
        return replies

    def replies_since(self, mark: int) -> list[JSON]:
        out = []
        for request in self.core.requests[mark:]:
            if request.method.lower() in (
                "sendmessage",
                "editmessagetext",
                "sendphoto",
                "senddocument",
                "editmessagereplymarkup",
                "editmessagecaption",
                "sendmediagroup",
            ):
                out.append({"method": request.method, **request.params})
        return out

    async def text(self, user_id: int, text: str, chat: Any = None) -> list[JSON]:
        return await self.feed(self.core.send_text(user_id, text, chat))

    async def press(
        self, user_id: int, data: str, message: JSON | None = None, *, wait: bool = True
    ) -> list[JSON]:
        """Press the button with `data` on `message` (default: the newest message that has it)."""
        message = message or self.message_with_button(user_id, data)
        return await self.feed(self.core.press_button(user_id, message, data), wait=wait)

    async def forge_press(self, user_id: int, data: str, chat_id: int | None = None) -> list[JSON]:
        """A callback query with data the bot never offered (forged, replayed, malformed)."""
        chat_id = chat_id or user_id
        sent = self.core.sent(chat_id)
        message = (
            sent[-1]
            if sent
            else {
                "message_id": 1,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "text": "x",
            }
        )
        user = self.core.users[user_id]
        query = {
            "id": str(900000 + self.core.mark()),
            "from": user,
            "message": message,
            "chat_instance": "1",
            "data": data,
        }
        self.core.register_callback(query)  # Telegram knows the query id
        return await self.feed(
            {"update_id": 10_000_000 + self.core.mark(), "callback_query": query}
        )

    def message_with_button(self, chat_id: int, data: str) -> JSON:
        for message in reversed(self.core.sent(chat_id)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                if any(b.get("callback_data") == data for b in row):
                    return message
        buttons = [
            [b.get("callback_data") for b in row]
            for m in self.core.sent(chat_id)[-3:]
            for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
        ]
        raise AssertionError(f"no button {data!r} in chat {chat_id}; recent buttons: {buttons}")

    def buttons(self, chat_id: int) -> list[str]:
        """Callback data of the newest message with buttons in the chat."""
        for message in reversed(self.core.sent(chat_id)):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
            if rows:
                return [b["callback_data"] for row in rows for b in row if "callback_data" in b]
        return []

    def last_text(self, chat_id: int) -> str:
        sent = self.core.sent(chat_id)
        assert sent, f"the bot sent nothing to {chat_id}"
        return str(sent[-1].get("text") or sent[-1].get("caption") or "")

    def texts(self, chat_id: int) -> list[str]:
        return [str(m.get("text") or m.get("caption") or "") for m in self.core.sent(chat_id)]


async def make_harness(
    settings: Settings, clock: FixedClock, core: FakeTelegramCore | None = None
) -> tuple[BotHarness, Any]:
    core = core or FakeTelegramCore(token=settings.telegram.token.get_secret_value())
    settings = settings.model_copy(
        update={
            "telegram": settings.telegram.model_copy(
                update={"base_url": OFFLINE_BASE_URL, "base_file_url": OFFLINE_BASE_FILE_URL}
            )
        }
    )
    db = Database(settings.database.url, echo=settings.database.echo)
    app = build_application(
        settings,
        db=db,
        clock=clock,
        request=OfflineRequest(core),
        get_updates_request=OfflineRequest(core),
    )
    app.bot_data["outbox_kick"] = False  # the harness delivers after each update, in order
    await app.initialize()
    if app.post_init:
        await app.post_init(app)
    return BotHarness(app, core, clock), app


async def close_harness(h: BotHarness) -> None:
    """Shut the application down, then check what Telegram would have objected to."""
    await h.app.shutdown()
    if h.app.post_shutdown:
        await h.app.post_shutdown(h.app)
    assert not h.core.unknown_fields, f"fields Telegram does not know: {h.core.unknown_fields}"
    assert not h.core.callback_problems()


@pytest.fixture
async def harness(db_url: str, clock: FixedClock) -> AsyncIterator[BotHarness]:
    h, _ = await make_harness(make_settings(db_url), clock)
    h.user(ADMIN_ID, "Trần", "Quản Trị")
    try:
        yield h
    finally:
        await close_harness(h)
