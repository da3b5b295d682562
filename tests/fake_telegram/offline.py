"""The fake Bot API without sockets: a PTB request class calling the core directly.

For handler tests::

    core = FakeTelegramCore()
    app = (
        Application.builder()
        .token(core.token)
        .request(OfflineRequest(core))
        .get_updates_request(OfflineRequest(core))
        .build()
    )

or ``bot, core = make_offline_bot()`` / ``offline_application_builder(core)``.
Parameters go through exactly what PTB would put on the wire (``RequestData.json_parameters``
plus the multipart files), so the core sees the same strings as over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from .core import DEFAULT_TOKEN, FakeTelegramCore, FileTuple

if TYPE_CHECKING:
    from telegram.ext import ApplicationBuilder

OFFLINE_BASE_URL = "http://fake-telegram.invalid/bot"
OFFLINE_BASE_FILE_URL = "http://fake-telegram.invalid/file/bot"


class OfflineRequest(BaseRequest):
    """``telegram.request.BaseRequest`` answering from a :class:`FakeTelegramCore`.

    ``read_timeout`` (default 5 s, like PTB) bounds how long a call may take; a
    ``faults.Delay`` longer than that raises ``telegram.error.TimedOut`` like HTTPXRequest.
    With ``unreachable`` set, every call fails as a refused connection does over HTTP
    (``NetworkError`` caused by ``httpx.ConnectError``): nothing reaches the core.
    """

    def __init__(self, core: FakeTelegramCore, *, read_timeout: float | None = 5.0) -> None:
        self.core = core
        self._read_timeout = read_timeout
        self.unreachable = False

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self.unreachable:
            refused = httpx.ConnectError("All connection attempts failed")
            raise NetworkError(f"httpx.ConnectError: {refused}") from refused
        timeout = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        path = unquote(urlsplit(url).path)
        if "/file/bot" in path:
            token, _, file_path = path.split("/file/bot", 1)[1].partition("/")
            data = self.core.file_bytes(token, file_path)
            if data is None:
                return 404, b'{"ok":false,"error_code":404,"description":"Not Found"}'
            return 200, data
        tail = path.rsplit("/bot", 1)[-1]
        token, _, api_method = tail.partition("/")
        params: dict[str, Any] = {}
        files: dict[str, FileTuple] = {}
        if request_data is not None:
            params.update(request_data.json_parameters)
            for name, part in request_data.multipart_data.items():
                filename, content, mimetype = part[0], part[1], part[2]
                if not isinstance(content, bytes):
                    content = content.read()
                files[name] = (str(filename), bytes(content), str(mimetype))
        try:
            async with asyncio.timeout(timeout if isinstance(timeout, int | float) else None):
                status, body = await self.core.handle(token, api_method, params, files)
        except TimeoutError as exc:
            raise TimedOut(f"offline request {api_method} timed out after {timeout}s") from exc
        return status, json.dumps(body, ensure_ascii=False).encode("utf-8")


def make_offline_bot(
    token: str = DEFAULT_TOKEN, core: FakeTelegramCore | None = None
) -> tuple[Bot, FakeTelegramCore]:
    """A ``telegram.Bot`` wired to a (new) core; ``await bot.initialize()`` before use."""
    core = core if core is not None else FakeTelegramCore(token)
    bot = Bot(
        core.token,
        base_url=OFFLINE_BASE_URL,
        base_file_url=OFFLINE_BASE_FILE_URL,
        request=OfflineRequest(core),
        get_updates_request=OfflineRequest(core),
    )
    return bot, core


def offline_application_builder(
    core: FakeTelegramCore,
) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """``Application.builder()`` preset with the core's token and two OfflineRequests."""
    from telegram.ext import Application

    return (
        Application.builder()
        .token(core.token)
        .base_url(OFFLINE_BASE_URL)
        .base_file_url(OFFLINE_BASE_FILE_URL)
        .request(OfflineRequest(core))
        .get_updates_request(OfflineRequest(core))
    )
