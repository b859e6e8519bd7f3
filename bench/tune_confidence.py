"""Fit the matcher's calibrated confidence and choose its thresholds from labelled data.

Run:  python bench/tune_confidence.py [--content DIR] [--questions FILE] [--out-of-scope FILE]

Every in-scope question (tests/data/questions.tsv) is a positive example when the matcher's best
guide is its labelled guide, a negative one otherwise; every out-of-scope question
(tests/data/out_of_scope.tsv) is a negative example. A logistic regression (L2, Newton steps)
over ``Matcher.features`` gives the weights. Then OPEN_AT is the lowest confidence at which, in
every language, at most ``--oos-open`` of the out-of-scope questions would open a guide;
UNSURE_AT is the lowest at which at most ``--oos-unsure`` more of them would be offered "not
sure" buttons, but no higher than the confidence at which ``--lost`` of the rightly ranked
in-scope questions would get "no guide".
Paste the printed block into bot/domain/matcher.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ask import read_out_of_scope, read_questions  # noqa: E402
from bot.domain.guides import load_guides  # noqa: E402
from bot.domain.matcher import Matcher  # noqa: E402
from bot.domain.smalltalk import small_talk  # noqa: E402


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        for r in range(n):
            if r != col and m[col][col]:
                f = m[r][col] / m[col][col]
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(xs: list[list[float]], ys: list[int], l2: float, steps: int = 30) -> list[float]:
    """Logistic regression by Newton's method; the first column is the bias (not penalized)."""
    k = len(xs[0])
    w = [0.0] * k
    for _ in range(steps):
        grad = [0.0] * k
        hess = [[0.0] * k for _ in range(k)]
        for x, y in zip(xs, ys, strict=True):
            z = sum(wi * xi for wi, xi in zip(w, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            for i in range(k):
                grad[i] += (p - y) * x[i]
                for j in range(k):
                    hess[i][j] += p * (1 - p) * x[i] * x[j]
        for i in range(1, k):
            grad[i] += l2 * w[i]
            hess[i][i] += l2
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", type=Path, default=ROOT / "content")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests/data/questions.tsv")
    ap.add_argument("--out-of-scope", type=Path, default=ROOT / "tests/data/out_of_scope.tsv")
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the weights")
    ap.add_argument("--oos-open", type=float, default=0.04, help="out-of-scope share that may open a guide")
    ap.add_argument("--oos-unsure", type=float, default=0.05, help="out-of-scope share that may get 'not sure'")
    ap.add_argument("--lost", type=float, default=0.01, help="rightly ranked in-scope share that may get no guide")
    args = ap.parse_args(argv)

    matcher = Matcher.build(load_guides(args.content))
    names: list[str] | None = None
    xs: list[list[float]] = []
    ys: list[int] = []
    kinds: list[str] = []
    evs: list = []
    for _lang, gid, q in read_questions(args.questions):
        ev = matcher.evidence(q)
        if not ev.plausible:
            continue  # scored 0 whatever the weights
        f = matcher.features(ev)
        evs.append(ev)
        names = names or list(f)
        xs.append([1.0, *f.values()])
        ys.append(int(ev.ranked[0][0] == gid))
        kinds.append("in")
    oos = read_out_of_scope(args.out_of_scope)
    for lang, q in oos:
        if small_talk(q) is not None:
            continue  # answered as small talk in the chat, never by a guide
        ev = matcher.evidence(q)
        if not ev.plausible:
            continue
        f = matcher.features(ev)
        evs.append(ev)
        xs.append([1.0, *f.values()])
        ys.append(0)
        kinds.append("out:" + lang)
    assert names is not None
    w = fit(xs, ys, args.l2)
    weights = {k: round(v, 3) for k, v in zip(["bias", *names], w, strict=True)}  # as printed
    conf = [Matcher.calibrated(ev, weights) for ev in evs]

    def above(share: float, lang: str | None = None) -> float:
        """The lowest threshold with at most ``share`` of the out-of-scope questions at or above."""
        n = sum(1 for q_lang, _ in oos if lang in (None, q_lang))
        cs = sorted(
            (c for c, k in zip(conf, kinds, strict=True) if k.startswith("out") and lang in (None, k[4:])),
            reverse=True,
        )
        allowed = math.floor(share * n)
        return cs[allowed] + 1e-4 if allowed < len(cs) else 0.0

    langs = sorted({lang for lang, _ in oos})
    open_at = max(above(args.oos_open, lang) for lang in langs)
    right = sorted(c for c, k, y in zip(conf, kinds, ys, strict=True) if k == "in" and y == 1)
    lost = math.floor(args.lost * len(right))
    unsure_at = min(open_at, above(args.oos_open + args.oos_unsure))
    if lost < len(right):
        unsure_at = min(unsure_at, right[lost] - 1e-4)
    print("CONFIDENCE_WEIGHTS: dict[str, float] = {")
    for name, value in weights.items():
        print(f'    "{name}": {value:.3f},')
    print("}")
    print(f"OPEN_AT = {open_at:.3f}")
    print(f"UNSURE_AT = {unsure_at:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
