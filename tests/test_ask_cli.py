"""CLI: ``python -m bot ask`` and ``python -m bot check-content``."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands import ask, check_content
from bot.domain.matcher import OPEN_AT, UNSURE_AT

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "data" / "guides_fixture"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    ask.register(sub)
    check_content.register(sub)
    return parser.parse_args(list(argv))


def test_ask_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("ask", "macam mana nak daftar maid dengan PERKESO", "--json")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"lang", "guide", "confidence", "score", "band", "suggestions", "both", "answer"}
    assert out["lang"] == "ms"
    assert out["guide"] == "domestic-register"
    assert out["band"] == "open"
    assert isinstance(out["confidence"], float) and OPEN_AT <= out["confidence"] <= 1
    assert "domestic-register" not in out["suggestions"]


def test_ask_json_unsure_and_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("ask", "socso", "--json", "--lang", "zh")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lang"] == "zh" and out["guide"] is None and 2 <= len(out["suggestions"]) <= 3
    assert out["band"] == "unsure" and UNSURE_AT <= out["confidence"] < OPEN_AT
    args = parse("ask", "what's the weather today", "--json")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "lang": "en", "guide": None, "confidence": 0.0, "score": 0.0, "band": "none",
        "suggestions": [], "both": [], "answer": None,
    }


@pytest.mark.parametrize(
    "question",
    ["what is the meaning of life", "how do i check my epf balance", "bila tarikh akhir borang be lhdn", "公积金55岁可以全部领出来吗"],
)
def test_ask_json_out_of_scope_opens_no_guide(capsys: pytest.CaptureFixture[str], question: str) -> None:
    args = parse("ask", question, "--json")
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["guide"] is None and out["band"] != "open" and out["confidence"] < OPEN_AT


def test_ask_stdin_one_json_per_line_in_order(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = ["外佣社险怎么付", "hello", "", "sosco due date bila"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(questions) + "\n"))
    args = parse("ask", "-", "--json")
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(questions) - 1  # the blank line is skipped
    answers = [json.loads(line) for line in lines]
    assert [a["guide"] for a in answers] == ["domestic-pay", None, "payment-deadlines"]
    assert answers[0]["lang"] == "zh"


def test_ask_readable(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("ask", "perkeso hotline number")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "contact-perkeso" in out and "confidence=" in out
    args = parse("ask", "maid")
    assert args.func(args) == 0
    assert "not sure" in capsys.readouterr().out


def test_ask_empty_question_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("ask", "  ")
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err


def test_ask_with_fixture_content(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("ask", "upload eis text file", "--json", "--content", str(FIXTURE))
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["guide"] == "pay-eis"


def test_check_content_ok(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("check-content", "--content", str(FIXTURE))
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == "OK: 2 guides in 3 languages"


def test_check_content_real_content(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("check-content")
    assert args.func(args) == 0
    # the number of guides is counted from the files, not a constant that each new guide breaks
    n = len({p.stem for p in (ROOT / "content").glob("*/guides/*.md")})
    assert n > 0
    assert capsys.readouterr().out.strip() == f"OK: {n} guides in 3 languages"


def test_check_content_reports_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    (content / "ms" / "guides" / "pay-eis.md").unlink()
    path = content / "zh" / "guides" / "pay-socso.md"
    path.write_text(path.read_text(encoding="utf-8").replace('id = "pay-socso"', 'id = "x"'))
    args = parse("check-content", "--content", str(content))
    assert args.func(args) == 1
    out = capsys.readouterr().out.splitlines()
    assert any("ms/guides/pay-eis.md" in line and "missing" in line for line in out)
    assert any("zh/guides/pay-socso.md" in line and "file name" in line for line in out)
    assert not any(line.startswith("OK") for line in out)


@pytest.mark.slow
def test_python_m_bot_ask_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "-", "--json"],
        input="how to bayar socso for maid\nhello\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["guide"] for a in answers] == ["domestic-pay", None]
