"""What the benchmarks read of a child process: its CPU time and resident memory (from /proc),
and a clean stop (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


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
