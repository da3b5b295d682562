"""The bot object: PTB's ExtBot, keeping Telegram's rule for a button press: its callback query
is answered once, within seconds.

It remembers which queries it answered, so the error handler can tell whether a toast is still
possible or the person must be written to. An answer that comes too late (the bot was down or
slow when the button was pressed) is refused by Telegram; that refusal is logged and does not
stop the edit or the message that follows, which still tells the person what happened."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from telegram.error import BadRequest
from telegram.ext import ExtBot

log = logging.getLogger("hoadep.bot")

REMEMBERED = 4096  # far more presses than arrive within a query's lifetime


def expired(exc: BadRequest) -> bool:
    """Telegram's answer to a query answered too late, or a second time."""
    text = str(exc).lower()
    return "query is too old" in text or "query id is invalid" in text


class HoaBot(ExtBot[None]):
    __slots__ = ("_answered",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():
            self._answered: OrderedDict[str, None] = OrderedDict()

    def answered(self, callback_query_id: str) -> bool:
        return callback_query_id in self._answered

    async def answer_callback_query(  # type: ignore[override]
        self, callback_query_id: str, *args: Any, **kwargs: Any
    ) -> bool:
        try:
            result: bool = await super().answer_callback_query(callback_query_id, *args, **kwargs)
        except BadRequest as exc:
            if not expired(exc):
                raise
            log.info("a button press could not be answered any more: %s", exc)
            result = False
        self._answered[callback_query_id] = None
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)
        return result
