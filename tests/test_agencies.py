"""bot/agencies.py: roles, invites, follows, fallback language, one-transaction broadcasts; the CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.agencies import (
    AgencyError,
    AgencyService,
    choose_version,
    group_ref,
    hash_token,
    html_length,
    is_operator,
    payload_for,
    plain_text,
    sendable_html,
    version_overflow,
)
from bot.outbox import Outbox
from bot.storage import Storage


@pytest.fixture
def service(storage: Storage) -> AgencyService:
    return AgencyService(storage)


@pytest.fixture
def outbox(storage: Storage) -> Outbox:
    return Outbox(storage)


def add_user(storage: Storage, chat_id: int, lang: str) -> None:
    storage.touch_user(chat_id, lang)


def test_choose_version_falls_back_en_ms_zh() -> None:
    assert choose_version({"en": 1, "ms": 2, "zh": 3}, "zh") == "zh"
    assert choose_version({"en": 1, "ms": 2}, "zh") == "en"
    assert choose_version({"ms": 2, "zh": 3}, "en") == "ms"
    assert choose_version({"zh": 3}, "ms") == "zh"
    assert choose_version({}, "en") is None


def test_operator_is_only_admin_ids() -> None:
    assert is_operator(5, frozenset({5}))
    assert not is_operator(6, frozenset({5}))
    assert not is_operator(None, frozenset({5}))


def test_invite_token_is_long_single_use_and_stored_hashed(service: AgencyService, storage: Storage) -> None:
    agency, token = service.create_agency("  Acme   Payroll ", 1)
    assert agency.name == "Acme Payroll" and len(agency.code) == 8
    assert len(token) >= 22  # token_urlsafe(n) gives ~1.3 chars per byte: >= 16 bytes = 128 bits
    stored = [r["token_hash"] for r in storage.db.query("SELECT token_hash FROM staff_invites")]
    assert stored == [hash_token(token)] and token not in json.dumps(stored)
    assert service.redeem_invite(token, 10) == agency
    assert service.redeem_invite(token, 11) is None  # single use
    assert service.redeem_invite("made-up-token", 11) is None
    assert service.is_staff(10, agency.code) and not service.is_staff(11, agency.code)


def test_roles_staff_only_own_agency_operators_everywhere(service: AgencyService) -> None:
    a, token_a = service.create_agency("A", 1)
    b, _ = service.create_agency("B", 1)
    service.redeem_invite(token_a, 10)
    assert service.may_broadcast(10, a.code, operator=False)
    assert not service.may_broadcast(10, b.code, operator=False)
    assert not service.may_broadcast(10, None, operator=False)  # everyone: operators only
    assert not service.may_broadcast(99, a.code, operator=False)
    assert service.may_broadcast(1, b.code, operator=True) and service.may_broadcast(1, None, operator=True)
    assert not service.may_broadcast(1, "nosuchcd", operator=True)


def test_revoke_removes_staff_and_unused_invites(service: AgencyService) -> None:
    agency, token = service.create_agency("A", 1)
    service.redeem_invite(token, 10)
    spare = service.new_invite(agency.code, 1)
    assert service.revoke(agency.code) == (1, 1)
    assert not service.is_staff(10, agency.code)
    assert service.redeem_invite(spare, 11) is None
    fresh = service.new_invite(agency.code, 1)
    assert service.redeem_invite(fresh, 12) is not None
    with pytest.raises(AgencyError):
        service.revoke("nosuchcd")


def test_follow_several_agencies_and_unfollow(service: AgencyService, storage: Storage) -> None:
    a, _ = service.create_agency("A", 1)
    b, _ = service.create_agency("B", 1)
    add_user(storage, 300, "ms")
    assert service.follow(a.code, 300) == (a, True)
    assert service.follow(a.code, 300) == (a, False)
    assert service.follow(b.code, 300) == (b, True)
    assert service.follow("nosuchcd", 300) is None
    assert [x.name for x in service.followed(300)] == ["A", "B"]
    assert service.unfollow(a.code, 300) == a
    assert service.unfollow(a.code, 300) is None
    assert service.audience_by_lang(a.code) == {} and service.audience_by_lang(b.code) == {"ms": 1}


def test_broadcast_rows_one_per_follower_with_right_version(
    service: AgencyService, storage: Storage, outbox: Outbox
) -> None:
    a, _ = service.create_agency("Acme & Co", 1)
    b, _ = service.create_agency("B", 1)
    langs = {401: "en", 402: "ms", 403: "zh", 404: "zh"}
    for chat, lang in langs.items():
        add_user(storage, chat, lang)
        service.follow(a.code, chat)
    add_user(storage, 405, "en")
    service.follow(b.code, 405)
    versions = {"en": [10, 1], "ms": [10, 2]}
    broadcast_id, count = service.create_broadcast(outbox, agency=a.code, created_by=10, versions=versions)
    assert count == 4
    rows = {r["chat_id"]: r for r in storage.db.query("SELECT * FROM outbox")}
    assert set(rows) == set(langs)  # nobody from agency B
    for chat, lang in langs.items():
        payload = json.loads(rows[chat]["payload"])
        expected = versions[lang] if lang in versions else versions["en"]
        assert [payload["from_chat_id"], payload["message_id"]] == expected
        [[button]] = payload["reply_markup"]["inline_keyboard"]
        assert button == {"text": plain_text("broadcast.unfollow_button", lang, agency="Acme & Co"),
                          "callback_data": f"af:u:{a.code}"}
        assert "Acme & Co" in button["text"]  # a label is plain text: no HTML escaping
        assert rows[chat]["dedupe_key"] == f"broadcast:{broadcast_id}:{chat}"
        assert rows[chat]["group_ref"] == group_ref(broadcast_id) and rows[chat]["kind"] == "broadcast"
    assert service.get_broadcast(broadcast_id)["recipients"] == 4


def test_audience_by_language(service: AgencyService, storage: Storage, outbox: Outbox) -> None:
    a, _ = service.create_agency("A", 1)
    for chat, lang in {1: "en", 2: "ms", 3: "ms"}.items():
        add_user(storage, chat, lang)
        service.follow(a.code, chat)
    assert service.audience_by_lang(a.code) == {"en": 1, "ms": 2}
    _, count = service.create_broadcast(outbox, agency=a.code, created_by=1, versions={"en": [1, 1]},
                                        audience="ms")
    assert count == 2
    assert sorted(r["chat_id"] for r in storage.db.query("SELECT chat_id FROM outbox")) == [2, 3]


def test_follower_joining_later_is_not_added(service: AgencyService, storage: Storage, outbox: Outbox) -> None:
    a, _ = service.create_agency("A", 1)
    for chat in (1, 2):
        add_user(storage, chat, "en")
        service.follow(a.code, chat)
    broadcast_id, count = service.create_broadcast(outbox, agency=a.code, created_by=1, versions={"en": [1, 1]})
    add_user(storage, 3, "en")
    service.follow(a.code, 3)
    progress = outbox.group_progress(group_ref(broadcast_id))
    assert count == 2 and sum(progress.values()) == 2
    assert outbox.get(f"broadcast:{broadcast_id}:3") is None


def test_creation_is_one_transaction(service: AgencyService, storage: Storage, outbox: Outbox,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = service.create_agency("A", 1)
    for chat in range(1, 6):
        add_user(storage, chat, "en")
        service.follow(a.code, chat)
    statements: list[str] = []
    storage.db.conn.set_trace_callback(statements.append)
    service.create_broadcast(outbox, agency=a.code, created_by=1, versions={"en": [1, 1]})
    storage.db.conn.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]

    def broken(self: Outbox, items: object) -> int:
        list(items)  # type: ignore[call-overload]
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Outbox, "enqueue_many", broken)
    with pytest.raises(sqlite3.OperationalError):
        service.create_broadcast(outbox, agency=a.code, created_by=1, versions={"en": [1, 1]})
    assert storage.db.execute("SELECT count(*) FROM broadcasts").fetchone()[0] == 1  # rolled back


def test_scheduled_rows_wait_and_cancel(service: AgencyService, storage: Storage, outbox: Outbox) -> None:
    a, _ = service.create_agency("A", 1)
    add_user(storage, 1, "en")
    service.follow(a.code, 1)
    at = datetime.now(UTC) + timedelta(days=1)
    broadcast_id, _ = service.create_broadcast(outbox, agency=a.code, created_by=1, versions={"en": [1, 1]},
                                               scheduled_at=at)
    row = outbox.get(f"broadcast:{broadcast_id}:1")
    assert datetime.fromisoformat(row["not_before"]) == at.replace(microsecond=at.microsecond // 1000 * 1000)
    assert service.get_broadcast(broadcast_id)["state"] == "scheduled"
    assert outbox.pending() == 0  # not due yet
    assert service.cancel(outbox, broadcast_id) == 1
    assert outbox.group_progress(group_ref(broadcast_id))["cancelled"] == 1
    assert service.get_broadcast(broadcast_id)["state"] == "cancelled"
    assert [r["id"] for r in service.pending_reports()] == [broadcast_id]  # report still due


def test_everyone_broadcast_and_text_footer(service: AgencyService, storage: Storage, outbox: Outbox) -> None:
    for chat, lang in {1: "en", 2: "zh"}.items():
        add_user(storage, chat, lang)
    _, count = service.create_broadcast(outbox, agency=None, created_by=0, versions={"zh": {"text": "<b>Hi</b>"}})
    assert count == 2
    payload = json.loads(outbox.get("broadcast:1:1")["payload"])
    assert payload == {"type": "text", "text": "<b>Hi</b>", "parse_mode": "HTML", "reply_markup": None}
    a, _ = service.create_agency("A<b>", 1)
    service.follow(a.code, 2)
    service.create_broadcast(outbox, agency=a.code, created_by=0, versions={"en": {"text": "Hello"}})
    payload = json.loads(outbox.get("broadcast:2:2")["payload"])
    header = plain_text("broadcast.header", "zh", agency="A&lt;b&gt;")
    assert payload["text"].startswith(f"{header}\n\nHello\n\n") and "A&lt;b&gt;" in payload["text"]
    with pytest.raises(AgencyError):
        service.create_broadcast(outbox, agency=None, created_by=0, versions={})


def test_media_versions_carry_the_header_in_their_caption(
    service: AgencyService, storage: Storage, outbox: Outbox
) -> None:
    agency, _ = service.create_agency("A<b>", 1)
    for chat, lang in {1: "en", 2: "ms", 3: "zh"}.items():
        add_user(storage, chat, lang)
        service.follow(agency.code, chat)
    versions = {"en": {"copy": [7, 70], "caption": "<b>Poster</b>"}, "ms": [7, 71]}
    service.create_broadcast(outbox, agency=agency.code, created_by=1, versions=versions)
    payloads = {c: json.loads(outbox.get(f"broadcast:1:{c}")["payload"]) for c in (1, 2, 3)}
    zh_header = plain_text("broadcast.header", "zh", agency="A&lt;b&gt;")
    assert payloads[3]["type"] == "copy" and (payloads[3]["from_chat_id"], payloads[3]["message_id"]) == (7, 70)
    assert payloads[3]["caption"] == f"{zh_header}\n\n<b>Poster</b>" and payloads[3]["parse_mode"] == "HTML"
    assert payloads[3]["reply_markup"]["inline_keyboard"][0][0]["text"] == plain_text(
        "broadcast.unfollow_button", "zh", agency="A<b>")
    # a version stored as [chat, message] (before headers) is copied as is, caption untouched
    assert payloads[2]["message_id"] == 71 and "caption" not in payloads[2]
    # no caption: the header alone; everyone (no agency): no header at all
    assert payload_for({"copy": [7, 72], "caption": ""}, agency, "en")["caption"] == plain_text(
        "broadcast.header", "en", agency="A&lt;b&gt;")
    assert "caption" not in payload_for({"copy": [7, 72], "caption": "x"}, None, "en")
    assert service.payload({"text": "Hi"}, None, "ms")["text"] == "Hi"


def test_length_is_counted_as_telegram_does_and_too_long_is_refused(
    service: AgencyService, storage: Storage, outbox: Outbox
) -> None:
    assert html_length("<b>a&amp;b</b> <a href=\"https://example.com/?x=1&amp;y=2\">c</a>") == 5
    assert html_length("📣 é") == 4  # an emoji outside the BMP counts two
    agency, _ = service.create_agency("Acme Payroll", 1)
    add_user(storage, 1, "en")
    service.follow(agency.code, 1)
    room = 4096 - max(
        html_length(str(payload_for({"text": ""}, agency, lang)["text"])) for lang in ("en", "ms", "zh")
    )
    assert version_overflow({"text": "x" * room}, agency) is None
    assert version_overflow({"text": "x" * (room + 1)}, agency) == (room + 1, room)
    assert version_overflow({"text": "&lt;" * (room + 1)}, agency) == (room + 1, room)  # one character each
    assert version_overflow({"text": "x" * 4096}, None) is None  # everyone: no header to add
    assert version_overflow({"copy": [1, 1], "caption": "y" * 1024}, agency)[1] < 1024
    assert version_overflow([1, 1], agency) is None
    with pytest.raises(AgencyError) as refused:
        service.create_broadcast(outbox, agency=agency.code, created_by=1, versions={"en": {"text": "x" * 4090}})
    assert refused.value.key == "broadcast.too_long"
    assert outbox.status() == {} and service.get_broadcast(1) is None  # nothing written


def test_cli_broadcast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "bot.sqlite3"
    storage = Storage(db)
    service = AgencyService(storage)
    agency, _ = service.create_agency("Acme", 1)
    for chat, lang in {1: "en", 2: "ms", 3: "zh"}.items():
        storage.touch_user(chat, lang)
        service.follow(agency.code, chat)
    storage.touch_user(4, "en")
    storage.close()
    monkeypatch.setenv("BOT_DB", str(db))
    en = tmp_path / "en.txt"
    en.write_text("Rates change <soon>", encoding="utf-8")
    ms = tmp_path / "ms.txt"
    ms.write_text("Kadar berubah", encoding="utf-8")
    base = ["broadcast", "--agency", agency.code, "--text-file", str(en), "--lang-file", f"ms={ms}"]
    assert main(base) == 0
    assert "dry run" in capsys.readouterr().out
    assert main([*base, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "3 messages queued" in out and "bot is not running" in out and "3 recipients" in out
    assert main(["broadcast", "--agency", "nosuchcd", "--text-file", str(en), "--yes"]) == 2
    assert main([*base, "--lang-file", "xx=foo", "--yes"]) == 2
    assert main(["broadcast", "--all", "--text-file", str(en), "--at", "2020-01-01T09:00", "--yes"]) == 2
    assert main(["broadcast", "--all", "--text-file", str(en), "--at", "2099-01-01T09:00", "--yes"]) == 0
    storage = Storage(db)
    outbox = Outbox(storage)
    texts = {c: json.loads(outbox.get(f"broadcast:1:{c}")["payload"])["text"] for c in (1, 2, 3)}
    header = {c: plain_text("broadcast.header", lang, agency="Acme") + "\n\n" for c, lang in
              {1: "en", 2: "ms", 3: "zh"}.items()}  # each copy names the agency it comes from
    assert texts[1].startswith(header[1] + "Rates change &lt;soon&gt;")
    assert texts[3].startswith(header[3] + "Rates change")
    assert texts[2].startswith(header[2] + "Kadar berubah")
    assert main(["broadcast", "--all", "--text-file", str(en), "--at", "yesterday", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "YYYY-MM-DDTHH:MM" in err and "isoformat" not in err
    assert outbox.group_progress("broadcast:2")["queued"] == 4
    assert outbox.get("broadcast:2:4")["not_before"].startswith("2099-01-01T01:00")  # 09:00 in KL
    storage.close()


def test_sendable_html_keeps_text_and_formatting_drops_custom_emoji_and_dates() -> None:
    html = ('<b>Hi</b> <tg-emoji emoji-id="5368324170671202286">🎉</tg-emoji> '
            '<tg-time unix="1764547200" format="wDT">1 Dec</tg-time> &lt;tg-emoji&gt;')
    assert sendable_html(html) == "<b>Hi</b> 🎉 1 Dec &lt;tg-emoji&gt;"
