"""Hostile and careless input: Hypothesis pushes arbitrary text through every text handler of
the real bot (one Application polling the local Bot API server for the whole module).

For every example: no handler raised (PTB's error handlers saw nothing, nothing was logged at
ERROR), the local server rejected no call with 400 (it parses HTML, counts UTF-16 lengths and
checks buttons like Telegram), the bot answered, and user text it echoed shows up escaped
(the text the user typed is what the chat displays, never markup). The domain functions get the
same text directly, with a time bound.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.guides import load_guides
from bot.domain.matcher import Matcher, detect_lang
from bot.domain.salary import looks_like_salary, parse_salary
from bot.i18n import LANGS, format_money, t
from bot.localapi.server import ChatMessage, utf16_len
from bot.wire import scrub
from tests.fuzz_support import LiveBot

OPERATOR = 1
STAFF = 2
FOLLOWERS = (3, 4)
LINK_RE = re.compile(r"https://t\.me/perkeso_local_bot\?start=([A-Za-z0-9_-]+)")
EXAMPLES = 30  # per handler; ~10 handlers keep the module well under a minute
TRIED: Counter[str] = Counter()
_users: Iterator[int] = itertools.count(100_000)

# --- strategies -------------------------------------------------------------------------------

HTML_BITS = [
    "<b>", "</b>", "<i>x</i>", "&amp;", "&lt;", "&", "</a>", '<a href="http://x.y">', "<script>",
    "&#0;", "&#x1F600;", "<tg-spoiler>", "</code>", "<pre>", "<", ">", '"', "'", "<b>bold</b>",
]
RTL = ["مرحبا بكم", "שלום עולם", "\u202e", "\u200f", "\u061c", "گaji ڠ"]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🇲🇾", "\ufe0f", "🧕🏻", "🗑"]
SURROGATES = ["\ud800", "\udfff", "\udc00\ud800", "3500\ud83d", "RM\ud800 3,500"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\u200b", "\u2028", "\u2029", "\ufeff",
           "\r\n", "\t", "\u0085", "\U000e0001"]
WORDS = ["3500", "RM3,500.50", "3.500", "-3000", "3k", "三千五", "RM15/hour", "0", "9" * 30, "1e5",
         "3500.555", "socso", "gaji", "caruman", "maid", "社险", "how to pay", "?", "/calc", ":", "2026-12-01 09:00"]
SPECIAL = HTML_BITS + RTL + EMOJI + CONTROL + WORDS + SURROGATES

fragment = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=12),
    st.characters(),
    st.characters(codec=None, categories=["Cs"]),  # lone surrogates, as JSON may deliver them
)
short_text = st.lists(fragment, min_size=1, max_size=10).map("".join)
long_text = st.builds(
    lambda piece, n: piece * n,
    st.lists(fragment, min_size=1, max_size=4).map("".join),
    st.integers(100, 4096),
)


def telegramize(text: str, limit: int = 4096) -> str:
    """What Telegram would deliver: trimmed, at most ``limit`` UTF-16 code units."""
    text = text.strip()
    while utf16_len(text) > limit:
        text = text[: max(1, len(text) - (utf16_len(text) - limit + 1) // 2)].rstrip()
    return text


def message(limit: int = 4096, *, command: bool = True) -> st.SearchStrategy[str]:
    """A text message; ``command=False``: not a /command (an answer inside a conversation)."""
    return (
        st.one_of(short_text, short_text, st.text(min_size=1, max_size=400), long_text)
        .map(lambda s: telegramize(s, limit))
        .filter(lambda s: bool(s) and (command or not s.startswith("/")))
    )


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

def as_delivered(text: str) -> str:
    """``text`` as the bot receives it through the Bot API's JSON: a surrogate pair becomes the
    one character it encodes, a lone surrogate U+FFFD (bot/wire.py)."""
    return scrub(json.loads(json.dumps(text)))


# --- the running bot --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBot]:
    path = tmp_path_factory.mktemp("fuzz_input") / "bot.sqlite3"
    bot = LiveBot(path, admin_ids=frozenset({OPERATOR})).start()
    try:
        yield bot
    finally:
        bot.stop()


@pytest.fixture(scope="module")
def agency(live: LiveBot) -> str:
    """An agency with a staff member and two English followers; returns its follow payload."""
    (created,) = live.run(live.say(OPERATOR, "/agency new Fuzz Agency"))
    staff_link, follow_link = LINK_RE.findall(created.text)
    live.run(live.say(STAFF, f"/start {staff_link}"))
    for user in FOLLOWERS:
        live.run(live.say(user, f"/start {follow_link}"))
    assert not live.problems()
    return follow_link


def _plain(markup: str) -> str:
    """What a reader sees of a Telegram-HTML catalog text."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup)))


def fresh_user() -> int:
    return next(_users)


_MARKUP = re.compile(r"<[^<>]*>|&#?\w+;")


def html_tokens(text: str) -> list[str]:
    """Pieces of user text that would change meaning if pasted into HTML unescaped (and have
    enough text besides the markup not to be mistaken for the bot's own tags)."""
    return [
        tok
        for tok in text.split()
        if any(c in tok for c in "<>&") and len(_MARKUP.sub("", tok).strip("<>&;#")) >= 3
    ]


def check(live: LiveBot, typed: list[str], replies: list[ChatMessage], *, answered: bool = True) -> None:
    """The common properties of one example (see the module docstring)."""
    problems = live.problems()
    live.clear()
    assert not problems, problems
    if answered:
        assert replies, f"no answer to {typed!r}"
    for reply in replies:
        source, shown = reply.text or "", reply.plain_text or ""
        for text in typed:
            for token in html_tokens(text):
                assert not (token in source and token not in shown), (
                    f"user text {token!r} was echoed as markup in {source[:300]!r}"
                )


# --- the handlers -----------------------------------------------------------------------------


@FUZZ
@given(text=message(), lang=st.sampled_from(["en", "ms", "zh-hans", None, "ar"]))
def test_free_text_router(live: LiveBot, text: str, lang: str | None) -> None:
    TRIED["free text (router: calculator / guides)"] += 1
    replies = live.run(live.say(fresh_user(), text, lang=lang))
    check(live, [text], replies)


@FUZZ
@given(text=message(4000))
@example(text="9" * 30)  # found by this test: formatting RM10^30 overflowed Decimal's precision
def test_calc_command_argument(live: LiveBot, text: str) -> None:
    TRIED["/calc <text>"] += 1
    replies = live.run(live.say(fresh_user(), f"/calc {text}"))
    check(live, [text], replies)


@FUZZ
@given(text=message(command=False))
def test_text_after_calc_prompt(live: LiveBot, text: str) -> None:
    TRIED["/calc, then text"] += 1
    user = fresh_user()
    (prompt,) = live.run(live.say(user, "/calc"))
    assert prompt.text == t("calc.prompt", "en")
    replies = live.run(live.say(user, text))
    check(live, [text], replies)


@FUZZ
@given(text=message(4000))
def test_guides_command_argument(live: LiveBot, text: str) -> None:
    TRIED["/guides <text>"] += 1
    replies = live.run(live.say(fresh_user(), f"/guides {text}"))
    check(live, [text], replies)


