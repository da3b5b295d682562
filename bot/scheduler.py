"""The announcement ticker: a short repeating job that posts what is due.

Each tick, under :meth:`AnnouncementService.exclusive` (one ticker per database at a time: a
PostgreSQL advisory lock, or a lock file beside a SQLite database):

1. the default announcements are created once (idempotent);
2. runs a dead process left ``sending`` are settled as "uncertain" (never resent);
3. due slots are claimed — one ``announcement_runs`` row per group, inserted *before* sending;
   a slot missed while the bot was down is posted late within the grace window, older ones are
   skipped with a log line — and ``next_run_at`` moves on;
4. claimed runs and runs due for a retry are delivered by :class:`bot.broadcast.Broadcaster`,
   and the outcome is reported to :class:`bot.services.delivery.DeliveryService` (the
   administrators' alert when delivery keeps failing, and its recovery).

A second process may run only this ticker (``[announcements] role = "scheduler"``, see
:func:`run_scheduler_only`): Telegram allows one polling consumer per token, and the scheduler
needs none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import Application, ContextTypes

from bot.broadcast import Broadcaster
from bot.services.announcements import PlanReport

log = logging.getLogger("hoadep.scheduler")

JOB_NAME = "announcements"
SEEDED = "announcements_seeded"
_TASK = "announcements_tick"
BATCH = 500


@dataclass(slots=True)
class TickReport:
    ran: bool = False  # False: another tick (here or in another instance) was running
    plan: PlanReport = field(default_factory=PlanReport)
    in_doubt: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


async def tick(application: Application[Any, Any, Any, Any, Any, Any]) -> TickReport:
    """One round of the ticker (tests call it directly with a controlled clock)."""
    services = application.bot_data["services"]
    announcements = services.announcements
    live = application.running

    def stopping() -> bool:
        return live and not application.running

    async with announcements.exclusive() as mine:
        if not mine:
            return TickReport()
        if not application.bot_data.get(SEEDED):
            await announcements.seed_defaults()
            application.bot_data[SEEDED] = True
        started = services.clock.now()
        report = TickReport(ran=True)
        report.in_doubt = await announcements.settle_in_doubt(started)
        report.plan = await announcements.plan(started)
        broadcaster = Broadcaster(application, stopping=stopping)
        seen: set[int] = set()
        while not stopping():
            batch = await announcements.deliverable(tick_started=started, exclude=seen, limit=BATCH)
            if not batch:
                break
            seen.update(run.id for run in batch)
            report.outcomes.update(await broadcaster.deliver(batch))
        # what waits out a backoff after a recovery is due again, for the next tick
        await services.delivery.record(sent=report.outcomes["sent"], failures=broadcaster.failures)
        if report.plan.claimed or report.outcomes:
            log.info(
                "announcements: %d run(s) claimed, %d skipped, %d slot(s) missed; delivery %s",
                report.plan.claimed,
                report.plan.skipped,
                report.plan.missed,
                dict(report.outcomes),
            )
        return report


async def _safe_tick(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    try:
        await tick(application)
    except Exception:  # the next tick tries again; claimed runs wait in the database
        log.exception("the announcement tick failed")


async def _job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a tick in the background unless one is still running (a long broadcast)."""
    application = context.application
    running = application.bot_data.get(_TASK)
    if running is not None and not running.done():
        return
    application.bot_data[_TASK] = application.create_task(
        _safe_tick(application), name="announcements-tick"
    )


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    if application.job_queue is None:
        return
    seconds = application.bot_data["services"].settings.announcements.tick_seconds
    application.job_queue.run_repeating(_job, interval=seconds, first=1.0, name=JOB_NAME)


async def run_scheduler_only(
    application: Application[Any, Any, Any, Any, Any, Any], stop: asyncio.Event | None = None
) -> None:
    """Run the announcement ticker and nothing else: no getUpdates, no webhook, no other job.
    Stops when ``stop`` is set, or on SIGINT/SIGTERM when none is given."""
    if application.job_queue is not None:
        for job in application.job_queue.jobs():
            if job.name != JOB_NAME:
                job.schedule_removal()
    signals: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                signals.append(sig)
    await application.initialize()
    try:
        await application.start()
        log.info("scheduler-only instance running (no updates are fetched)")
        await stop.wait()
        log.info("scheduler-only instance stopping")
        await application.stop()
    finally:
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
