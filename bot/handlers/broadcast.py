"""/broadcast: staff (own agency) and operators (any agency, or everyone) compose, preview,

Longer than ~500 lines on purpose: the compose conversation (target, one or per-language
versions, audience, preview, confirm, schedule, cancel) is one ConversationHandler whose steps
share the draft; the lifecycle decisions live in bot/agencies.py, and tests set
PROGRESS_INTERVAL on this module. A split would put each step's handler in its own file.
confirm, schedule, follow and cancel broadcasts.

Compose is a per-user ConversationHandler (its state lives in memory: after a restart the user
simply starts again); a confirmed broadcast is outbox rows written in one transaction
(:meth:`bot.agencies.AgencyService.create_broadcast`) and survives anything. Every button is
checked again on the server side. Callback data (all under ``bc:``): ``bc:t:<code>|*`` target,
``bc:m:one|each`` one message or one per language, ``bc:skip`` skip a language (fallback),
``bc:a:all|<lang>`` audience, ``bc:send``, ``bc:sched``, ``bc:cancel``, ``bc:x:<id>`` cancel a
confirmed broadcast. One repeating job (every :data:`PROGRESS_INTERVAL` s while a broadcast is
scheduled, sending or being cancelled) edits each progress message and sends the final report.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.agencies import (
    ACTIVE_STATES,
    AgencyError,
    AgencyService,
    choose_version,
    is_operator,
    sendable_html,
    version_overflow,
)
from bot.callbacks import (
    BROADCAST,
    BroadcastAudience,
    BroadcastCancel,
    BroadcastCancelDraft,
    BroadcastMode,
    BroadcastSchedule,
    BroadcastSend,
    BroadcastSkip,
    BroadcastTarget,
)
from bot.domain.clock import parse_utc, parse_utc_or_none, utc_now, utc_text
from bot.handlers.common import BotContext, keyboard, reply, services_of
from bot.i18n import LANG_NAMES, LANGS, resolve_lang, t, use_lang
from bot.i18n import n as plural
from bot.outbox import send_payload

log = logging.getLogger(__name__)

TARGET, MODE, COLLECT, AUDIENCE, PREVIEW, WHEN = range(6)
PROGRESS_INTERVAL = 2.0
JOB_NAME = "broadcast.progress"
DRAFT = "broadcast_draft"
WHEN_FORMAT = "%Y-%m-%d %H:%M"
MAX_TARGETS = 20


def _service(context: BotContext) -> AgencyService:
    return AgencyService(context.services.storage)


def _user_id(update: Update) -> int:
    return update.effective_user.id if update.effective_user else 0


def _operator(update: Update, context: BotContext) -> bool:
    return is_operator(_user_id(update), context.services.config.admin_ids)


def _draft(context: BotContext) -> dict[str, Any]:
    assert context.user_data is not None
    return context.user_data.setdefault(DRAFT, {})


def _clear(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(DRAFT, None)


def _cancel_row() -> list[tuple[str, str]]:
    return [(str(t("broadcast.button_cancel")), BroadcastCancelDraft().pack())]


def _targets(update: Update, context: BotContext) -> list[tuple[str | None, str]]:
    """(agency code or None for everyone, label) the user may broadcast to."""
    service = _service(context)
    if _operator(update, context):
        rows = service.list_agencies()[:MAX_TARGETS]
        return [(None, str(t("broadcast.target_everyone")))] + [(r["code"], r["name"]) for r in rows]
    return [(a.code, a.name) for a in service.staff_agencies(_user_id(update))]


def _allowed(update: Update, context: BotContext, code: str | None) -> bool:
    return _service(context).may_broadcast(_user_id(update), code, _operator(update, context))


async def _answer(update: Update, text: Any = None) -> None:
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(str(text) if text else None)
        except TelegramError as exc:
            log.debug("could not answer a callback: %s", exc)


def _lang_counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{LANG_NAMES[lang]}: {n}" for lang, n in counts.items())


# --- entry: /broadcast [status | cancel [ID]] -------------------------------------------------


async def broadcast_command(update: Update, context: BotContext) -> int:
    args = [a.lower() for a in (context.args or [])]
    staff_or_operator = _operator(update, context) or bool(
        _service(context).staff_agencies(_user_id(update))
    )
    if not staff_or_operator:
        await reply(update, context, t("broadcast.not_allowed"))
        return ConversationHandler.END
    if args and args[0] == "status":
        await _status(update, context)
        return ConversationHandler.END
    if args and args[0] == "cancel":
        await _cancel_confirmed(update, context, args[1] if len(args) > 1 else None)
        return ConversationHandler.END
    _clear(context)
    targets = _targets(update, context)
    if len(targets) == 1:
        return await _target_chosen(update, context, targets[0][0])
    rows = [[(label[:60], BroadcastTarget(code).pack())] for code, label in targets]
    await reply(update, context, t("broadcast.choose_target"), keyboard([*rows, _cancel_row()]))
    return TARGET


async def in_conversation_command(update: Update, context: BotContext) -> int | None:
    """``/broadcast status|cancel`` during compose keeps the draft; plain ``/broadcast`` restarts."""
    args = [a.lower() for a in (context.args or [])]
    if args and args[0] in ("status", "cancel"):
        if args[0] == "status":
            await _status(update, context)
        else:
            await _cancel_confirmed(update, context, args[1] if len(args) > 1 else None)
        return None
    return await broadcast_command(update, context)


async def on_target(update: Update, context: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None
    pressed = BroadcastTarget.parse(query.data)
    code = pressed.code if pressed else None
    if pressed is None or not _allowed(update, context, code):
        await _answer(update, t("broadcast.not_allowed"))
        return None
    await _answer(update)
    return await _target_chosen(update, context, code)


async def _target_chosen(update: Update, context: BotContext, code: str | None) -> int:
    service = _service(context)
    counts = service.audience_by_lang(code)
    if not counts:
        await reply(update, context, t("broadcast.no_followers"))
        _clear(context)
        return ConversationHandler.END
    agency = service.get_agency(code) if code else None
    draft = _draft(context)
    draft.update(target=code, versions={}, counts=counts, audience="all", when=None)
    name = agency.name if agency else str(t("broadcast.target_everyone"))
    if len(counts) == 1:
        draft["mode"] = "one"
        draft["pending"] = [next(iter(counts))]
        return await _ask_message(update, context)
    await reply(
        update,
        context,
        t("broadcast.ask_mode", target=name, total=sum(counts.values()), langs=_lang_counts_text(counts)),
        keyboard(
            [
                [(str(t("broadcast.mode_one")), BroadcastMode("one").pack())],
                [(str(t("broadcast.mode_each")), BroadcastMode("each").pack())],
                _cancel_row(),
            ]
        ),
    )
    return MODE


async def on_mode(update: Update, context: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None
    draft = _draft(context)
    pressed = BroadcastMode.parse(query.data)
    if pressed is None or "counts" not in draft:
        await _answer(update, t("broadcast.stale"))
        return None
    await _answer(update)
    mode = draft["mode"] = pressed.mode
    langs = [lang for lang in LANGS if lang in draft["counts"]]
    draft["pending"] = langs if mode == "each" else ["en"]
    return await _ask_message(update, context)


async def _ask_message(update: Update, context: BotContext) -> int:
    draft = _draft(context)
    lang = draft["pending"][0]
    rows = []
    if draft["mode"] == "each" and draft["versions"]:
        rows.append([(str(t("broadcast.button_skip")), BroadcastSkip().pack())])
    rows.append(_cancel_row())
    if draft["mode"] == "one":
        text = t("broadcast.ask_message_one")
    else:
        text = t("broadcast.ask_message", language=LANG_NAMES[lang], count=draft["counts"].get(lang, 0))
    await reply(update, context, text, keyboard(rows))
    return COLLECT


async def on_message(update: Update, context: BotContext) -> int:
    message = update.effective_message
    draft = _draft(context)
    if message is None or not draft.get("pending"):
        return ConversationHandler.END
    version = _version_of(message)
    agency = _service(context).get_agency(draft["target"]) if draft.get("target") else None
    overflow = version_overflow(version, agency)
    if overflow is not None:  # too long with the header: say so, and wait for a shorter one
        key = "broadcast.text_too_long" if "text" in version else "broadcast.caption_too_long"
        length, limit = overflow
        await reply(update, context, t(key, length=length, limit=limit), keyboard([_cancel_row()]))
        return COLLECT
    lang = draft["pending"].pop(0)
    draft["versions"][lang] = version
    return await _next_after_message(update, context)


def _version_of(message: Message) -> dict[str, Any]:
    """A broadcast version from the agency's message: a text is kept as Telegram HTML (its
    formatting as entities made tags, the rest escaped) and sent with the header line; a photo
    or document is copied, its caption kept as HTML below the header line."""
    if message.text is not None:
        return {"text": sendable_html(message.text_html)}
    caption = sendable_html(message.caption_html) if message.caption else ""
    return {"copy": [message.chat_id, message.message_id], "caption": caption}


async def on_unsupported(update: Update, context: BotContext) -> None:
    await reply(update, context, t("broadcast.unsupported_message"))


async def on_skip(update: Update, context: BotContext) -> int | None:
    draft = _draft(context)
    if draft.get("mode") != "each" or not draft.get("versions") or not draft.get("pending"):
        await _answer(update, t("broadcast.stale"))
        return None
    await _answer(update)
    draft["pending"].pop(0)
    return await _next_after_message(update, context)


async def _next_after_message(update: Update, context: BotContext) -> int:
    draft = _draft(context)
    if draft["pending"]:
        return await _ask_message(update, context)
    counts = draft["counts"]
    if len(counts) == 1:
        draft["audience"] = "all"
        return await _preview(update, context)
    rows = [[(str(t("broadcast.audience_all", count=sum(counts.values()))), BroadcastAudience("all").pack())]]
    rows += [
        [(str(t("broadcast.audience_lang", language=LANG_NAMES[lang], count=n)), BroadcastAudience(lang).pack())]
        for lang, n in counts.items()
    ]
    await reply(update, context, t("broadcast.ask_audience"), keyboard([*rows, _cancel_row()]))
    return AUDIENCE


async def on_audience(update: Update, context: BotContext) -> int | None:
    query = update.callback_query
    assert query is not None
    draft = _draft(context)
    pressed = BroadcastAudience.parse(query.data)
    audience = pressed.audience if pressed else ""
    if "counts" not in draft or (audience != "all" and audience not in draft["counts"]):
        await _answer(update, t("broadcast.stale"))
        return None
    await _answer(update)
    draft["audience"] = audience
    return await _preview(update, context)


def _recipients_per_version(draft: dict[str, Any]) -> tuple[dict[str, int], int]:
    """{version lang: recipients who get it}, total, for the draft's audience."""
    per: dict[str, int] = {}
    for lang, n in draft["counts"].items():
        if draft["audience"] not in ("all", lang):
            continue
        version = choose_version(draft["versions"], lang)
        if version is not None:
            per[version] = per.get(version, 0) + n
    return per, sum(per.values())


async def _preview(update: Update, context: BotContext) -> int:
    """Send each version back exactly as followers will get it: the same payload (header line
    naming the agency, text or copied media, unfollow button) through the same send path."""
    draft = _draft(context)
    chat = update.effective_chat
    assert chat is not None
    agency = _service(context).get_agency(draft["target"]) if draft["target"] else None
    per, total = _recipients_per_version(draft)
    if agency is None:  # "Everyone": say who that is
        await reply(update, context, t("broadcast.preview_everyone", recipients=plural("plural.recipients", total)))
    for version, content in draft["versions"].items():
        if version not in per:
            continue
        label = LANG_NAMES[version] if draft["mode"] == "each" else str(t("broadcast.all_languages"))
        await reply(update, context, t("broadcast.preview_header", language=label, count=per[version]))
        # one message for every language: shown in the agency's own language
        shown = version if draft["mode"] == "each" else resolve_lang(None)
        await send_payload(context.bot, chat.id, AgencyService.payload(content, agency, shown))
    await _show_confirm(update, context, total)
    return PREVIEW


async def _show_confirm(update: Update, context: BotContext, total: int) -> None:
    draft = _draft(context)
    when = draft.get("when")
    if when is None:
        text = t("broadcast.confirm_now", count=total)
        rows = [
            [(str(t("broadcast.button_send")), BroadcastSend().pack())],
            [(str(t("broadcast.button_schedule")), BroadcastSchedule().pack())],
        ]
    else:
        local = parse_utc(when).astimezone(context.services.config.tz)
        text = t("broadcast.confirm_scheduled", count=total, when=local.strftime(WHEN_FORMAT))
        rows = [[(str(t("broadcast.button_confirm_schedule")), BroadcastSend().pack())]]
    await reply(update, context, text, keyboard([*rows, _cancel_row()]))


