"""Background CPU load that comes and goes, for benchmarks that must say how the bot fares on a
busy machine, reproducibly.

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
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.procstat import CPUS, busy_cores, cores_busy_since  # noqa: E402


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


def _spin(parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: terminate() ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C stops the parent, which stops it
    while os.getppid() == parent:  # a killed parent cannot stop it: it stops by itself
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
        procs = [
            mp.Process(target=_spin, args=(os.getpid(),), daemon=True)
            for _ in range(rng.choice(choices))
        ]
        try:
            for proc in procs:
                proc.start()
            phase_end = time.monotonic() + rng.uniform(0.5, 3.0)
            while not stopping and time.monotonic() < min(phase_end, end):
                time.sleep(0.05)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
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
