"""The Chinese segmenter is loaded only for a Chinese question; its committed cache is current."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.config import CONTENT_DIR
from bot.domain import matcher as matcher_module
from bot.domain.guides import load_guides

ROOT = Path(__file__).resolve().parents[1]


def test_jieba_is_loaded_only_when_a_chinese_question_arrives() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from bot.domain.guides import load_guides
        from bot.domain.matcher import Matcher, jieba_loaded
        m = Matcher.build(load_guides(Path({str(CONTENT_DIR)!r})))
        assert "jieba" not in sys.modules, "building the matcher imported jieba"
        en = m.match("how to pay socso for my maid")
        ms = m.match("macam mana bayar perkeso untuk pembantu rumah")
        assert "jieba" not in sys.modules and not jieba_loaded(), "a Latin question loaded jieba"
        zh = m.match("外佣社险怎么付")
        assert jieba_loaded()
        print(en.guide, ms.guide, zh.guide)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    en, ms, zh = out.stdout.split()
    assert en == ms == zh != "None"


def test_committed_segments_are_current(tmp_path: Path) -> None:
    """Regenerate with: python -m bot.domain.matcher --write-segments"""
    fresh = tmp_path / "zh_segments.json"
    count = matcher_module.write_segments(load_guides(CONTENT_DIR), fresh)
    assert count > 100
    committed = json.loads(matcher_module.SEGMENTS_FILE.read_text(encoding="utf-8"))
    assert json.loads(fresh.read_text(encoding="utf-8")) == committed


def test_segments_made_with_other_domain_words_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "zh_segments.json"
    stale.write_text(
        json.dumps({"words": "0000", "runs": {"外佣社险": ["外", "佣社", "险"]}}), encoding="utf-8"
    )
    monkeypatch.setattr(matcher_module, "SEGMENTS_FILE", stale)
    monkeypatch.setattr(matcher_module, "_segments", None)
    words = matcher_module._segment("外佣社险")
    assert words != ["外", "佣社", "险"]
    assert "外佣" in words
    monkeypatch.setattr(matcher_module, "_segments", None)  # the real file again afterwards
