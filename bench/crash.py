"""Durability under SIGKILL and SIGTERM, at full strength: 20 kills per run.

Run:  python bench/crash.py [--kills N]

Runs tests/test_crash.py with CRASH_KILLS=N (default 20; the default test suite uses 5) and
prints its report lines: per run the duplicates per kill against the in-flight bound (8), and
the time from SIGTERM to exit (target < 5 s). The assertions are the tests' own: every
recipient gets the message, no row stays 'sending', a kill duplicates at most 8 messages.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    options = parser.parse_args()
    env = {**os.environ, "CRASH_KILLS": str(options.kills)}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
               "tests/test_crash.py"]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(("broadcast of", "reminders to", "SIGTERM to exit")) or " passed" in line or " failed" in line:
            print(line)
    print(f"load average {os.getloadavg()[0]:.2f}; exit status {proc.returncode}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
