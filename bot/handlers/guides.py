"""Guides in the chat: /guides, the topic menus, step-by-step navigation, feedback, and the
answer to a free-text question (:func:`answer_question`, called by ``bot.handlers.text``).

Every button carries what it needs, so buttons keep working after a restart and on old
messages (the kinds of ``bot.callbacks``: GuideStep, GuideAll, GuideTopic, GuideMenu,
GuideFeedback, GuideAsk, GuideLanguage; at most 64 bytes, checked there):

``g:<id>:<step>:<lang>``   show a step (1-based)      ``ga:<id>:<lang>``     all steps
``gt:<topic>:<lang>``      a topic's guides           ``gm:<lang>``          guides menu
``gf:<id>:<lang>:1|0``     👍/👎 feedback              ``gq:<lang>``          "ask another question"
``gd:<lang>``              make that language the user's default

Length (over 500 lines): the guide screens and every button on them, the free-text answer
(open, "not sure", "no guide", yes/no, two topics) and ``GuideData``, which loads the guides
and builds the matcher on first use; its ``# ---`` sections (services, views, handlers,
setup) are the seams to split along.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.callbacks import (
    GUIDE_BUTTONS,
    CallbackData,
    GuideAll,
    GuideAsk,
    GuideFeedback,
    GuideLanguage,
    GuideMenu,
    GuideStep,
    GuideTopic,
    Menu,
    OneOf,
)
from bot.dbhealth import alarm_for
from bot.domain.guides import TOPICS, Guide, GuideLibrary, load_guides
from bot.handlers.common import (
    BotContext,
    edit_or_reply,
    keyboard,
    reply,
    send_main_menu,
    services_of,
)
from bot.i18n import LANGS, current_lang, format_date, render, t, use_lang
from bot.storage import DatabaseError

if TYPE_CHECKING:
    from bot.domain.matcher import Matcher  # imported with the first build (rapidfuzz and all)

log = logging.getLogger(__name__)

COMMANDS = [("guides", "cmd.guides")]

MAX_MESSAGE = 4096


# --------------------------------------------------------------------------- services


def library(context: BotContext) -> GuideLibrary:
    return context.services.guides


def matcher(context: BotContext) -> Matcher:
    return context.services.matcher


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class View:
    """A message to send or edit to: HTML text and its inline keyboard."""

    text: str
    markup: InlineKeyboardMarkup | None


def topic_label(topic: str, lang: str) -> str:
    return str(t(f"guides.topic.{topic}", lang)) if topic in TOPICS else topic


_menu_views: weakref.WeakKeyDictionary[GuideLibrary, dict[str, View]] = weakref.WeakKeyDictionary()


def menu_view(lib: GuideLibrary, lang: str) -> View:
    """Every topic with its guides' titles; one button per topic (built once per library and
    language: the no-match answer shows it on every unanswered message)."""
    views = _menu_views.setdefault(lib, {})
    if lang not in views:
        views[lang] = _build_menu_view(lib, lang)
    return views[lang]


def _build_menu_view(lib: GuideLibrary, lang: str) -> View:
    groups = lib.by_topic(lang)
    topics = [(topic_label(topic, lang), guides) for topic, guides in groups.items()]
    text = render("guides_menu.html", lang, topics=topics)
    rows = [[(topic_label(topic, lang), GuideTopic(topic, lang).pack())] for topic in groups]
    rows.append([(str(t("menu.main", lang)), Menu("main").pack())])
    return View(text, keyboard(rows))


def topic_view(lib: GuideLibrary, topic: str, lang: str) -> View | None:
    guides = lib.by_topic(lang).get(topic)
    if not guides:
        return None
    text = f"<b>{Markup.escape(topic_label(topic, lang))}</b>\n{t('guides.topic_prompt', lang)}"
    rows: list[list[tuple[str, str]]] = [[(g.title, GuideStep(g.id, 1, lang).pack())] for g in guides]
    rows.append([(str(t("guides.topics_back", lang)), GuideMenu(lang).pack())])
    return View(text, keyboard(rows))


def _end_rows(lib: GuideLibrary, guide: Guide, lang: str, step_links: set[str]) -> list[list]:
    """The buttons that close a guide: links not shown yet, 👍/👎, related guides, ask again."""
    rows: list[list] = []
    for link in guide.links:
        if link.url and link.url not in step_links:
            rows.append([InlineKeyboardButton(link.label, url=link.url)])
    rows.append(
        [
            (str(t("guides.helpful_yes", lang)), GuideFeedback(guide.id, lang, True).pack()),
            (str(t("guides.helpful_no", lang)), GuideFeedback(guide.id, lang, False).pack()),
        ]
    )
    for rid in guide.related:
        related = lib.get(rid, lang)
        if related is not None:
            rows.append([(f"➡️ {related.title}", GuideStep(rid, 1, lang).pack())])
    rows.append([(str(t("guides.ask_another", lang)), GuideAsk(lang).pack())])
    return rows


def step_view(
    lib: GuideLibrary, guide: Guide, n: int, lang: str, *, offer_lang: str | None = None
) -> View:
    """Step ``n`` (1-based) of ``guide`` with its navigation; the last step adds the guide's end."""
    total = len(guide.steps)
    step = guide.steps[n - 1]
    last = n == total
    text = render(
        "guide_step.html",
        lang,
        guide=guide,
        n=n,
        total=total,
        step_html=Markup(step.html),
        last=last,
        reviewed=format_date(guide.reviewed, lang),
    )
    rows: list[list] = []
    shown: set[str] = set()
    for link in guide.links:
        if link.step == n and link.url:
            rows.append([InlineKeyboardButton(link.label, url=link.url)])
            shown.add(link.url)
    nav = []
    if n > 1:
        nav.append((str(t("guides.back", lang)), GuideStep(guide.id, n - 1, lang).pack()))
    if n < total:
        nav.append((str(t("guides.next", lang)), GuideStep(guide.id, n + 1, lang).pack()))
    if nav:
        rows.append(nav)
    if last:
        rows.extend(_end_rows(lib, guide, lang, shown))
    rows.append(
        [
            (str(t("guides.all_steps", lang)), GuideAll(guide.id, lang).pack()),
            (str(t("guides.all_guides", lang)), GuideMenu(lang).pack()),
        ]
    )
    if offer_lang is not None:
        rows.append([(str(t("guides.use_lang", offer_lang)), GuideLanguage(offer_lang).pack())])
    return View(text, keyboard(rows))


