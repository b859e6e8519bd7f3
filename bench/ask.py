"""Evaluate the question matcher on tests/data/questions.tsv: accuracy and latency.

Run:  python bench/ask.py [--content DIR] [--questions FILE] [--repeat N] [--misses]

Prints top-1 accuracy (the question's guide is the returned guide, or - counted separately -
the first suggestion when the matcher was unsure), overall and per language, language-detection
accuracy, and p50/p95 latency of one ``match`` call (median over ``--repeat`` runs of the file).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.domain.guides import load_guides  # noqa: E402
from bot.domain.matcher import Matcher  # noqa: E402


def read_questions(path: Path) -> list[tuple[str, str, str]]:
    """(lang, guide_id, question) rows of a questions.tsv file."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r[0], r[1], r[2]) for r in rows[1:] if len(r) >= 3 and r[0].strip()]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", type=Path, default=ROOT / "content")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests/data/questions.tsv")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--misses", action="store_true", help="list the questions answered wrongly")
    args = ap.parse_args(argv)

    library = load_guides(args.content)
    t0 = time.perf_counter()
    matcher = Matcher.build(library)  # no jieba: the guides' Chinese runs come from zh_segments.json
    t1 = time.perf_counter()
    Matcher.build(library)
    t2 = time.perf_counter()
    print(f"guides: {len(library)} files, ids: {len(library.ids())}")
    print(
        f"build: {1000 * (t1 - t0):.0f} ms first, {1000 * (t2 - t1):.0f} ms again"
    )

    questions = read_questions(args.questions)
    total: dict[str, int] = defaultdict(int)
    top1: dict[str, int] = defaultdict(int)
    sugg1: dict[str, int] = defaultdict(int)
    lang_ok: dict[str, int] = defaultdict(int)
    misses: list[str] = []
    for lang, gid, q in questions:
        m = matcher.match(q)
        total[lang] += 1
        lang_ok[lang] += m.lang == lang
        if m.guide == gid:
            top1[lang] += 1
        else:
            if m.guide is None and m.suggestions[:1] == (gid,):
                sugg1[lang] += 1
            misses.append(
                f"  [{lang}] {q!r}: want {gid}, got {m.guide} score={m.score:.2f} "
                f"sugg={list(m.suggestions)} top={[(g, round(s, 1)) for g, s in m.ranked[:3]]}"
            )

    n = sum(total.values())
    print(f"questions: {n}")
    print(
        f"top-1 accuracy: {100 * sum(top1.values()) / n:.1f}% overall"
        f" (+{100 * sum(sugg1.values()) / n:.1f}% unsure with the right first suggestion)"
    )
    for lang in sorted(total):
        print(
            f"  {lang}: {100 * top1[lang] / total[lang]:.1f}% ({top1[lang]}/{total[lang]}),"
            f" language detected {100 * lang_ok[lang] / total[lang]:.0f}%"
        )
    if args.misses and misses:
        print("misses:")
        print("\n".join(misses))

    per_question: list[list[float]] = [[] for _ in questions]
    for _ in range(args.repeat):
        for i, (_, _, q) in enumerate(questions):
            s = time.perf_counter()
            matcher.match(q)
            per_question[i].append(time.perf_counter() - s)
    latencies = [1000 * statistics.median(ts) for ts in per_question]
    print(
        f"latency per question (median of {args.repeat} runs): p50 {percentile(latencies, 50):.3f} ms,"
        f" p95 {percentile(latencies, 95):.3f} ms, max {max(latencies):.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
