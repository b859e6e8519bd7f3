"""Chat with the bot from a terminal through the local Bot API server.

Each typed line becomes a user message (``server.send_text``); every bot message, edit or
deletion in that chat is printed as readable text. Inline buttons are listed as numbered
choices; typing a bare number presses that button of the most recent message with buttons
(a URL button prints its url). ``/file PATH`` sends that file as a document (e.g. a staff
list). ``/quit``, ``/exit`` or end of input leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import IO, Any

from bot.localapi.server import ChatMessage, LocalBotAPI

__all__ = ["ButtonNumbers", "format_buttons", "render_message_text", "run_terminal_chat"]

_ANSI = {
    "bold": ("\033[1m", "\033[22m"),
    "italic": ("\033[3m", "\033[23m"),
    "underline": ("\033[4m", "\033[24m"),
    "strikethrough": ("\033[9m", "\033[29m"),
    "code": ("\033[2m", "\033[22m"),
    "pre": ("\033[2m", "\033[22m"),
}


def render_message_text(
    plain: str | None, entities: list[dict[str, Any]] | None, *, ansi: bool = False
) -> str:
    """Plain text with links shown as "text (url)" and, with ``ansi``, styles as escapes."""
    if not plain:
        return ""
    if not entities:
        return plain
    units = plain.encode("utf-16-le")
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for ent in entities:
        start = ent["offset"]
        end = start + ent["length"]
        kind = ent["type"]
        if kind == "text_link" and ent.get("url"):
            text = units[2 * start : 2 * end].decode("utf-16-le", "replace")
            if text.strip() != ent["url"]:
                closes.setdefault(end, []).insert(0, f" ({ent['url']})")
        elif ansi and kind in _ANSI:
            opens.setdefault(start, []).append(_ANSI[kind][0])
            closes.setdefault(end, []).insert(0, _ANSI[kind][1])
    cuts = sorted(set(opens) | set(closes) | {0, len(units) // 2})
    out: list[str] = []
    for a, b in zip(cuts, cuts[1:] + [cuts[-1]], strict=True):
        out.extend(closes.get(a, ()))
        out.extend(opens.get(a, ()))
        if b > a:
            out.append(units[2 * a : 2 * b].decode("utf-16-le", "replace"))
    return "".join(out)


def format_buttons(msg: ChatMessage, numbers: list[int] | None = None) -> str:
    """The inline keyboard as numbered choices: "[1] Guides  [2] Calculator" (``numbers``:
    the number of each button, default 1, 2, 3...)."""
    parts = []
    for i, button in enumerate(msg.buttons):
        n = numbers[i] if numbers is not None else i + 1
        label = f"[{n}] {button.get('text', '')}"
        if "url" in button:
            label += f" ({button['url']})"
        parts.append(label)
    return "  ".join(parts)


class ButtonNumbers:
    """Button numbers that stay put while a message is edited (the steps of a guide): a label
    keeps the number it had on that message; a new label takes the next unused number. When an
    edit shares no label with what was shown, numbering starts again at 1."""

    def __init__(self) -> None:
        self._by_message: dict[int, dict[str, int]] = {}

    @staticmethod
    def _key(button: dict[str, Any]) -> str:
        return str(button.get("text", ""))

    def numbers(self, msg: ChatMessage) -> list[int]:
        keys = [self._key(b) for b in msg.buttons]
        known = self._by_message.get(msg.message_id, {})
        if not set(keys) & set(known):
            known = {}
        out: list[int] = []
        used = set(known.values())
        for key in keys:
            if key not in known:
                n = 1
                while n in used:
                    n += 1
                known[key] = n
                used.add(n)
            out.append(known[key])
        self._by_message[msg.message_id] = known
        return out

    def button(self, msg: ChatMessage, number: int) -> dict[str, Any] | None:
        """The button of ``msg`` shown with ``number``, if any."""
        for button, n in zip(msg.buttons, self.numbers(msg), strict=True):
            if n == number:
                return button
        return None


def _describe(msg: ChatMessage, ansi: bool) -> str:
    body = render_message_text(msg.plain_text, msg.entities, ansi=ansi)
    if msg.media is not None:
        kind = msg.media.get("type", "file")
        name = msg.media.get("file_name")
        tag = f"[{kind}{': ' + name if name else ''}]"
        body = f"{tag} {body}".rstrip()
    return body


class _LineReader:
    """Read lines without blocking the event loop (fd reader when possible, else a thread)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._fd: int | None = None
        self._buffer = b""
        self._eof = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self._fd = stream.fileno()

    async def readline(self) -> str:
        """The next line including its newline; "" at end of input."""
        if self._fd is None:
            return await asyncio.to_thread(self._stream.readline)
        while b"\n" not in self._buffer and not self._eof:
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[None] = loop.create_future()
            try:
                loop.add_reader(self._fd, _set_once, ready)
            except (OSError, ValueError, NotImplementedError):
                self._fd = None  # e.g. a regular file: epoll can't watch it
                return await asyncio.to_thread(self._stream.readline)
            try:
                await ready
            finally:
                loop.remove_reader(self._fd)
            chunk = os.read(self._fd, 65536)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        if b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            return line.decode("utf-8", "replace") + "\n"
        line, self._buffer = self._buffer, b""
        return line.decode("utf-8", "replace")


def _read_file(path: Path) -> bytes:
    return path.expanduser().read_bytes()


