"""The moment a message goes on the wire, for the senders that must know it.

The Bot API has no idempotency key: when a request gets no answer, the message may or may not
have arrived. The outbox and the broadcaster therefore record "sending" right before a request
is written — from inside the HTTP layer, after the rate limiter's wait, so time spent waiting
for a turn is never in doubt — and take it back when Telegram answers with an error, which
proves nothing was delivered. A sender sets :data:`WIRE` around its call; every other request
of the bot passes through :class:`GuardedRequest` untouched."""

from __future__ import annotations

import contextvars
from typing import Any

import httpx
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData


class Taken(TelegramError):
    """The message was not ours to send any more (another instance, a pause): nothing was
    sent. A TelegramError, so PTB passes it through unchanged."""

    def __init__(self, what: str = "the message was taken elsewhere") -> None:
        super().__init__(what)


class Wire:
    """One message on its way; subclasses record the transitions in their own table."""

    on_wire = False  # the latest request was written and not answered with an error

    async def before(self) -> None:
        """Right before a request is written; raise :class:`Taken` to send nothing."""
        raise NotImplementedError

    async def refused(self) -> None:
        """Telegram answered with an error status: nothing was delivered."""
        raise NotImplementedError


WIRE: contextvars.ContextVar[Wire | None] = contextvars.ContextVar("hoadep_send_wire")


class GuardedRequest(BaseRequest):
    """The bot's HTTP layer, unchanged except around a send made under :data:`WIRE`."""

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

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
        wire = WIRE.get(None)
        if wire is not None:
            await wire.before()
        code, payload = await self.inner.do_request(
            url,
            method,
            request_data=request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if wire is not None and not 200 <= code < 300:
            await wire.refused()
        return code, payload


def maybe_delivered(exc: NetworkError) -> bool:
    """Whether Telegram may have carried out a request that ended with this error (and no
    answer: an error answer proves it did not)."""
    cause = exc.__cause__
    if cause is None:
        return isinstance(exc, TimedOut)  # a timeout of unknown origin may have arrived
    return not isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
