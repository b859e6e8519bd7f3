"""Languages: gettext catalogs read with Babel, the user's locale in a ContextVar, Babel
formatting for money and dates, and the Jinja2 environment that renders messages.

Catalogs are ``content/<lang>/*.po`` (``messages.po`` for the core chat, one more file per
feature, e.g. ``stafflist.po``): the msgid is a dotted key (``start.greeting``),
the msgstr the text in that language, with ``{name}`` placeholders. They are read at start-up,
no compile step. Every text this module returns is safe Telegram HTML: catalog text may carry
Telegram's HTML tags, while every parameter is escaped.
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, localcontext
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from bot.config import CONTENT_DIR
from bot.domain.langs import LANGS

if TYPE_CHECKING:
    import jinja2

LANG_NAMES = {"en": "English", "ms": "Bahasa Melayu", "zh": "中文"}
BABEL_LOCALES = {"en": "en_MY", "ms": "ms_MY", "zh": "zh_Hans_MY"}
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
PLURAL_NUMBER_PARAMS = ("count", "days", "total")  # t() on a plural entry: the number it follows

current_lang: ContextVar[str] = ContextVar("current_lang", default="en")


def read_catalog(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Read one .po file once: ({key: text}, {key: (msgstr[0], msgstr[1], ...)}).

    Untranslated (empty) entries are left out. A plural entry's msgid is the dotted key (its
    ``msgid_plural`` repeats it); its forms are chosen by the language's gettext plural rule
    (:func:`plural_index`)."""
    with path.open("rb") as fh:
        catalog = read_po(fh)
    texts: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if message.id and isinstance(message.string, str) and message.string:
            texts[str(message.id)] = str(message.string)
        elif message.pluralizable and isinstance(message.string, tuple) and any(message.string):
            plurals[str(message.id[0])] = tuple(str(s) for s in message.string)
    return texts, plurals


@cache
def plural_rule(lang: str) -> tuple[int, Any]:
    """(number of forms, n -> form index) from Babel's gettext plural table for ``lang``:
    English has two forms (1, other), Malay and Chinese one."""
    count, expr = get_plural(BABEL_LOCALES.get(lang, lang))
    return count, gettext.c2py(expr)


def plural_index(lang: str, count: int) -> int:
    """Which msgstr[n] a number takes in ``lang``."""
    forms, rule = plural_rule(lang)
    return min(max(int(rule(abs(int(count)))), 0), forms - 1)


def catalog_files(content_dir: Path, lang: str) -> list[Path]:
    """A language's catalog files: ``messages.po`` first, then the feature files by name."""
    folder = content_dir / lang
    return sorted(folder.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name))


