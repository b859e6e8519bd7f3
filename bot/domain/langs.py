"""The three languages of the bot, in menu order: English, Malay, Simplified Chinese."""

from __future__ import annotations

LANGS: tuple[str, ...] = ("en", "ms", "zh")

__all__ = ["LANGS"]