def all_steps_views(lib: GuideLibrary, guide: Guide, lang: str) -> list[View]:
    """Every step in as few messages as fit Telegram's 4,096 characters; the end on the last."""
    steps = [(i, Markup(s.html)) for i, s in enumerate(guide.steps, 1)]
    reviewed = format_date(guide.reviewed, lang)

    def text(chunk: list, part: int, parts: int, last: bool) -> str:
        return render(
            "guide_all.html",
            lang,
            guide=guide,
            steps=chunk,
            part=part,
            parts=parts,
            last=last,
            reviewed=reviewed,
        )

    # Greedy packing, measured with a generous "part 9 of 9" header and the footer on each.
    chunks: list[list] = [[]]
    for item in steps:
        trial = [*chunks[-1], item]
        if chunks[-1] and len(text(trial, 9, 9, True)) > MAX_MESSAGE:
            chunks.append([item])
        else:
            chunks[-1] = trial
    views = []
    for i, chunk in enumerate(chunks, 1):
        last = i == len(chunks)
        markup = None
        if last:
            rows = _end_rows(lib, guide, lang, set())
            rows.append(
                [
                    (str(t("guides.back", lang)), GuideStep(guide.id, 1, lang).pack()),
                    (str(t("guides.all_guides", lang)), GuideMenu(lang).pack()),
                ]
            )
            markup = keyboard(rows)
        views.append(View(text(chunk, i, len(chunks), last), markup))
    return views


def no_match_view(lib: GuideLibrary, lang: str) -> View:
    """No guide fits: say so, name the helpline, and show the guides menu."""
    menu = menu_view(lib, lang)
    return View(f"{t('understand.no_guide', lang)}\n\n{menu.text}", menu.markup)


