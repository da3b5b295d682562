"""The council vote's clock: a job that closes ballots whose deadline has passed, reminds those who
have not voted, updates the review cards of the nominations concerned and prompts the outbox.

`install` also gives the moderation and voting services the gettext translator, so that canned
reasons reach authors in their language and the stored minutes (biên bản) are written in the
office's default language."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from telegram.ext import Application, ContextTypes

from bot import outbox
from bot.services.moderation import ItemType, Localize
from bot.services.voting import BallotResult
from bot.texts import translator

log = logging.getLogger("hoadep.voting")
INTERVAL = 60.0


def kick(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Prompt delivery of the outbox when the bot is running (tests deliver by hand)."""
    if application.running:
        outbox.kick(application)


def localizer(timezone: str) -> Localize:
    """Plain text in a language: the message translated, parameters filled in (dates in the
    office's time zone)."""

    def localize(language: str | None, message: str, params: Mapping[str, Any]) -> str:
        t = translator(language or "vi", timezone)
        return html.unescape(t(message, **params))

    return localize


async def tick(application: Application[Any, Any, Any, Any, Any, Any]) -> list[BallotResult]:
    """One round: close due ballots, send due reminders; returns the ballots closed."""
    from handlers.review import refresh_cards

    services = application.bot_data["services"]
    closed: list[BallotResult] = await services.voting.close_due()
    reminded = await services.voting.send_reminders()
    await services.voting.scrub_if_needed()
    for result in closed:
        await refresh_cards(application, ItemType.NOMINATION, result.nomination_id)
    if closed or reminded:
        kick(application)
    return closed


async def _job(context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        await tick(context.application)
    except Exception:  # the next tick tries again; nothing is lost
        log.exception("the voting job failed")


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    services = application.bot_data["services"]
    services.moderation.localize = localizer(services.settings.organisation.timezone)
    if application.job_queue is not None:
        application.job_queue.run_repeating(_job, interval=INTERVAL, first=5.0, name="voting")
