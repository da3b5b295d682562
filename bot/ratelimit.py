"""A pacing rate limiter for python-telegram-bot: even spacing instead of bursts.

Telegram allows about 30 messages per second overall, 20 per minute in one group or channel and
1 per second in one chat, and answers 429 (``RetryAfter``) beyond. PTB's stock
:class:`telegram.ext.AIORateLimiter` lets a burst of 30 through, then pauses, so permits pile up
and the throughput oscillates; past 512 groups its per-group lookup scans every group on every
call. :class:`PacingRateLimiter` instead gives every request a *slot*:

* **Per chat** (a dict keyed by chat id, O(1)): one message per ``1 / chat_rate_per_second``
  seconds; groups and channels (negative or ``@username`` chat ids) one per
  ``60 / group_rate_per_minute`` seconds (one every 3 s, not 20 then a minute's wait). Requests to
  one chat go out in the order they arrived (a FIFO lock per chat).
* **Globally**: once a request's chat is ready, it reserves the next free global slot;
  slots are ``1 / overall_rate`` seconds apart and strictly increasing, so there is never a
  burst. The chat slot is taken *first* and the global slot at or after it, so a group that must
  wait 3 s never holds a global slot it cannot use: a slow group never blocks the others.
  A last check at the slot keeps at most ``overall_rate`` *actual* sends in any window of
  ``1 s`` (widened by the safety margin), so a late wake-up cannot make a burst either; per-chat
  spacing is likewise counted from the actual send.
* Requests without a ``chat_id`` (getMe, answerCallbackQuery, setMyCommands, …) are not paced.
* ``RetryAfter`` from the server: the chat's next slot moves ``retry_after`` (+ a small margin)
  ahead and the request is retried there, up to ``max_retries`` times, then the error is
  re-raised (the caller records the failure; nothing is dropped silently). When several chats
  get a 429 within a short window, the global limit was hit: all chats pause for
  ``retry_after``.

Per-call override, like AIORateLimiter: ``rate_limit_args=0`` (an int: ``max_retries``) or
``{"max_retries": 0}``. Unlike AIORateLimiter, ``0`` really means "no retry".

Counters for benchmarks and monitoring: :attr:`sent`, :attr:`retries`, :attr:`rate_limited`
(429 answers received), :attr:`failed` (re-raised after the retries), :attr:`global_pauses`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

__all__ = ["UNPACED_ENDPOINTS", "PacingRateLimiter"]

_LOGGER = logging.getLogger(__name__)

JSONDict = dict[str, Any]
Callback = Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]

# Requests that carry a chat_id but send nothing to the chat and do not count as messages.
UNPACED_ENDPOINTS: frozenset[str] = frozenset(
    {
        "getchat",
        "getchatadministrators",
        "getchatmember",
        "getchatmembercount",
        "getchatmenubutton",
        "getuserchatboosts",
        "answercallbackquery",
        "answerinlinequery",
    }
)

# Telegram's paid broadcasts (allow_paid_broadcast=True) may go up to 1000 messages per second.
_PAID_BROADCAST_RATE = 1000.0


@dataclass(slots=True)
class _ChatState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_free: float = 0.0  # monotonic time before which nothing more may go to this chat
    users: int = 0  # requests waiting for or holding the lock


def _retry_after_seconds(exc: RetryAfter) -> float:
    raw = getattr(exc, "_retry_after", None)  # a timedelta since PTB 22.2; avoids the warning
    if isinstance(raw, timedelta):
        return raw.total_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PacingRateLimiter(BaseRateLimiter[int]):
    """Evenly paced rate limiter; see the module docstring.

    Args:
        overall_rate: messages per second for the whole bot (Telegram: 30).
        group_rate_per_minute: messages per minute in one group/channel (Telegram: 20).
        chat_rate_per_second: messages per second in one chat (Telegram: 1).
        safety_margin: fraction by which every rate is lowered (0.02 → 29.4/s, one group
            message every 3.06 s) to absorb network jitter.
        max_retries: retries after a ``RetryAfter`` before it is re-raised.
        max_retry_after: a ``RetryAfter`` longer than this (seconds) is re-raised at once
            instead of holding the chat's queue; ``None``: no limit.
        retry_margin: seconds added to ``retry_after`` before retrying.
        global_pause_threshold: this many *different* chats answered 429 within
            ``global_pause_window`` seconds means the global limit was hit: pause everything.
        clock, sleep: injectable for tests (monotonic seconds, async sleep).
    """

    def __init__(
        self,
        overall_rate: float = 30.0,
        group_rate_per_minute: float = 20.0,
        chat_rate_per_second: float = 1.0,
        *,
        safety_margin: float = 0.02,
        max_retries: int = 5,
        max_retry_after: float | None = 300.0,
        retry_margin: float = 0.1,
        global_pause_threshold: int = 3,
        global_pause_window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if overall_rate <= 0 or group_rate_per_minute <= 0 or chat_rate_per_second <= 0:
            raise ValueError("rates must be positive")
        if not 0 <= safety_margin < 1:
            raise ValueError("safety_margin must be in [0, 1)")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        scale = 1.0 / (1.0 - safety_margin)
        self.global_interval = scale / overall_rate
        self.chat_interval = scale / chat_rate_per_second
        self.group_interval = max(self.chat_interval, scale * 60.0 / group_rate_per_minute)
        self.paid_interval = scale / _PAID_BROADCAST_RATE
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.retry_margin = retry_margin
        self.global_pause_threshold = global_pause_threshold
        self.global_pause_window = global_pause_window
        self._clock = clock
        self._sleep = sleep

        self._chats: OrderedDict[int | str, _ChatState] = OrderedDict()
        self._global_next = 0.0
        self._paid_next = 0.0
        self._paused_until = 0.0
        self._recent_429: deque[tuple[float, int | str]] = deque()
        # Telegram counts messages per second: at most floor(overall_rate) actual sends in any
        # window of 1 s (widened by the safety margin), whatever the scheduling jitter.
        self._window = scale
        self._send_times: deque[float] = deque(maxlen=max(1, int(overall_rate)))

        self.sent = 0
        self.retries = 0
        self.rate_limited = 0
        self.failed = 0
        self.global_pauses = 0

    # ------------------------------------------------------------------ BaseRateLimiter API

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Forget the per-chat state."""
        self._chats.clear()
        self._recent_429.clear()

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | Mapping[str, Any] | None,
    ) -> bool | JSONDict | list[JSONDict]:
        max_retries = self._max_retries_for(rate_limit_args)
        chat_key = self._chat_key(data.get("chat_id"))
        if chat_key is None or endpoint.lower() in UNPACED_ENDPOINTS:
            return await self._unpaced(callback, args, kwargs, max_retries)

        is_group = isinstance(chat_key, str) or chat_key < 0
        paid = bool(data.get("allow_paid_broadcast"))
        state = self._state_for(chat_key)
        state.users += 1
        try:
            async with state.lock:
                for attempt in range(max_retries + 1):
                    await self._wait_for_slot(state, is_group=is_group, paid=paid)
                    try:
                        result = await callback(*args, **kwargs)
                    except RetryAfter as exc:
                        delay = self._on_retry_after(chat_key, state, exc)
                        if attempt == max_retries or (
                            self.max_retry_after is not None and delay > self.max_retry_after
                        ):
                            self.failed += 1
                            _LOGGER.warning(
                                "Rate limit hit for chat %s; giving up after %d retries",
                                chat_key,
                                attempt,
                            )
                            raise
                        self.retries += 1
                        _LOGGER.info("Rate limit hit for chat %s; retry in %.2fs", chat_key, delay)
                        continue
                    self.sent += 1
                    return result
        finally:
            state.users -= 1
            self._prune()
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ internals

    def _max_retries_for(self, rate_limit_args: int | Mapping[str, Any] | None) -> int:
        if rate_limit_args is None:
            return self.max_retries
        if isinstance(rate_limit_args, Mapping):
            unknown = set(rate_limit_args) - {"max_retries"}
            if unknown:
                raise ValueError(f"unknown rate_limit_args: {sorted(unknown)}")
            value = rate_limit_args.get("max_retries", self.max_retries)
        else:
            value = rate_limit_args
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {value!r}")
        return value

    @staticmethod
    def _chat_key(chat_id: object) -> int | str | None:
        if chat_id is None:
            return None
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            return chat_id
        text = str(chat_id).strip()
        with contextlib.suppress(ValueError):
            return int(text)
        return text.lower()  # "@channelname": a channel or supergroup

    def _state_for(self, key: int | str) -> _ChatState:
        state = self._chats.get(key)
        if state is None:
            state = self._chats[key] = _ChatState()
        else:
            self._chats.move_to_end(key)
        return state

    def _prune(self, budget: int = 8) -> None:
        """Drop idle chats whose spacing no longer constrains anything (amortised O(1))."""
        now = self._clock()
        for _ in range(budget):
            if not self._chats:
                return
            key, state = next(iter(self._chats.items()))
            if state.users:
                self._chats.move_to_end(key)  # still in use: look at it again later
            elif state.next_free <= now:
                del self._chats[key]
            else:
                return  # the oldest entry still constrains its chat; so do the newer ones

    async def _wait_for_slot(self, state: _ChatState, *, is_group: bool, paid: bool) -> None:
        spacing = self.group_interval if is_group else self.chat_interval
        while True:
            now = self._clock()
            ready = max(state.next_free, self._paused_until)
            if ready > now:
                await self._sleep(ready - now)
                continue
            # The chat may send now: take the next global slot at or after now.
            if paid:
                slot = max(now, self._paid_next)
                self._paid_next = slot + self.paid_interval
            else:
                slot = max(now, self._global_next)
                self._global_next = slot + self.global_interval
            state.next_free = slot + spacing
            if slot > now:
                await self._sleep(slot - now)
            if await self._clear_to_send(state, spacing, paid=paid):
                return
            # A global pause started while we waited for our slot: queue again after it.

    async def _clear_to_send(self, state: _ChatState, spacing: float, *, paid: bool) -> bool:
        """Last check at the slot: no global pause, and the sliding window of the actual send
        times is not full (a late wake-up must not put N+1 sends in one window)."""
        while True:
            now = self._clock()
            if self._paused_until > now:
                return False
            sent = self._send_times
            wait = 0.0
            if not paid and len(sent) == sent.maxlen:
                wait = sent[0] + self._window - now
            if wait <= 0:
                if not paid:
                    sent.append(now)
                # spacing from the actual send, in case this one was late
                state.next_free = max(state.next_free, now + spacing)
                return True
            await self._sleep(wait)

    def _on_retry_after(self, key: int | str, state: _ChatState, exc: RetryAfter) -> float:
        self.rate_limited += 1
        delay = _retry_after_seconds(exc) + self.retry_margin
        now = self._clock()
        # The rejected attempt did not count against the chat's limit (the lock makes it the
        # chat's latest reservation): the server's retry_after alone decides the next slot.
        state.next_free = now + delay

        recent = self._recent_429
        recent.append((now, key))
        while recent and recent[0][0] < now - self.global_pause_window:
            recent.popleft()
        if len({k for _, k in recent}) >= self.global_pause_threshold and (
            now + delay > self._paused_until
        ):
            self._paused_until = now + delay
            self.global_pauses += 1
            _LOGGER.warning(
                "%d chats rate-limited within %.1fs: pausing all sends for %.2fs",
                len({k for _, k in recent}),
                self.global_pause_window,
                delay,
            )
        return delay

    async def _unpaced(
        self, callback: Callback, args: Any, kwargs: dict[str, Any], max_retries: int
    ) -> bool | JSONDict | list[JSONDict]:
        for attempt in range(max_retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.rate_limited += 1
                delay = _retry_after_seconds(exc) + self.retry_margin
                if attempt == max_retries or (
                    self.max_retry_after is not None and delay > self.max_retry_after
                ):
                    self.failed += 1
                    raise
                self.retries += 1
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
