"""A local stand-in for Telegram's Bot API, held against the published spec.

* :class:`FakeTelegramServer` — real HTTP (aiohttp) for end-to-end tests and benchmarks;
* :class:`OfflineRequest` / :func:`make_offline_bot` — the same core without sockets;
* :class:`FakeTelegramCore` — the state machine: simulated world, update builders,
  observation, fault injection and rate limits;
* :mod:`.faults` — injectable errors; :mod:`.spec` — the vendored Bot API spec.
"""

from . import faults, spec
from .core import (
    BOT_ID,
    BOT_USERNAME,
    CHANNEL_BOT,
    DEFAULT_TOKEN,
    GROUP_ANONYMOUS_BOT,
    FakeTelegramCore,
    RecordedRequest,
    UploadedFile,
    iter_buttons,
    make_png,
)
from .offline import OfflineRequest, make_offline_bot, offline_application_builder
from .server import FakeTelegramServer

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "CHANNEL_BOT",
    "DEFAULT_TOKEN",
    "GROUP_ANONYMOUS_BOT",
    "FakeTelegramCore",
    "FakeTelegramServer",
    "OfflineRequest",
    "RecordedRequest",
    "UploadedFile",
    "faults",
    "iter_buttons",
    "make_offline_bot",
    "make_png",
    "offline_application_builder",
    "spec",
]
