"""Hostile webhook bodies with the right secret: 400 or 413, one WARNING line, never a 500.

The real Application behind the real webhook server (``webhook_bot`` from tests/test_ops.py),
posted to over HTTP like Telegram would.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.metrics import metrics_for
from bot.web import MAX_UPDATE_BYTES, MAX_UPDATE_DEPTH, BadBody, parse_update_body
from tests import test_ops
from tests.test_ops import SECRET, WebhookBot, _update

webhook_bot = test_ops.webhook_bot  # the fixture: the real Application behind WebhookServer

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}

NESTED_ARRAYS = b"[" * 200_000 + b"]" * 200_000  # 400 KB: Python's JSON decoder recurses
DEEP_OBJECT = (
    b'{"update_id": 7, "x": ' + b'{"a": ' * (MAX_UPDATE_DEPTH + 10) + b"1" + b"}" * (MAX_UPDATE_DEPTH + 11)
)

BAD_BODIES = {
    "nested arrays": NESTED_ARRAYS,
    "nested arrays in an update": b'{"update_id": 5, "message": ' + NESTED_ARRAYS + b"}",
    "nested past the depth limit": DEEP_OBJECT,
    "invalid UTF-8": b'{"update_id": 1, "message": "\xff\xfe\xc3"}',
    "UTF-16": json.dumps({"update_id": 1}).encode("utf-16"),
    "not JSON": b'{"update_id": 1,',
    "empty": b"",
    "NaN": b'{"update_id": 1, "x": NaN}',
    "an array": b"[1, 2, 3]",
    "a string": b'"update"',
    "a number": b"42",
    "null": b"null",
    "no update_id": b'{"message": {}}',
    "update_id true": b'{"update_id": true}',
    "update_id text": b'{"update_id": "1"}',
    "malformed message": b'{"update_id": 9, "message": {"chat": "not a chat"}}',
}


async def _post(bot: WebhookBot, body: bytes | object, headers: dict[str, str] = HEADERS) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(bot.base + "/telegram/hook", data=body, headers=headers) as resp:
            await resp.read()
            return resp.status


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_bad_body_gets_400_and_one_warning(
    webhook_bot: WebhookBot, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    metrics = metrics_for(webhook_bot.app)
    before = metrics.snapshot()
    caplog.set_level(logging.WARNING)
    assert await _post(webhook_bot, BAD_BODIES[name]) == 400
    [record] = _warnings(caplog)  # one line: no aiohttp "Error handling request", no traceback
    assert record.levelno == logging.WARNING and record.name == "bot.web"
    assert record.exc_info is None and record.exc_text is None
    assert "refused a body" in record.getMessage() and "\n" not in record.getMessage()
    after = metrics.snapshot()
    assert after["webhook_rejected"] == before["webhook_rejected"] + 1
    assert after["updates_in"] == before["updates_in"], "nothing reached the handlers"
    # The server is unharmed: the next real update is taken and answered.
    caplog.clear()
    webhook_bot.server.add_user(7070, language_code="en")
    assert await _post(webhook_bot, json.dumps(_update(700, 7070, "/start")).encode()) == 200
    assert await webhook_bot.server.wait_for_bot_messages(7070, 1, timeout=10)


async def test_body_over_the_limit_gets_413(
    webhook_bot: WebhookBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    webhook_bot.server.add_user(8080, language_code="en")
    update = _update(800, 8080, "/start")
    update["padding"] = "x" * MAX_UPDATE_BYTES  # valid JSON, just too big
    big = json.dumps(update).encode()
    assert await _post(webhook_bot, big) == 413

    async def chunks():  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert await _post(webhook_bot, chunks()) == 413
    records = _warnings(caplog)
    assert len(records) == 2 and all(r.name == "bot.web" and r.exc_text is None for r in records)
    assert all(f"larger than {MAX_UPDATE_BYTES} bytes" in r.getMessage() for r in records)
    assert webhook_bot.storage.get_user(8080) is None
    # Just under the limit is still an update.
    update["padding"] = "x" * (MAX_UPDATE_BYTES - len(json.dumps({**update, "padding": ""})))
    body = json.dumps(update).encode()
    assert len(body) == MAX_UPDATE_BYTES
    assert await _post(webhook_bot, body) == 200
    await webhook_bot.server.wait_until(lambda: webhook_bot.storage.get_user(8080), timeout=10)


async def test_secret_is_checked_before_the_body_is_read(webhook_bot: WebhookBot) -> None:
    wrong = {**HEADERS, "X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert await _post(webhook_bot, NESTED_ARRAYS, wrong) == 403
    assert await _post(webhook_bot, b"x" * (MAX_UPDATE_BYTES + 1), wrong) == 403


async def test_secret_header_of_raw_bytes_is_refused_not_a_500(
    webhook_bot: WebhookBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret header that is not UTF-8 (aiohttp keeps the bytes as surrogates): 403."""
    caplog.set_level(logging.WARNING)
    port = int(webhook_bot.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /telegram/hook HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
            b"X-Telegram-Bot-Api-Secret-Token: " + SECRET.encode()[:4] + b"\xff\xfe\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"403"
    [record] = _warnings(caplog)
    assert record.name == "bot.web" and "wrong secret" in record.getMessage()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
def test_parse_update_body_refuses_or_returns_an_update(raw: bytes) -> None:
    try:
        data = parse_update_body(raw)
    except BadBody as exc:
        assert str(exc)
    else:
        assert isinstance(data, dict) and type(data["update_id"]) is int
