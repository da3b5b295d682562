"""Broadcast benchmark: one message to each of N groups, PTB's AIORateLimiter vs PacingRateLimiter.

The local fake Bot API (``tests.fake_telegram``) enforces Telegram's limits with strict sliding
windows (30 messages/s overall, 20/min per group, 1/s per chat) and answers 429 with
``retry_after`` beyond. Both limiters run in the same run against a fresh server each (in a
child process by default, so the client's work does not stall the server's clock), with the
same retry budget, interleaved when repeated. Printed per limiter: seconds, the floor
N/30 s, their ratio, 429 answers, groups that got nothing (the send failed after its retries) and
groups that got the message twice. A benchmark is not a test: nothing here asserts a time.

Run from the repository root::

    .venv/bin/python -m bench.broadcast            # 1000 groups
    .venv/bin/python -m bench.broadcast 3000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, BaseRateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.ratelimit import PacingRateLimiter
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.server import FakeTelegramServer

GLOBAL_PER_SEC = 30
GROUP_PER_MIN = 20
CHAT_PER_SEC = 1
FIRST_GROUP_ID = -1_001_000_000_000  # supergroup-style ids


@dataclass
class RunResult:
    limiter: str
    groups: int
    seconds: float
    too_many_requests: int
    missed: int
    doubled: int
    errors: Counter[str] = field(default_factory=Counter)
    retries: int | None = None
    global_pauses: int | None = None

    @property
    def floor(self) -> float:
        return self.groups / GLOBAL_PER_SEC

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def make_stock(max_retries: int) -> Callable[[], BaseRateLimiter[Any]]:
    def build() -> BaseRateLimiter[Any]:
        return AIORateLimiter(max_retries=max_retries)

    return build


def make_pacing(max_retries: int, safety_margin: float) -> Callable[[], BaseRateLimiter[Any]]:
    def build() -> BaseRateLimiter[Any]:
        return PacingRateLimiter(max_retries=max_retries, safety_margin=safety_margin)

    return build


@dataclass
class ServerStats:
    too_many_requests: int
    delivered: dict[int, int]


@dataclass
class ServerHandle:
    token: str
    base_url: str
    base_file_url: str
    stats: Callable[[], Awaitable[ServerStats]]


def _populate(core: FakeTelegramCore, chat_ids: list[int]) -> None:
    for i, chat_id in enumerate(chat_ids):
        core.group(chat_id, f"Nhóm {i + 1}", "supergroup")
    core.enforce_limits(GLOBAL_PER_SEC, GROUP_PER_MIN, CHAT_PER_SEC)
    # the world (spec, chats) is long-lived: keep it out of the collector's full passes so a
    # gen-2 collection does not stall the server and compress its arrival times
    gc.collect()
    gc.freeze()


def _server_process(conn: Connection, chat_ids: list[int]) -> None:
    async def serve() -> None:
        core = FakeTelegramCore()
        _populate(core, chat_ids)
        async with FakeTelegramServer(core) as tg:
            conn.send((tg.token, tg.base_url, tg.base_file_url))
            await asyncio.to_thread(conn.recv)
            conn.send(ServerStats(core.too_many_requests, dict(core.delivered)))

    asyncio.run(serve())


@contextlib.asynccontextmanager
async def fake_server(chat_ids: list[int], *, in_process: bool) -> AsyncIterator[ServerHandle]:
    """The fake Bot API with limits enforced, in this process or (default) in a child process,
    so that the client's own work does not delay the server's clock and vice versa."""
    if in_process:
        core = FakeTelegramCore()
        _populate(core, chat_ids)
        async with FakeTelegramServer(core) as tg:

            async def local_stats() -> ServerStats:
                return ServerStats(core.too_many_requests, dict(core.delivered))

            yield ServerHandle(tg.token, tg.base_url, tg.base_file_url, local_stats)
        return
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_server_process, args=(child, chat_ids), daemon=True)
    process.start()
    try:
        token, base_url, base_file_url = await asyncio.to_thread(parent.recv)

        async def remote_stats() -> ServerStats:
            parent.send("stats")
            stats: ServerStats = await asyncio.to_thread(parent.recv)
            return stats

        yield ServerHandle(token, base_url, base_file_url, remote_stats)
    finally:
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.terminate()


async def run_once(
    name: str, groups: int, build: Callable[[], BaseRateLimiter[Any]], *, in_process: bool
) -> RunResult:
    chat_ids = [FIRST_GROUP_ID - i for i in range(groups)]
    async with fake_server(chat_ids, in_process=in_process) as server:
        limiter = build()
        request = HTTPXRequest(
            connection_pool_size=128, pool_timeout=120.0, read_timeout=30.0, connect_timeout=10.0
        )
        bot: ExtBot[Any] = ExtBot(
            server.token,
            base_url=server.base_url,
            base_file_url=server.base_file_url,
            request=request,
            get_updates_request=HTTPXRequest(),
            rate_limiter=limiter,
        )
        errors: Counter[str] = Counter()

        async def send(chat_id: int) -> None:
            try:
                await bot.send_message(chat_id, "🌸 Tuyên dương người tốt, việc tốt tuần này")
            except TelegramError as exc:
                errors[type(exc).__name__] += 1

        async with bot:
            gc.collect()
            start = time.perf_counter()
            await asyncio.gather(*(send(chat_id) for chat_id in chat_ids))
            seconds = time.perf_counter() - start
        stats = await server.stats()
    delivered = stats.delivered
    return RunResult(
        limiter=name,
        groups=groups,
        seconds=seconds,
        too_many_requests=stats.too_many_requests,
        missed=sum(1 for c in chat_ids if delivered.get(c, 0) == 0),
        doubled=sum(1 for c in chat_ids if delivered.get(c, 0) >= 2),
        errors=errors,
        retries=limiter.retries if isinstance(limiter, PacingRateLimiter) else None,
        global_pauses=limiter.global_pauses if isinstance(limiter, PacingRateLimiter) else None,
    )


def describe(result: RunResult) -> str:
    notes = [f"{k}×{v}" for k, v in sorted(result.errors.items())]
    if result.global_pauses is not None:
        notes.append(f"retries={result.retries} global pauses={result.global_pauses}")
    errors = ", ".join(notes) or "-"
    return (
        f"{result.limiter:<26} {result.groups:>6} {result.seconds:>9.2f} {result.floor:>8.2f} "
        f"{result.ratio:>6.3f} {result.too_many_requests:>6} {result.missed:>7} "
        f"{result.doubled:>8}  {errors}"
    )


HEADER = (
    f"{'limiter':<26} {'groups':>6} {'seconds':>9} {'floor':>8} {'ratio':>6} {'429s':>6} "
    f"{'missed':>7} {'doubled':>8}  errors, notes"
)


async def main_async(args: argparse.Namespace) -> None:
    contenders: list[tuple[str, Callable[[], BaseRateLimiter[Any]]]] = [
        (f"AIORateLimiter(r={args.max_retries})", make_stock(args.max_retries))
    ]
    for margin in args.safety_margin:
        contenders.append(
            (f"PacingRateLimiter(m={margin:g})", make_pacing(args.max_retries, margin))
        )
    print(
        f"{args.groups} groups, limits {GLOBAL_PER_SEC}/s, {GROUP_PER_MIN}/min per group, "
        f"{CHAT_PER_SEC}/s per chat; repeat {args.repeat}; "
        f"server {'in this process' if args.in_process else 'in a child process'}",
        flush=True,
    )
    print(HEADER, flush=True)
    results: dict[str, list[RunResult]] = {name: [] for name, _ in contenders}
    for _ in range(args.repeat):
        for name, build in contenders:
            result = await run_once(name, args.groups, build, in_process=args.in_process)
            results[name].append(result)
            print(describe(result), flush=True)
    if args.repeat > 1:
        print(f"\nmedians over {args.repeat} runs")
        print(HEADER)
        for name, runs in results.items():
            median = RunResult(
                limiter=name,
                groups=args.groups,
                seconds=statistics.median(r.seconds for r in runs),
                too_many_requests=round(statistics.median(r.too_many_requests for r in runs)),
                missed=round(statistics.median(r.missed for r in runs)),
                doubled=round(statistics.median(r.doubled for r in runs)),
            )
            print(describe(median))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("groups", nargs="?", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-retries", type=int, default=5, help="for both limiters")
    parser.add_argument(
        "--safety-margin",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[0.02],
        help="PacingRateLimiter's margin; several (0.02,0.05) run several contenders",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the fake server in this process (its clock then shares the client's stalls)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # AIORateLimiter logs every give-up with a traceback; the table counts them instead
    logging.getLogger("telegram.ext.AIORateLimiter").setLevel(logging.CRITICAL)
    logging.getLogger("bot.ratelimit").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
