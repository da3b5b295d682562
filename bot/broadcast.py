"""Delivery of announcement runs to the group chats, and what they say.

:class:`Broadcaster` sends the runs :meth:`AnnouncementService.deliverable` returns, many at a
time behind the application's rate limiter (a :class:`bot.ratelimit.PacingRateLimiter` by
default: Telegram's 30 messages/s and 20 per minute per group, without bursts), and records
every group's outcome:

* sent → ``sent`` with the message id; a long announcement is split under 4096 characters
  without breaking its HTML (:func:`bot.texts.split_html`), and the parts already delivered are
  remembered, so a retry continues with the next part;
* ``RetryAfter`` (after the limiter's own retries) → ``retry`` with ``next_attempt_at``: the
  ticker tries again later, nothing is dropped;
* ``Forbidden`` / "chat not found" → the group becomes inactive and the run ``failed``; the
  other groups still receive;
* ``ChatMigrated`` → the group's new chat id is stored and the message is sent there;
* 5xx and connection errors (nothing reached Telegram) → ``retry`` with exponential backoff
  capped at ``delivery.max_backoff_seconds``, for ``delivery.retry_hours`` after the slot
  (then ``failed``); the ticker reports them to :class:`bot.services.delivery.DeliveryService`;
* a post that no longer means anything when its turn comes (a call to nominate after the
  nomination deadline, a key date's greeting after the day) → ``skipped`` as expired.

Doubles versus misses
=====================
A request that times out while waiting for Telegram's answer (or a bot killed while a request is
on the wire) may well have been delivered: the Bot API has no idempotency key, so there is no way
to ask. We choose **at most once** for that case: the run is recorded ``failed`` with
``last_error`` starting with "uncertain" and is never resent. To keep that window as small as
possible, the run is marked ``sending`` by :class:`GuardedRequest` from *inside* the HTTP layer,
after the rate limiter's wait and immediately before the request is written: a run still waiting
for its turn is ``claimed`` and is sent after a restart, so a crash loses at most the requests
that were on the wire at that instant — and those normally arrived. Errors that prove nothing
reached Telegram (connection refused, connect/pool timeouts, 429, 5xx answers, 400/403 answers)
are retried or recorded as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.services.announcements import (
    SKIP_EXPIRED,
    SKIP_NOTHING,
    UNCERTAIN,
    WEEKLY_DIGEST,
    AnnouncementService,
    Content,
    EventKind,
    MovementEvent,
    PendingRun,
    expires_at,
    split_progress,
    with_progress,
)
from bot.services.groups import InactiveReason
from bot.texts import HTML, Translator, bold, escape, italic, split_html, translator, truncate
from bot.wire import WIRE, GuardedRequest, Taken, Wire, maybe_delivered

__all__ = ["Broadcaster", "GuardedRequest", "maybe_delivered", "render"]

log = logging.getLogger("hoadep.broadcast")

CONCURRENCY = 64  # runs in flight at once (the rate limiter decides when each goes out)
READ_TIMEOUT = 30.0  # a slow answer is waited for: a timeout leaves the outcome in doubt
DESCRIPTION_LIMIT = 400  # characters of a deed's description in a digest
PRACTICE_LIMIT = 1200  # characters of an exemplar's achievements / good practices


class RunTaken(Taken):
    """The run was not ours to send any more (another instance, a pause): nothing was sent."""

    def __init__(self) -> None:
        super().__init__("the announcement run was taken elsewhere")


class Stopping(TelegramError):
    """The bot is stopping: the request was not sent (the run stays claimed)."""

    def __init__(self) -> None:
        super().__init__("the bot is stopping")


class _Wire(Wire):
    """One message of one run on its way: marks the run ``sending`` right before each request
    is written, and releases it when Telegram answers with an error (nothing delivered)."""

    def __init__(
        self,
        announcements: AnnouncementService,
        run_id: int,
        ref: str | None,
        stopping: Callable[[], bool],
    ) -> None:
        self.announcements = announcements
        self.run_id = run_id
        self.ref = ref
        self.stopping = stopping
        self.attempt: int | None = None  # the attempt number of the latest request

    async def before(self) -> None:
        self.on_wire = False
        if self.stopping():
            raise Stopping
        attempt = await self.announcements.begin_send(self.run_id, self.ref)
        if attempt is None:
            raise RunTaken
        self.attempt = attempt
        self.on_wire = True

    async def refused(self) -> None:
        self.on_wire = False
        if self.attempt is not None:
            await self.announcements.release(self.run_id, self.attempt)


def backoff(attempts: int, cap_seconds: float = 900.0) -> timedelta:
    return timedelta(seconds=min(cap_seconds, 10.0 * 2.0 ** min(30, max(0, attempts - 1))))


def _retry_after(exc: RetryAfter) -> timedelta:
    raw = getattr(exc, "_retry_after", None)
    if isinstance(raw, timedelta):
        return raw + timedelta(seconds=1)
    value: Any = exc.retry_after
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return timedelta(seconds=seconds + 1)


@dataclass(slots=True)
class _Prepared:
    run: PendingRun
    parts: list[str] | None = None  # None: nothing to send (skipped or failed already)


class Broadcaster:
    """Sends pending runs and records each outcome (see the module docstring).

    The runs are prepared (rendered) in order first, then their sends start in that order, so
    the rate limiter serves the groups in the order of the runs."""

    def __init__(
        self,
        application: Any,
        *,
        stopping: Callable[[], bool] = lambda: False,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.application = application
        self.services = application.bot_data["services"]
        self.stopping = stopping
        self.concurrency = concurrency
        self.failures = 0  # attempts that met a network or server failure (delivery health)

    async def deliver(self, runs: Sequence[PendingRun]) -> Counter[str]:
        """Deliver the runs; returns how many ended how."""
        outcomes: Counter[str] = Counter()
        cache: dict[tuple[Any, ...], tuple[str | None, datetime | None]] = {}
        prepared: list[_Prepared] = []
        for run in runs:
            if self.stopping():
                break
            try:
                item = await self._prepare(run, cache)
            except Exception:  # the database may be what failed: the run stays as it is
                log.exception("announcement run %s could not be prepared", run.id)
                outcomes["error"] += 1
                continue
            if item.parts is None:
                outcomes["skipped"] += 1
            else:
                prepared.append(item)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(item: _Prepared) -> str:
            async with semaphore:
                if self.stopping():
                    return "stopped"
                try:
                    return await self._deliver(item)
                except Exception:
                    log.exception("announcement run %s could not be delivered", item.run.id)
                    return "error"

        outcomes.update(await asyncio.gather(*(one(item) for item in prepared)))
        return outcomes

    async def _prepare(
        self, run: PendingRun, cache: dict[tuple[Any, ...], tuple[str | None, datetime | None]]
    ) -> _Prepared:
        announcements = self.services.announcements
        # only a digest depends on the group; other runs of one slot say the same thing
        key: tuple[Any, ...] = (
            (run.id,)
            if run.kind == WEEKLY_DIGEST
            else (
                run.announcement_id,
                run.slot_at,
                split_progress(run.content_ref)[0],
                run.language,
            )
        )
        try:
            if key not in cache:
                content = await announcements.content_for(run)
                cache[key] = (
                    (None, None)
                    if content is None
                    else (
                        render(content, self._translator(run.language)),
                        expires_at(content, announcements.tz),
                    )
                )
            text, expiry = cache[key]
        except Exception as exc:
            log.exception("announcement run %s could not be rendered", run.id)
            await announcements.failed(run.id, None, f"could not be prepared: {exc!r}")
            return _Prepared(run)
        if text is None:
            await announcements.skip(run.id, SKIP_NOTHING)
            return _Prepared(run)
        if expiry is not None and expiry <= self.services.clock.now():
            log.warning(
                "announcement run %s expired at %s before it could be posted; not posted",
                run.id,
                expiry.isoformat(),
            )
            await announcements.skip(run.id, SKIP_EXPIRED)
            return _Prepared(run)
        return _Prepared(run, split_html(text))

    async def _deliver(self, item: _Prepared) -> str:
        run, parts = item.run, item.parts or []
        announcements = self.services.announcements
        ref = run.content_ref
        chat_id = run.chat_id
        for index in range(run.parts_done, len(parts)):
            outcome, message_id, chat_id, attempt = await self._send(
                run, ref, chat_id, parts[index]
            )
            if outcome != "sent":
                return outcome
            assert attempt is not None
            if index + 1 < len(parts):
                ref = with_progress(run.content_ref, index + 1)
                await announcements.part_sent(run.id, attempt, ref, message_id)
            else:
                await announcements.sent(run.id, attempt, message_id)
        return "sent"

    def _translator(self, language: str) -> Translator:
        return translator(language, self.services.settings.organisation.timezone)

    async def _send(
        self, run: PendingRun, ref: str | None, chat_id: int, text: str
    ) -> tuple[str, int | None, int, int | None]:
        """One message: (outcome, message id, the chat id it ended up in, attempt)."""
        announcements = self.services.announcements
        groups = self.services.groups
        wire = _Wire(announcements, run.id, ref, self.stopping)
        moves = 0
        while True:
            token = WIRE.set(wire)
            try:
                message = await self.application.bot.send_message(
                    chat_id, text, read_timeout=READ_TIMEOUT
                )
            except (RunTaken, Stopping) as exc:
                log.debug("run %s not sent: %s", run.id, exc)
                outcome = "taken" if isinstance(exc, RunTaken) else "stopped"
                return outcome, None, chat_id, wire.attempt
            except ChatMigrated as exc:  # refused: the run was released, nothing delivered
                moves += 1
                new_chat_id = int(exc.new_chat_id)
                log.info("group %s became %s; sending there", chat_id, new_chat_id)
                await groups.migrated(chat_id, new_chat_id)
                if moves > 2:
                    await announcements.failed(
                        run.id, wire.attempt, f"the group keeps moving: {exc}"
                    )
                    return "failed", None, new_chat_id, wire.attempt
                chat_id = new_chat_id
                continue
            except RetryAfter as exc:
                # the rate limiter's own retries ran out: a later tick tries again
                await announcements.retry(
                    run.id, wire.attempt or 0, f"rate limited: {exc}", _retry_after(exc)
                )
                return "retry", None, chat_id, wire.attempt
            except Forbidden as exc:
                log.info("group %s is unreachable: %s", chat_id, exc)
                await groups.bot_left(chat_id, InactiveReason.FORBIDDEN)
                await announcements.failed(run.id, wire.attempt, f"forbidden: {exc}")
                return "failed", None, chat_id, wire.attempt
            except BadRequest as exc:
                if "chat not found" in str(exc).lower():
                    await groups.bot_left(chat_id, InactiveReason.NOT_FOUND)
                log.warning("run %s refused by Telegram: %s", run.id, exc)
                await announcements.failed(run.id, wire.attempt, f"refused: {exc}")
                return "failed", None, chat_id, wire.attempt
            except NetworkError as exc:
                return await self._network_error(run, wire, exc), None, chat_id, wire.attempt
            except TelegramError as exc:  # e.g. the token was revoked: try again later
                if wire.attempt is None:
                    return "error", None, chat_id, None
                self.failures += 1
                await announcements.retry(run.id, wire.attempt, str(exc), self._backoff(wire))
                return "retry", None, chat_id, wire.attempt
            finally:
                WIRE.reset(token)
            return "sent", message.message_id, chat_id, wire.attempt

    async def _network_error(self, run: PendingRun, wire: _Wire, exc: NetworkError) -> str:
        announcements = self.services.announcements
        if wire.attempt is None:
            return "error"  # nothing happened to the run: it is picked up again next tick
        self.failures += 1
        if wire.on_wire and maybe_delivered(exc):
            log.warning(
                "run %s: no answer from Telegram (%s); the message may have arrived and is "
                "not sent again",
                run.id,
                exc,
            )
            await announcements.failed(
                run.id,
                wire.attempt,
                f"{UNCERTAIN}: no answer from Telegram ({exc}); not sent again",
            )
            return "uncertain"
        hours = self.services.settings.delivery.retry_hours
        if run.slot_at <= self.services.clock.now() - timedelta(hours=hours):
            log.warning("announcement run %s: gave up after %d hours: %s", run.id, hours, exc)
            error = f"gave up after {hours} hours ({wire.attempt} attempts): {exc}"
            await announcements.failed(run.id, wire.attempt, error)
            return "failed"
        log.debug("announcement run %s: %s; tried again later", run.id, exc)
        await announcements.retry(run.id, wire.attempt, str(exc), self._backoff(wire))
        return "retry"

    def _backoff(self, wire: _Wire) -> timedelta:
        return backoff(wire.attempt or 1, self.services.settings.delivery.max_backoff_seconds)


# --- rendering ---------------------------------------------------------------------------------


def render(content: Content, t: Translator) -> str | None:
    """The HTML of an announcement in one language; user text is escaped; None: nothing."""
    match content.kind:
        case "digest":
            return _digest(content, t)
        case "digest_invitation":
            return _invitation(t)
        case "spotlight":
            return _spotlight(content, t)
        case "movement":
            return "\n\n".join(_event(e, t) for e in content.events) or None
        case "key_date":
            return _key_date(content, t)
        case "custom":
            if not content.body:
                return None
            header = t("📢 <b>Announcement</b>")
            return f"{header}\n\n{escape(content.body)}"
        case _:
            return None


def _digest(content: Content, t: Translator) -> str:
    since = content.since or content.slot_at - timedelta(days=7)
    # the week before the slot's day (a deed approved early on the slot's day is included)
    start_day = since.astimezone(t.tz).date()
    end_day = max(start_day, content.slot_at.astimezone(t.tz).date() - timedelta(days=1))
    lines: list[str] = [t("🌸 <b>Beautiful flowers of the week</b>")]
    if content.scope:
        lines.append(
            t(
                "{unit}: good deeds recognised from {start} to {end}",
                unit=bold(content.scope),
                start=start_day,
                end=end_day,
            )
        )
    else:
        lines.append(
            t(
                "Good deeds recognised across the office from {start} to {end}",
                start=start_day,
                end=end_day,
            )
        )
    lines.append(italic(t.raw("“Every good person, every good deed is a beautiful flower.”")))
    lines.append("")
    for deed in content.deeds:
        head = f"🌼 {bold(deed.subject)}"
        if deed.unit:
            head += f" · {escape(deed.unit)}"
        if deed.occurred_on:
            head += f" ({t.date(deed.occurred_on)})"
        lines.append(head)
        if deed.description:
            lines.append(escape(truncate(deed.description, DESCRIPTION_LIMIT)))
        lines.append("")
    if content.more:
        lines.append(
            t("…and {count} more good deeds: send /gooddeeds to read them all.", count=content.more)
        )
        lines.append("")
    lines.append(
        t(
            "Let us praise and spread these good deeds! Seen a colleague do something good? "
            "Tell me with /gooddeed."
        )
    )
    return "\n".join(lines)


def _invitation(t: Translator) -> str:
    return "\n".join(
        [
            t("🌸 <b>Beautiful flowers of the week</b>"),
            t(
                "No good deed was recognised this week yet. Every good person, every good deed "
                "is a beautiful flower: if you saw a colleague do something good, tell me with "
                "/gooddeed."
            ),
        ]
    )


def _spotlight(content: Content, t: Translator) -> str | None:
    item = content.exemplar
    if item is None:
        return None
    lines: list[str] = [t("🏅 <b>Advanced exemplar in the spotlight</b>"), ""]
    head = f"⭐ {bold(item.name)}"
    if item.unit:
        head += f" · {escape(item.unit)}"
    lines.append(head)
    if item.title:
        lines.append(t("Title: {title}", title=item.title))
    if item.field:
        lines.append(t("Field of work: {field}", field=item.field))
    if item.movement:
        lines.append(t("Movement: {movement}", movement=item.movement))
    if item.achievements:
        lines += [
            "",
            bold(t.raw("Achievements")),
            escape(truncate(item.achievements, PRACTICE_LIMIT)),
        ]
    if item.good_practices:
        lines += [
            "",
            bold(t.raw("Good practice to learn from and replicate")),
            escape(truncate(item.good_practices, PRACTICE_LIMIT)),
        ]
    lines += ["", t("Let us learn from and replicate this example! More with /exemplars.")]
    return "\n".join(lines)


def _event(event: MovementEvent, t: Translator) -> str:
    name = bold(event.name)
    match event.kind:
        case EventKind.LAUNCHED:
            head = (
                t("📣 <b>The movement takes nominations again</b>: {name}", name=name)
                if event.reopened
                else t("📣 <b>Launch of an emulation movement</b>: {name}", name=name)
            )
            return "\n".join(
                [
                    head,
                    t(
                        "From {start} to {end}. Nominations are open until {deadline}.",
                        start=event.starts_on,
                        end=event.ends_on,
                        deadline=event.deadline,
                    ),
                    t("Let us discover and nominate the exemplars of our units with /nominate."),
                ]
            )
        case EventKind.WEEK:
            return "\n".join(
                [
                    t(
                        "⏳ <b>Nominations close soon</b>: the movement {name} takes nominations "
                        "until {deadline}.",
                        name=name,
                        deadline=event.deadline,
                    ),
                    t("Let us discover and nominate the exemplars of our units with /nominate."),
                ]
            )
        case EventKind.DAY:
            return "\n".join(
                [
                    t(
                        "⏰ <b>Nominations are about to close</b>: the movement {name} takes "
                        "nominations only until {deadline}.",
                        name=name,
                        deadline=event.deadline,
                    ),
                    t("Let us discover and nominate the exemplars of our units with /nominate."),
                ]
            )
        case EventKind.INTERIM:
            return t(
                "📊 <b>Interim review</b> of the movement {name}: it is half-way ({start} to "
                "{end}). Units, please review the results so far and the good practices to "
                "replicate.",
                name=name,
                start=event.starts_on,
                end=event.ends_on,
            )
        case EventKind.FINAL:
            return t(
                "🏁 <b>Final review</b> of the movement {name}: it ended on {end}. Units, please "
                "review the results and propose the collectives and individuals to commend.",
                name=name,
                end=event.ends_on,
            )
        case _:
            return t(
                "🔒 <b>Nominations closed</b>: the movement {name} no longer takes nominations. "
                "Thank you to everyone who took part.",
                name=name,
            )


def _key_date(content: Content, t: Translator) -> str | None:
    day = content.slot_at.astimezone(t.tz).date()
    if content.occasion == "emulation_call":
        return "\n".join(
            [
                t(
                    "🇻🇳 <b>{years} years since President Hồ Chí Minh's Call for Patriotic "
                    "Emulation</b> (11/06/1948 – {date})",
                    years=content.years,
                    date=day,
                ),
                "",
                italic(
                    t.raw(
                        "“Emulation is patriotism; patriots must emulate; and those who emulate "
                        "are the truest patriots.”"
                    )
                ),
                t(
                    "Let each of us emulate by doing our work well: every good person, every good "
                    "deed is a beautiful flower. Report one with /gooddeed, nominate an exemplar "
                    "with /nominate."
                ),
            ]
        )
    if content.occasion == "statistics_day":
        return "\n".join(
            [
                t(
                    "📊 <b>Traditional Day of Vietnam's statistics sector</b>: {years} years "
                    "(06/05/1946 – {date})",
                    years=content.years,
                    date=day,
                ),
                "",
                t(
                    "Warm congratulations to all our colleagues! Let us carry on the sector's "
                    "tradition: honest, objective, accurate and timely statistics."
                ),
            ]
        )
    return None


def nothing_text(t: Translator) -> HTML:
    return t("There is nothing to announce right now.")
