"""Configuration: defaults, every variable's checks, and that the token never leaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_API_BASE_URL, Config, ConfigError, redact

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_defaults(tmp_path: Path) -> None:
    config = Config.from_env({"BOT_DB": str(tmp_path / "x" / "bot.sqlite3")})
    assert config.local_mode and not config.webhook_mode
    assert config.api_base_url == DEFAULT_API_BASE_URL
    assert config.tz.key == "Asia/Kuala_Lumpur"
    assert config.admin_ids == frozenset()
    assert (tmp_path / "x").is_dir(), "the database folder is created"


def test_full_configuration(tmp_path: Path) -> None:
    config = Config.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
            "BOT_DB": str(tmp_path / "bot.sqlite3"),
            "BOT_ADMIN_IDS": " 42, 7 ,",
            "BOT_TZ": "Asia/Singapore",
            "WEBHOOK_URL": "https://example.org/hook",
            "PORT": "8443",
            "WEBHOOK_SECRET": "s3cret_value-1",
        }
    )
    assert config.token == TOKEN and not config.local_mode and config.webhook_mode
    assert config.admin_ids == {42, 7}
    assert config.port == 8443
    assert TOKEN not in repr(config) and "s3cret_value-1" not in repr(config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token"),
        ("TELEGRAM_API_BASE_URL", "ftp://example.org/bot"),
        ("BOT_ADMIN_IDS", "42,abc"),
        ("BOT_TZ", "Mars/Olympus_Mons"),
        ("PORT", "99999"),
        ("PORT", "eighty"),
        ("PORT", "\u00b2"),  # a digit to str.isdigit, not to int()
        ("BOT_THROTTLE_BURST", "0"),
        ("BOT_THROTTLE_BURST", "\u0663"),  # ARABIC-INDIC DIGIT THREE: int() takes it; we do not
        ("BOT_POLL_HOLD_MS", "-1"),
        ("BOT_POLL_HOLD_MS", "1001"),
        ("BOT_POLL_HOLD_MS", "2.5"),
        ("WEBHOOK_SECRET", "has spaces!"),
        ("OUTBOX_RATE", "-3"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    env = {"BOT_DB": str(tmp_path / "bot.sqlite3"), "TELEGRAM_BOT_TOKEN": TOKEN, name: value}
    with pytest.raises(ConfigError) as excinfo:
        Config.from_env(env)
    assert str(excinfo.value).startswith(name)


@pytest.mark.parametrize(("value", "seconds"), [(None, 0.0), ("5", 0.005), ("250", 0.25)])
def test_poll_hold_is_read_in_milliseconds(tmp_path: Path, value: str | None, seconds: float) -> None:
    env = {"BOT_DB": str(tmp_path / "b.db")} | ({"BOT_POLL_HOLD_MS": value} if value else {})
    assert Config.from_env(env).poll_hold == seconds


def test_webhook_needs_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_URL"):
        Config.from_env({"BOT_DB": str(tmp_path / "b.db"), "WEBHOOK_URL": "https://example.org/h"})


def test_bad_token_message_does_not_echo_it(tmp_path: Path) -> None:
    bad = "123456789:short!"
    with pytest.raises(ConfigError) as excinfo:
        Config.from_env({"BOT_DB": str(tmp_path / "b.db"), "TELEGRAM_BOT_TOKEN": bad})
    assert bad not in str(excinfo.value)


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "BOT_DB": str(tmp_path / "b.db"), "BOT_TZ": "Nowhere/Land"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "BOT_TZ" in lines[0]


def test_redact() -> None:
    assert TOKEN not in redact(f"POST https://api.telegram.org/bot{TOKEN}/getMe")
    assert "hunter2" not in redact("secret is hunter2", "hunter2")
