"""Lone surrogates from the wire: decoded to U+FFFD before any handler, never a crash."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.domain.salary import parse_salary
from bot.localapi.server import LocalBotAPI
from bot.wire import loads_update, scrub
from tests.harness import BotHarness


def test_scrub_replaces_only_lone_surrogates() -> None:
    value = {"a\ud800": ["x\udfffy", "😀", 3, None], "ok": "社险 RM3,500"}
    assert scrub(value) == {"a\ufffd": ["x\ufffdy", "😀", 3, None], "ok": "社险 RM3,500"}


def test_loads_update_decodes_escaped_surrogates_and_keeps_pairs() -> None:
    body = b'{"text": "RM\\ud800 3,500 \\ud83d\\ude00", "n": 1}'
    assert loads_update(body) == {"text": "RM\ufffd 3,500 😀", "n": 1}
    assert json.dumps(loads_update(body), ensure_ascii=False).encode("utf-8")  # encodable


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe{}", b"not json"])
def test_loads_update_raises_value_error_on_bad_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads_update(body)


@pytest.mark.parametrize("text", ["\ud800", "RM\ud800 3,500", "3500\ud83d", "\udc00\ud800"])
def test_salary_parser_never_raises_on_surrogates(text: str) -> None:
    assert parse_salary(text).kind in {"ok", "ambiguous", "none"}


async def test_the_bot_answers_text_with_lone_surrogates(tmp_path: Path) -> None:
    async with LocalBotAPI(rate_limit=None) as server:
        bot = BotHarness(server, tmp_path / "bot.sqlite3")
        await bot.start()
        try:
            (answer,) = await bot.say(7, "RM\ud800 3,500", lang="en")
            assert "RM3,500.00" in answer.text  # the wage was still read
            (answer,) = await bot.say(7, "\ud8eb zibble", lang="en")
            assert answer.text  # answered (no guide), and the question was stored
            query = "SELECT text FROM unanswered"
            for _ in range(100):  # stored right after the answer is sent
                stored = [row["text"] for row in bot.storage.db.query(query)]
                if stored:
                    break
                await asyncio.sleep(0.1)
            assert stored == ["\ufffd zibble"]
            assert not server.stats.rejected
        finally:
            await bot.stop()


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
def test_both_http_clients_decode_answers_through_the_wire(client: str) -> None:
    from bot.transport import make_request

    request = make_request(client, connection_pool_size=1)
    assert request.parse_json_payload(b'{"ok": true, "result": "a\\ud800"}') == {
        "ok": True,
        "result": "a\ufffd",
    }
