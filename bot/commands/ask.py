"""``python -m bot ask "TEXT" [--json] [--lang en|ms|zh] [--content DIR]``: match a question.

``TEXT`` = ``-`` reads one question per line from stdin and answers each, in order. With
``--json`` each answer is one JSON object per line: ``{"lang", "guide", "confidence", "score",
"band", "suggestions", "both", "answer"}``; ``guide`` is null when the bot would open no guide
(``band`` "unsure": it offers ``suggestions``; "none": no guide fits; "smalltalk": a greeting
or thanks, answered without a guide), ``both`` the two guides
of a two-topic question, ``answer`` the short answer to a yes/no question. ``score`` is the old
name of ``confidence``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.config import CONTENT_DIR
from bot.domain.guides import LANGS, GuideLibrary, load_guides
from bot.domain.matcher import Match, Matcher
from bot.domain.smalltalk import small_talk


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ask`` subcommand."""
    p = subparsers.add_parser("ask", help="match a question to a guide")
    p.add_argument("text", help='the question, or "-" to read one question per line from stdin')
    p.add_argument("--json", action="store_true", help="print JSON objects, one per line")
    p.add_argument("--lang", choices=LANGS, default=None, help="the user's language, when unclear")
    p.add_argument("--content", type=Path, default=CONTENT_DIR, help="content directory")
    p.set_defaults(func=run)


def _readable(m: Match, library: GuideLibrary) -> str:
    def title(gid: str) -> str:
        g = library.get(gid, m.lang)
        return f"{gid} ({g.title})" if g else gid

    if m.guide:
        line = f"[{m.lang}] {title(m.guide)} confidence={m.score:.2f}"
        if m.suggestions:
            line += " also: " + ", ".join(m.suggestions)
        return line
    if m.band == "smalltalk":
        return f"[{m.lang}] small talk: a friendly answer and the main menu, no guide"
    if m.both:
        return f"[{m.lang}] two topics, both offered: " + "; ".join(title(g) for g in m.both)
    if m.band == "unsure" and m.suggestions:
        return f"[{m.lang}] not sure (confidence={m.score:.2f}), offers: " + "; ".join(
            title(g) for g in m.suggestions
        )
    return f"[{m.lang}] no guide (confidence={m.score:.2f})"


def run(args: argparse.Namespace) -> int:
    """Answer the question(s); 2 on bad input (empty question, no guides)."""
    content = Path(args.content)
    library = load_guides(content)
    if not len(library):
        print(f"error: no guides found under {content}", file=sys.stderr)
        return 2
    if args.text == "-":
        questions = [line.rstrip("\n") for line in sys.stdin if line.strip()]  # blank lines skipped
    else:
        if not args.text.strip():
            print("error: the question is empty", file=sys.stderr)
            return 2
        questions = [args.text]
    matcher = Matcher.build(library)
    for q in questions:
        chat = small_talk(q)
        if chat is not None:  # the bot answers small talk itself and opens no guide
            m = Match(chat.lang or args.lang or "en", chat.lang is not None, None, 0.0, band="smalltalk")
        else:
            m = matcher.match(q, user_lang=args.lang) if q.strip() else None
        if m is None:
            lang = args.lang or "en"
            m = Match(lang, False, None, 0.0, ())
        if args.json:
            print(json.dumps(m.as_dict(), ensure_ascii=False))
        else:
            print(_readable(m, library))
    return 0