async def on_schedule(update: Update, context: BotContext) -> int | None:
    if "versions" not in _draft(context):
        await _answer(update, t("broadcast.stale"))
        return None
    await _answer(update)
    example = utc_now().astimezone(context.services.config.tz).replace(minute=0).strftime(WHEN_FORMAT)
    await reply(update, context, t("broadcast.ask_when", example=example), keyboard([_cancel_row()]))
    return WHEN


def parse_when(text: str, tz: Any, now: datetime | None = None) -> datetime | str:
    """``2026-12-01 09:00`` in ``tz`` -> aware datetime, or the message key of the problem."""
    try:
        moment = datetime.strptime(" ".join(text.split()), WHEN_FORMAT).replace(tzinfo=tz)
    except ValueError:
        return "broadcast.bad_when"
    if moment <= (now or utc_now()):
        return "broadcast.past_when"
    return moment


async def on_when(update: Update, context: BotContext) -> int | None:
    message = update.effective_message
    assert message is not None and message.text is not None
    result = parse_when(message.text, context.services.config.tz)
    if isinstance(result, str):
        await reply(update, context, t(result), keyboard([_cancel_row()]))
        return None
    draft = _draft(context)
    draft["when"] = utc_text(result)
    _, total = _recipients_per_version(draft)
    await _show_confirm(update, context, total)
    return PREVIEW


