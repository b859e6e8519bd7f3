"""The callback-data codec (bot/callbacks.py): every kind round-trips, anything else parses to
None, the 64-byte limit holds for the worst values the bot can put in a button, and the data
of buttons already sent in chats (the formats written before the codec) still parses."""

from __future__ import annotations

import re
import string
import typing
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bot import callbacks as cb
from bot.agencies import CODE_ALPHABET, CODE_LENGTH
from bot.domain.deadlines import (
    DEADLINE_DAYS_CHOICES,
    HOUR_CHOICES,
    TYPED_HOUR_FIRST,
    TYPED_HOUR_LAST,
)
from bot.domain.guides import TOPICS, load_guides
from bot.domain.rates import WorkerType
from bot.domain.reminder_rules import AUDIENCES
from bot.domain.salary import ABSURD_ABOVE
from bot.i18n import LANGS

CONTENT = Path(__file__).resolve().parent.parent / "content"
KINDS = sorted(cb.kinds().values(), key=lambda k: k.prefix)

# --- strategies, derived from each field's codec ---------------------------------------------


def codec_strategy(codec: Any) -> st.SearchStrategy[Any]:
    if isinstance(codec, cb.Maybe):
        return st.none() | codec_strategy(codec.codec)
    if isinstance(codec, cb.Int):
        return st.integers(codec.lo, codec.hi)
    if isinstance(codec, cb.Text):
        return st.from_regex(codec.regex, fullmatch=True)
    if isinstance(codec, cb.Choice):
        return st.sampled_from(codec.values)
    if isinstance(codec, cb.EnumCodec):
        return st.sampled_from(list(codec._table()))
    if isinstance(codec, cb.Flag):
        return st.booleans()
    if isinstance(codec, cb.Money):
        return st.decimals(min_value=0, max_value=codec.hi, places=2)
    if isinstance(codec, cb.CompactMonth):
        return st.integers(cb.MIN_YEAR * 12, cb.MAX_YEAR * 12 + 11)
    if isinstance(codec, cb.MonthKey):
        return st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(1, 12))
    raise AssertionError(f"no strategy for {codec!r}")


@st.composite
def instances(draw: st.DrawFn, kind: type[cb.CallbackData] | None = None) -> cb.CallbackData:
    kind = kind or draw(st.sampled_from(KINDS))
    values = {name: draw(codec_strategy(codec)) for name, codec, _ in kind._fields()}
    try:
        return kind(**values)
    except ValueError:  # a combination the kind forbids (CalcAction, StaffListAction)
        assume(False)
        raise


def longest(codec: Any) -> int:
    """The most characters ``codec`` can write (computed from the codec, not guessed)."""
    if isinstance(codec, cb.Maybe):
        return max(len(codec.none), longest(codec.codec))
    if isinstance(codec, cb.Int):
        return max(len(str(codec.lo)), len(str(codec.hi)))
    if isinstance(codec, cb.Text):
        return int(re._parser.parse(codec.regex).getwidth()[1])  # type: ignore[attr-defined]
    if isinstance(codec, cb.Choice):
        return max(map(len, codec.values))
    if isinstance(codec, cb.EnumCodec):
        return max(map(len, codec._table().values()))
    if isinstance(codec, cb.Flag):
        return 1
    if isinstance(codec, cb.Money):
        return len(f"{codec.hi:.2f}")
    if isinstance(codec, cb.CompactMonth):
        return 6
    if isinstance(codec, cb.MonthKey):
        return 7
    raise AssertionError(f"no width for {codec!r}")


# --- round trips --------------------------------------------------------------------------------


@given(instances())
def test_every_kind_round_trips(value: cb.CallbackData) -> None:
    data = value.pack()
    assert data.isascii()
    assert len(data.encode()) <= cb.MAX_BYTES
    assert type(value).parse(data) == value
    assert type(value).pattern().match(data)


