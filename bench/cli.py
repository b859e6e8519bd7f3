"""CPU cost of one command-line call: ``python -m bot calc 3500`` (target: under 0.4 s).

Run:  python bench/cli.py [--runs N] [ARGS...]

Runs the command N times in fresh interpreters and prints the median and worst CPU time
(user + system, from the children's resource usage) and wall time. CPU time, unlike wall
time, hardly moves when the machine is busy.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("args", nargs="*", default=["calc", "3500"])
    options = parser.parse_args()
    command = [sys.executable, "-m", "bot", *options.args]
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(options.runs):
        before, started = cpu_children(), time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - started)
        cpu.append(cpu_children() - before)
    print(f"command: python -m bot {' '.join(options.args)}  ({options.runs} runs)")
    print(f"cpu  median {statistics.median(cpu):.3f} s  max {max(cpu):.3f} s  (target < 0.4 s)")
    print(f"wall median {statistics.median(wall):.3f} s  load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
