"""One voice per language: ``content/GLOSSARY.md`` and the check of its "avoid" column.

GLOSSARY.md holds one Markdown table whose rows are ``concept | en | ms | zh | avoid``; the avoid
cell lists the variants not to use, per language: ``zh: 你`` or ``ms: pekerja sendiri; bekerja
sendirian`` (several languages: ``zh: 残疾; ms: kecacatan`` also works, each ``lang:`` starts a
new list). :func:`check_glossary` looks for those variants in the guides and the catalogs
(``content/<lang>/*.po``) of the same language:

* Latin script: whole words, case-insensitive ("tarik diri" is not found in "menarik diri");
* Chinese (any CJK character in the variant): as a substring, since Chinese has no spaces;
* URLs and ``code spans`` are ignored, and so is a guide's ``keywords`` list (search terms are
  what people type, e.g. 外劳).

Pure Python: no telegram, no ``bot.*`` imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GLOSSARY_FILE = "GLOSSARY.md"
LANG_COLUMNS: tuple[str, ...] = ("en", "ms", "zh")

_URL_RE = re.compile(r"https?://[^\s\"'<>)\]]+")
_CODE_RE = re.compile(r"`[^`\n]*`")
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_AVOID_LANG_RE = re.compile(r"(?:^|[\s;,])(en|ms|zh)\s*:")


@dataclass(frozen=True)
class Avoid:
    """A variant not to use in ``lang``; ``preferred`` is the glossary's term for the concept."""

    lang: str
    variant: str
    preferred: str
    concept: str

    @property
    def pattern(self) -> re.Pattern[str]:
        if _CJK_RE.search(self.variant):
            return re.compile(re.escape(self.variant))
        words = r"\s+".join(re.escape(w) for w in self.variant.split())
        return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    if inner.startswith("|"):
        inner = inner[1:]
    if inner.endswith("|"):
        inner = inner[:-1]
    return [c.strip() for c in inner.split("|")]


def parse_avoid_cell(cell: str) -> dict[str, list[str]]:
    """``"zh: 残疾; 伤残"`` -> ``{"zh": ["残疾", "伤残"]}`` (several ``lang:`` parts allowed)."""
    out: dict[str, list[str]] = {}
    marks = list(_AVOID_LANG_RE.finditer(cell))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(cell)
        for variant in cell[m.end() : end].split(";"):
            variant = variant.strip().strip(",").strip()
            if variant:
                out.setdefault(m.group(1), []).append(variant)
    return out


def parse_glossary(text: str) -> list[Avoid]:
    """Every avoid-variant in the glossary table (rows after the ``concept | en | ...`` header)."""
    avoids: list[Avoid] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            header = None if line.strip() else header
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue  # the |---|---| separator
        if "avoid" not in header or "concept" not in header:
            continue
        row = dict(zip(header, cells, strict=False))
        for lang, variants in parse_avoid_cell(row.get("avoid", "")).items():
            for variant in variants:
                avoids.append(Avoid(lang, variant, row.get(lang, ""), row.get("concept", "")))
    return avoids


def load_glossary(content_dir: Path) -> list[Avoid] | None:
    """The avoid-variants of ``content_dir/GLOSSARY.md``, or None when there is no glossary."""
    path = Path(content_dir) / GLOSSARY_FILE
    if not path.is_file():
        return None
    return parse_glossary(path.read_text(encoding="utf-8"))


def _prose(text: str) -> str:
    """``text`` without URLs and code spans (each replaced by a space)."""
    return _URL_RE.sub(" ", _CODE_RE.sub(" ", text))


def find_avoided(text: str, avoids: list[Avoid]) -> list[Avoid]:
    """The avoid-variants that occur in ``text`` (URLs and code spans ignored), in order."""
    prose = _prose(text)
    return [a for a in avoids if a.pattern.search(prose)]


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), s)


def po_messages(text: str) -> list[tuple[str, str, int]]:
    """(msgid, msgstr, line number of msgstr) for each entry of a simple gettext catalog; a
    plural entry gives one item per form (``msgstr[0]``, ``msgstr[1]``...)."""
    out: list[tuple[str, str, int]] = []
    msgid: str | None = None
    current: str | None = None
    parts: dict[str, list[str]] = {}
    line_no = 0

    def flush() -> None:
        if msgid is not None and "msgstr" in parts:
            out.append(("".join(parts["msgid"]), "".join(parts["msgstr"]), line_no))

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.match(r'(msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+"(.*)"$', line)
        if m:
            kind = m.group(1)
            if kind == "msgid":
                flush()
                parts = {"msgid": [_unquote(m.group(2))]}
                msgid = parts["msgid"][0]
                current = "msgid"
            elif kind == "msgid_plural":
                current = kind  # not checked: the key repeated
            else:
                if "msgstr" in parts:
                    flush()  # the previous plural form
                parts["msgstr"] = [_unquote(m.group(2))]
                line_no = n
                current = "msgstr"
        elif line.startswith('"') and line.endswith('"') and current in parts:
            parts[current].append(_unquote(line[1:-1]))
    flush()
    return out


def _guide_texts(text: str) -> list[tuple[str, int]]:
    """(text, line) pieces of a guide to check: every line except the ``keywords`` list."""
    pieces: list[tuple[str, int]] = []
    in_keywords = False
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("keywords") and "=" in stripped:
            in_keywords = "]" not in stripped.split("=", 1)[1]
            continue
        if in_keywords:
            in_keywords = "]" not in stripped
            continue
        if stripped.startswith(("url =", "url=")):
            continue
        pieces.append((line, n))
    return pieces


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def check_glossary(content_dir: Path, avoids: list[Avoid] | None = None) -> list[str]:
    """Every avoid-variant found in a guide or catalog of its language, naming file and term."""
    content_dir = Path(content_dir)
    if avoids is None:
        avoids = load_glossary(content_dir) or []
    base = content_dir.parent
    problems: list[str] = []
    for lang in sorted({a.lang for a in avoids}):
        mine = [a for a in avoids if a.lang == lang]
        folder = content_dir / lang
        for path in sorted((folder / "guides").glob("*.md")) if folder.is_dir() else []:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # check_content reports unreadable guides
            for piece, line in _guide_texts(text):
                for a in find_avoided(piece, mine):
                    problems.append(_message(_rel(path, base), f"line {line}", a))
        for path in sorted(folder.glob("*.po")) if folder.is_dir() else []:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                problems.append(f"{_rel(path, base)}: cannot read: {e}")
                continue
            for key, msgstr, line in po_messages(text):
                for a in find_avoided(msgstr, mine):
                    problems.append(_message(_rel(path, base), f"line {line} ({key})", a))
    return problems


def _message(name: str, where: str, a: Avoid) -> str:
    use = f", use {a.preferred!r}" if a.preferred else ""
    return f"{name}: {where}: avoid {a.variant!r} ({a.concept}{use}; see GLOSSARY.md)"


__all__ = [
    "Avoid",
    "GLOSSARY_FILE",
    "check_glossary",
    "find_avoided",
    "load_glossary",
    "parse_avoid_cell",
    "parse_glossary",
    "po_messages",
]
