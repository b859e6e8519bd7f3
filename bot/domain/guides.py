"""Step-by-step guides: loading ``content/<lang>/guides/<id>.md`` and checking them.

A guide file is TOML front matter between ``+++`` lines followed by one ``## `` heading per
step (see SPEC.md, "Guide file format"). Step bodies use a tiny Markdown subset (``**bold**``,
```code```, ``- `` bullets) that is converted to Telegram HTML; everything else is escaped.

Pure Python: no telegram imports.

Length (about 500 lines): the guide model, its Markdown subset, the file parser and the content
checker share the file format's rules; the ``# ---`` sections are the seams to split along.
"""

from __future__ import annotations

import html
import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from bot.domain.concepts import CONCEPTS  # the concept names questions are read with
from bot.domain.glossary import check_glossary, load_glossary
from bot.domain.langs import LANGS

log = logging.getLogger(__name__)

TOPICS: tuple[str, ...] = ("employers", "households", "workers", "general")
FALLBACK_LANG = "en"
MAX_STEP_CHARS = 1000
REQUIRED_FIELDS: tuple[str, ...] = (
    "id",
    "lang",
    "title",
    "summary",
    "topic",
    "keywords",
    "related",
    "reviewed",
    "sources",
)
# "related" may legitimately be an empty list? The spec wants every guide to point somewhere,
# so an empty list counts as incomplete like the other fields.

_CODE_RE = re.compile(r"`([^`\n]+)`")
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")


class GuideError(ValueError):
    """A guide file cannot be parsed; the message starts with the file path."""


@dataclass(frozen=True)
class Link:
    """A URL shown with a guide; ``step`` (1-based) puts it as a button on that step."""

    label: str
    url: str
    step: int | None = None


@dataclass(frozen=True)
class Source:
    """Where the guide's facts come from; ``url`` is "" for an offline document."""

    label: str
    url: str


@dataclass(frozen=True)
class Answer:
    """A short answer the guide gives before its steps (front matter ``[[answers]]``).

    It applies to a question holding every concept in ``when`` (the matcher's concept names,
    e.g. "foreign", "eis") and none in ``unless``; when ``yesno`` (the default) the question must
    also be a yes/no or "do I need" question.
    """

    when: tuple[str, ...]
    text: str
    unless: tuple[str, ...] = ()
    yesno: bool = True


@dataclass(frozen=True)
class Step:
    """One step: a plain-text title and its body already converted to Telegram HTML."""

    title: str
    body_html: str

    @property
    def html(self) -> str:
        """The step as sent: bold escaped title, blank line, body."""
        head = f"<b>{html.escape(self.title, quote=False)}</b>"
        return f"{head}\n{self.body_html}" if self.body_html else head


@dataclass(frozen=True)
class Guide:
    """One guide in one language."""

    id: str
    lang: str
    title: str
    summary: str
    topic: str
    keywords: tuple[str, ...]
    related: tuple[str, ...]
    reviewed: date
    links: tuple[Link, ...]
    sources: tuple[Source, ...]
    steps: tuple[Step, ...]
    path: Path | None = None
    answers: tuple[Answer, ...] = ()
    order: int | None = None  # position in its topic's menu; None sorts last, by title

    @property
    def sort_key(self) -> tuple[bool, int, str]:
        """Menu order within a topic: ``order`` ascending, guides without one last by title."""
        return (self.order is None, self.order or 0, self.title.casefold())

    @property
    def step_text(self) -> str:
        """All step titles and bodies as plain text (tags stripped), for search."""
        parts: list[str] = []
        for step in self.steps:
            parts.append(step.title)
            parts.append(html.unescape(re.sub(r"<[^>]+>", " ", step.body_html)))
        return "\n".join(parts)