@given(instances())
def test_no_other_kind_claims_a_kinds_data(value: cb.CallbackData) -> None:
    data = value.pack()
    claimed = [k.__name__ for k in KINDS if k.parse(data) is not None]
    assert claimed == [type(value).__name__]
    matched = [k.__name__ for k in KINDS if k.pattern().match(data)]
    assert matched == [type(value).__name__]


@given(
    st.text(
        alphabet=st.sampled_from(string.ascii_letters + string.digits + ":-_.*٩ é"), max_size=70
    )
)
def test_parse_accepts_only_canonical_data(text: str) -> None:
    """Whatever the input, a kind either rejects it or gives a value that packs back to it."""
    for kind in KINDS:
        value = kind.parse(text)
        if value is not None:
            assert value.pack() == text


@given(st.sampled_from(KINDS).flatmap(lambda k: st.tuples(st.just(k), instances(k))))
def test_mutations_are_rejected(pair: tuple[type[cb.CallbackData], cb.CallbackData]) -> None:
    kind, value = pair
    data = value.pack()
    assert kind.parse(data + ":x") is None  # one field too many
    assert kind.parse("zz" + data) is None  # another prefix
    assert kind.parse(data.replace(kind.prefix, kind.prefix.upper(), 1)) is None
    if kind._fields():
        assert kind.parse(kind.prefix) is None
        assert kind.parse(kind.prefix + ":") is None
    else:
        assert kind.parse(kind.prefix + ":") is None


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "menu",
        "menu:",
        "menu:settings",
        "lang:fr",
        "lang:en:x",
        "g:pay-socso:0:en",
        "g:pay-socso:01:en",
        "g:pay-socso:1000:en",
        "g:pay-socso:٣:en",
        "g:pay socso:1:en",
        "g::1:en",
        "g:pay-socso:1:fr",
        "g:pay-socso:1",
        "gf:pay-socso:en:2",
        "gf:pay-socso:en:true",
        "gt:Employers:en",
        "gm:",
        "gd:EN",
        "c:x:3500.00:202605:e:-:0",
        "c:r:3500:202605:e:-:0",
        "c:r:3500.0:202605:e:-:0",
        "c:r:03500.00:202605:e:-:0",
        "c:r:1000000.01:202605:e:-:0",
        "c:r:3500.00:202613:e:-:0",
        "c:r:3500.00:198912:e:-:0",
        "c:r:3500.00:202605:x:-:0",
        "c:r:3500.00:202605:-:-:0",
        "c:r:3500.00:202605:e:70:0",
        "c:r:3500.00:202605:e:-:2",
        "c:r:3500.00:202605:e:-:0:202605",
        "c:m:3500.00:202605:e:-:0",
        "c:r:-1.00:202605:e:-:0",
        "rm:on:x",
        "rm:h:٩",
        "rm:d:1_4",
        "rm:h:24",
        "rm:h:+8",
        "rm:a:boss",
        "rm:w",
        "rm:w:del:",
        "rm:w:del:-1",
        "rm:wt:robot",
        "rm:paid:2026-13",
        "rm:paid:2026-5",
        "rm:snooze:26-05",
        "rm:c:employee:0",
        "rm:c:employee",
        "rm:c:boss:100.00",
        "pv:maybe:1",
        "pv:yes:",
        "pv:yes:1:2",
        "pv:yes:x",
        "pv:yes:-0",
        "af:u:",
        "af:u:a b",
        "af:u:" + "a" * 33,
        "bc:t:",
        "bc:t:a:b",
        "bc:m:both",
        "bc:a:fr",
        "bc:x:one",
        "bc:x:",
        "bc:send:now",
        "bc:sendx",
        "sl:x:0a1b2c3d",
        "sl:m:0a1b2c3d",
        "sl:c:0A1B2C3D:202605",
        "sl:s:0a1b2c3",
        "sl:m:0a1b2c3d:209913:1",
        "x" * 65,
        "g:" + "a" * 60 + ":1:en",
    ],
)
def test_malformed_data_parses_to_none(data: str | None) -> None:
    assert [k.__name__ for k in KINDS if k.parse(data) is not None] == []


