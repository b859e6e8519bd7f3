"""What comes off the wire from Telegram, made safe before any handler sees it.

JSON may carry a lone UTF-16 surrogate (``"\\ud800"``): it decodes to a Python string that
cannot be encoded as UTF-8, so storing it, logging it or sending it back would fail far from
where it came in. Every update is decoded here (long polling through :class:`WireJSON`,
the webhook through :func:`scrub`), and each lone surrogate becomes U+FFFD, the
replacement character, as a UTF-8 decoder would have made of it.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["WireJSON", "loads_update", "scrub"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def loads_update(payload: bytes) -> Any:
    """Decode a JSON body from Telegram. Raises ``ValueError`` (``json.JSONDecodeError`` or
    ``UnicodeDecodeError``) on a body that is not JSON in UTF-8."""
    data = json.loads(payload.decode("utf-8"))
    # A surrogate can only have come in as a \\u escape: skip the walk when there is none.
    return scrub(data) if b"\\u" in payload or b"\\U" in payload else data


class WireJSON:
    """Mixin for a ``telegram.request.BaseRequest``: Telegram's answers (updates included) are
    decoded with :func:`loads_update` through PTB's documented ``parse_json_payload`` hook."""

    __slots__ = ()

    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:
        try:
            return loads_update(payload)
        except ValueError:
            return super().parse_json_payload(payload)  # type: ignore[misc]  # PTB's own error
