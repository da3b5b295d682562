"""The fake Bot API over real HTTP (aiohttp): ``FakeTelegramServer``.

Routes, as on ``api.telegram.org``:

* ``GET|POST /bot<token>/<method>`` with a query string, a JSON body,
  ``application/x-www-form-urlencoded`` (what PTB's ``HTTPXRequest`` sends without files) or
  ``multipart/form-data`` (PTB with files);
* ``GET /file/bot<token>/<file_path>`` for downloads (``getFile``'s ``file_path``).

Usage::

    async with FakeTelegramServer() as tg:
        bot = telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
        alice = tg.core.user(1001, "Alice")
        tg.core.send_text(alice, "/start")
"""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any

from aiohttp import web

from .core import FakeTelegramCore, FileTuple

log = logging.getLogger(__name__)


class FakeTelegramServer:
    """An aiohttp server in front of a :class:`FakeTelegramCore`.

    Attribute access falls through to the core, so ``tg.send_text(...)``,
    ``tg.sent(...)``, ``tg.inject(...)`` work as well as ``tg.core.send_text(...)``.
    """

    def __init__(
        self,
        core: FakeTelegramCore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
    ) -> None:
        if core is None:
            core = FakeTelegramCore(token) if token is not None else FakeTelegramCore()
        self.core = core
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._api)
        self.app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._file)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTelegramServer:
        if self._runner is not None:
            return self
        # handler_cancellation: a long poll whose client went away ends (as on Telegram);
        # the core shields every other call, so those are still carried out.
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        return self

    async def stop(self) -> None:
        await self.core.shutdown()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTelegramServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def token(self) -> str:
        return self.core.token

    @property
    def url(self) -> str:
        """``http://host:port``"""
        if self._runner is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``telegram.Bot(base_url=...)``: ``http://host:port/bot``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``telegram.Bot(base_file_url=...)``: ``http://host:port/file/bot``."""
        return f"{self.url}/file/bot"

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not found on the server itself
        if name.startswith("__") or name == "core":
            raise AttributeError(name)
        return getattr(self.core, name)

    # ------------------------------------------------------------------ handlers

    async def _api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        files: dict[str, FileTuple] = {}
        if request.method == "POST" and request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    return web.json_response(
                        {
                            "ok": False,
                            "error_code": 400,
                            "description": "Bad Request: can't parse JSON encoded request",
                        },
                        status=400,
                    )
                if isinstance(body, dict):
                    params.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = (
                            value.filename,
                            value.file.read(),
                            value.content_type,
                        )
                    else:
                        params[key] = value
        status, body = await self.core.handle(token, method, params, files)
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            content_type="application/json",
        )

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        data = self.core.file_bytes(request.match_info["token"], path)
        if data is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(body=data, content_type=self.core.file_content_type(path))