def read_language(
    content_dir: Path, lang: str
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Every catalog file of one language merged, each file read once: (texts, plurals). A key
    defined in two files is an error (texts checked before plurals)."""
    files = [(path, *read_catalog(path)) for path in catalog_files(content_dir, lang)]
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    for path, texts, _ in files:
        for key, text in texts.items():
            if key in merged:
                raise ValueError(f"{path}: key {key!r} is already defined in {origin[key]}")
            merged[key] = text
            origin[key] = path.name
    plurals: dict[str, tuple[str, ...]] = {}
    for path, _, forms_of in files:
        for key, forms in forms_of.items():
            if key in plurals:
                raise ValueError(f"{path}: plural key {key!r} is defined twice")
            plurals[key] = forms
    return merged, plurals


def load_language(content_dir: Path, lang: str) -> dict[str, str]:
    """Every catalog file of one language merged; a key defined in two files is an error."""
    return read_language(content_dir, lang)[0]


def load_language_plurals(content_dir: Path, lang: str) -> dict[str, tuple[str, ...]]:
    """Every plural entry of one language; a key defined in two files is an error."""
    return read_language(content_dir, lang)[1]


class Catalogs:
    """The three languages' UI strings, loaded once."""

    def __init__(self, content_dir: Path = CONTENT_DIR) -> None:
        self.content_dir = content_dir
        loaded = {lang: read_language(content_dir, lang) for lang in LANGS}  # each file once
        self.messages: dict[str, dict[str, str]] = {lang: loaded[lang][0] for lang in LANGS}
        self.plurals: dict[str, dict[str, tuple[str, ...]]] = {
            lang: loaded[lang][1] for lang in LANGS
        }

    def has_plural(self, key: str) -> bool:
        return any(key in forms for forms in self.plurals.values())

    def plural(self, key: str, count: int, lang: str) -> str:
        """The form of plural entry ``key`` for ``count`` in ``lang`` (English, then the key,
        when missing)."""
        for code in (lang, "en"):
            forms = self.plurals.get(code, {}).get(key)
            if forms:
                return forms[min(plural_index(code, count), len(forms) - 1)]
        return key

    def text(self, key: str, lang: str) -> str:
        """The raw catalog text for key, falling back to English, then to the key itself."""
        found = self.messages.get(lang, {}).get(key)
        if found is None:
            found = self.messages["en"].get(key, key)
        return found


_catalogs: Catalogs | None = None


def catalogs() -> Catalogs:
    global _catalogs
    if _catalogs is None:
        _catalogs = Catalogs()
    return _catalogs


def set_content_dir(content_dir: Path) -> None:
    """Load catalogs and templates from another content folder (tests, BOT_CONTENT_DIR)."""
    global _catalogs
    _catalogs = Catalogs(content_dir)
    _environment.cache_clear()


def resolve_lang(lang: str | None) -> str:
    lang = lang or current_lang.get()
    return lang if lang in LANGS else "en"


@contextmanager
def use_lang(lang: str) -> Iterator[str]:
    """Run a block with ``lang`` as the current language."""
    token = current_lang.set(resolve_lang(lang))
    try:
        yield current_lang.get()
    finally:
        current_lang.reset(token)


def t(key: str, lang: str | None = None, /, **params: Any) -> Markup:
    """The text for ``key`` in ``lang`` (default: the current language), placeholders filled
    with HTML-escaped values. The result is safe to send with parse_mode HTML."""
    code = resolve_lang(lang)
    cats = catalogs()
    if key not in cats.messages[code] and key not in cats.messages["en"] and cats.has_plural(key):
        # a plural entry asked for with t(): its number is the count (or days / total) parameter
        number = next((params[p] for p in PLURAL_NUMBER_PARAMS if isinstance(params.get(p), int)), 0)
        text = cats.plural(key, number, code)
    else:
        text = cats.text(key, code)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            return match.group(0)
        return str(escape(params[name]))

    return Markup(PLACEHOLDER_RE.sub(fill, text))


def n(key: str, count: int, lang: str | None = None, /, **params: Any) -> Markup:
    """ngettext: the plural entry ``key`` in the form that ``count`` takes in ``lang`` (default:
    the current language), ``{count}`` and the other placeholders filled (HTML-escaped)."""
    code = resolve_lang(lang)
    text = catalogs().plural(key, count, code)
    values = {"count": count, **params}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return str(escape(values[name]))

    return Markup(PLACEHOLDER_RE.sub(fill, text))


def format_money(amount: Decimal, lang: str | None = None) -> str:
    """``RM1,234.50`` in every language (Malaysians write RM in all three)."""
    locale = BABEL_LOCALES[resolve_lang(lang)]
    sign = "-" if amount < 0 else ""
    with localcontext() as ctx:  # a typed 10^30 must not overflow the default 28 digits
        ctx.prec = max(ctx.prec, amount.adjusted() + 6)
        return f"{sign}RM{format_decimal(abs(amount), format='#,##0.00', locale=locale)}"


def format_month(year: int, month: int, lang: str | None = None) -> str:
    """``November 2026`` / ``November 2026`` / ``2026年11月``."""
    from babel.dates import format_skeleton  # noqa: PLC0415 - see warm_up

    locale = BABEL_LOCALES[resolve_lang(lang)]
    return format_skeleton("yMMMM", dt.date(year, month, 1), locale=locale)


def format_date(day: dt.date, lang: str | None = None) -> str:
    """``25 November 2026`` / ``25 November 2026`` / ``2026年11月25日``."""
    from babel.dates import format_date as babel_format_date  # noqa: PLC0415 - see warm_up

    locale = BABEL_LOCALES[resolve_lang(lang)]
    return babel_format_date(day, format="long", locale=locale)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415 - see warm_up

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(catalogs().content_dir / "templates")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(t=_template_t, money=_template_money, month=_template_month)
    return env


def _template_t(key: str, **params: Any) -> Markup:
    return t(key, **params)


def _template_money(amount: Decimal) -> str:
    return format_money(amount)


def _template_month(year: int, month: int) -> str:
    return format_month(year, month)


def render(template_name: str, lang: str | None = None, /, **context: Any) -> str:
    """Render ``content/templates/<template_name>`` in ``lang`` (default: current language)."""
    with use_lang(resolve_lang(lang)):
        template = _environment().get_template(template_name)
        return template.render(**context).strip()


def warm_up() -> None:
    """Import Jinja2 and set up the template environment: imported on first use, not at
    start-up (~30 ms of CPU the first getUpdates need not wait for); ``bot.app`` calls this in
    a worker thread just after the bot starts. (Babel's locale data is left to the first date
    or amount formatted, as before: a few MB that a bot answering only questions never needs.)"""
    _environment()


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders used in a catalog text."""
    return set(PLACEHOLDER_RE.findall(text))