# --- packing refuses what it cannot write ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        cb.GuideStep("pay:socso", 1, "en"),  # the separator in a field
        cb.AgencyUnfollow("ab:cd"),
        cb.BroadcastTarget("a:b"),
        cb.GuideStep("pay-socso", 0, "en"),  # out of range
        cb.GuideStep("pay-socso", 1, "fr"),  # not a language of the bot
        cb.Menu("settings"),  # type: ignore[arg-type]
        cb.ReminderHour(24),
        cb.ReminderPaid("2026-5"),
        cb.ReminderFromCalc(WorkerType.EMPLOYEE, ABSURD_ABOVE + 1),
        cb.ReminderFromCalc(WorkerType.EMPLOYEE, Decimal("-1")),
        cb.ReminderFromCalc("employee", Decimal("1")),  # type: ignore[arg-type]  # not the enum
        cb.PrivacyAction("json", True),  # type: ignore[arg-type]  # a bool is no chat id
    ],
)
def test_pack_refuses_values_it_cannot_write(value: cb.CallbackData) -> None:
    with pytest.raises(cb.CallbackDataError):
        value.pack()


def test_the_64_byte_limit_is_checked_in_pack() -> None:
    """A kind whose fields could exceed 64 bytes packs short values and refuses long ones."""

    @dataclass(frozen=True)
    class Wide(cb.CallbackData, prefix="zzwide"):
        text: Annotated[str, cb.Text(r"[a-zé]{1,100}")]

    try:
        assert Wide.parse(Wide("abc").pack()) == Wide("abc")
        assert len(Wide("a" * 57).pack().encode()) == 64
        with pytest.raises(cb.CallbackDataError, match="64 bytes"):
            Wide("a" * 58).pack()
        with pytest.raises(cb.CallbackDataError, match="64 bytes"):
            Wide("é" * 29).pack()  # 29 characters, 58 bytes: the limit is in UTF-8 bytes
        assert Wide.parse("zzwide:" + "a" * 58) is None
    finally:
        cb._KINDS.pop("zzwide")


def test_a_kind_cannot_reuse_or_shadow_a_prefix() -> None:
    with pytest.raises(ValueError, match="collides"):

        class Again(cb.CallbackData, prefix="rm:paid"):
            pass

    with pytest.raises(ValueError, match="collides"):

        class Under(cb.CallbackData, prefix="rm:w:del:x"):
            pass

    with pytest.raises(ValueError, match="separator"):
        cb.Text(r".*")
    with pytest.raises(ValueError, match="separator"):
        cb.Choice(("a", "b:c"))
    with pytest.raises(ValueError, match="ambiguous"):
        cb.Maybe(cb.Text(r"[a-z-]+"))  # "-" would be both None and the text "-"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_fits_64_bytes_at_its_widest(kind: type[cb.CallbackData]) -> None:
    """The widest value each field's codec can write, all at once, still fits."""
    width = len(kind.prefix) + sum(1 + longest(codec) for _, codec, _ in kind._fields())
    assert width <= cb.MAX_BYTES, f"{kind.__name__} can reach {width} bytes"