class GuideLibrary:
    """All loaded guides, looked up by id and language."""

    def __init__(self, guides: Iterable[Guide]) -> None:
        self._by_key: dict[tuple[str, str], Guide] = {}
        for g in guides:
            self._by_key[(g.id, g.lang)] = g
        self._ids = tuple(sorted({gid for gid, _ in self._by_key}))

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, guide_id: str, lang: str) -> Guide | None:
        """The guide in ``lang``, else in English, else None."""
        return self._by_key.get((guide_id, lang)) or self._by_key.get((guide_id, FALLBACK_LANG))

    def ids(self) -> tuple[str, ...]:
        """Every guide id present in at least one language, sorted."""
        return self._ids

    def langs(self) -> tuple[str, ...]:
        """Languages that have at least one guide, in LANGS order."""
        present = {lang for _, lang in self._by_key}
        return tuple(lang for lang in LANGS if lang in present) + tuple(
            sorted(present - set(LANGS))
        )

    def in_lang(self, lang: str) -> list[Guide]:
        """Guides written in exactly ``lang`` (no fallback), sorted by id."""
        return [g for (gid, gl), g in sorted(self._by_key.items()) if gl == lang]

    def by_topic(self, lang: str) -> dict[str, list[Guide]]:
        """Guides for ``lang`` (with English fallback) grouped by topic, topics in TOPICS order
        (the user's journey: employers, households, workers, general), guides by their ``order``
        front-matter field, then those without one by title."""
        groups: dict[str, list[Guide]] = {}
        for gid in self._ids:
            g = self.get(gid, lang)
            if g is not None:
                groups.setdefault(g.topic, []).append(g)
        ordered = {t: groups.pop(t) for t in TOPICS if t in groups}
        ordered.update(sorted(groups.items()))
        for items in ordered.values():
            items.sort(key=lambda g: g.sort_key)
        return ordered


# --------------------------------------------------------------------------- markdown


def _inline(text: str) -> str:
    """Escape ``text`` and convert `code` and **bold** spans."""
    out: list[str] = []
    pos = 0
    for m in _CODE_RE.finditer(text):
        out.append(_bold(text[pos : m.start()]))
        out.append(f"<code>{html.escape(m.group(1), quote=False)}</code>")
        pos = m.end()
    out.append(_bold(text[pos:]))
    return "".join(out)


