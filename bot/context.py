"""The typed context every handler receives: services, the viewer and their translator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.services.directory import Viewer
from bot.texts import Translator, normalise_language, translator

if TYPE_CHECKING:
    from bot.services.registry import Services


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self.viewer: Viewer | None = None
        self.chat_language: str | None = None
        self.user_language_code: str | None = None

    @property
    def services(self) -> Services:
        services: Services = self.application.bot_data["services"]
        return services

    @property
    def language(self) -> str:
        if self.chat_language:
            return self.chat_language
        if self.viewer is not None and self.viewer.language:
            return self.viewer.language
        if self.user_language_code:
            return normalise_language(self.user_language_code)
        return self.services.settings.organisation.default_language

    @property
    def t(self) -> Translator:
        return translator(self.language, self.services.settings.organisation.timezone)

    def require_viewer(self) -> Viewer:
        if self.viewer is None:
            raise RuntimeError("the gatekeeper did not run for this update")
        return self.viewer
