"""build_application(settings): the whole bot wired, with no I/O until it starts."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    LinkPreviewOptions,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, Defaults
from telegram.request import BaseRequest, HTTPXRequest

from bot import outbox, scheduler, voting_jobs
from bot.broadcast import GuardedRequest
from bot.commands import for_role
from bot.config import Settings
from bot.context import BotContext
from bot.ratelimit import PacingRateLimiter
from bot.services.clock import Clock
from bot.services.registry import Services, build_services
from bot.telegram_bot import HoaBot
from bot.texts import LANGUAGES, translator
from storage import migrate
from storage.db import Database
from storage.models import Role

log = logging.getLogger(__name__)

HoaApplication = Application[Any, BotContext, Any, Any, Any, Any]


class DatabaseOutOfDate(RuntimeError):
    pass


def build_application(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    rate_limiter: Any | None = None,
    check_schema: bool = True,
) -> HoaApplication:
    from handlers import install

    db = db or Database(settings.database.url, echo=settings.database.echo)
    services = build_services(settings, db, clock)
    if rate_limiter is None and request is None:
        # talking to Telegram over HTTP: stay under its limits, evenly paced. A given request
        # (the offline Bot API of the handler tests) gets a limiter only when one is passed.
        rate_limiter = PacingRateLimiter(
            overall_rate=settings.announcements.global_rate,
            group_rate_per_minute=settings.announcements.group_rate_per_minute,
            # a person's own replies go out at once (a step may edit a card and send a file);
            # Telegram's 1/s per chat is a sustained rate, and a 429 is still honoured
            chat_rate_per_second=settings.announcements.global_rate,
        )
    bot = HoaBot(
        token=settings.telegram.token.get_secret_value(),
        base_url=settings.telegram.base_url,
        base_file_url=settings.telegram.base_file_url,
        defaults=Defaults(
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            tzinfo=settings.organisation.tz,
        ),
        # the broadcaster marks an announcement "sending" from inside the HTTP layer
        # (bot/broadcast.py)
        request=GuardedRequest(request or HTTPXRequest(connection_pool_size=256)),
        # PTB's own default for the long poll
        get_updates_request=get_updates_request or HTTPXRequest(connection_pool_size=1),
        rate_limiter=rate_limiter,
    )
    builder = (
        Application.builder()
        .bot(bot)
        .context_types(ContextTypes(context=BotContext))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    application: HoaApplication = builder.build()
    application.bot_data["services"] = services
    application.bot_data["check_schema"] = check_schema
    install(application)
    outbox.install(application)
    voting_jobs.install(application)
    scheduler.install(application)
    return application


def services_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    services: Services = application.bot_data["services"]
    return services


async def _post_init(application: HoaApplication) -> None:
    services = services_of(application)
    if application.bot_data.get("check_schema", True) and not await migrate.is_up_to_date(
        services.db
    ):
        raise DatabaseOutOfDate(
            "The database schema is out of date: run `hoadep migrate` (or start with "
            "`hoadep run`, which migrates first)."
        )
    await set_default_menus(application)
    for user_id in services.settings.access.admin_ids:
        await set_menu_for(application, user_id, Role.ADMIN, None)


async def _post_shutdown(application: HoaApplication) -> None:
    await services_of(application).db.dispose()


def _commands(role: Role | None, language: str, *, group: bool = False) -> list[BotCommand]:
    t = translator(language)
    return [BotCommand(c.name, t.raw(c.description)[:256]) for c in for_role(role, group=group)]


async def set_default_menus(application: HoaApplication) -> None:
    """Strangers see the joining commands; groups see the group commands; per language."""
    try:
        for language in LANGUAGES:
            code = None if language == "vi" else language
            await application.bot.set_my_commands(
                _commands(None, language),
                scope=BotCommandScopeAllPrivateChats(),
                language_code=code,
            )
            await application.bot.set_my_commands(
                _commands(Role.STAFF, language, group=True),
                scope=BotCommandScopeAllGroupChats(),
                language_code=code,
            )
    except TelegramError as exc:
        log.warning("could not set the command menus: %s", exc)


async def set_menu_for(
    application: Application[Any, Any, Any, Any, Any, Any],
    user_id: int,
    role: Role | None,
    language: str | None,
) -> None:
    """A member's own menu, in their language, for their role (cosmetic: the server decides)."""
    language = language or services_of(application).settings.organisation.default_language
    try:
        await application.bot.set_my_commands(
            _commands(role, language), scope=BotCommandScopeChat(user_id)
        )
    except TelegramError as exc:
        log.info("could not set the menu of %s: %s", user_id, exc)
