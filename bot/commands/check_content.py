"""``python -m bot check-content [--content DIR]``: check the guides; exit 1 on any problem."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.config import CONTENT_DIR
from bot.domain.guides import LANGS, check_content, load_guides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check-content`` subcommand."""
    p = subparsers.add_parser("check-content", help="check the guide files for problems")
    p.add_argument("--content", type=Path, default=CONTENT_DIR, help="content directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every problem (exit 1), or "OK: N guides in 3 languages" (exit 0)."""
    content = Path(args.content)
    if not content.is_dir():
        print(f"error: {content} is not a directory")
        return 2
    problems = check_content(content)
    for p in problems:
        print(p)
    if problems:
        return 1
    library = load_guides(content)
    if not len(library):
        print(f"error: no guides found under {content}")
        return 1
    print(f"OK: {len(library.ids())} guides in {len(LANGS)} languages")
    return 0