def _bold(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return _BOLD_RE.sub(lambda m: f"<b>{m.group(1)}</b>", escaped)


def markdown_to_html(text: str) -> str:
    """Convert the guide Markdown subset to Telegram HTML.

    ``**bold**`` -> ``<b>``, ```code``` -> ``<code>``, lines starting with ``- `` -> ``• ``;
    every other character that is special in HTML is escaped. Runs of blank lines collapse to one.
    """
    lines: list[str] = []
    for raw in text.strip().splitlines():
        line = raw.rstrip()
        stripped = line.lstrip()
        if stripped.startswith("- "):
            line = "• " + _inline(stripped[2:].strip())
        elif stripped == "-":
            line = "•"
        else:
            line = _inline(line.strip())
        if not line and lines and not lines[-1]:
            continue
        lines.append(line)
    return "\n".join(lines).strip()


# --------------------------------------------------------------------------- parsing


def _split_front_matter(text: str, path: Path) -> tuple[str, str]:
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "+++":
        raise GuideError(f"{path}: does not start with a '+++' front matter line")
    for i in range(1, len(lines)):
        if lines[i].strip() == "+++":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    raise GuideError(f"{path}: front matter has no closing '+++' line")


def _split_steps(body: str) -> tuple[str, list[tuple[str, str]]]:
    """Return (text before the first heading, [(title, markdown body), ...])."""
    preamble: list[str] = []
    steps: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        if line.startswith("## "):
            steps.append((line[3:].strip(), []))
        elif steps:
            steps[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble).strip(), [(t, "\n".join(b)) for t, b in steps]


def _str_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _parse(path: Path) -> tuple[dict, str, list[tuple[str, str]]]:
    """Read a guide file: (front matter dict, preamble, raw steps). Raises GuideError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GuideError(f"{path}: cannot read: {e}") from e
    fm_text, body = _split_front_matter(text, path)
    try:
        meta = tomllib.loads(fm_text)
    except tomllib.TOMLDecodeError as e:
        raise GuideError(f"{path}: TOML error in front matter: {e}") from e
    preamble, steps = _split_steps(body)
    return meta, preamble, steps


def _order(value: object) -> int | None:
    """The ``order`` field when it is a whole number from 1 up, else None (sorted last)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _build(path: Path, meta: dict, steps: list[tuple[str, str]]) -> Guide:
    reviewed = meta.get("reviewed")
    if not isinstance(reviewed, date):
        reviewed = date.min
    links = tuple(
        Link(
            label=str(item.get("label", "")),
            url=str(item.get("url", "")),
            step=item.get("step") if isinstance(item.get("step"), int) else None,
        )
        for item in meta.get("links", []) or []
        if isinstance(item, dict)
    )
    sources = tuple(
        Source(label=str(item.get("label", "")), url=str(item.get("url", "")))
        for item in meta.get("sources", []) or []
        if isinstance(item, dict)
    )
    order = meta.get("order")
    return Guide(
        order=_order(order),
        id=str(meta.get("id", path.stem)),
        lang=str(meta.get("lang", path.parent.parent.name)),
        title=str(meta.get("title", "")),
        summary=str(meta.get("summary", "")),
        topic=str(meta.get("topic", "general")),
        keywords=_str_tuple(meta.get("keywords")),
        related=_str_tuple(meta.get("related")),
        reviewed=reviewed,
        links=links,
        sources=sources,
        steps=tuple(Step(title=t, body_html=markdown_to_html(b)) for t, b in steps),
        path=path,
        answers=tuple(
            Answer(
                when=_str_tuple(item.get("when")),
                text=str(item.get("text", "")).strip(),
                unless=_str_tuple(item.get("unless")),
                yesno=item.get("yesno", True) is not False,
            )
            for item in meta.get("answers", []) or []
            if isinstance(item, dict)
        ),
    )


MAX_ANSWER_CHARS = 300


def _answer_problems(name: str, items: object) -> list[str]:
    """Problems of a guide's ``[[answers]]``: a table each, known concepts, a short text."""
    if not isinstance(items, list):
        return [f"{name}: answers must be an array of tables"]
    problems: list[str] = []
    for j, item in enumerate(items, 1):
        if not isinstance(item, dict):
            problems.append(f"{name}: answers #{j} is not a table")
            continue
        for key in ("when", "unless"):
            value = item.get(key, [] if key == "unless" else None)
            if not isinstance(value, list) or (key == "when" and not value):
                problems.append(f"{name}: answers #{j} {key} must be a list of concept names")
                continue
            unknown = [c for c in value if c not in CONCEPTS]
            if unknown:
                problems.append(f"{name}: answers #{j} {key} has unknown concepts {unknown}")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{name}: answers #{j} has no text")
        elif len(text) > MAX_ANSWER_CHARS:
            problems.append(f"{name}: answers #{j} text is over {MAX_ANSWER_CHARS} characters")
        if "yesno" in item and not isinstance(item["yesno"], bool):
            problems.append(f"{name}: answers #{j} yesno must be true or false")
    return problems


def load_guide(path: Path) -> Guide:
    """Load one guide file. Raises GuideError when it cannot be parsed."""
    meta, _, steps = _parse(path)
    return _build(path, meta, steps)


def _guide_files(content_dir: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for lang in LANGS:
        folder = content_dir / lang / "guides"
        found[lang] = sorted(folder.glob("*.md")) if folder.is_dir() else []
    return found


def load_guides(content_dir: Path) -> GuideLibrary:
    """Load every ``content_dir/<lang>/guides/*.md``.

    A file that cannot be parsed is skipped with a logged warning (``check_content`` reports it),
    so one broken guide never stops the bot.
    """
    guides: list[Guide] = []
    for files in _guide_files(Path(content_dir)).values():
        for path in files:
            try:
                guides.append(load_guide(path))
            except GuideError as e:
                log.warning("skipping guide: %s", e)
    return GuideLibrary(guides)


# --------------------------------------------------------------------------- checking


def url_problem(url: object) -> str | None:
    """Why ``url`` is not an acceptable http(s) URL, or None when it is."""
    if not isinstance(url, str) or not url:
        return "is empty"
    if any(c.isspace() for c in url):
        return "contains whitespace"
    try:
        parts = urlsplit(url)
    except ValueError as e:
        return f"cannot be parsed ({e})"
    if parts.scheme not in ("http", "https"):
        return "is not http(s)"
    host = parts.hostname or ""
    if not host or "." not in host.strip("."):
        return "has no host"
    return None


_LANG_SEGMENTS = frozenset({"en", "my", "ms", "bm", "zh", "cn"})


def _site(url: str) -> str:
    """``url`` with a leading language folder (``/en/``, ``/my/``) replaced by ``*``: the same
    site's page in another language (PERKESO's Malay pages for ms and zh) compares equal only in
    that the host matches and both are language folders; any other difference is kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    first, _, _rest = parts.path.lstrip("/").partition("/")
    if first.lower() in _LANG_SEGMENTS:
        return f"{parts.scheme}://{parts.hostname}/*"
    return url


def _missing(meta: dict, key: str) -> bool:
    value = meta.get(key)
    if value is None:
        return True
    if isinstance(value, str | list | dict) and not value:
        return True
    return False


def check_content(content_dir: Path) -> list[str]:
    """Every problem found in the guides under ``content_dir``, each naming the file.

    Never raises for bad content: parse errors are reported as problems.
    """
    content_dir = Path(content_dir)
    problems: list[str] = []
    files = _guide_files(content_dir)
    guides: dict[str, dict[str, Guide]] = {lang: {} for lang in LANGS}

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(content_dir.parent))
        except ValueError:
            return str(p)

    for lang, paths in files.items():
        for path in paths:
            name = rel(path)
            try:
                meta, preamble, raw_steps = _parse(path)
            except GuideError as e:
                problems.append(str(e).replace(str(path), name, 1))
                continue
            missing = [k for k in REQUIRED_FIELDS if _missing(meta, k)]
            if missing:
                problems.append(f"{name}: front matter incomplete: missing {', '.join(missing)}")
            if "reviewed" in meta and not isinstance(meta["reviewed"], date):
                problems.append(f"{name}: reviewed must be a TOML date like 2026-11-25")
            for key in ("keywords", "related"):
                if key in meta and not isinstance(meta[key], list):
                    problems.append(f"{name}: {key} must be a list of strings")
            if meta.get("id") not in (None, path.stem):
                problems.append(f"{name}: id {meta.get('id')!r} does not match file name")
            if meta.get("lang") not in (None, lang):
                problems.append(f"{name}: lang {meta.get('lang')!r} does not match folder {lang!r}")
            order = meta.get("order")
            if "order" in meta and _order(order) is None:
                problems.append(f"{name}: order must be a whole number from 1 up, not {order!r}")
            topic = meta.get("topic")
            if topic is not None and topic not in TOPICS:
                problems.append(f"{name}: topic {topic!r} is not one of {', '.join(TOPICS)}")
            if preamble:
                problems.append(f"{name}: text before the first '## ' step heading")
            if not raw_steps:
                problems.append(f"{name}: no '## ' steps")
            guide = _build(path, meta, raw_steps)
            for i, step in enumerate(guide.steps, 1):
                if not step.title:
                    problems.append(f"{name}: step {i} has an empty heading")
                if len(step.html) > MAX_STEP_CHARS:
                    problems.append(
                        f"{name}: step {i} renders to {len(step.html)} characters "
                        f"(max {MAX_STEP_CHARS})"
                    )
            for kind in ("links", "sources"):
                items = meta.get(kind, [])
                if not isinstance(items, list):
                    problems.append(f"{name}: {kind} must be an array of tables")
                    continue
                for j, item in enumerate(items, 1):
                    if not isinstance(item, dict):
                        problems.append(f"{name}: {kind} #{j} is not a table")
                        continue
                    if kind == "sources" and "url" not in item:
                        # A source may be an offline document (e.g. the seed guides): a label
                        # without a url is a citation, not a broken link.
                        why = None if item.get("label") else "is missing"
                    elif "url" not in item:
                        why = "is missing"
                    else:
                        why = url_problem(item.get("url"))
                    if why:
                        problems.append(f"{name}: {kind} #{j} url {item.get('url')!r} {why}")
                    if not item.get("label"):
                        problems.append(f"{name}: {kind} #{j} has no label")
            problems.extend(_answer_problems(name, meta.get("answers", [])))
            for j, link in enumerate(guide.links, 1):
                if link.step is not None and not 1 <= link.step <= len(guide.steps):
                    problems.append(f"{name}: links #{j} step {link.step} is out of range")
            guides[lang][path.stem] = guide

    all_ids = set().union(*(set(g) for g in guides.values()))
    for lang in LANGS:
        for gid in sorted(all_ids - set(guides[lang])):
            # Only report a missing file when the file really does not exist (a file that
            # failed to parse was already reported above).
            path = content_dir / lang / "guides" / f"{gid}.md"
            if not path.exists():
                others = [lang2 for lang2 in LANGS if gid in guides[lang2]]
                problems.append(f"{rel(path)}: missing (guide exists in {', '.join(others)})")

    for lang in LANGS:
        for gid, g in sorted(guides[lang].items()):
            name = rel(g.path) if g.path else gid
            for r in g.related:
                if r not in all_ids:
                    problems.append(f"{name}: related id {r!r} is not a known guide")

    for lang in LANGS:
        seen: dict[tuple[str, int], str] = {}
        for gid, g in sorted(guides[lang].items()):
            if g.order is None:
                continue
            other = seen.setdefault((g.topic, g.order), gid)
            if other != gid:
                name = rel(g.path) if g.path else gid
                problems.append(f"{name}: order {g.order} is also used by {other!r} in {g.topic}")

    for gid in sorted(all_ids):
        present = [(lang, guides[lang][gid]) for lang in LANGS if gid in guides[lang]]
        if len(present) < 2:
            continue
        ref_lang, ref = present[0]
        for _lang, g in present[1:]:
            name = rel(g.path) if g.path else gid
            if len(g.steps) != len(ref.steps):
                problems.append(
                    f"{name}: {len(g.steps)} steps, but {ref_lang} has {len(ref.steps)}"
                )
            if [_site(link.url) for link in g.links] != [_site(link.url) for link in ref.links]:
                # A link may point to the same site's page in the reader's language (PERKESO's
                # /my/ pages for ms and zh instead of /en/), never to another page or site.
                problems.append(f"{name}: link urls differ from the {ref_lang} guide")
            if [link.step for link in g.links] != [link.step for link in ref.links]:
                problems.append(f"{name}: link steps differ from the {ref_lang} guide")
            shape = [(sorted(a.when), sorted(a.unless), a.yesno) for a in g.answers]
            if shape != [(sorted(a.when), sorted(a.unless), a.yesno) for a in ref.answers]:
                problems.append(f"{name}: answers (when/unless/yesno) differ from the {ref_lang} guide")
            for key in ("topic", "order", "related", "reviewed"):
                mine, theirs = getattr(g, key), getattr(ref, key)
                if key == "related":
                    mine, theirs = sorted(mine), sorted(theirs)
                if mine != theirs:
                    problems.append(f"{name}: {key} differs from the {ref_lang} guide")

    # One voice per language: the glossary's avoid-variants in guides and catalogs.
    avoids = load_glossary(content_dir)
    if avoids is not None:
        problems.extend(check_glossary(content_dir, avoids))
    return problems