async def on_send(update: Update, context: BotContext) -> int | None:
    """Confirmed: every outbox row in one transaction; then the progress message."""
    draft = _draft(context)
    chat = update.effective_chat
    if "versions" not in draft or not draft["versions"] or chat is None:
        await _answer(update, t("broadcast.stale"))
        return None
    if not _allowed(update, context, draft["target"]):  # roles may have changed meanwhile
        await _answer(update, t("broadcast.not_allowed"))
        _clear(context)
        return ConversationHandler.END
    await _answer(update)
    try:
        await update.callback_query.edit_message_reply_markup(None)  # type: ignore[union-attr]
    except TelegramError as exc:
        log.debug("could not remove the confirm buttons: %s", exc)
    when = parse_utc_or_none(draft.get("when"))
    if when is not None and when <= utc_now():
        when = None  # the chosen time passed while confirming: send now
    outbox = context.services.outbox
    service = _service(context)
    progress = None
    if when is None:
        progress = await context.bot.send_message(chat.id, t("broadcast.starting"), parse_mode=ParseMode.HTML)
    try:
        broadcast_id, count = service.create_broadcast(
            outbox,
            agency=draft["target"],
            created_by=_user_id(update),
            versions=draft["versions"],
            audience=draft["audience"],
            scheduled_at=when,
            progress_chat_id=chat.id,
            progress_message_id=progress.message_id if progress else None,
        )
    except AgencyError as exc:
        await reply(update, context, t(exc.key))
        _clear(context)
        return ConversationHandler.END
    _clear(context)
    log.info("broadcast %s confirmed: %d recipients, scheduled=%s", broadcast_id, count, when)
    if when is not None:
        local = when.astimezone(context.services.config.tz)
        await reply(update, context, t("broadcast.scheduled", id=broadcast_id, count=count,
                                       when=local.strftime(WHEN_FORMAT)))
    ensure_job(context.application)
    return ConversationHandler.END


async def on_cancel_draft(update: Update, context: BotContext) -> int:
    await _answer(update)
    _clear(context)
    await reply(update, context, t("broadcast.draft_cancelled"))
    return ConversationHandler.END


async def on_stale_in_conversation(update: Update, context: BotContext) -> None:
    await _answer(update, t("broadcast.stale"))


async def use_buttons(update: Update, context: BotContext) -> None:
    await reply(update, context, t("broadcast.use_buttons"), keyboard([_cancel_row()]))


async def outside_button(update: Update, context: BotContext) -> None:
    """A ``bc:`` button with no compose in progress (another user's, forged or old): refuse."""
    allowed = _operator(update, context) or bool(_service(context).staff_agencies(_user_id(update)))
    await _answer(update, t("broadcast.stale" if allowed else "broadcast.not_allowed"))


# --- status and cancel of confirmed broadcasts ------------------------------------------------