def test_the_worst_real_values_pack_under_64_bytes() -> None:
    """The largest values the bot's code and content put in buttons are accepted and fit."""
    lib = load_guides(CONTENT)
    guides = [lib.get(gid, lang) for gid in lib.ids() for lang in LANGS]
    guides = [g for g in guides if g is not None]
    longest_id = max((g.id for g in guides), key=len)
    most_steps = max(len(g.steps) for g in guides)
    agency_code = max(CODE_ALPHABET) * CODE_LENGTH
    wage = ABSURD_ABOVE  # the calculator answers up to this (bot.domain.salary)
    last_month = cb.MAX_YEAR * 12 + 11
    worker = max(WorkerType, key=len)
    worst = [
        cb.GuideStep(longest_id, most_steps, "zh"),
        cb.GuideAll(longest_id, "zh"),
        cb.GuideFeedback(longest_id, "zh", True),
        cb.GuideTopic(max(TOPICS, key=len), "zh"),
        cb.CalcAction("m", wage, last_month, worker, "u55", True, last_month),
        cb.ReminderFromCalc(worker, wage),
        cb.ReminderWorkerType(worker),
        cb.ReminderDay(max(DEADLINE_DAYS_CHOICES)),
        cb.ReminderHour(max(*HOUR_CHOICES, TYPED_HOUR_LAST)),
        cb.ReminderWorkerDelete(cb.ROW_ID.hi),
        cb.AgencyUnfollow(agency_code),
        cb.BroadcastTarget(agency_code),
        cb.BroadcastCancel(cb.ROW_ID.hi),
        cb.PrivacyAction("json", cb.CHAT_ID.lo),
        cb.StaffListAction("c", "f" * 8, last_month),
    ]
    for value in worst:
        data = value.pack()
        assert len(data.encode()) <= cb.MAX_BYTES, data
        assert type(value).parse(data) == value
    for g in guides:  # every guide of the content has a valid button id
        assert cb.GuideStep.parse(cb.GuideStep(g.id, len(g.steps), g.lang).pack()) is not None  # type: ignore[arg-type]


# --- the closed sets agree with the code they stand for -----------------------------------------


def test_closed_sets_match_the_code() -> None:
    from bot.handlers import calc, menu

    assert typing.get_args(cb.Lang) == LANGS
    assert typing.get_args(cb.ReminderAudienceName) == AUDIENCES
    assert set(cb.WORKER._table()) == set(WorkerType) == set(cb.WORKER_CODE._table())
    assert set(typing.get_args(cb.MenuItem)) == {*menu.ITEMS, "main"}
    assert set(typing.get_args(cb.AgeBand)) == {*calc.AGE_BANDS, calc.FIRST_AT_55}
    assert typing.get_args(typing.get_type_hints(cb.BroadcastAudience)["audience"]) == (
        "all",
        *LANGS,
    )
    hours = [*HOUR_CHOICES, *range(TYPED_HOUR_FIRST, TYPED_HOUR_LAST + 1)]
    assert all(cb.ReminderHour.parse(cb.ReminderHour(h).pack()) for h in hours)
    assert all(cb.ReminderDay.parse(cb.ReminderDay(d).pack()) for d in DEADLINE_DAYS_CHOICES)
    assert {f.name for f in fields(cb.CalcAction)} >= {
        "act",
        "wage",
        "ym",
        "worker",
        "age",
        "opt_out",
    }


# --- buttons already in chats --------------------------------------------------------------------

