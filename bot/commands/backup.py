"""``python -m bot backup PATH``: a consistent copy of the live database, checked.

Uses SQLite's online backup API, so it is safe while the bot runs and writes (WAL mode): the
copy is one snapshot. The copy is written next to PATH under a temporary name, checked with
``PRAGMA integrity_check``, switched to a single-file journal mode, then renamed into place.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from pathlib import Path

from bot.config import Config
from bot.storage import BUSY_TIMEOUT_MS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="copy the database (BOT_DB) to PATH while the bot runs, and check the copy",
        description="Make a consistent online copy of the database named by BOT_DB with "
        "SQLite's backup API (safe while the bot runs), then check it with PRAGMA "
        "integrity_check. Restore: stop the bot, copy the backup over BOT_DB, start it.",
    )
    parser.add_argument("path", metavar="PATH", help="the backup file to write")
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    parser.set_defaults(func=run)


def backup(source: Path, dest: Path) -> tuple[int, str]:
    """Copy ``source`` to ``dest`` (replaced atomically); return (bytes, integrity result)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    src = sqlite3.connect(
        source.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
            dst.execute("PRAGMA journal_mode = DELETE")  # the backup is one self-contained file
        finally:
            dst.close()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        src.close()
    if result != "ok":
        tmp.unlink()
        return 0, str(result)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, dest)
    return dest.stat().st_size, result


def run(args: argparse.Namespace) -> int:
    config = Config.from_env(create_dirs=False)
    dest = Path(args.path)
    source = config.db_path
    if not source.is_file():
        print(f"no database at {source} (set BOT_DB)", file=sys.stderr)
        return 2
    if dest.is_dir():
        print(f"{dest} is a folder; give a file name", file=sys.stderr)
        return 2
    if not dest.parent.is_dir():
        print(f"cannot write {dest}: the folder {dest.parent} does not exist", file=sys.stderr)
        return 2
    if not os.access(dest.parent, os.W_OK):
        print(f"cannot write {dest}: no permission to write in {dest.parent}", file=sys.stderr)
        return 2
    if dest.exists() and not args.force:
        print(f"{dest} exists; use --force to overwrite it", file=sys.stderr)
        return 2
    if dest.resolve() == source.resolve():
        print(f"{dest} is the database itself", file=sys.stderr)
        return 2
    try:
        size, result = backup(source, dest)
    except (OSError, sqlite3.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, OSError) else 1
    if result != "ok":
        print(f"backup failed: integrity_check of the copy says {result!r}", file=sys.stderr)
        return 1
    print(f"backup written to {dest} ({size} bytes, integrity ok)")
    return 0
