"""Background CPU load that comes and goes, for benchmarks that must say how the bot fares on a
busy machine, reproducibly; and how many of the machine's cores were busy, from /proc/stat.

``python bench/background.py SECONDS COUNT [COUNT ...] [--seed N]`` runs phases of 0.5-3 s
(random, from the seed); in each phase it keeps a number of processes, drawn from the COUNTs,
spinning on a core. It stops its processes when the time is up or on SIGTERM/SIGINT, and prints
how many cores the machine kept busy meanwhile. :func:`background` runs it as a separate
process (so that starting and joining the spinners never stalls the caller's event loop) and
stops it when the ``with`` block ends.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing.synchronize import Event
from pathlib import Path

CPUS = os.cpu_count() or 1


def busy_cores() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far (busy = everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # user .. steal; guest time is already counted in user
    return total - fields[3] - fields[4], total


def cores_busy_since(start: tuple[int, int]) -> float:
    """How many of the machine's cores were busy on average since ``start`` (:func:`busy_cores`)."""
    busy, total = busy_cores()
    span = total - start[1]
    return (busy - start[0]) / span * CPUS if span else 0.0


@contextlib.contextmanager
def background(choices: Sequence[int], seed: int = 1) -> Iterator[None]:
    """Run this module's load (``choices``: spinning processes per phase) while the block runs;
    nothing when every choice is 0."""
    if not any(choices):
        yield
        return
    cmd = [sys.executable, __file__, "86400", *map(str, choices), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _spin(stop: Event, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it through ``stop``
    while not stop.is_set() and os.getppid() == parent:  # nor outlives a killed parent
        for _ in range(10_000):
            pass


def run(seconds: float, choices: Sequence[int], seed: int) -> None:
    """Phases of 0.5-3 s, each with ``random.choice(choices)`` spinning processes."""
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping and time.monotonic() < end:
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop, os.getpid()), daemon=True) for _ in range(rng.choice(choices))]
        try:
            for proc in procs:
                proc.start()
            phase_end = time.monotonic() + rng.uniform(0.5, 3.0)
            while not stopping and time.monotonic() < min(phase_end, end):
                time.sleep(0.05)
        finally:
            stop.set()
            for proc in procs:
                proc.join(5.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    parser.add_argument("counts", type=int, nargs="+", help="spinning processes, one drawn per phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if min(args.counts) < 0:
        parser.error("counts must be >= 0")
    started = busy_cores()
    run(args.seconds, args.counts, args.seed)
    print(f"{cores_busy_since(started):.2f} of {CPUS} cores busy on average")


if __name__ == "__main__":
    main()