def suggestions_view(
    lib: GuideLibrary, ids: tuple[str, ...], lang: str, key: str = "understand.not_sure"
) -> View | None:
    """"Not sure" (or "two things"): the guides as buttons, then all guides and the menu."""
    rows: list[list[tuple[str, str]]] = []
    for gid in ids[:3]:
        guide = lib.get(gid, lang)
        if guide is not None:
            rows.append([(guide.title, GuideStep(gid, 1, lang).pack())])
    if not rows:
        return None
    rows.append(
        [
            (str(t("guides.all_guides", lang)), GuideMenu(lang).pack()),
            (str(t("menu.main", lang)), Menu("main").pack()),
        ]
    )
    return View(str(t(key, lang)), keyboard(rows))


# --------------------------------------------------------------------------- handlers


async def _send(update: Update, context: BotContext, view: View) -> None:
    await reply(update, context, view.text, view.markup)


async def guides_command(update: Update, context: BotContext) -> None:
    """``/guides``: the menu; ``/guides <question>`` answers the question."""
    if context.args:
        await answer_question(update, context, " ".join(context.args))
        return
    await _send(update, context, menu_view(library(context), current_lang.get()))


async def menu_guides(update: Update, context: BotContext) -> None:
    """The main menu's Guides button (already answered): show the menu in place."""
    view = menu_view(library(context), current_lang.get())
    await edit_or_reply(update, context, view.text, view.markup)


async def answer_question(update: Update, context: BotContext, text: str) -> None:
    """Answer a typed question: the guide (with its short answer to a yes/no question first),
    both guides of a two-topic question, "not sure" choices, or "no guide" and the helpline."""
    user_lang = current_lang.get()
    lib = library(context)
    found = matcher(context).match(text, user_lang)
    lang = found.lang if found.lang in LANGS else user_lang
    with use_lang(lang):
        if found.guide is not None:
            guide = lib.get(found.guide, lang)
            if guide is not None and guide.steps:
                offer = lang if found.lang_confident and lang != user_lang else None
                view = step_view(lib, guide, 1, lang, offer_lang=offer)
                if found.answer:
                    view = View(f"<b>{Markup.escape(found.answer)}</b>\n\n{view.text}", view.markup)
                await _send(update, context, view)
                return
        if found.both:
            view = suggestions_view(lib, found.both, lang, "understand.two_topics")
            if view is not None:
                await _send(update, context, view)
                return
        if found.band == "unsure":
            view = suggestions_view(lib, found.suggestions, lang)
            if view is not None:
                await _send(update, context, view)
                return
        try:  # logged before the answer goes out, so the log is complete once it is seen
            context.services.storage.log_unanswered(text, lang, "no-match")
        except DatabaseError as exc:  # the answer matters more than the log
            alarm_for(context.services.storage).failure(exc, "logging an unanswered question")
        await _send(update, context, no_match_view(lib, lang))


async def _stale(update: Update, context: BotContext, user_lang: str) -> None:
    """A forged, truncated or outdated button: a polite answer in the user's language and the
    main menu; the pressed message stays as it is."""
    query = update.callback_query
    assert query is not None
    with use_lang(user_lang):
        await query.answer(t("error.stale_button"))
        await send_main_menu(update, context)


# Buttons only guide messages carry: a pressed message with one of these is a guide's own
# message and is edited in place; any other (a calculator result, a reminder) is kept and
# the guide opens as a new message below it.
_OWN_KINDS = OneOf(GuideAll, GuideMenu, GuideTopic, GuideAsk)


def _is_guide_message(update: Update) -> bool:
    query = update.callback_query
    markup = getattr(query.message, "reply_markup", None) if query else None
    if markup is None:
        return True  # nothing on screen to keep (e.g. the first part of "All steps")
    return any(
        _OWN_KINDS.parse(button.callback_data) is not None
        for row in markup.inline_keyboard
        for button in row
    )


