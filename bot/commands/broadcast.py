"""``python -m bot broadcast``: an operator's broadcast from the command line, through the outbox.

The message files are sent as text (HTML-escaped unless ``--html``), one version per language,
followers falling back to English, then Malay, then Chinese. The rows are written to the outbox
in one transaction; the bot's outbox sender (in the running bot) delivers them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from markupsafe import escape

from bot.agencies import AgencyError, AgencyService, choose_version
from bot.config import Config
from bot.domain.clock import local_minutes, utc_now
from bot.i18n import LANGS, n
from bot.outbox import Outbox
from bot.storage import Storage

MAX_TEXT = 3500  # leaves room for the footer under Telegram's 4096


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broadcast",
        help="send a text broadcast to an agency's followers or to every user (via the outbox)",
        description="Queue a text broadcast in the outbox of the database named by BOT_DB. "
        "Without --yes, only shows how many recipients it would reach.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--agency", metavar="CODE", help="the agency whose followers receive it")
    target.add_argument("--all", action="store_true", help="every user of the bot")
    parser.add_argument("--text-file", type=Path, required=True,
                        help="the English message (and the fallback for other languages)")
    parser.add_argument("--lang-file", action="append", default=[], metavar="LANG=FILE",
                        help="a version for one language: ms=FILE or zh=FILE (repeatable)")
    parser.add_argument("--audience", choices=("all", *LANGS), default="all",
                        help="only recipients using this language (default: all)")
    parser.add_argument("--at", metavar="ISO",
                        help="send at this time, e.g. 2026-12-01T09:00 (Malaysia time unless it "
                        "has an offset); default: now")
    parser.add_argument("--html", action="store_true",
                        help="the files are Telegram HTML (default: plain text, escaped)")
    parser.add_argument("--yes", action="store_true", help="really queue it")
    parser.set_defaults(func=run)


def _read(path: Path, html: bool) -> str:
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{path} is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{path} is longer than {MAX_TEXT} characters")
    return text if html else str(escape(text))


def run(args: argparse.Namespace) -> int:
    config = Config.from_env()
    try:
        versions = {"en": {"text": _read(args.text_file, args.html)}}
        for item in args.lang_file:
            lang, sep, name = item.partition("=")
            if not sep or lang not in LANGS or lang == "en":
                raise ValueError(f"--lang-file must be ms=FILE or zh=FILE, not {item!r}")
            versions[lang] = {"text": _read(Path(name), args.html)}
        when = None
        if args.at:
            try:
                when = datetime.fromisoformat(args.at.strip())
            except ValueError:
                raise ValueError(
                    f"--at: cannot read {args.at!r}: give a date and time as YYYY-MM-DDTHH:MM, "
                    "e.g. 2026-12-01T09:00 (Malaysia time unless it has an offset such as +08:00)"
                ) from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=config.tz)
            if when <= utc_now():
                raise ValueError(f"--at {args.at} is in the past")
    except (OSError, ValueError) as exc:
        print(f"broadcast: {exc}", file=sys.stderr)
        return 2
    storage = Storage(config.db_path)
    try:
        service = AgencyService(storage)
        code = None if args.all else args.agency.strip().lower()
        agency = service.get_agency(code) if code else None
        if code is not None and agency is None:
            print(f"broadcast: no agency with code {args.agency!r}", file=sys.stderr)
            return 2
        counts = service.audience_by_lang(code)
        if args.audience != "all":
            counts = {k: v for k, v in counts.items() if k == args.audience}
        target = f"followers of {agency.name} ({agency.code})" if agency else "every user"
        per_version: dict[str, int] = {}
        for lang, count in counts.items():
            version = choose_version(versions, lang)
            per_version[version] = per_version.get(version, 0) + count  # type: ignore[index]
        summary = ", ".join(f"{lang} version: {c}" for lang, c in per_version.items()) or "none"
        total = sum(counts.values())
        print(f"target: {target}; {n('plural.recipients', total, 'en')} ({summary})")
        if total == 0:
            print("nothing to send: no recipients")
            return 1
        if not args.yes:
            print("dry run: add --yes to queue the broadcast")
            return 0
        broadcast_id, enqueued = service.create_broadcast(
            Outbox(storage),
            agency=code,
            created_by=0,
            versions=versions,
            audience=args.audience,
            scheduled_at=when,
        )
    except AgencyError as exc:
        print(f"broadcast: {exc.key}", file=sys.stderr)
        return 2
    finally:
        storage.close()
    when_text = f"for {local_minutes(when, config.tz)}" if when else "now"
    print(f"broadcast #{broadcast_id}: {n('plural.messages', enqueued, 'en')} queued in the outbox ({when_text})")
    print(
        "The running bot's outbox sender delivers them; if the bot is not running, they are "
        "sent when it starts. Follow with: python -m bot outbox status"
    )
    return 0
