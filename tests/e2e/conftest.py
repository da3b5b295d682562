from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fake_telegram.server import FakeTelegramServer


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server
        # as in the handler tests: every button press the bot received was answered exactly
        # once, within Telegram's time limit
        assert not server.core.callback_problems()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def e2e_db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("pg_url")
    return url
