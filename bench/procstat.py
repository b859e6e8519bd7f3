"""What the benchmarks read from /proc: a child process's CPU time and resident memory, and how
many of the machine's cores were busy; and a clean stop of a child (SIGTERM, then SIGKILL after
a grace period)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


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


def rss_mb(pid: int) -> float:
    """The process's resident memory now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def stop(proc: asyncio.subprocess.Process, grace: float = 20.0) -> None:
    """SIGTERM (the bot's clean stop), then SIGKILL if it has not exited within ``grace`` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()
