"""Where each callback scope may act: one declared policy, checked by the gatekeeper before any
feature sees a button press.

A button that shows or changes one person's own things (their submissions, drafts, wizard
steps, settings, language, ballot) works only in that person's private chat; pressed anywhere
else it is refused with a toast and nothing runs. A message of the bot in a group is seen by the
whole group, so a handler must never get the chance to edit it into something private.

Every scope registered with `scope_pattern` must have an entry here (tests/test_authz_matrix.py
checks it against the built application); a scope without one is treated as private-only."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Flag, auto
from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, CallbackQueryHandler

from bot.context import BotContext
from bot.keyboards import ScopePattern
from bot.texts import Translator, normalise_language, translator


class Where(Flag):
    PRIVATE = auto()  # the presser's own private chat with the bot
    MODERATORS = auto()  # the configured moderators' chat (`moderation.admin_chat_id`)
    GROUPS = auto()  # any registered group (the moderators' chat is one)
    OWN_GROUP = auto()  # a registered group, when the button's first argument is that group


ANYWHERE = Where.PRIVATE | Where.GROUPS


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    where: Where
    actions: Mapping[str, Where] = field(default_factory=dict)  # exceptions, by action

    def of(self, action: str) -> Where:
        return self.actions.get(action, self.where)


PRIVATE = ScopePolicy(Where.PRIVATE)

POLICIES: dict[str, ScopePolicy] = {
    # a page counter: does nothing
    "nav": ScopePolicy(ANYWHERE),
    # a person's language and notification settings; joining; deciding an access request
    "lang": PRIVATE,
    "set": PRIVATE,
    "join": PRIVATE,
    "acc": PRIVATE,
    # the wizards: every step is the author's draft; "go" only answers with a link that opens
    # the private chat, so it may sit under an announcement in a group
    "nom": ScopePolicy(Where.PRIVATE, {"go": ANYWHERE}),
    "gd": ScopePolicy(Where.PRIVATE, {"go": ANYWHERE}),
    # /my: one's own submissions, their evidence, withdrawing, correcting
    "my": PRIVATE,
    # moderation: a card shows a pending submission, so it lives in the moderator's private
    # chat; the moderators' chat gets a notice without content whose "open" button sends the
    # card to the presser privately (the service decides whether they may see it)
    "rv": ScopePolicy(Where.PRIVATE, {"o": Where.PRIVATE | Where.MODERATORS}),
    # a council member's own ballot and the minutes
    "vt": PRIVATE,
    # the exemplar registry's browser keeps a search per person; groups get link buttons
    "ex": PRIVATE,
    # the published good deeds feed, offered in groups by /gooddeeds; applause is public
    "fd": ScopePolicy(ANYWHERE),
    # administration, the catalogue, the audit log, reports, announcements
    "adm": PRIVATE,
    "cat": PRIVATE,
    "au": PRIVATE,
    "rp": PRIVATE,
    "ann": PRIVATE,
    # a group's own setup card is shown in the group itself; the list of all groups is not
    "grp": ScopePolicy(
        Where.PRIVATE,
        {a: Where.PRIVATE | Where.OWN_GROUP for a in ("card", "units", "unit", "office", "lang")},
    ),
}

REFUSAL = "Please use this in a private chat with me."


def policy(scope: str) -> ScopePolicy:
    return POLICIES.get(scope, PRIVATE)


def registered_scopes(application: Application[Any, Any, Any, Any, Any, Any]) -> set[str]:
    """The callback scopes the application's handlers answer to."""
    return {
        handler.pattern.scope
        for group in application.handlers.values()
        for handler in group
        if isinstance(handler, CallbackQueryHandler) and isinstance(handler.pattern, ScopePattern)
    }


def check_declared(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """A scope added without saying where it may act stops the bot from being built."""
    missing = registered_scopes(application) - POLICIES.keys()
    if missing:
        raise RuntimeError(f"callback scopes without a chat policy in handlers/chats.py: {missing}")


async def allowed(update: Update, context: BotContext, where: Where) -> bool:
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return False  # a message outside a chat (inline mode): nothing of ours lives there
    if chat.type == ChatType.PRIVATE:
        return Where.PRIVATE in where and chat.id == user.id
    if chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        return False
    if Where.GROUPS in where:
        return True
    if Where.MODERATORS in where and chat.id == context.services.settings.moderation.admin_chat_id:
        return True
    if Where.OWN_GROUP in where:
        query = update.callback_query
        parts = (query.data or "").split(":") if query is not None else []
        group = await context.services.groups.find(chat.id)
        return group is not None and parts[2:3] == [str(group.id)]
    return False


async def enforce(update: Update, context: BotContext) -> None:
    """Stops a button press made where its scope may not act, with a toast to the presser."""
    query = update.callback_query
    if query is None:
        return
    scope, _, rest = (query.data or "").partition(":")
    if await allowed(update, context, policy(scope).of(rest.partition(":")[0])):
        return
    with contextlib.suppress(TelegramError):  # refused either way
        await query.answer(_presser_translator(context).raw(REFUSAL), show_alert=True)
    raise ApplicationHandlerStop


def _presser_translator(context: BotContext) -> Translator:
    """The toast is seen by the presser alone: their language, not the group's."""
    viewer = context.viewer
    language = (viewer.language if viewer is not None else None) or (
        normalise_language(context.user_language_code)
        if context.user_language_code
        else context.services.settings.organisation.default_language
    )
    return translator(language, context.services.settings.organisation.timezone)
