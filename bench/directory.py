"""In-process update throughput of Hoa Đẹp's read commands on a directory of 10,000 members,
beside a bare PTB application that does one SQLAlchemy SELECT per update and replies.

    .venv/bin/python bench/directory.py [--members 10000] [--count 2000] [--repeat 3]
                                        [--backend sqlite|postgres|both]

Both sides process updates through Application.process_update with the same canned Bot API
answers (bench/common.py CannedRequest), so the figures are the bots' own cost. Figures are
medians over the repeats; ratios compare to the baseline measured in the same run."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from common import (
    FIRST_USER,
    TOKEN,
    CannedRequest,
    Figures,
    baseline_application,
    fill_directory,
    fresh_database,
    measure,
    postgres_available,
    press_update,
    text_update,
)

from bot.app import build_application
from bot.config import Settings
from tests.fake_telegram.offline import OFFLINE_BASE_FILE_URL, OFFLINE_BASE_URL


def settings_for(url: str) -> Settings:
    return Settings(
        telegram={
            "token": TOKEN,
            "base_url": OFFLINE_BASE_URL,
            "base_file_url": OFFLINE_BASE_FILE_URL,
        },
        database={"url": url},
        access={"admin_ids": [FIRST_USER], "throttle_burst": 10**9},
    )


async def run_backend(backend: str, members: int, count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        url, drop = await fresh_database(backend, Path(workdir))
        try:
            await fill_directory(url, members)
            users = [FIRST_USER + 1 + (i * 7919) % (members - 1) for i in range(count)]

            def command(text: str, admin: bool = False) -> Any:
                def make(i: int) -> dict[str, Any]:
                    return text_update(i + 1, FIRST_USER if admin else users[i], text)

                return make

            def listing(i: int) -> dict[str, Any]:
                # an admin pages through one unit's members (250 of them, 25 pages)
                return press_update(i + 1, FIRST_USER, f"adm:mlist:{i % 40 + 1}:{i % 25}")

            base_app, base_db = baseline_application(url)
            await base_app.initialize()
            baseline = await measure(
                "baseline: bare PTB + 1 SELECT", command("/help"), base_app, count, repeat
            )
            await base_app.shutdown()
            await base_db.dispose()

            app = build_application(
                settings_for(url), request=CannedRequest(), get_updates_request=CannedRequest()
            )
            await app.initialize()
            results: list[Figures] = [
                await measure("hoadep /start (member)", command("/start"), app, count, repeat),
                await measure("hoadep /help", command("/help"), app, count, repeat),
                await measure(
                    "hoadep /admin (admin menu)", command("/admin", admin=True), app, count, repeat
                ),
                await measure("hoadep unit member list (button)", listing, app, count, repeat),
            ]
            await app.shutdown()
            await app.bot_data["services"].db.dispose()
            print(f"\n[{backend}] {members} members, {count} updates x {repeat} runs (medians)")
            print(baseline.line())
            for figures in results:
                print(figures.line(baseline))
        finally:
            await drop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgres":
            reason = await postgres_available()
            if reason:
                print(f"\n[postgres] skipped: {reason}")
                continue
        await run_backend(backend, args.members, args.count, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
