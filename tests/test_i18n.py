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
    placeholders,
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
