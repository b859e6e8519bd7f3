"""Benchmark: a 1,000-person staff list, read, calculated and written, in CPU time.

    python bench/stafflist.py [ROUNDS]      (default 5 rounds)

Builds (fixed seed) an XLSX and a CSV of 1,000 people with headers, mixed worker types, ages and
wage formats, then measures with ``time.process_time`` (CPU, not wall clock) each step: reading
the file, calculating everyone, writing the XLSX result. Prints the median of the rounds.
Target: reading + calculating + writing 1,000 rows in under 1 s of CPU.
"""

from __future__ import annotations

import io
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openpyxl import Workbook  # noqa: E402

from bot.contribution_view import labels  # noqa: E402
from bot.domain.rates import schedules  # noqa: E402
from bot.domain.stafflist import MAX_ROWS, calculate_all, read_file, write_csv, write_xlsx  # noqa: E402

TYPES = ["", "employee", "foreign", "domestic-local", "domestic-foreign", "外劳", "asing", "maid asing"]
NAMES = ["Siti Aminah", "Ahmad bin Ali", "王明", "Kumar", "Maria Santos", "李华", "Nur Aisyah"]


def people(n: int, seed: int = 2026) -> list[list]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        wage = rnd.randrange(1500, 9000)
        wage_cell = rnd.choice([wage, f"RM{wage:,}", f"{wage}.50", wage + 0.25])
        age = rnd.choice([None, None, rnd.randrange(18, 70)])
        rows.append([f"{rnd.choice(NAMES)} {i}", wage_cell, rnd.choice(TYPES), age])
    return rows


def xlsx(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["Nama", "Gaji (RM)", "Jenis", "Umur"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[list]) -> bytes:
    lines = ["Name,Wage,Type,Age"] + [
        ",".join('"' + str(c) + '"' if c is not None else "" for c in r) for r in rows
    ]
    return "\n".join(lines).encode()


def cpu(fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t0


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    schedules()  # loaded once per process in the bot too
    labels("en")
    rows = people(MAX_ROWS)
    files = {"xlsx": xlsx(rows), "csv": csv_bytes(rows)}
    for kind, data in files.items():
        read_t, calc_t, write_t = [], [], []
        for _ in range(rounds):
            sheet, a = cpu(read_file, data, f"staff.{kind}")
            result, b = cpu(calculate_all, sheet, 2026, 11)
            _, c = cpu(write_xlsx, result, labels("en"))
            read_t.append(a)
            calc_t.append(b)
            write_t.append(c)
        total = statistics.median(read_t) + statistics.median(calc_t) + statistics.median(write_t)
        print(
            f"{kind}: {len(sheet.rows)} people, {len(sheet.errors)} skipped, {len(data) / 1024:.0f} KB; "
            f"CPU median of {rounds}: read {statistics.median(read_t) * 1000:.0f} ms, "
            f"calculate {statistics.median(calc_t) * 1000:.0f} ms, "
            f"write XLSX {statistics.median(write_t) * 1000:.0f} ms, total {total * 1000:.0f} ms "
            f"(target < 1000 ms)"
        )
    _, c = cpu(write_csv, result, labels("en"))
    print(f"write CSV: {c * 1000:.0f} ms")


if __name__ == "__main__":
    main()
