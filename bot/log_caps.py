"""Caps on third-party loggers, whatever level the bot is run at.

At DEBUG, python-telegram-bot logs every Bot API call with its parameters (the "you chose: …"
edit of a ballot, beside the voter's chat id) and the webhook's raw updates (a pressed ballot
button, beside the presser); aiosqlite logs each statement with its parameters; SQLAlchemy logs
result rows; httpcore and APScheduler log requests and jobs. Any of them would pair a voter with
a choice in the log, so they are held at the level below where they only report their own
trouble. `database.echo` still shows SQLAlchemy's statements, with parameters hidden
(storage/db.py)."""

from __future__ import annotations

import logging

CAPS = {
    "telegram": logging.INFO,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "apscheduler": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "asyncio": logging.WARNING,
}


def cap_third_party_loggers() -> None:
    """Never let these loggers go below their cap (a higher level set elsewhere stays)."""
    for name, cap in CAPS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(cap, logger.level))
