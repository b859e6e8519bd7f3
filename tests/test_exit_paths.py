"""Every way ``python -m bot run`` ends: one redacted log line, a clear exit status, no secret.

The real bot runs as a subprocess (its own process group, killed in a finalizer whatever
happens) against the local Bot API server in the test's event loop. The server answers 401
(a revoked token) or 404 (what Telegram answers when TELEGRAM_API_BASE_URL lacks ``/bot``) to
``getMe``; or nothing listens (network down); or the bot is stopped with SIGTERM. Every byte of
stdout and stderr is searched for the token and the webhook secret, and with LOG_FORMAT=json
every stderr line must be a JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot.commands.run import EXIT_ERROR, EXIT_OK, EXIT_TOKEN_REJECTED, EXIT_UNREACHABLE
from bot.config import PROJECT_DIR
from bot.localapi.server import FaultPlan, LocalBotAPI
from bot.logs import loop_exception_handler

# Shaped like a real token, so both the explicit and the pattern redaction would have to fail.
TOKEN = "987654321:AAHk3vQ-xY_example-token-value-for-tests00"
SECRET = "whsec-Zq8xN4-example-webhook-secret_value"
SECRETS = (TOKEN.encode(), TOKEN.split(":", 1)[1].encode(), SECRET.encode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(base_url: str, db: Path, *, fmt: str, webhook: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.pop("PORT", None)
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=base_url,
        BOT_DB=str(db),
        LOG_FORMAT=fmt,
        PYTHONPATH=str(PROJECT_DIR),
    )
    if webhook:
        port = _free_port()
        env.update(WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", WEBHOOK_SECRET=SECRET, PORT=str(port))
    env.update(extra)
    return env


class BotProcess:
    """``python -m bot run`` in its own process group; :meth:`kill` ends the whole group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.out = b""
        self.err = b""

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=str(PROJECT_DIR), env=self.env, start_new_session=True,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return self

    async def finish(self, timeout: float = 60) -> int:  # noqa: ASYNC109
        assert self.proc is not None
        self.out, self.err = await asyncio.wait_for(self.proc.communicate(), timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
async def processes() -> list[BotProcess]:
    started: list[BotProcess] = []
    try:
        yield started
    finally:
        for bot in started:
            bot.kill()
        for bot in started:
            if bot.proc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(bot.proc.wait(), 10)


async def _run(processes: list[BotProcess], env: dict[str, str]) -> BotProcess:
    bot = BotProcess(env)
    processes.append(bot)
    await bot.start()
    return bot


def _check_output(bot: BotProcess, fmt: str) -> list[str]:
    """No secret anywhere; JSON lines when asked; no raw traceback. Returns the messages."""
    for secret in SECRETS:
        assert secret not in bot.out, f"a secret is on stdout: {bot.out[-2000:]!r}"
        assert secret not in bot.err, f"a secret is on stderr: {bot.err[-2000:]!r}"
    text = bot.err.decode("utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the process must say why it ended"
    if fmt == "json":
        messages = []
        for line in lines:
            record = json.loads(line)  # every stderr line is one JSON object
            assert isinstance(record, dict) and {"level", "msg"} <= record.keys(), line
            messages.append(record["msg"])
        assert "Traceback" not in "".join(messages)
        return messages
    assert not any(line.startswith("Traceback") for line in lines), text[-3000:]
    return lines


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
@pytest.mark.parametrize("answer", ["401", "404"])
async def test_rejected_token_never_printed(
    processes: list[BotProcess], tmp_path: Path, answer: str, mode: str, fmt: str
) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        server.faults = FaultPlan(rate=1.0, kinds=(answer,), methods={"getMe"})
        env = _env(server.base_url, tmp_path / "bot.sqlite3", fmt=fmt, webhook=mode == "webhook")
        bot = await _run(processes, env)
        status = await bot.finish()
        assert server.stats.faults[answer] >= 1, "getMe was asked and refused"
    assert status == EXIT_TOKEN_REJECTED, bot.err.decode()[-3000:]
    messages = _check_output(bot, fmt)
    last = messages[-1]
    if answer == "401":
        assert "Telegram rejected the token" in last and "TELEGRAM_BOT_TOKEN" in last
    else:
        assert "TELEGRAM_API_BASE_URL ends with /bot" in last
    assert server.calls("setWebhook") == [] and server.stats.calls["getUpdates"] == 0


async def test_base_url_without_bot_path_is_explained(
    processes: list[BotProcess], tmp_path: Path
) -> None:
    """The real mistake behind a 404: the server root instead of .../bot (no injected fault)."""
    async with LocalBotAPI(rate_limit=None) as server:
        root = server.base_url[: -len("bot")]
        bot = await _run(processes, _env(root, tmp_path / "bot.sqlite3", fmt="json", webhook=False))
        status = await bot.finish()
    assert status == EXIT_TOKEN_REJECTED, bot.err.decode()[-3000:]
    assert "TELEGRAM_API_BASE_URL ends with /bot" in _check_output(bot, "json")[-1]


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_network_down_at_start(processes: list[BotProcess], tmp_path: Path, mode: str) -> None:
    nobody = f"http://127.0.0.1:{_free_port()}/bot"  # nothing listens there
    env = _env(nobody, tmp_path / "bot.sqlite3", fmt="json", webhook=mode == "webhook")
    bot = await _run(processes, env)
    assert await bot.finish() == EXIT_UNREACHABLE, bot.err.decode()[-3000:]
    last = _check_output(bot, "json")[-1]
    assert "cannot reach the Bot API" in last and "TELEGRAM_API_BASE_URL" in last


async def test_unexpected_error_is_one_redacted_json_line(
    processes: list[BotProcess], tmp_path: Path
) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        folder = tmp_path / "a-folder"
        folder.mkdir()  # BOT_DB is a folder: SQLite cannot open it
        bot = await _run(processes, _env(server.base_url, folder, fmt="json", webhook=True))
        status = await bot.finish()
    assert status == EXIT_ERROR, bot.err.decode()[-3000:]
    lines = [json.loads(line) for line in bot.err.decode().splitlines() if line.strip()]
    _check_output(bot, "json")
    assert lines[-1]["level"] == "CRITICAL" and "unexpected error" in lines[-1]["msg"]
    assert "Traceback" in lines[-1]["exc"]  # the traceback is kept, redacted, inside the line


async def test_config_error_is_one_json_line(processes: list[BotProcess], tmp_path: Path) -> None:
    env = _env("http://127.0.0.1:9/bot", tmp_path / "bot.sqlite3", fmt="json", webhook=True)
    env["PORT"] = "not-a-port"
    bot = await _run(processes, env)
    assert await bot.finish() == 2
    [message] = _check_output(bot, "json")
    assert message.startswith("configuration error: PORT")


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_sigterm_ends_with_one_line_and_status_0(
    processes: list[BotProcess], tmp_path: Path, mode: str
) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        env = _env(server.base_url, tmp_path / "bot.sqlite3", fmt="json", webhook=mode == "webhook")
        bot = await _run(processes, env)
        started = (lambda: server.calls("setWebhook")) if mode == "webhook" else (
            lambda: server.stats.calls["getUpdates"] > 0
        )
        await server.wait_until(started, timeout=60)
        assert bot.proc is not None
        bot.proc.send_signal(signal.SIGTERM)
        status = await bot.finish()
    assert status == EXIT_OK, bot.err.decode()[-3000:]
    assert _check_output(bot, "json")[-1] == "stopped (exit status 0)"


async def test_uncaught_exception_hook_redacts(processes: list[BotProcess], tmp_path: Path) -> None:
    """The last line of defence: an exception nobody catches, carrying the token, in any thread."""
    code = (
        "import os, sys, threading\n"
        "from bot.logs import install_last_resort\n"
        "install_last_resort()\n"
        "t = threading.Thread(target=lambda: 1 / 0 if False else (_ for _ in ()).throw("
        "RuntimeError('thread ' + os.environ['TELEGRAM_BOT_TOKEN'])))\n"
        "t.start(); t.join()\n"
        "raise RuntimeError('token ' + os.environ['TELEGRAM_BOT_TOKEN'] + ' secret ' "
        "+ os.environ['WEBHOOK_SECRET'])\n"
    )
    bot = BotProcess(_env("http://127.0.0.1:9/bot", tmp_path / "b.sqlite3", fmt="json", webhook=True))
    processes.append(bot)
    bot.proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=str(PROJECT_DIR), env=bot.env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert await bot.finish() == 1
    messages = _check_output(bot, "json")
    assert messages[0].startswith("thread ") and "[REDACTED]" in messages[0]
    assert messages[-1] == "stopped by an unexpected error: RuntimeError: token [REDACTED] secret [REDACTED]"


def test_event_loop_exception_handler_redacts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback failing in the loop (nobody awaits it) is one redacted record."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)

    def boom() -> None:
        raise RuntimeError(f"token {TOKEN} secret {SECRET}")

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(loop_exception_handler)
    try:
        loop.call_soon(boom)
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    [record] = [r for r in caplog.records if r.name == "bot"]
    assert record.levelname == "ERROR" and record.getMessage().startswith("event loop: ")
    assert "RuntimeError: token [REDACTED] secret [REDACTED]" in record.getMessage()
    assert record.exc_text and "Traceback" in record.exc_text
    for secret in (TOKEN, TOKEN.split(":", 1)[1], SECRET):
        assert secret not in record.getMessage() + record.exc_text
