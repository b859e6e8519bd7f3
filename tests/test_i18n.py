"""Catalogs: every key in every language with the same placeholders; Babel formatting."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bot.config import CONTENT_DIR
from bot.i18n import (
    LANGS,
    catalog_files,
    format_date,
    format_money,
    format_month,
    load_language,
    load_language_plurals,
    n,
    placeholders,
    plural_index,
    plural_rule,
    t,
    use_lang,
)

CATALOGS = {lang: load_language(CONTENT_DIR, lang) for lang in LANGS}
ALL_KEYS = sorted(set().union(*CATALOGS.values()))


def test_catalogs_are_not_empty() -> None:
    assert len(ALL_KEYS) >= 20


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_is_translated(lang: str) -> None:
    missing = [key for key in ALL_KEYS if not CATALOGS[lang].get(key, "").strip()]
    assert missing == [], f"{lang}: missing or empty {missing}"


@pytest.mark.parametrize("lang", ["ms", "zh"])
def test_placeholders_match_english(lang: str) -> None:
    wrong = {
        key: (placeholders(CATALOGS["en"][key]), placeholders(CATALOGS[lang].get(key, "")))
        for key in ALL_KEYS
        if placeholders(CATALOGS["en"].get(key, "")) != placeholders(CATALOGS[lang].get(key, ""))
    }
    assert wrong == {}


@pytest.mark.parametrize("lang", LANGS)
def test_no_duplicate_keys(lang: str) -> None:
    ids = [
        line
        for path in catalog_files(CONTENT_DIR, lang)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("msgid ") and line != 'msgid ""'
    ]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert dupes == []


def test_every_language_has_the_same_catalog_files() -> None:
    names = {lang: [p.name for p in catalog_files(CONTENT_DIR, lang)] for lang in LANGS}
    assert names["ms"] == names["en"] and names["zh"] == names["en"]


def test_a_key_in_two_files_is_refused(tmp_path) -> None:
    for name in ("messages.po", "extra.po"):
        (tmp_path / "en").mkdir(exist_ok=True)
        (tmp_path / "en" / name).write_text('msgid "a.b"\nmsgstr "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="already defined in messages.po"):
        load_language(tmp_path, "en")


def test_parameters_are_escaped_but_markup_kept() -> None:
    text = t("start.greeting", "en", name="<b>Ali & co</b>")
    assert "&lt;b&gt;Ali &amp; co&lt;/b&gt;" in text
    assert "<b>SOCSO</b>" in text


def test_current_language_and_fallback() -> None:
    with use_lang("ms"):
        assert t("menu.guides") == CATALOGS["ms"]["menu.guides"]
    with use_lang("zh"):
        assert t("menu.guides") == CATALOGS["zh"]["menu.guides"]
    assert t("no.such.key", "zh") == "no.such.key"


@pytest.mark.parametrize(
    ("lang", "money", "month", "day"),
    [
        ("en", "RM1,234.50", "November 2026", "5 November 2026"),
        ("ms", "RM1,234.50", "November 2026", "5 November 2026"),
        ("zh", "RM1,234.50", "2026年11月", "2026年11月5日"),
    ],
)
def test_babel_formatting(lang: str, money: str, month: str, day: str) -> None:
    assert format_money(Decimal("1234.5"), lang) == money
    assert format_month(2026, 11, lang) == month
    assert format_date(dt.date(2026, 11, 5), lang) == day


def test_month_names_are_localized() -> None:
    assert format_month(2026, 1, "en") == "January 2026"
    assert format_month(2026, 1, "ms") == "Januari 2026"
    assert format_money(Decimal("0"), "en") == "RM0.00"


# --- plural entries (msgid_plural / msgstr[n], chosen by Babel's gettext plural rule) -----------

PLURALS = {lang: load_language_plurals(CONTENT_DIR, lang) for lang in LANGS}
PLURAL_KEYS = sorted(set().union(*PLURALS.values()))


def test_there_are_plural_entries() -> None:
    assert {"plural.recipients", "plural.followers", "cli.enqueued_reminders"} <= set(PLURAL_KEYS)


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_has_every_plural_key_with_its_number_of_forms(lang: str) -> None:
    forms, _ = plural_rule(lang)
    wrong = {
        key: PLURALS[lang].get(key)
        for key in PLURAL_KEYS
        if len(PLURALS[lang].get(key, ())) != forms or not all(f.strip() for f in PLURALS[lang][key])
    }
    assert wrong == {}, f"{lang}: missing, empty or wrong number of forms ({forms} expected)"


@pytest.mark.parametrize("lang", LANGS)
def test_plural_placeholders_match_english_in_every_form(lang: str) -> None:
    wrong = {
        key: [placeholders(f) for f in PLURALS[lang].get(key, ())]
        for key in PLURAL_KEYS
        for expected in [placeholders(PLURALS["en"][key][0])]
        if any(placeholders(f) != expected for f in (*PLURALS["en"][key], *PLURALS[lang].get(key, ())))
    }
    assert wrong == {}


def test_a_key_is_either_plural_or_not() -> None:
    for lang in LANGS:
        assert set(PLURALS[lang]) & set(CATALOGS[lang]) == set()


def test_plural_rules_from_babel() -> None:
    assert plural_rule("en")[0] == 2 and plural_rule("ms")[0] == 1 and plural_rule("zh")[0] == 1
    assert [plural_index("en", c) for c in (0, 1, 2, 21)] == [1, 0, 1, 1]
    assert {plural_index(lang, c) for lang in ("ms", "zh") for c in (0, 1, 2, 5)} == {0}


@pytest.mark.parametrize(
    ("lang", "one", "three"),
    [
        ("en", "1 recipient", "3 recipients"),
        ("ms", "1 penerima", "3 penerima"),
        ("zh", "1位接收者", "3位接收者"),
    ],
)
def test_n_picks_the_form(lang: str, one: str, three: str) -> None:
    assert n("plural.recipients", 1, lang) == one
    assert n("plural.recipients", 3, lang) == three
    with use_lang(lang):
        assert n("plural.recipients", 1) == one


def test_n_escapes_and_t_reads_plural_entries_by_count() -> None:
    assert n("broadcast.cancelled", 1, "en", id="<7>") == "Broadcast #&lt;7&gt; cancelled: 1 message will not be sent."
    assert t("broadcast.cancelled", "en", id=7, count=2) == "Broadcast #7 cancelled: 2 messages will not be sent."
    assert "1 day left" in t("remind.deadline_title", "en", month="May 2026", days=1)
    assert "3 days left" in t("remind.deadline_title", "en", month="May 2026", days=3)
    assert n("no.such.plural", 2, "zh") == "no.such.plural"


def test_plural_entries_read_from_a_po_file(tmp_path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "messages.po").write_text(
        'msgid "x.apples"\nmsgid_plural "x.apples"\nmsgstr[0] "{count} apple"\nmsgstr[1] "{count} apples"\n',
        encoding="utf-8",
    )
    assert load_language_plurals(tmp_path, "en") == {"x.apples": ("{count} apple", "{count} apples")}
    assert load_language(tmp_path, "en") == {}
