"""Telegram's message markup, checked as strictly as Telegram checks it.

Telegram-HTML parsing into plain text + entities (``parse_html``), lengths in UTF-16 code
units (``utf16_len``, Telegram's unit for lengths and offsets), the text/caption limits
(``parse_text``) and the validation of ``reply_markup`` keyboards and their buttons
(``validate_reply_markup``). Pure functions: no server state.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.localapi.model import ApiError, bad

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

# --------------------------------------------------------------------------------------
# Telegram HTML
# --------------------------------------------------------------------------------------

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z]{1,8}));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_RE = re.compile(
    r"""\s*([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
_PLAIN_RUN = re.compile(r"[^<&]+")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (Telegram's unit for lengths/offsets)."""
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate (JSON may carry "\ud800") counts as one code unit
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


def _html_error(message: str) -> ApiError:
    return bad(f"can't parse entities: {message}")


def _decode_entities(src: str, start: int, end: int) -> str:
    """Decode character entities inside an attribute value (strict)."""
    out: list[str] = []
    i = start
    while i < end:
        j = src.find("&", i, end)
        if j < 0:
            out.append(src[i:end])
            break
        out.append(src[i:j])
        ch, i = _entity_at(src, j)
        out.append(ch)
    return "".join(out)


def _entity_at(src: str, i: int) -> tuple[str, int]:
    m = _ENTITY_RE.match(src, i)
    if m:
        dec, hexa, name = m.groups()
        if name is not None:
            ch = _NAMED_ENTITIES.get(name)
            if ch is not None:
                return ch, m.end()
        else:
            code = int(dec) if dec is not None else int(hexa, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), m.end()
    raise _html_error(
        f"Character entity expected at byte offset {_byte_offset(src, i)}: "
        "use &amp; for a literal &"
    )


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-HTML into (plain text, entities) like Telegram does, strictly.

    Raises ApiError(400, "Bad Request: can't parse entities: ...") on unsupported tags,
    unclosed or mismatched tags, a bare ``<`` or a ``&`` that is not an entity.
    """
    if "<" not in src and "&" not in src:
        return src, []
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == "&":
            ch, i = _entity_at(src, i)
            out.append(ch)
            pos16 += 2 if ord(ch) > 0xFFFF else 1
            continue
        if c != "<":
            m = _PLAIN_RUN.match(src, i)
            assert m is not None
            piece = m.group()
            out.append(piece)
            pos16 += utf16_len(piece)
            i = m.end()
            continue
        tag_offset = i
        if src.startswith("</", i):
            j = src.find(">", i)
            if j < 0:
                raise _html_error(
                    f"Unclosed end tag at byte offset {_byte_offset(src, tag_offset)}"
                )
            name = src[i + 2 : j].strip().lower()
            if not stack:
                raise _html_error(
                    f'Unexpected end tag "{name}" at byte offset {_byte_offset(src, tag_offset)}'
                )
            open_name, etype, start16, attrs = stack.pop()
            if name != open_name:
                raise _html_error(
                    f"Unmatched end tag at byte offset {_byte_offset(src, tag_offset)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            i = j + 1
            length = pos16 - start16
            if length <= 0:
                continue
            entity: dict[str, Any] = {"type": etype, "offset": start16, "length": length}
            if etype == "text_link":
                href = attrs.get("href", "")
                if not href:
                    continue
                entity["url"] = href
            elif etype == "custom_emoji":
                entity["custom_emoji_id"] = attrs.get("emoji-id", "")
            elif etype == "blockquote" and "expandable" in attrs:
                entity["type"] = "expandable_blockquote"
            elif etype == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> is one pre entity with a language
                lang = attrs.get("class", "")
                if lang.startswith("language-"):
                    stack[-1][3]["language"] = lang[len("language-") :]
                continue
            elif etype == "pre" and attrs.get("language"):
                entity["language"] = attrs["language"]
            entities.append(entity)
            continue
        # start tag
        m = _TAG_NAME_RE.match(src, i + 1)
        assert m is not None
        name = m.group().lower()
        if not name or name not in _TAGS:
            raise _html_error(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(src, tag_offset)}'
            )
        i = m.end()
        attrs: dict[str, str] = {}
        while True:
            while i < n and src[i].isspace():
                i += 1
            if i >= n:
                raise _html_error(
                    f"Unclosed start tag at byte offset {_byte_offset(src, tag_offset)}"
                )
            if src[i] == ">":
                i += 1
                break
            if src.startswith("/>", i):
                raise _html_error(
                    f'Unsupported self-closing tag "{name}" at byte offset '
                    f"{_byte_offset(src, tag_offset)}"
                )
            am = _ATTR_RE.match(src, i)
            if not am or am.end() == i:
                raise _html_error(
                    f"Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {_byte_offset(src, i)}'
                )
            aname = am.group(1).lower()
            for group in (2, 3, 4):
                if am.group(group) is not None:
                    value = _decode_entities(src, am.start(group), am.end(group))
                    break
            else:
                value = ""
            attrs[aname] = value
            i = am.end()
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _html_error(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(src, tag_offset)}"
            )
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            raise _html_error(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(src, tag_offset)}"
            )
        stack.append((name, _TAGS[name], pos16, attrs))
    if stack:
        raise _html_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --------------------------------------------------------------------------------------
# Texts and keyboards
# --------------------------------------------------------------------------------------


def parse_text(
    text: Any, parse_mode: Any, entities: Any, *, caption: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """A message text or caption as Telegram reads it: (plain text, entities).

    Parses Telegram-HTML, takes ``entities`` as given otherwise, and checks Telegram's
    limits (empty text, 4096 / 1024 UTF-16 units); raises ``ApiError`` 400 like Telegram.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    mode = (parse_mode or "").strip().lower() if isinstance(parse_mode, str) else ""
    if mode == "html":
        plain, ents = parse_html(text)
    elif mode in ("", "markdown", "markdownv2"):
        plain = text
        ents = entities if isinstance(entities, list) else []
    else:
        raise bad("unsupported parse_mode")
    limit = MAX_CAPTION if caption else MAX_TEXT
    if not caption and not plain.strip():
        raise bad("message text is empty")
    if utf16_len(plain) > limit:
        raise bad("message caption is too long" if caption else "message is too long")
    return plain, ents


def valid_button_url(url: Any) -> bool:
    """Whether Telegram accepts ``url`` on a URL button (http(s) with a host, or tg://)."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() for c in url):
        return False
    low = url.lower()
    if low.startswith(("http://", "https://")):
        host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        host = host.rsplit("@", 1)[-1].split(":", 1)[0]
        return bool(host) and "." in host or host == "localhost"
    return low.startswith("tg://") and len(url) > 5


def validate_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Check a reply_markup like Telegram; returns the normalised dict (or None)."""
    if markup is None:
        return None
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            raise bad("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list):
            raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        for row in rows:
            if not isinstance(row, list):
                raise bad("can't parse inline keyboard button: row must be an Array")
            for button in row:
                validate_inline_button(button)
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                text = (
                    button
                    if isinstance(button, str)
                    else (button.get("text") if isinstance(button, dict) else None)
                )
                if not isinstance(text, str) or not text:
                    raise bad("can't parse keyboard button: Text must be non-empty")
        return markup
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return markup
    raise bad('can\'t find field "inline_keyboard"')


def validate_inline_button(button: Any) -> None:
    """Check one InlineKeyboardButton: a text and exactly one action."""
    if not isinstance(button, dict):
        raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad("can't parse inline keyboard button: Text must be non-empty")
    actions = [a for a in _BUTTON_ACTIONS if a in button]
    if not actions:
        raise bad("text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad(
            "can't parse inline keyboard button: exactly one of the optional fields must be used"
        )
    action = actions[0]
    if action == "callback_data":
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise bad("BUTTON_DATA_INVALID")
    elif action == "url" and not valid_button_url(button["url"]):
        raise bad(f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL")
