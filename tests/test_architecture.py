"""The import rules between the layers (see ARCHITECTURE.md), read from the source with ``ast``.

Every ``import`` counts, also one inside a function (a lazy import still ties two modules
together); only imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

# Libraries that talk to the outside world: none of them in the domain.
IO_LIBRARIES = ("telegram", "aiohttp", "httpx", "sqlite3", "sqlite_utils", "jinja2", "babel")

# Import cycles that exist today and are to be removed; each entry says by what work.
# (None today: the contribution renderer moved to bot/contribution_view.py and the matcher's
# concepts to bot/domain/concepts.py, issue 15.)
KNOWN_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(BOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(path: Path) -> set[str]:
    """Every dotted name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def bot_imports(name: str) -> set[str]:
    """The modules of ``bot`` that module ``name`` imports."""
    return {m for m in imported_names(MODULES[name]) if m in MODULES and m != name}


def import_cycles() -> set[frozenset[str]]:
    """Strongly connected groups of two or more bot modules (Tarjan)."""
    graph = {name: bot_imports(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[frozenset[str]] = set()

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.add(frozenset(group))

    for v in graph:
        if v not in index:
            connect(v)
    return cycles


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("name", [m for m in MODULES if _in(m, "bot.domain")])
def test_domain_is_pure_python(name: str) -> None:
    """bot/domain imports no I/O library and nothing of bot outside bot/domain."""
    names = imported_names(MODULES[name])
    assert not [m for m in names if _top(m) in IO_LIBRARIES], f"{name} does I/O"
    outside = [m for m in names if _top(m) == "bot" and not _in(m, "bot.domain")]
    assert not outside, f"{name} imports {outside}"


@pytest.mark.parametrize("name", [m for m in MODULES if _in(m, "bot.localapi")])
def test_local_bot_api_stands_alone(name: str) -> None:
    """The local Bot API server is a fake Telegram: it knows nothing of the bot it serves."""
    outside = [
        m for m in imported_names(MODULES[name]) if _top(m) == "bot" and not _in(m, "bot.localapi")
    ]
    assert not outside, f"{name} imports {outside}"


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("bot.web", "bot.app"),  # the webhook server is given an Application; it never builds one
        ("bot.metrics", "bot.outbox"),  # counters are told things; they reach into nothing
        ("bot.logs", "bot.app"),
        ("bot.locks", "bot.outbox"),  # the lease guards any start/stop pair
        ("bot.outbox", "bot.app"),
        ("bot.storage", "bot.handlers"),
        ("bot.reminders", "bot.handlers"),  # services render through their own views module
        ("bot.reminder_store", "bot.handlers"),
        ("bot.reminder_views", "bot.handlers"),
        ("bot.agencies", "bot.handlers"),
        # one renderer of a contribution for the chat and the CLI, below both
        ("bot.contribution_view", "bot.handlers"),
        ("bot.contribution_view", "bot.commands"),
        ("bot.commands.calc", "bot.handlers"),  # the CLI renders through contribution_view
        ("bot.handlers.stafflist", "bot.commands"),
        ("bot.callbacks", "bot.handlers"),
    ],
)
def test_lower_layers_do_not_import_higher_ones(low: str, high: str) -> None:
    for name in MODULES:
        if _in(name, low):
            bad = [m for m in bot_imports(name) if _in(m, high)]
            assert not bad, f"{name} imports {bad}"


def test_the_contribution_renderer_imports_only_i18n_and_the_domain() -> None:
    """bot/contribution_view.py renders text for the chat and the CLI: no Telegram, no storage."""
    names = imported_names(MODULES["bot.contribution_view"])
    assert not [m for m in names if _top(m) in ("telegram", "aiohttp", "httpx", "sqlite3", "sqlite_utils")]
    ours = bot_imports("bot.contribution_view")
    assert ours and all(m == "bot.i18n" or _in(m, "bot.domain") for m in ours), ours


def test_no_new_import_cycles() -> None:
    """No two bot modules import each other (directly or round a loop), apart from the
    cycles listed in KNOWN_CYCLES, which must still exist (remove an entry once it is gone)."""
    cycles = import_cycles()
    assert cycles - KNOWN_CYCLES == set(), f"new import cycles: {cycles - KNOWN_CYCLES}"
    assert KNOWN_CYCLES - cycles == set(), f"gone, remove from KNOWN_CYCLES: {KNOWN_CYCLES - cycles}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("bot.handlers")))
def test_handlers_never_touch_sqlite(name: str) -> None:
    # handlers call the stores; a database failure reaches them as bot.storage.DatabaseError
    found = {m for m in imported_names(MODULES[name]) if _top(m) in ("sqlite3", "sqlite_utils")}
    assert found == set(), f"{name} imports {sorted(found)}"


