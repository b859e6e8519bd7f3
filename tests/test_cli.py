"""The command line: every subcommand is listed, and a subcommand imports only what it needs."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bot.__main__ import COMMANDS, build_parser


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_table_lists_every_subcommand_with_the_modules_own_help() -> None:
    full = _subparsers(build_parser())  # imports every module
    helps = {choice.dest: choice.help for choice in full._choices_actions}
    assert set(helps) == set(COMMANDS)
    assert helps == {name: help_text for name, (_, help_text) in COMMANDS.items()}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_lazy_parser_registers_the_chosen_subcommand_in_full(name: str) -> None:
    lazy = _subparsers(build_parser(load=name))
    full = _subparsers(build_parser())
    chosen = lazy.choices[name]
    assert [a.dest for a in chosen._actions] == [a.dest for a in full.choices[name]._actions]
    others = [n for n in COMMANDS if n != name]
    assert all(len(lazy.choices[n]._actions) == 1 for n in others)  # only -h


def _imported_after(argv: list[str]) -> set[str]:
    code = (
        "import sys, contextlib, io\n"
        "from bot.__main__ import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main({argv!r})\n"
        "print(' '.join(sorted(m for m in sys.modules if '.' not in m)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def test_calc_does_not_import_telegram_aiohttp_or_the_matcher() -> None:
    loaded = _imported_after(["calc", "3500"])
    assert "bot" in loaded
    assert not loaded & {"telegram", "aiohttp", "jieba", "rapidfuzz", "httpx", "sqlite_utils"}


def test_calc_file_does_not_import_telegram_either(tmp_path) -> None:
    # the staff-list summary is rendered by bot.contribution_view, not by the chat's handler
    staff = tmp_path / "staff.csv"
    staff.write_text("Name,Wage\nAli,3500\n", encoding="utf-8")
    loaded = _imported_after(["calc", "--file", str(staff), "--month", "2026-11"])
    assert "bot" in loaded
    assert not loaded & {"telegram", "aiohttp", "jieba", "rapidfuzz", "httpx", "sqlite_utils"}


def test_help_lists_commands_without_importing_them() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout
