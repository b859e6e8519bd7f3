"""Configuration from environment variables: the one place the bot reads its settings.

A bad value raises :class:`ConfigError` with one line that names the variable; the CLI turns
it into that line on stderr and exit status 2. Secrets never appear in messages or ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONTENT_DIR = PROJECT_DIR / "content"
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_DB = "data/bot.sqlite3"
HTTP_CLIENTS = ("aiohttp", "httpx")

_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{5,200}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its secret value."""


@dataclass(frozen=True)
class Config:
    """Every setting the bot uses. Build it with :meth:`from_env`."""

    token: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    db_path: Path = Path(DEFAULT_DB)
    admin_ids: frozenset[int] = frozenset()
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Kuala_Lumpur"))
    webhook_url: str | None = None
    port: int = 8080
    webhook_secret: str | None = field(default=None, repr=False)
    content_dir: Path = CONTENT_DIR
    outbox_rate: float = 30.0  # Telegram's free limit; up to 1000 with paid broadcasts
    log_format: str = "text"
    log_salt: str | None = field(default=None, repr=False)
    throttle_burst: int = 20  # per-user flood control: updates a user may send at once ...
    throttle_rate: float = 3.0  # ... and per second after that (bot/throttle.py)
    http_client: str = "aiohttp"  # PTB's transport: "aiohttp" (bot/transport.py) or "httpx"
    poll_hold: float = 0.0  # seconds to wait before polling after a batch (bot/appbot.py)

    @property
    def local_mode(self) -> bool:
        """True when no token is set: the bot talks to the project's local Bot API server."""
        return self.token is None

    @property
    def webhook_mode(self) -> bool:
        return self.token is not None and self.webhook_url is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, create_dirs: bool = True) -> Config:
        """Read and check every variable; raise ConfigError naming the first bad one."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("TELEGRAM_BOT_TOKEN")
        if token is not None and not _TOKEN_RE.match(token):
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not a bot token (expected digits, a colon, then letters, "
                "digits, '-' or '_', as BotFather gives it)"
            )

        api_base_url = get("TELEGRAM_API_BASE_URL") or DEFAULT_API_BASE_URL
        _check_url("TELEGRAM_API_BASE_URL", api_base_url)

        db_path = Path(get("BOT_DB") or DEFAULT_DB)
        if create_dirs:
            try:
                db_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"BOT_DB: cannot create the folder {db_path.parent} ({exc.strerror})"
                ) from None

        admin_ids: set[int] = set()
        for part in (get("BOT_ADMIN_IDS") or "").split(","):
            part = part.strip()
            if not part:
                continue
            if not re.fullmatch(r"\d{1,20}", part):
                raise ConfigError(
                    f"BOT_ADMIN_IDS must be comma-separated Telegram user ids; {part!r} is not one"
                )
            admin_ids.add(int(part))

        tz_name = get("BOT_TZ") or "Asia/Kuala_Lumpur"
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"BOT_TZ: unknown time zone {tz_name!r}") from None

        webhook_url = get("WEBHOOK_URL")
        if webhook_url is not None:
            _check_url("WEBHOOK_URL", webhook_url)
            if token is None:
                raise ConfigError("WEBHOOK_URL is set but TELEGRAM_BOT_TOKEN is not")

        port = _whole("PORT", get("PORT") or "8080", 1, 65535, "a number from 1 to 65535")

        secret = get("WEBHOOK_SECRET")
        if secret is not None and not _SECRET_RE.match(secret):
            raise ConfigError(
                "WEBHOOK_SECRET may contain only letters, digits, '_' and '-' (1-256 characters)"
            )

        outbox_rate = _rate(
            "OUTBOX_RATE", get("OUTBOX_RATE") or "30", 1000, "messages per second (0-1000]"
        )

        log_format = (get("LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', not {log_format!r}")

        throttle_burst = _whole(
            "BOT_THROTTLE_BURST",
            get("BOT_THROTTLE_BURST") or "20",
            1,
            100000,
            "a whole number of updates from 1 to 100000",
        )
        throttle_rate = _rate(
            "BOT_THROTTLE_RATE",
            get("BOT_THROTTLE_RATE") or "3",
            100000,
            "updates per second per user (0-100000]",
        )

        http_client = (get("BOT_HTTP_CLIENT") or "aiohttp").lower()
        if http_client not in HTTP_CLIENTS:
            raise ConfigError(f"BOT_HTTP_CLIENT must be 'aiohttp' or 'httpx', not {http_client!r}")

        poll_hold_ms = _whole(
            "BOT_POLL_HOLD_MS",
            get("BOT_POLL_HOLD_MS") or "0",
            0,
            1000,
            "a whole number of milliseconds from 0 to 1000",
        )

        content_dir = Path(get("BOT_CONTENT_DIR") or CONTENT_DIR)
        if not content_dir.is_dir():
            raise ConfigError(f"BOT_CONTENT_DIR: {content_dir} is not a folder")

        return cls(
            token=token,
            api_base_url=api_base_url,
            db_path=db_path,
            admin_ids=frozenset(admin_ids),
            tz=tz,
            webhook_url=webhook_url,
            port=port,
            webhook_secret=secret,
            content_dir=content_dir,
            outbox_rate=outbox_rate,
            log_format=log_format,
            log_salt=get("LOG_SALT"),
            throttle_burst=throttle_burst,
            throttle_rate=throttle_rate,
            http_client=http_client,
            poll_hold=poll_hold_ms / 1000,
        )


def _whole(name: str, text: str, minimum: int, maximum: int, what: str) -> int:
    """A whole number in [minimum, maximum], written in ASCII digits; else ConfigError."""
    if not re.fullmatch(r"[0-9]{1,9}", text) or not minimum <= int(text) <= maximum:
        raise ConfigError(f"{name} must be {what}, not {text!r}")
    return int(text)


def _rate(name: str, text: str, maximum: float, unit: str) -> float:
    """A number in (0, maximum]; else ConfigError naming the variable."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= maximum:
        raise ConfigError(f"{name} must be {unit}, not {text!r}")
    return value


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")


def redact(text: str, *secrets: str | None) -> str:
    """Replace every given secret (and anything shaped like a bot token) in text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return re.sub(r"\d{6,20}:[A-Za-z0-9_-]{30,}", "[REDACTED]", text)
