"""Storage: migrations, WAL, users and the language rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage import MIGRATIONS, Storage, lang_from_telegram


def test_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    latest = max(v for v, _ in MIGRATIONS)
    assert storage.schema_version == latest
    assert storage.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert int(storage.db.execute("PRAGMA busy_timeout").fetchone()[0]) >= 1000
    storage.close()
    again = Storage(path)
    assert again.migrate() == [], "a second start applies nothing"
    assert "users" in again.db.table_names()


def test_versions_are_increasing() -> None:
    versions = [v for v, _ in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1


@pytest.mark.parametrize(
    ("code", "lang"),
    [("ms", "ms"), ("zh-hans", "zh"), ("zh-hant", "zh"), ("zh", "zh"), ("en", "en"),
     ("id", "en"), (None, "en"), ("", "en"), ("MS", "ms")],
)
def test_language_from_telegram(code: str | None, lang: str) -> None:
    assert lang_from_telegram(code) == lang


def test_user_first_contact_and_language_choice(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    user = storage.touch_user(10, "zh-hans")
    assert user["lang"] == "zh" and user["lang_chosen"] == 0 and user["blocked"] == 0
    storage.set_language(10, "ms")
    # Telegram's language no longer overrides the user's own choice.
    assert storage.touch_user(10, "en")["lang"] == "ms"
    storage.set_start_payload(10, "agency-abc")
    storage.set_blocked(10)
    assert storage.get_user(10)["blocked"] == 1
    assert storage.touch_user(10, "en")["blocked"] == 0, "writing again unblocks"
    assert storage.get_user(10)["start_payload"] == "agency-abc"
    with pytest.raises(ValueError):
        storage.set_language(10, "fr")


def test_calc_prefs(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    storage.touch_user(5, "en")
    storage.set_calc_prefs(5, worker_type="domestic-foreign", age_band="60plus")
    user = storage.get_user(5)
    assert (user["worker_type"], user["age_band"]) == ("domestic-foreign", "60plus")
    with pytest.raises(ValueError):
        storage.set_calc_prefs(5, lang="ms")


def test_unanswered_grouping_keeps_no_user(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    for text in ["Boleh claim maternity?", "boleh claim maternity? ", "what about EPF"]:
        storage.log_unanswered(text, "ms" if "claim" in text else "en", "no-match")
    storage.log_unanswered("pay eis", "en", "thumbs-down", guide_id="pay-eis")
    summary = storage.unanswered_summary()
    assert summary[0]["text"] == "boleh claim maternity?" and summary[0]["count"] == 2
    assert {row["reason"] for row in summary} == {"no-match", "thumbs-down"}
    columns = {c.name for c in storage.db["unanswered"].columns}
    assert not columns & {"chat_id", "user_id"}


def test_transaction_rolls_back(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    with pytest.raises(RuntimeError), storage.transaction():
        storage.db.execute(
            "INSERT INTO users (chat_id, lang, first_seen, last_seen) VALUES (1, 'en', 'x', 'x')"
        )
        raise RuntimeError("boom")
    assert storage.get_user(1) is None


def _wal_size_after_paced_writes(storage: Storage, path: Path) -> int:
    import time

    biggest = 0
    for batch in range(30):
        for i in range(100):  # 100 commits, each at least one WAL page
            storage.touch_user(batch * 100 + i, "en")
        biggest = max(biggest, (path.parent / (path.name + "-wal")).stat().st_size)
        time.sleep(0.06)
    return biggest


def test_background_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    # Control: no automatic checkpoints and no thread: 3,000 commits grow the WAL past 3 MB.
    control = Storage(tmp_path / "control.sqlite3")
    control.db.execute("PRAGMA wal_autocheckpoint = 0")
    assert _wal_size_after_paced_writes(control, tmp_path / "control.sqlite3") > 3_000_000
    control.close()

    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    storage.checkpoint_in_background(interval=0.02)
    assert storage.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    # The thread checkpoints between batches, so each batch starts the WAL over.
    assert _wal_size_after_paced_writes(storage, path) < 3_000_000
    storage.stop_background_checkpoints()
    assert storage.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    storage.close()