def _set_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


async def run_terminal_chat(
    server: LocalBotAPI,
    *,
    user_id: int = 1000001,
    language_code: str = "en",
    first_name: str = "You",
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    reply_wait: float | None = None,
    settle: float = 0.15,
    prompt: bool | None = None,
) -> None:
    """Run an interactive chat as user ``user_id`` until /quit, /exit or end of input.

    ``reply_wait``: after each line, wait up to this many seconds for the bot to answer (then
    until it has been quiet for ``settle`` s) before reading the next line. Defaults to 0
    when stdin is a terminal and 5 s otherwise, so piped/scripted input stays in step.
    ``prompt`` (default: when stdin is a terminal) shows ``you>`` while the user types; bot
    output arriving meanwhile is printed above it and the prompt shown again. Messages the bot
    sent to this chat before the chat started (a reminder due at start-up) are shown first.
    """
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    ansi = _isatty(stdout)
    interactive = _isatty(stdin)
    if reply_wait is None:
        reply_wait = 0.0 if interactive else 5.0
    if prompt is None:
        prompt = interactive
    events = server.subscribe(user_id)
    backlog = [m for m in server.chat(user_id) if m.from_bot and not m.deleted]
    activity = asyncio.Event()
    numbering = ButtonNumbers()
    prompt_shown = False

    def write(line: str) -> None:
        nonlocal prompt_shown
        if prompt_shown:  # bot output while the user types: above the prompt
            stdout.write("\r\033[K" if ansi else "\n")
            prompt_shown = False
        stdout.write(line + "\n")
        stdout.flush()

    def show_prompt() -> None:
        nonlocal prompt_shown
        if prompt and not prompt_shown:
            stdout.write("you> ")
            stdout.flush()
            prompt_shown = True

    def show(event: str, msg: ChatMessage) -> None:
        if event == "message":
            write(f"bot> {_describe(msg, ansi)}")
        elif event == "edit":
            write(f"✎ (edited) {_describe(msg, ansi)}")
        elif event == "delete":
            write(f"✗ (deleted) {_describe(msg, ansi)}")
        if event != "delete" and msg.buttons:
            write("     " + format_buttons(msg, numbering.numbers(msg)))

    async def printer() -> None:
        while True:
            event, msg = await events.get()
            show(event, msg)
            activity.set()
            if events.empty() and reading:
                show_prompt()

    async def wait_for_bot() -> None:
        if reply_wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(activity.wait(), reply_wait)
        while activity.is_set():
            activity.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(activity.wait(), settle)

    async def show_callback_answer(query_id: str) -> None:
        with contextlib.suppress(TimeoutError):
            answer = await server.wait_for_callback_answer(query_id, timeout=10.0)
            if answer.get("text"):
                write(f"ⓘ {answer['text']}")
            if answer.get("url"):
                write(f"ⓘ open {answer['url']}")

    def latest_with_buttons() -> ChatMessage | None:
        for msg in reversed(server.chat(user_id)):
            if msg.from_bot and not msg.deleted and msg.buttons:
                return msg
        return None

    reader = _LineReader(stdin)
    reading = False
    write(
        f"Chatting with @{server.bot_username} as {first_name} (id {user_id}, "
        f"{language_code}). Numbers press buttons; /quit leaves."
    )
    for msg in backlog:
        show("message", msg)
    printer_task = asyncio.create_task(printer())
    side_tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            reading = True
            show_prompt()
            line = await reader.readline()
            reading = False
            prompted, prompt_shown = prompt_shown, False  # the user's Enter ended the prompt line
            if not line:
                if prompted:
                    stdout.write("\n")
                break
            text = line.strip()
            if not interactive:  # piped input: show what "was typed"
                if prompted:
                    stdout.write(text + "\n")
                    stdout.flush()
                elif text:
                    write(f"you> {text}")
            if text in ("/quit", "/exit"):
                break
            if not text:
                continue
            activity.clear()
            target = latest_with_buttons() if text.isdigit() else None
            button = numbering.button(target, int(text)) if target is not None else None
            if target is not None and button is not None:
                if "callback_data" in button:
                    query_id = await server.press_button(
                        user_id, target.message_id, button["callback_data"]
                    )
                    task = asyncio.create_task(show_callback_answer(query_id))
                    side_tasks.add(task)
                    task.add_done_callback(side_tasks.discard)
                elif "url" in button:
                    write(f"→ open {button['url']}")
                    continue
                else:
                    write("→ this button can't be used from the terminal")
                    continue
            elif text.startswith("/file "):
                path = Path(text[len("/file ") :].strip())
                try:
                    data = await asyncio.to_thread(_read_file, path)
                except OSError as exc:
                    write(f"→ cannot read {path}: {exc.strerror or exc}")
                    continue
                if not data:
                    write(f"→ {path} is empty; Telegram does not send empty files")
                    continue
                await server.send_document(user_id, path.name, data, language_code=language_code)
            else:
                await server.send_text(
                    user_id, text, language_code=language_code, first_name=first_name
                )
            await wait_for_bot()
    finally:
        # Let already-queued output reach the screen before leaving.
        for _ in range(20):
            if events.empty():
                break
            await asyncio.sleep(0.01)
        for task in (printer_task, *side_tasks):
            task.cancel()
        for task in (printer_task, *side_tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server.unsubscribe(user_id, events)
