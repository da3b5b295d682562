"""Errors a test can make the fake Bot API answer with (see ``FakeTelegramCore.inject``).

The names mirror :mod:`telegram.error` on purpose (``Forbidden`` here makes PTB raise
``telegram.error.Forbidden``); import the module rather than the names to avoid clashes::

    from tests.fake_telegram import faults
    core.inject("sendMessage", faults.RetryAfter(3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]


class ApiError(Exception):
    """A non-2xx answer of the Bot API; raised inside the core, turned into a response."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    @property
    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body

    @classmethod
    def bad_request(cls, description: str, parameters: JSONDict | None = None) -> ApiError:
        if not description.startswith("Bad Request"):
            description = f"Bad Request: {description}"
        return cls(400, description, parameters)

    @classmethod
    def forbidden(cls, description: str) -> ApiError:
        if not description.startswith("Forbidden"):
            description = f"Forbidden: {description}"
        return cls(403, description)

    @classmethod
    def too_many_requests(cls, retry_after: int) -> ApiError:
        return cls(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    @classmethod
    def migrated(cls, new_chat_id: int) -> ApiError:
        return cls(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )


class Fault:
    """Base class of injectable faults."""

    def to_error(self) -> ApiError | None:
        """The error to answer with (None: no error, e.g. a pure delay)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Forbidden(Fault):
    """403; PTB raises ``telegram.error.Forbidden``."""

    description: str = "Forbidden: bot was blocked by the user"

    def to_error(self) -> ApiError:
        return ApiError.forbidden(self.description)


@dataclass(frozen=True)
class BadRequest(Fault):
    """400; PTB raises ``telegram.error.BadRequest``."""

    description: str = "Bad Request: chat not found"

    def to_error(self) -> ApiError:
        return ApiError.bad_request(self.description)


@dataclass(frozen=True)
class RetryAfter(Fault):
    """429 with ``parameters.retry_after``; PTB raises ``telegram.error.RetryAfter``."""

    seconds: int = 1

    def to_error(self) -> ApiError:
        return ApiError.too_many_requests(int(self.seconds))


@dataclass(frozen=True)
class Migrated(Fault):
    """400 with ``parameters.migrate_to_chat_id``; PTB raises ``telegram.error.ChatMigrated``."""

    new_chat_id: int

    def to_error(self) -> ApiError:
        return ApiError.migrated(self.new_chat_id)


@dataclass(frozen=True)
class ServerError(Fault):
    """5xx; PTB raises ``telegram.error.NetworkError``."""

    status: int = 500
    description: str | None = None

    def to_error(self) -> ApiError:
        default = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return ApiError(self.status, self.description or default.get(self.status, "Server Error"))


@dataclass(frozen=True)
class Delay(Fault):
    """Answer normally, but only after ``seconds`` (for client timeouts).

    Like the real server, the request is still carried out when the client gave up waiting:
    a delayed ``sendMessage`` does deliver its message.
    """

    seconds: float

    def to_error(self) -> None:
        return None


@dataclass
class Injection:
    """An armed fault (returned by ``inject``); ``remaining`` None means forever."""

    method: str  # lower-case method name, or "*"
    fault: Fault
    chat_id: int | str | None = None
    remaining: int | None = 1
    fired: int = 0

    def matches(self, method: str, params: JSONDict) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method not in ("*", method.lower()):
            return False
        return self.chat_id is None or _same_chat(self.chat_id, params.get("chat_id"))


def _same_chat(a: int | str, b: Any) -> bool:
    return str(a).lower() == str(b).lower()