@FUZZ
@given(name=message(command=False), salary=message(command=False))
@example(name="\ud800\udc00", salary="0")  # a surrogate pair: one character on the wire
@example(name="Siti \ud800", salary="1500")  # a lone surrogate: U+FFFD on the wire
def test_reminder_worker_conversation(live: LiveBot, name: str, salary: str) -> None:
    TRIED["/remind: worker name and salary"] += 1
    user = fresh_user()
    (settings_message,) = live.run(live.say(user, "/remind"))
    answer, (ask,) = live.run(live.press(user, settings_message.message_id, "rm:w:add", strict=True))
    assert answer is not None and ask.text == t("remind.ask_name", "en")
    replies = live.run(live.say(user, name))
    check(live, [name], replies)
    (reply,) = replies
    shown = as_delivered(" ".join(name.split()))
    if "rm:wt:employee" not in reply.callback_data:  # refused: asks again, nothing saved
        assert reply.text == t("remind.bad_name", "en", max=32)
        return
    assert shown in (reply.plain_text or ""), "the accepted name is shown exactly as typed"
    answer, replies = live.run(live.press(user, reply.message_id, "rm:wt:employee", strict=True))
    assert answer is not None
    check(live, [name], replies)
    replies = live.run(live.say(user, salary))
    check(live, [name, salary], replies)
    saved = [m for m in replies if m.callback_data and any(d.startswith("rm:w:del:") for d in m.callback_data)]
    for m in saved:  # the settings list shows the saved worker's name as typed
        assert shown in (m.plain_text or "")


@FUZZ
@given(text=message(command=False), when=message(command=False), schedule=st.booleans())
def test_broadcast_compose(live: LiveBot, agency: str, text: str, when: str, schedule: bool) -> None:
    TRIED["/broadcast compose (staff): message and time"] += 1
    (ask,) = live.run(live.say(STAFF, "/broadcast"))
    assert ask.text == t("broadcast.ask_message_one", "en")
    replies = live.run(live.say(STAFF, text))
    # the preview is the user's text made Telegram HTML (its own < > & escaped) under the header
    check(live, [text], replies)
    room = 4096 - max(utf16_len(_plain(t("broadcast.header", lang, agency="Fuzz Agency")))
                      + utf16_len(_plain(t("broadcast.footer", lang, agency="Fuzz Agency"))) + 4
                      for lang in LANGS)
    if utf16_len(text) > room:  # no room left for the line naming the agency: refused, said so
        (refused,) = replies
        assert refused.text == t("broadcast.text_too_long", "en", length=utf16_len(text), limit=room)
        (cancelled,) = live.run(live.say(STAFF, "/cancel"))
        assert cancelled.text == t("broadcast.draft_cancelled", "en")
        return
    confirm = replies[-1]
    assert "bc:sched" in confirm.callback_data
    if schedule:
        answer, replies = live.run(live.press(STAFF, confirm.message_id, "bc:sched", strict=True))
        assert answer is not None
        check(live, [], replies)
        replies = live.run(live.say(STAFF, when))
        check(live, [when], replies)
    (cancelled,) = live.run(live.say(STAFF, "/cancel"))
    assert cancelled.text == t("broadcast.draft_cancelled", "en")
    check(live, [], [cancelled])


@FUZZ
@given(
    payload=st.one_of(message(60), message(60).map("staff-".__add__), message(60).map("f-".__add__)),
    first_name=message(64),
)
@example(payload="<b>", first_name="\ud800\udc00")  # a surrogate pair: one character on the wire
def test_start_payload_and_name(live: LiveBot, agency: str, payload: str, first_name: str) -> None:
    TRIED["/start <payload> (deep links, any first name)"] += 1
    user = fresh_user()
    replies = live.run(live.say(user, f"/start {payload}", first_name=first_name))
    check(live, [payload, first_name], replies)
    hello = str(t("start.greeting", "en", name="\x00")).split("\x00")[0]
    greeting = [m for m in replies if m.callback_data == ["menu:guides", "menu:calc", "menu:remind", "menu:lang"]
                and (m.plain_text or "").startswith(hello)]  # a link's answer also ends with the menu
    for m in greeting:  # the greeting shows the first name as the bot received it
        assert as_delivered(first_name) in (m.plain_text or "")