async def _edit(update: Update, context: BotContext, view: View) -> None:
    if not _is_guide_message(update):
        await _send(update, context, view)
        return
    try:
        await edit_or_reply(update, context, view.text, view.markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def _without_buttons(update: Update, kind: type[CallbackData]) -> None:
    """Remove the buttons of ``kind`` from the pressed message."""
    query = update.callback_query
    message = query.message if query else None
    markup = getattr(message, "reply_markup", None)
    if query is None or markup is None:
        return
    rows = [
        [b for b in row if kind.parse(b.callback_data) is None]
        for row in markup.inline_keyboard
    ]
    rows = [row for row in rows if row]
    if sum(map(len, rows)) == sum(map(len, markup.inline_keyboard)):
        return  # nothing to remove (a replay, or a press forged onto another message)
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except BadRequest as exc:
        log.info("could not update the buttons: %s", exc)


_FEEDBACK_SEEN = "guides_feedback_seen"  # chat_data: messages whose 👍/👎 was counted


def _first_feedback(update: Update, context: BotContext) -> bool:
    """True once per message: the pressed message shows this 👍/👎 button and gave none yet."""
    query = update.callback_query
    message = query.message if query else None
    markup = getattr(message, "reply_markup", None)
    if query is None or markup is None or context.chat_data is None:
        return False
    if not any(b.callback_data == query.data for row in markup.inline_keyboard for b in row):
        return False
    seen: list[int] = context.chat_data.setdefault(_FEEDBACK_SEEN, [])
    if message.message_id in seen:
        return False
    seen.append(message.message_id)
    del seen[:-50]
    return True


async def on_button(update: Update, context: BotContext) -> None:
    """Every ``g*:`` button (see the module docstring)."""
    query = update.callback_query
    assert query is not None
    user_lang = current_lang.get()
    pressed = GUIDE_BUTTONS.parse(query.data)
    if pressed is None:
        await _stale(update, context, user_lang)
        return
    lib = library(context)
    lang: str = pressed.lang  # type: ignore[attr-defined]  # every guide button names its language
    with use_lang(lang):
        if isinstance(pressed, GuideStep):
            guide = lib.get(pressed.guide, lang)
            n = pressed.step
            if guide is None or not 1 <= n <= len(guide.steps):
                await _stale(update, context, user_lang)
                return
            await query.answer()
            await _edit(update, context, step_view(lib, guide, n, lang))
        elif isinstance(pressed, GuideAll):
            guide = lib.get(pressed.guide, lang)
            if guide is None or not guide.steps:
                await _stale(update, context, user_lang)
                return
            await query.answer()
            first, *rest = all_steps_views(lib, guide, lang)
            await _edit(update, context, first)
            for view in rest:
                await _send(update, context, view)
        elif isinstance(pressed, GuideTopic):
            view = topic_view(lib, pressed.topic, lang)
            if view is None:
                await _stale(update, context, user_lang)
                return
            await query.answer()
            await _edit(update, context, view)
        elif isinstance(pressed, GuideMenu):
            await query.answer()
            await _edit(update, context, menu_view(lib, lang))
        elif isinstance(pressed, GuideFeedback):
            guide = lib.get(pressed.guide, lang)
            if guide is None:
                await _stale(update, context, user_lang)
                return
            helpful = pressed.helpful
            if not _first_feedback(update, context):  # replayed, forged or on another message
                await query.answer(t("guides.thanks_yes" if helpful else "guides.thanks_no"))
                return
            storage = context.services.storage
            storage.record_feedback(guide.id, lang, helpful)
            if not helpful:
                storage.log_unanswered(guide.title, lang, "thumbs-down", guide_id=guide.id)
            await query.answer(t("guides.thanks_yes" if helpful else "guides.thanks_no"))
            await _without_buttons(update, GuideFeedback)
        elif isinstance(pressed, GuideAsk):
            await query.answer()
            await reply(update, context, t("guides.ask_prompt"))
        elif isinstance(pressed, GuideLanguage):
            chat = update.effective_chat
            assert chat is not None
            context.services.storage.set_language(chat.id, lang)
            await query.answer(t("guides.lang_set"))
            await _without_buttons(update, GuideLanguage)


# --------------------------------------------------------------------------- setup


# Guides and matcher per content folder, shared by every Application built in this process (the
# tests build hundreds); the key includes each guide file's size and mtime, so an edited guide
# is loaded afresh. Both objects are read-only once built. The matcher (its BM25 indexes, ~0.3 s
# of CPU) is built on first use, not at start-up: see :class:`GuideData`.
_LOADED: dict[tuple[object, ...], _Loaded] = {}
_LOADED_LOCK = threading.Lock()


class _Loaded:
    """One version of a content folder: its guides, and their matcher once something asks."""

    def __init__(self, library: GuideLibrary) -> None:
        self.library = library
        self._matcher: Matcher | None = None
        self._lock = threading.Lock()

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            with self._lock:  # a second caller (the warm-up thread, a question) waits for the first
                if self._matcher is None:
                    from bot.domain.matcher import Matcher  # noqa: PLC0415 - not at start-up

                    self._matcher = Matcher.build(self.library)
        return self._matcher

    @property
    def matcher_built(self) -> bool:
        return self._matcher is not None


def _content_key(content_dir: Path) -> tuple[object, ...]:
    files = sorted(content_dir.glob("*/guides/*.md"))
    return (content_dir.resolve(), *((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))


def _loaded(content_dir: Path) -> _Loaded:
    key = _content_key(content_dir)
    with _LOADED_LOCK:
        if key not in _LOADED:
            lib = load_guides(content_dir)
            if len(_LOADED) >= 4:  # a few versions at most (tests use temporary content folders)
                del _LOADED[next(iter(_LOADED))]
            _LOADED[key] = _Loaded(lib)
            log.info("loaded %d guides (%s)", len(lib), ", ".join(lib.langs()))
        return _LOADED[key]


def load_library(content_dir: Path) -> tuple[GuideLibrary, Matcher]:
    """The guides under ``content_dir`` and their matcher, loaded once per version of the files."""
    loaded = _loaded(content_dir)
    return loaded.library, loaded.matcher


class GuideData:
    """The guides of one Application and their matcher, each loaded on first use.

    ``services.guides`` and ``services.matcher`` read through this object (bot/handlers/common.py).
    Nothing at start-up needs them, so the bot polls without waiting ~0.35 s for the guide files
    and the matcher's indexes; :func:`warm` builds both in a worker thread once the bot is up
    (``bot.app.start_warm_up``), so the first question does not pay for them either.
    Thread-safe: a question that comes while the warm-up is still building waits for that
    build, never starts a second.
    """

    def __init__(self, content_dir: Path) -> None:
        self.content_dir = content_dir
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    def _get(self) -> _Loaded:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = _loaded(self.content_dir)
        return self._loaded

    @property
    def library(self) -> GuideLibrary:
        return self._get().library

    @property
    def matcher(self) -> Matcher:
        return self._get().matcher

    @property
    def ready(self) -> bool:
        """Whether both are built (a question would not wait)."""
        return self._loaded is not None and self._loaded.matcher_built

    def warm(self) -> None:
        """Load the guides and build the matcher now (blocking; for a worker thread)."""
        self._get().matcher  # noqa: B018 - the property builds it


def warm(app: Application) -> None:
    """Load the guides and build the matcher (``bot.app`` runs this in a worker thread just
    after the bot starts, so the first question does not pay for it)."""
    data = services_of(app).guide_data
    if data is not None:
        data.warm()


def build_services(app: Application) -> None:
    """Give ``services`` the guides and matcher of its content folder, loaded on first use."""
    svc = services_of(app)
    svc.guide_data = GuideData(svc.config.content_dir)


def register(app: Application) -> None:
    build_services(app)
    app.add_handler(CommandHandler("guides", guides_command))
    app.add_handler(CallbackQueryHandler(on_button, pattern=GUIDE_BUTTONS.pattern()))


__all__ = [
    "COMMANDS",
    "GuideData",
    "answer_question",
    "register",
    "warm",
    "step_view",
    "menu_view",
]
