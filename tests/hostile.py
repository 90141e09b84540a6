"""Harness for the hostile-input suites (``test_hostile_*.py``): limits, a canary, the CLI in a subprocess.

A hostile case must be refused with a typed error (``ActionableError``; exit 2 from the CLI) without
running any code it carries (the canary file stays absent) and without exhausting the machine. The limits
here are guards against a hang or a runaway allocation, not timings: the wall-clock guard is generous, so a
busy shared machine cannot fail a case that the issue's 2 s target would pass on a quiet one.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

MEMORY = 2 * 1024**3  # what one hostile case may add to the process's address space
GUARD_S = 30.0  # a hang detector (the target is 2 s on a quiet machine; shared CI machines are not)
CLI_GUARD_S = 90.0  # the CLI pays for importing torch in its own process


class CaseTimeout(BaseException):
    """Raised by the wall-clock guard; a BaseException so no ``except Exception`` in the library hides it."""


def _address_space() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def limited(seconds: float = GUARD_S, memory: int = MEMORY) -> Iterator[None]:
    """Run the block with at most ``memory`` more bytes of address space and a ``seconds`` wall-clock guard.

    An allocation past the limit raises ``MemoryError`` (or torch's RuntimeError) inside the block, which a
    test then sees as an untyped failure. Restores both limits afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + memory
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(f"hostile case still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@dataclass
class Outcome:
    """What a hostile library call did: the exception it raised (None if it returned) and how long it took."""

    error: BaseException | None
    seconds: float
    value: object = field(default=None, repr=False)


def attempt(call: object, *args: object, seconds: float = GUARD_S, **kwargs: object) -> Outcome:
    """Call ``call(*args, **kwargs)`` under ``limited``; the exception it raises is returned, not raised."""
    start = time.perf_counter()
    try:
        with limited(seconds):
            value = call(*args, **kwargs)  # type: ignore[operator]
    except CaseTimeout:
        raise
    except BaseException as exc:  # a hostile case may raise anything; the test judges it
        return Outcome(exc, time.perf_counter() - start)
    return Outcome(None, time.perf_counter() - start, value)


def _limit_child(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def run_cli(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    seconds: float = CLI_GUARD_S,
    memory: int = MEMORY + 2 * 1024**3,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``actionable ARGS`` in a fresh process under an address-space limit (torch's own ~1 GB included)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, "-c", "from actionable.cli import main; main()", *map(str, args)],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=seconds,
        preexec_fn=lambda: _limit_child(memory),
        check=False,
    )


def canary(folder: Path) -> Path:
    """A path that hostile payloads try to create; a test asserts it stays absent."""
    return folder / "CANARY-code-ran"