COMMANDS = ["/start", "/help", "/language", "/calc", "/guides", "/remind", "/agencies",
            "/broadcast", "/agency", "/cancel", "/nosuch", "/calc@perkeso_local_bot", "/CALC",
            "/broadcast status", "/broadcast cancel", "/agency invite", "/agency revoke"]


@FUZZ
@given(command=st.sampled_from(COMMANDS), junk=message(3000), who=st.sampled_from(["user", "staff"]))
def test_commands_with_junk_arguments(live: LiveBot, agency: str, command: str, junk: str, who: str) -> None:
    TRIED["any command + junk arguments (user, staff)"] += 1
    user = STAFF if who == "staff" else fresh_user()
    replies = live.run(live.say(user, f"{command} {junk}"))
    check(live, [junk], replies)
    if user == STAFF:
        live.run(live.say(STAFF, "/cancel"))  # leave no compose open for the next example
        live.clear()


@FUZZ
@given(name=message(80), action=st.sampled_from(["new", "new", "invite", "revoke", "list"]))
def test_operator_agency_commands(live: LiveBot, name: str, action: str) -> None:
    TRIED["/agency new|invite|revoke|list (operator)"] += 1
    replies = live.run(live.say(OPERATOR, f"/agency {action} {name}"))
    check(live, [name], replies)
    replies = live.run(live.say(OPERATOR, "/agency list"))
    check(live, [name], replies)


def test_examples_really_ran() -> None:
    """Every handler above got its examples (a report for the README's figures)."""
    print("\nfuzzed examples per handler:", dict(TRIED))
    assert len(TRIED) == 9 and all(n >= EXAMPLES for n in TRIED.values()), TRIED


# --- the domain, directly ---------------------------------------------------------------------

LIBRARY = load_guides(Path(__file__).resolve().parent.parent / "content")
MATCHER = Matcher.build(LIBRARY)
any_text = st.one_of(message(), st.text(max_size=5000), long_text)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(text=any_text)
def test_salary_parsing_never_fails(text: str) -> None:
    parsed = parse_salary(text)
    looks = looks_like_salary(text)
    assert parsed.kind in {"ok", "ambiguous", "zero", "negative", "absurd", "hourly", "daily", "none"}
    if parsed.kind == "ok":
        assert parsed.amount is not None and 0 < parsed.amount <= 1_000_000
        assert parsed.amount == parsed.amount.quantize(parsed.amount.__class__("0.01"))
    assert isinstance(looks, bool)
    for amount in (parsed.amount, *parsed.candidates):
        if amount is not None:
            assert format_money(amount).lstrip("-").startswith("RM")  # every answer can show it


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(text=any_text, user_lang=st.sampled_from(["en", "ms", "zh", None]))
def test_matcher_never_fails(text: str, user_lang: str | None) -> None:
    lang, confident = detect_lang(text)
    found = MATCHER.match(text, user_lang)
    assert lang in ("en", "ms", "zh") and isinstance(confident, bool)
    assert found.guide is None or found.guide in LIBRARY.ids()
    assert all(s in LIBRARY.ids() for s in found.suggestions)


def test_many_long_agency_names_still_fit(live: LiveBot) -> None:
    """/agency list and /agencies stay valid with many 64-character names full of markup."""
    follower = fresh_user()
    for i in range(70):
        name = f"<b>&amp;</b> {i:02d} " + "&<>" * 16
        (created,) = live.run(live.say(OPERATOR, f"/agency new {name}"))
        follow_link = LINK_RE.findall(created.text)[1]
        live.run(live.say(follower, f"/start {follow_link}"))
    check(live, [], live.run(live.say(OPERATOR, "/agency list")))
    replies = live.run(live.say(follower, "/agencies"))
    check(live, [], replies)
    unfollow = [d for m in replies for d in m.callback_data if d.startswith("af:u:")]
    assert len(replies) >= 2 and len(unfollow) == 70 and replies[-1].callback_data[-1] == "menu:main"
