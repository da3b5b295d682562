"""Typed domain errors. Each carries a message id (English source text, translated by bot.texts)
and its parameters; one mapper in the bot turns them into a localized reply."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a message for translation without translating it here."""
    return message


class DomainError(Exception):
    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class NotAllowed(DomainError):
    """The person may not do this."""


class NotFound(DomainError):
    """The thing does not exist, or the person may not know that it does."""


class InvalidInput(DomainError):
    """The input is malformed, too long, out of range."""


class AlreadyDecided(DomainError):
    """Someone else acted first (a decision, a used invite, a concurrent change)."""


class Conflict(DomainError):
    """The action clashes with existing data (a duplicate, a non-empty unit)."""