def _status_line(context: BotContext, row: dict[str, Any]) -> str:
    service = _service(context)
    counts = service.progress(context.services.outbox, row["id"])
    agency = service.get_agency(row["agency"]) if row["agency"] else None
    target = agency.name if agency else str(t("broadcast.target_everyone"))
    when = ""
    if row["state"] == "scheduled" and row["scheduled_at"]:
        local = parse_utc_or_none(row["scheduled_at"]).astimezone(context.services.config.tz)  # type: ignore[union-attr]
        when = local.strftime(WHEN_FORMAT)
    return str(
        t(
            "broadcast.status_line",
            id=row["id"],
            target=target,
            state=t(f"broadcast.state_{row['state']}", when=when),
            sent=counts["sent"],
            total=row["recipients"],
            unreachable=counts["unreachable"],
            failed=counts["failed"],
        )
    )


async def _status(update: Update, context: BotContext) -> None:
    rows = _service(context).visible_broadcasts(_user_id(update), _operator(update, context))
    if not rows:
        await reply(update, context, t("broadcast.status_none"))
        return
    lines = [str(t("broadcast.status_header"))] + [_status_line(context, row) for row in rows]
    buttons = [
        [(str(t("broadcast.button_cancel_id", id=row["id"])), BroadcastCancel(row["id"]).pack())]
        for row in rows
        if row["state"] in ACTIVE_STATES
    ]
    await reply(update, context, "\n".join(lines), keyboard(buttons) if buttons else None)


async def _cancel_confirmed(update: Update, context: BotContext, raw_id: str | None) -> None:
    service = _service(context)
    operator = _operator(update, context)
    row = None
    if raw_id is not None:
        if raw_id.isdigit():
            row = service.get_broadcast(int(raw_id))
        if row is not None and not service.may_manage(row, _user_id(update), operator):
            row = None  # never reveal other agencies' broadcasts
    else:
        active = service.visible_broadcasts(_user_id(update), operator, active_only=True, limit=1)
        row = active[0] if active else None
    if row is None or row["state"] not in ACTIVE_STATES:
        await reply(update, context, t("broadcast.nothing_to_cancel"))
        return
    stopped = service.cancel(context.services.outbox, row["id"])
    await reply(update, context, t("broadcast.cancelled", id=row["id"], count=stopped))
    ensure_job(context.application)


async def on_cancel_button(update: Update, context: BotContext) -> None:
    """``bc:x:<id>``: cancel a confirmed broadcast, after checking who pressed it."""
    query = update.callback_query
    assert query is not None
    pressed = BroadcastCancel.parse(query.data)
    service = _service(context)
    row = service.get_broadcast(pressed.broadcast_id) if pressed else None
    if row is None or not service.may_manage(row, _user_id(update), _operator(update, context)):
        await _answer(update, t("broadcast.not_allowed"))
        return
    await _answer(update)
    await _cancel_confirmed(update, context, str(row["id"]))


# --- the progress job --------------------------------------------------------------------------


def ensure_job(app: Application) -> None:
    """Start the progress job unless it runs already."""
    if app.job_queue is None:
        log.warning("no job queue: broadcast progress is not reported")
        return
    if app.job_queue.get_jobs_by_name(JOB_NAME):
        return
    app.job_queue.run_repeating(progress_tick, interval=PROGRESS_INTERVAL, first=0.2, name=JOB_NAME)


async def progress_tick(context: BotContext) -> None:
    """Start due scheduled broadcasts' progress, edit progress messages, send final reports."""
    svc = context.services
    service = AgencyService(svc.storage)
    outbox = svc.outbox
    rows = service.pending_reports()
    if not rows:
        if context.job is not None:
            context.job.schedule_removal()
        return
    now = utc_now()
    for row in rows:
        try:
            await _tick_one(context, service, outbox, row, now)
        except Exception:  # noqa: BLE001 - one broadcast must not stop the others' reports
            log.exception("broadcast %s: progress update failed", row["id"])


