"""Child processes of the tests: each in its own process group, dying with the test run.

``spawn`` starts ``python -m bot ...`` (or any command) so that
- it is the leader of a new process group (``start_new_session``), and the fixture below kills
  the whole group after every test, whatever the test's outcome;
- the kernel sends it SIGKILL if the test process itself dies (``PR_SET_PDEATHSIG`` on Linux),
  so a test run killed from outside leaves no ``python -m bot run`` behind;
- ``atexit`` kills what is left when the interpreter exits normally.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1
_children: set[int] = set()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_options() -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen / asyncio.create_subprocess_exec."""
    options: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options


async def spawn(*args: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec(*args, **kwargs)``, tracked and killed after the test."""
    proc = await asyncio.create_subprocess_exec(*args, **child_options(), **kwargs)
    _children.add(proc.pid)
    return proc


def kill_all() -> None:
    """SIGKILL the process group of every child still tracked."""
    while _children:
        pid = _children.pop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


atexit.register(kill_all)