def test_the_checker_sees_imports() -> None:
    """The rules above are not vacuous: the reader finds known imports, lazy ones included."""
    assert "bot.outbox.Outbox" in imported_names(MODULES["bot.app"])
    assert "bot.web" in imported_names(MODULES["bot.commands.run"])  # imported inside a function
    assert "telegram" in {_top(m) for m in imported_names(MODULES["bot.app"])}


def test_callback_codec_stands_low() -> None:
    """bot.callbacks is infrastructure: services and handlers build buttons with it, so it
    imports no telegram, no I/O library, and nothing of bot but the domain."""
    names = imported_names(MODULES["bot.callbacks"])
    assert not [m for m in names if _top(m) in IO_LIBRARIES], "bot.callbacks does I/O"
    outside = [m for m in names if _top(m) == "bot" and not _in(m, "bot.domain")]
    assert not outside, f"bot.callbacks imports {outside}"


# --- callback data only through bot.callbacks ----------------------------------------------------

BUTTON_MODULES = sorted(
    n for n in MODULES if _in(n, "bot.handlers") or n in ("bot.reminder_views", "bot.agencies")
)


def _literal_text(node: ast.AST) -> str | None:
    """The text of a string literal, or the leading literal part of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        head = node.values[0] if node.values else None
        return head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
    return None


def callback_literals(source: str) -> list[str]:
    """Callback data written by hand in ``source``: a string or f-string given as
    ``callback_data=``/``"callback_data":``, a handler's ``pattern=`` that is not a codec's
    ``.pattern()``, or any string that starts like a button of the codec (``"menu:main"``,
    ``f"rm:paid:{ym}"``, ``r"^bc:"``)."""
    from bot.callbacks import kinds

    heads = sorted({p.split(":", 1)[0] for p in kinds()}, key=len, reverse=True)
    starts = re.compile(r"\^?(?:" + "|".join(map(re.escape, heads)) + r"):")
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "callback_data":
            if _literal_text(node.value) is not None:
                found.append(f"{node.arg}={ast.unparse(node.value)}")
        elif isinstance(node, ast.keyword) and node.arg == "pattern":
            derived = (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "pattern"
            )
            if not derived:
                found.append(f"pattern={ast.unparse(node.value)}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _literal_text(key) == "callback_data" and _literal_text(value) is not None:
                    found.append(f'"callback_data": {ast.unparse(value)}')
        elif id(node) not in docstrings and isinstance(node, ast.Constant | ast.JoinedStr):
            text = _literal_text(node)
            if text and starts.match(text):
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("name", BUTTON_MODULES)
def test_callback_data_only_through_the_codec(name: str) -> None:
    """No handler, nor the reminder and agency services, writes or matches callback data by
    hand: buttons are ``Kind(...).pack()``, handlers register ``Kind.pattern()`` and read
    ``Kind.parse(query.data)`` (bot/callbacks.py)."""
    found = callback_literals(MODULES[name].read_text(encoding="utf-8"))
    assert found == [], f"{name} writes callback data by hand: {found}"


def test_the_callback_check_sees_hand_written_data() -> None:
    """The check above is not vacuous: each way the handlers used to write data is caught."""
    before = '''
rows = [[(t("menu.main"), "menu:main")], [("x", f"af:u:{a.code}")]]
button = InlineKeyboardButton("x", callback_data=f"bc:x:{row['id']}")
markup = {"inline_keyboard": [[{"text": "x", "callback_data": f"rm:paid:{ym}"}]]}
app.add_handler(CallbackQueryHandler(on_button, pattern=r"^rm:"))
app.add_handler(CallbackQueryHandler(on_button, pattern=CALLBACK_PATTERN))
_OWN_PREFIXES = ("ga:", "gm:")
'''
    found = callback_literals(before)
    for written in ("menu:main", "af:u:", "callback_data=f'bc:x:", "rm:paid:", "pattern='^rm:'",
                    "pattern=CALLBACK_PATTERN", "'ga:'", "'gm:'"):
        assert any(written in f.replace('"', "'") for f in found), (written, found)
    after = '''
"""``g:<id>:<step>:<lang>`` in a docstring is documentation."""
rows = [[(t("menu.main"), Menu("main").pack())]]
markup = {"inline_keyboard": [[{"text": "x", "callback_data": ReminderPaid(ym).pack()}]]}
app.add_handler(CallbackQueryHandler(on_button, pattern=REMINDERS.pattern()))
print("calc: --out needs --file", "menu.main", "https://example.org")
'''
    assert callback_literals(after) == []