async def _tick_one(context: BotContext, service: AgencyService, outbox: Any,
                    row: dict[str, Any], now: datetime) -> None:
    """One broadcast at one tick: the service decides (start, progress, finish), this renders
    and sends."""
    chat_id = row["progress_chat_id"]
    user = context.services.storage.get_user(chat_id) if chat_id else None
    with use_lang(user["lang"] if user else "en"):
        started = service.start_if_due(row, now)
        if started is None:
            return
        if started and chat_id:
            message = await context.bot.send_message(chat_id, t("broadcast.starting"), parse_mode=ParseMode.HTML)
            service.set_progress_message(row["id"], chat_id, message.message_id)
            row["progress_message_id"] = message.message_id
        step = service.progress_step(outbox, row)
        counts = step.counts
        text = str(t("broadcast.progress", id=row["id"], sent=counts["sent"], total=row["recipients"],
                     unreachable=counts["unreachable"], failed=counts["failed"]))
        if service.needs_progress_edit(row, text):
            try:
                await context.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=row["progress_message_id"], parse_mode=ParseMode.HTML
                )
            except BadRequest as exc:
                log.debug("progress message not edited: %s", exc)
            service.set_last_progress(row["id"], text)
        if not step.finished:
            return
        if service.finish(row):
            await context.bot.send_message(
                chat_id,
                t("broadcast.report", id=row["id"], delivered=counts["sent"], unreachable=counts["unreachable"],
                  failed=counts["failed"], cancelled=counts["cancelled"]),
                parse_mode=ParseMode.HTML,
            )


async def start_job(app: Application) -> None:
    if AgencyService(services_of(app).storage).pending_reports():
        ensure_job(app)


# --- wiring ------------------------------------------------------------------------------------


def _guarded(callback: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Run a compose step only while its user may still broadcast to the draft's target:
    a revoked staff member's pending buttons and messages are refused at once."""

    @functools.wraps(callback)
    async def guarded(update: Update, context: BotContext) -> Any:
        draft = context.user_data.get(DRAFT) if context.user_data is not None else None
        if draft and "target" in draft:
            allowed = _allowed(update, context, draft["target"])
        else:
            allowed = _operator(update, context) or bool(
                _service(context).staff_agencies(_user_id(update))
            )
        if allowed:
            return await callback(update, context)
        if update.callback_query is not None:
            await _answer(update, t("broadcast.not_allowed"))
        else:
            await reply(update, context, t("broadcast.not_allowed"))
        _clear(context)
        return ConversationHandler.END

    return guarded


def build_conversation() -> ConversationHandler:
    content = (filters.TEXT & ~filters.COMMAND) | filters.PHOTO | filters.Document.ALL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)  # per_message=False is what we want
        return ConversationHandler(
            entry_points=[CommandHandler("broadcast", broadcast_command)],
            states={
                TARGET: [CallbackQueryHandler(_guarded(on_target), pattern=BroadcastTarget.pattern())],
                MODE: [CallbackQueryHandler(_guarded(on_mode), pattern=BroadcastMode.pattern())],
                COLLECT: [
                    MessageHandler(content & ~filters.UpdateType.EDITED, _guarded(on_message)),
                    CallbackQueryHandler(_guarded(on_skip), pattern=BroadcastSkip.pattern()),
                    MessageHandler(~filters.COMMAND & ~filters.UpdateType.EDITED, _guarded(on_unsupported)),
                ],
                AUDIENCE: [CallbackQueryHandler(_guarded(on_audience), pattern=BroadcastAudience.pattern())],
                PREVIEW: [
                    CallbackQueryHandler(_guarded(on_send), pattern=BroadcastSend.pattern()),
                    CallbackQueryHandler(_guarded(on_schedule), pattern=BroadcastSchedule.pattern()),
                ],
                WHEN: [MessageHandler(filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, _guarded(on_when))],
            },
            fallbacks=[
                CommandHandler("cancel", on_cancel_draft),
                CommandHandler("broadcast", _guarded(in_conversation_command)),
                CallbackQueryHandler(on_cancel_draft, pattern=BroadcastCancelDraft.pattern()),
                CallbackQueryHandler(on_cancel_button, pattern=BroadcastCancel.pattern()),
                CallbackQueryHandler(_guarded(on_stale_in_conversation), pattern=BROADCAST.pattern()),
                MessageHandler(~filters.COMMAND & ~filters.UpdateType.EDITED, _guarded(use_buttons)),
            ],
            name="broadcast",
            allow_reentry=False,
        )


def register(app: Application) -> None:
    app.add_handler(build_conversation())
    app.add_handler(CallbackQueryHandler(on_cancel_button, pattern=BroadcastCancel.pattern()))
    app.add_handler(CallbackQueryHandler(outside_button, pattern=BROADCAST.pattern()))