# The data exactly as the builders wrote it before the codec (f-strings in the handlers, e.g.
# f"c:{act}:{wage:.2f}:{y:04d}{m:02d}:{worker}:{age or '-'}:{int(opt_out)}"). The codec kept
# every format byte for byte, so these parse and pack back unchanged.
MAY_2026 = 2026 * 12 + 4
OLD_BUTTONS: list[tuple[str, cb.CallbackData]] = [
    ("menu:main", cb.Menu("main")),
    ("menu:remind", cb.Menu("remind")),
    ("lang:ms", cb.LanguageChoice("ms")),
    ("g:pay-socso:1:ms", cb.GuideStep("pay-socso", 1, "ms")),
    ("ga:domestic-pay:zh", cb.GuideAll("domestic-pay", "zh")),
    ("gt:employers:en", cb.GuideTopic("employers", "en")),
    ("gm:en", cb.GuideMenu("en")),
    ("gf:pay-socso:en:0", cb.GuideFeedback("pay-socso", "en", False)),
    ("gq:zh", cb.GuideAsk("zh")),
    ("gd:ms", cb.GuideLanguage("ms")),
    (
        "c:r:3500.00:202605:e:-:0",
        cb.CalcAction("r", Decimal("3500.00"), MAY_2026, WorkerType.EMPLOYEE, None, False),
    ),
    (
        "c:A:1200.50:202605:df:55f:1",
        cb.CalcAction("A", Decimal("1200.50"), MAY_2026, WorkerType.DOMESTIC_FOREIGN, "55f", True),
    ),
    (
        "c:m:3500.00:202605:f:60:0:202612",
        cb.CalcAction(
            "m", Decimal("3500.00"), MAY_2026, WorkerType.FOREIGN, "60", False, 2026 * 12 + 11
        ),
    ),
    ("c:s:35.00:202605:-:-:0", cb.CalcAction("s", Decimal("35.00"), MAY_2026, None, None, False)),
    ("sl:m:0a1b2c3d:202604", cb.StaffListAction("m", "0a1b2c3d", MAY_2026 - 1)),
    ("sl:s:0a1b2c3d", cb.StaffListAction("s", "0a1b2c3d")),
    ("rm:open", cb.ReminderOpen()),
    ("rm:po", cb.ReminderPaymentOpen()),
    ("rm:d:7", cb.ReminderDay(7)),
    ("rm:h:21", cb.ReminderHour(21)),
    ("rm:a:household", cb.ReminderAudience("household")),
    ("rm:w:add", cb.ReminderWorkerAdd()),
    ("rm:w:del:42", cb.ReminderWorkerDelete(42)),
    ("rm:wt:domestic-local", cb.ReminderWorkerType(WorkerType.DOMESTIC_LOCAL)),
    ("rm:paid:2026-05", cb.ReminderPaid("2026-05")),
    ("rm:snooze:2026-05", cb.ReminderSnooze("2026-05")),
    ("rm:c:employee:3500.00", cb.ReminderFromCalc(WorkerType.EMPLOYEE, Decimal("3500.00"))),
    ("pv:yes:123456789", cb.PrivacyAction("yes", 123456789)),
    ("pv:json:123456789", cb.PrivacyAction("json", 123456789)),
    ("af:u:k3x9q2ab", cb.AgencyUnfollow("k3x9q2ab")),
    ("bc:t:*", cb.BroadcastTarget(None)),
    ("bc:t:k3x9q2ab", cb.BroadcastTarget("k3x9q2ab")),
    ("bc:m:each", cb.BroadcastMode("each")),
    ("bc:a:all", cb.BroadcastAudience("all")),
    ("bc:send", cb.BroadcastSend()),
    ("bc:sched", cb.BroadcastSchedule()),
    ("bc:cancel", cb.BroadcastCancelDraft()),
    ("bc:x:12", cb.BroadcastCancel(12)),
]


@pytest.mark.parametrize(("data", "value"), OLD_BUTTONS, ids=[d for d, _ in OLD_BUTTONS])
def test_buttons_sent_before_the_codec_still_parse(data: str, value: cb.CallbackData) -> None:
    assert type(value).parse(data) == value
    assert value.pack() == data


def test_every_kind_has_an_old_button() -> None:
    assert {type(v) for _, v in OLD_BUTTONS} | {
        cb.ReminderOn,
        cb.ReminderOff,
        cb.ReminderStop,
        cb.ReminderWorkerCancel,
        cb.BroadcastSkip,
    } == set(KINDS)


def test_groups_match_their_kinds() -> None:
    assert set(cb.REMINDERS.kinds) == {k for k in KINDS if k.prefix.startswith("rm:")}
    assert cb.REMINDERS.parse("rm:w:del:3") == cb.ReminderWorkerDelete(3)
    assert cb.REMINDERS.parse("rm:zzz") is None
    assert cb.REMINDERS.pattern().match("rm:zzz")  # garbage still reaches the feature
    assert not cb.REMINDERS.pattern().match("rmx:open")
    assert cb.BROADCAST.pattern().match("bc:anything")
    assert cb.GUIDE_BUTTONS.parse("gq:ms") == cb.GuideAsk("ms")
    assert cb.GUIDE_BUTTONS.pattern().match("gz:en") is None  # the old r"^g[atmfqd]?:" exactly
    for prefix in ("g", "ga", "gt", "gm", "gf", "gq", "gd"):
        assert cb.GUIDE_BUTTONS.pattern().match(prefix + ":junk")
    assert cb.BroadcastSend.pattern().match("bc:send") and not cb.BroadcastSend.pattern().match(
        "bc:sendx"
    )
