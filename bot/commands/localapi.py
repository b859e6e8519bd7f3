"""``python -m bot localapi``: serve the local Bot API server alone (for a bot in another process)."""

from __future__ import annotations

import argparse
import asyncio


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localapi",
        help="serve the local Bot API server on 127.0.0.1 (point TELEGRAM_API_BASE_URL at it)",
    )
    parser.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (default 8081)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.localapi.server import serve_forever

    print(
        f"Local Bot API server on http://127.0.0.1:{args.port}; set "
        f"TELEGRAM_API_BASE_URL=http://127.0.0.1:{args.port}/bot and any TELEGRAM_BOT_TOKEN",
        flush=True,
    )
    asyncio.run(serve_forever(args.port))
    return 0
