"""Run the fake Bot API for manual poking.

    python -m tests.fake_telegram --port 8081 --token 123:ABC

then e.g. ``curl http://127.0.0.1:8081/bot123:ABC/getMe``. ``--user ID`` registers a user
(and their private chat) so ``sendMessage`` to that id works.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .core import DEFAULT_TOKEN, FakeTelegramCore
from .server import FakeTelegramServer


async def _serve(args: argparse.Namespace) -> None:
    core = FakeTelegramCore(args.token, strict_chats=not args.lenient_chats)
    for uid in args.user:
        core.user(uid, f"User {uid}")
    async with FakeTelegramServer(core, host=args.host, port=args.port) as server:
        print(f"Fake Bot API {core.spec.version} listening")
        print(f"  base_url      {server.base_url}")
        print(f"  base_file_url {server.base_file_url}")
        print(f"  token         {core.token}")
        print(f"  try: curl {server.base_url}{core.token}/getMe")
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--user", type=int, action="append", default=[], help="register a user")
    parser.add_argument(
        "--lenient-chats", action="store_true", help="unknown positive chat ids are private chats"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
