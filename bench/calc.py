"""Benchmark: parse a typed salary and calculate its contribution, per call.

    python bench/calc.py [N]      (default N = 100000)

Generates N typed salaries in mixed formats and languages (fixed seed), then times
``parse_salary`` + ``calculate`` for each one and prints p50/p99 per call in milliseconds.
Target: p99 < 0.2 ms.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.rates import WorkerType, calculate, schedules  # noqa: E402
from bot.domain.salary import looks_like_salary, parse_salary  # noqa: E402

CN_DIGITS = "零一二三四五六七八九"
PATHOLOGICAL = ["1" * 150 + "x", "1 " * 90, "1." * 90 + "x", "一" * 150, "3千" * 60, "\ud800" * 200]


def chinese(n: int) -> str:
    """1,000-9,999 as 三千五百 style (hundreds only)."""
    th, hu = n // 1000, (n // 100) % 10
    return CN_DIGITS[th] + "千" + (CN_DIGITS[hu] + "百" if hu else "")


def generate(n: int, seed: int = 2026) -> list[str]:
    rnd = random.Random(seed)
    formats = [
        lambda a: f"{a}",
        lambda a: f"RM{a:,}",
        lambda a: f"rm {a}",
        lambda a: f"RM{a:,}.50",
        lambda a: f"{a / 1000:g}k",
        lambda a: f"{a:,}/month",
        lambda a: f"gaji RM{a}",
        lambda a: f"RM{a} sebulan",
        lambda a: f"salary {a} for my maid",
        lambda a: f"月薪{a}",
        lambda a: f"{a}令吉",
        lambda a: chinese(a) if 1000 <= a <= 9999 else f"{a}",
        lambda a: f"{a // 1000}千{(a // 100) % 10}" if 1000 <= a <= 9999 else f"{a}",
        lambda a: f"RM {a // 1000} {a % 1000:03d}" if a >= 1000 else f"RM {a}",
    ]
    out = []
    for _ in range(n):
        amount = rnd.choice([rnd.randrange(100, 8000, 50), rnd.randrange(1, 20000)])
        out.append(rnd.choice(formats)(amount))
    return out


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    texts = generate(n)
    rnd = random.Random(7)
    months = [(rnd.randint(2016, 2030), rnd.randint(1, 12)) for _ in range(n)]
    workers = [rnd.choice(list(WorkerType)) for _ in range(n)]
    schedules()  # load the data once, outside the timing (as the bot does at first use)
    calculate(Decimal("1"), 2026, 1, WorkerType.EMPLOYEE)
    times = []
    ok = 0
    clock = time.perf_counter_ns
    for text, (y, m), w in zip(texts, months, workers, strict=True):
        t0 = clock()
        p = parse_salary(text)
        if p.amount is not None and p.kind in ("ok", "zero"):
            calculate(p.amount, y, m, w, age=35)
            ok += 1
        times.append(clock() - t0)
    q = statistics.quantiles(times, n=100)
    print(f"command: {' '.join([Path(sys.executable).as_posix(), *sys.argv])}")
    print(f"calls: {n} (parsed ok: {ok})")
    print(f"p50: {q[49] / 1e6:.4f} ms  p99: {q[98] / 1e6:.4f} ms  max: {max(times) / 1e6:.4f} ms")
    print(f"target p99 < 0.2 ms: {'met' if q[98] / 1e6 < 0.2 else 'NOT met'}")
    # Pathological input (long digit runs, repeated separators): no regex may backtrack.
    worst = 0
    for text in PATHOLOGICAL:
        t0 = clock()
        parse_salary(text)
        looks_like_salary(text)
        worst = max(worst, clock() - t0)
    print(f"pathological input: worst {worst / 1e6:.3f} ms (target < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
