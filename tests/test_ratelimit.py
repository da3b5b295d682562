"""PacingRateLimiter: even global pacing, per-chat spacing, fairness, RetryAfter handling.

Real (short) timings. Sleeps never end early, so lower bounds on send times are exact; upper
bounds and spacing use medians and generous tolerances to stay stable on a busy machine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import RetryAfter
from telegram.ext import ExtBot
from telegram.request import BaseRequest, RequestData

from bot.ratelimit import PacingRateLimiter

EPS = 0.002

Result = bool | dict[str, Any] | list[dict[str, Any]]


class Recorder:
    """A callback standing in for the HTTP call: records (time, chat) and may raise 429s."""

    def __init__(self, failures: dict[int | str, list[float]] | None = None) -> None:
        self.calls: list[tuple[float, int | str]] = []
        self.failures = failures or {}  # chat -> retry_after seconds of its next failures

    def for_chat(self, chat: int | str) -> Callable[[], Coroutine[Any, Any, Result]]:
        async def callback() -> Result:
            self.calls.append((time.monotonic(), chat))
            pending = self.failures.get(chat)
            if pending:
                raise RetryAfter(timedelta(seconds=pending.pop(0)))
            return {"ok": True, "chat": chat}

        return callback

    def times(self, chat: int | str | None = None) -> list[float]:
        return [t for t, c in self.calls if chat is None or c == chat]


async def send(
    limiter: PacingRateLimiter,
    recorder: Recorder,
    chat: int | str | None,
    endpoint: str = "sendMessage",
    rate_limit_args: Any = None,
) -> Result:
    data: dict[str, Any] = {"text": "x"} if chat is None else {"chat_id": chat, "text": "x"}
    callback = recorder.for_chat(chat if chat is not None else "-")
    return await limiter.process_request(callback, (), {}, endpoint, data, rate_limit_args)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_60_groups_at_30_per_second_are_evenly_spaced() -> None:
    limiter = PacingRateLimiter(overall_rate=30, safety_margin=0)
    recorder = Recorder()
    start = time.monotonic()
    await asyncio.gather(*(send(limiter, recorder, -1000 - i) for i in range(60)))
    elapsed = time.monotonic() - start
    times = sorted(recorder.times())
    assert len(times) == 60 and limiter.sent == 60 and limiter.retries == 0
    # the i-th send never happens before its slot: no burst at the start
    for i, t in enumerate(times):
        assert t - start >= i / 30 - EPS, (i, t - start)
    assert sum(1 for t in times if t - start < 0.5) <= 16
    assert 59 / 30 - EPS <= elapsed < 2.6
    assert statistics.median(gaps(times)) == pytest.approx(1 / 30, rel=0.2)


async def test_a_late_send_does_not_put_too_many_sends_in_one_second() -> None:
    """A stalled event loop makes one send late; later sends must not catch up into a window
    of 1 s that already holds ``overall_rate`` sends (the server would answer 429)."""
    limiter = PacingRateLimiter(overall_rate=10, safety_margin=0)
    calls: list[float] = []

    async def callback(n: int) -> Result:
        calls.append(time.monotonic())
        if n == 2:
            time.sleep(0.15)  # block the loop, like a busy process
        return True

    async def one(n: int) -> None:
        data = {"chat_id": -300 - n, "text": "x"}
        await limiter.process_request(lambda: callback(n), (), {}, "sendMessage", data, None)

    await asyncio.gather(*(one(n) for n in range(22)))
    calls.sort()
    for i in range(len(calls) - 10):
        assert calls[i + 10] - calls[i] >= 1.0 - EPS, i


async def test_one_group_is_spaced_by_its_group_rate_and_keeps_order() -> None:
    limiter = PacingRateLimiter(
        overall_rate=1000, group_rate_per_minute=600, chat_rate_per_second=100, safety_margin=0
    )
    assert limiter.group_interval == pytest.approx(0.1)
    recorder = Recorder()
    order: list[int] = []

    async def numbered(n: int) -> None:
        await send(limiter, recorder, -42)
        order.append(n)

    start = time.monotonic()
    await asyncio.gather(*(numbered(n) for n in range(3)))
    times = recorder.times(-42)
    assert order == [0, 1, 2]
    for k, t in enumerate(times):
        assert t - start >= k * 0.1 - EPS
    assert min(gaps(times)) >= 0.1 - 0.03
    assert times[-1] - start < 0.5


async def test_private_chat_is_limited_to_its_chat_rate() -> None:
    limiter = PacingRateLimiter(overall_rate=1000, chat_rate_per_second=10, safety_margin=0)
    recorder = Recorder()
    start = time.monotonic()
    await asyncio.gather(*(send(limiter, recorder, 777) for _ in range(4)))
    times = recorder.times(777)
    for k, t in enumerate(times):
        assert t - start >= k * 0.1 - EPS
    # a user id (positive) is not a group: the 600/min group spacing does not apply
    assert times[-1] - start < 0.6


async def test_a_slow_group_does_not_hold_back_the_others() -> None:
    limiter = PacingRateLimiter(overall_rate=30, group_rate_per_minute=60, safety_margin=0)
    recorder = Recorder()
    start = time.monotonic()
    slow = [send(limiter, recorder, -1) for _ in range(3)]  # one per second
    others = [send(limiter, recorder, -100 - i) for i in range(29)]
    await asyncio.gather(*slow, *others)
    other_times = [t - start for t, chat in recorder.calls if chat != -1]
    slow_times = [t - start for t in recorder.times(-1)]
    # the 29 other groups share the global slots with the slow group's first message; the
    # slots between its messages are used by the others, not left empty
    assert max(other_times) < 30 / 30 + 0.3
    assert slow_times[1] >= 1 - EPS and slow_times[2] >= 2 - EPS
    assert slow_times[2] < 2.4


async def test_requests_without_chat_are_not_paced() -> None:
    limiter = PacingRateLimiter(overall_rate=1, safety_margin=0)
    recorder = Recorder()
    start = time.monotonic()
    await asyncio.gather(
        *(send(limiter, recorder, None, "getMe") for _ in range(20)),
        *(send(limiter, recorder, None, "answerCallbackQuery") for _ in range(20)),
        *(send(limiter, recorder, 5, "getChatMember") for _ in range(5)),
    )
    assert time.monotonic() - start < 0.2
    assert len(recorder.calls) == 45


async def test_retry_after_is_retried_after_the_delay() -> None:
    limiter = PacingRateLimiter(retry_margin=0.0, safety_margin=0)
    recorder = Recorder(failures={-5: [0.3]})
    start = time.monotonic()
    result = await send(limiter, recorder, -5)
    times = recorder.times(-5)
    assert result == {"ok": True, "chat": -5}
    assert len(times) == 2
    assert times[1] - times[0] >= 0.3 - EPS
    assert time.monotonic() - start < 0.8
    assert (limiter.retries, limiter.rate_limited, limiter.sent, limiter.failed) == (1, 1, 1, 0)


async def test_exhausted_retries_raise() -> None:
    limiter = PacingRateLimiter(max_retries=2, retry_margin=0.0, safety_margin=0)
    recorder = Recorder(failures={-6: [0.05, 0.05, 0.05, 0.05]})
    with pytest.raises(RetryAfter):
        await send(limiter, recorder, -6)
    assert len(recorder.times(-6)) == 3
    assert (limiter.retries, limiter.failed, limiter.sent) == (2, 1, 0)


async def test_max_retries_override_per_call() -> None:
    limiter = PacingRateLimiter(max_retries=5, retry_margin=0.0, safety_margin=0)
    recorder = Recorder(failures={-7: [0.05] * 10, -8: [0.05] * 10, -9: [0.05]})
    with pytest.raises(RetryAfter):
        await send(limiter, recorder, -7, rate_limit_args=0)  # AIORateLimiter-style int
    assert len(recorder.times(-7)) == 1
    with pytest.raises(RetryAfter):
        await send(limiter, recorder, -8, rate_limit_args={"max_retries": 1})
    assert len(recorder.times(-8)) == 2
    assert await send(limiter, recorder, -9, rate_limit_args={"max_retries": 1})
    with pytest.raises(ValueError, match="unknown rate_limit_args"):
        await send(limiter, recorder, -10, rate_limit_args={"max_retry": 1})


async def test_long_retry_after_is_raised_at_once() -> None:
    limiter = PacingRateLimiter(max_retry_after=1.0, safety_margin=0)
    recorder = Recorder(failures={-11: [30.0]})
    start = time.monotonic()
    with pytest.raises(RetryAfter):
        await send(limiter, recorder, -11)
    assert time.monotonic() - start < 0.2


async def test_429_in_several_chats_pauses_every_chat() -> None:
    limiter = PacingRateLimiter(
        overall_rate=1000, retry_margin=0.0, safety_margin=0, global_pause_threshold=3
    )
    recorder = Recorder(failures={-21: [0.3], -22: [0.3], -23: [0.3]})
    await asyncio.gather(*(send(limiter, recorder, chat) for chat in (-21, -22, -23)))
    assert limiter.global_pauses >= 1
    before = time.monotonic()
    await send(limiter, recorder, -24)  # an innocent chat waits for the pause to end
    first_429 = recorder.times(-21)[0]
    assert recorder.times(-24)[0] >= first_429 + 0.3 - 0.05
    assert recorder.times(-24)[0] >= before


async def test_per_chat_state_is_pruned() -> None:
    limiter = PacingRateLimiter(
        overall_rate=100_000, group_rate_per_minute=600_000, chat_rate_per_second=10_000
    )
    recorder = Recorder()
    await asyncio.gather(*(send(limiter, recorder, -i - 1) for i in range(2000)))
    await asyncio.sleep(0.01)
    await asyncio.gather(*(send(limiter, recorder, -100_000 - i) for i in range(300)))
    assert len(limiter._chats) <= 300


class FakeBotApi(BaseRequest):
    """An offline Bot API: getMe, sendMessage; the first send to chat -500 gets a 429."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.rate_limited_once = False

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        if endpoint == "getMe":
            me = {"id": 1, "is_bot": True, "first_name": "Hoa Đẹp", "username": "hoadep_bot"}
            return 200, json.dumps({"ok": True, "result": me}).encode()
        chat_id = int(params["chat_id"])
        if chat_id == -500 and not self.rate_limited_once:
            self.rate_limited_once = True
            body = {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
            return 429, json.dumps(body).encode()
        self.sent.append(chat_id)
        message = {
            "message_id": len(self.sent),
            "date": 0,
            "chat": {"id": chat_id, "type": "supergroup", "title": "g"},
            "text": params.get("text", ""),
        }
        return 200, json.dumps({"ok": True, "result": message}).encode()


async def test_through_ext_bot() -> None:
    api = FakeBotApi()
    limiter = PacingRateLimiter(retry_margin=0.0)
    bot: ExtBot[int] = ExtBot(
        "123456:" + "A" * 35, request=api, get_updates_request=api, rate_limiter=limiter
    )
    async with bot:
        start = time.monotonic()
        messages = await asyncio.gather(
            *(bot.send_message(chat_id=-500 - i, text=f"xin chào {i}") for i in range(5))
        )
        elapsed = time.monotonic() - start
    assert sorted(m.chat.id for m in messages) == [-504, -503, -502, -501, -500]
    assert limiter.sent == 5 and limiter.retries == 1
    assert 1.0 - EPS <= elapsed < 2.0
