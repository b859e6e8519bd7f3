"""Evaluate the question matcher: accuracy, "not sure", out-of-scope answers, latency.

Run:  python bench/ask.py [--content DIR] [--questions FILE] [--out-of-scope FILE] [--repeat N] [--misses]

On tests/data/questions.tsv (in scope, labelled) it prints top-1 accuracy (the guide that opens
is the labelled one), overall and per language, the share that ends in "not sure" (2-3 guides
offered) and in "no guide", and language-detection accuracy. On tests/data/out_of_scope.tsv
(questions no guide answers) it prints the share that would open a guide (wrongly) and the share
offered "not sure" buttons, per language. A message the bot takes as small talk ("thanks",
"who are you") opens no guide, as in the chat. Then p50/p95 latency of one ``match`` call (median
over ``--repeat`` runs of the in-scope file).
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
from bot.domain.matcher import Match, Matcher  # noqa: E402
from bot.domain.smalltalk import small_talk  # noqa: E402


def answer(matcher: Matcher, q: str) -> Match:
    """What the bot does with a typed question: small talk opens no guide, else the matcher."""
    if small_talk(q) is not None:
        return Match("en", False, None, 0.0, band="smalltalk")
    return matcher.match(q)


def read_questions(path: Path) -> list[tuple[str, str, str]]:
    """(lang, guide_id, question) rows of a questions.tsv file."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r[0], r[1], r[2]) for r in rows[1:] if len(r) >= 3 and r[0].strip()]


def read_out_of_scope(path: Path) -> list[tuple[str, str]]:
    """(lang, question) rows of an out_of_scope.tsv file."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r[0], r[1]) for r in rows[1:] if len(r) >= 2 and r[0].strip()]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", type=Path, default=ROOT / "content")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests/data/questions.tsv")
    ap.add_argument("--out-of-scope", type=Path, default=ROOT / "tests/data/out_of_scope.tsv")
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
    unsure: dict[str, int] = defaultdict(int)
    unsure_right: dict[str, int] = defaultdict(int)
    nothing: dict[str, int] = defaultdict(int)
    lang_ok: dict[str, int] = defaultdict(int)
    misses: list[str] = []
    for lang, gid, q in questions:
        m = answer(matcher, q)
        total[lang] += 1
        lang_ok[lang] += m.lang == lang
        if m.guide == gid:
            top1[lang] += 1
            continue
        if m.band == "unsure":
            unsure[lang] += 1
            unsure_right[lang] += gid in m.suggestions or gid in m.both
        elif m.band == "none":
            nothing[lang] += 1
        misses.append(
            f"  [{lang}] {q!r}: want {gid}, got {m.guide} {m.band} conf={m.score:.2f} "
            f"sugg={list(m.suggestions)} both={list(m.both)} "
            f"top={[(g, round(s, 1)) for g, s in m.ranked[:3]]}"
        )

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:.1f}%" if b else "-"

    n = sum(total.values())
    print(f"in-scope questions: {n}")
    print(
        f"top-1 accuracy: {pct(sum(top1.values()), n)} overall;"
        f" not sure: {pct(sum(unsure.values()), n)}"
        f" (right guide among the buttons: {pct(sum(unsure_right.values()), n)});"
        f" no guide: {pct(sum(nothing.values()), n)}"
    )
    for lang in sorted(total):
        print(
            f"  {lang}: top-1 {pct(top1[lang], total[lang])} ({top1[lang]}/{total[lang]}),"
            f" not sure {pct(unsure[lang], total[lang])}, no guide {pct(nothing[lang], total[lang])},"
            f" language detected {pct(lang_ok[lang], total[lang])}"
        )
    oos_total: dict[str, int] = defaultdict(int)
    oos_open: dict[str, int] = defaultdict(int)
    oos_unsure: dict[str, int] = defaultdict(int)
    oos_misses: list[str] = []
    if args.out_of_scope.exists():
        for lang, q in read_out_of_scope(args.out_of_scope):
            m = answer(matcher, q)
            oos_total[lang] += 1
            if m.guide is not None:
                oos_open[lang] += 1
                oos_misses.append(f"  [{lang}] {q!r}: opened {m.guide} conf={m.score:.2f}")
            elif m.band == "unsure":
                oos_unsure[lang] += 1
        k = sum(oos_total.values())
        print(f"out-of-scope questions: {k}")
        print(
            f"answered with a guide: {pct(sum(oos_open.values()), k)};"
            f" not sure: {pct(sum(oos_unsure.values()), k)};"
            f" no guide: {pct(k - sum(oos_open.values()) - sum(oos_unsure.values()), k)}"
        )
        for lang in sorted(oos_total):
            print(
                f"  {lang}: answered with a guide {pct(oos_open[lang], oos_total[lang])}"
                f" ({oos_open[lang]}/{oos_total[lang]}), not sure {pct(oos_unsure[lang], oos_total[lang])}"
            )
    if args.misses and misses:
        print("in-scope misses:")
        print("\n".join(misses))
    if args.misses and oos_misses:
        print("out-of-scope questions that opened a guide:")
        print("\n".join(oos_misses))

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
