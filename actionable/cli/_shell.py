"""The shell every command runs in: the two consoles, the error boundary and the printing helpers.

``friendly`` turns the library's typed errors, an exhausted memory or recursion limit and an interrupt into
one line on stderr and an exit code (2, or 130 for an interrupt), never a traceback, and releases the
output paths the command locked however it ends. What is echoed is capped (``capped``, ``shown``): a 5 MB
cell in a message is not printed whole. ``print_plans`` and ``print_summary`` show recourse results.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actionable.errors import ActionableError

__all__ = [
    "OUT_OF_MEMORY",
    "SHOWN",
    "F",
    "capped",
    "console",
    "errors",
    "fail",
    "friendly",
    "locks",
    "print_plans",
    "print_summary",
    "printable_streams",
    "shown",
]

console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SHOWN = 2000  # the most characters of one message (or one value) the CLI prints; the rest is elided
OUT_OF_MEMORY = (
    "out of memory: the input or the settings ask for more memory than this machine has; process fewer rows "
    "at a time (--rows A:B) or lower the settings (budgets, steps, --max-length)."
)
locks: list[contextlib.ExitStack] = []  # the running command's locks on its output paths (``writable``)


def capped(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out (a 5 MB cell is not echoed)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(value: Any) -> str:
    """A raw value as text: a category level quoted, a number plain (24, not np.int64(24))."""
    plain = value.item() if isinstance(value, np.generic) else value
    if isinstance(plain, int | float) and not isinstance(plain, bool):
        return f"{plain:g}"
    return capped(repr(capped(str(plain), 60)), 80)  # a 5 MB cell is not echoed


def friendly(command: F) -> F:
    """The CLI's error boundary: the library's typed errors, an exhausted memory or recursion limit and an
    interrupt each become one line on stderr and exit code 2 (130 for an interrupt), never a traceback.
    Output paths locked by the command (``writable``) are released however it ends."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            locks.append(stack)
            try:
                return command(*args, **kwargs)
            except ActionableError as exc:
                fail(f"{type(exc).__name__}: {exc}")
            except MemoryError:
                fail(OUT_OF_MEMORY)
            except RecursionError:
                fail(
                    "the input is nested too deeply to process (recursion limit reached); simplify it, "
                    "e.g. shorter expressions in the spec files."
                )
            except RuntimeError as exc:  # torch's allocator says it this way
                if type(exc).__name__ != "OutOfMemoryError" and "can't allocate memory" not in str(exc):
                    raise
                fail(OUT_OF_MEMORY)
            except KeyboardInterrupt:
                errors.print("interrupted: no output file was left half written.", highlight=False)
                raise typer.Exit(code=130) from None
            finally:
                locks.pop()

    return run  # type: ignore[return-value]


def fail(message: str) -> NoReturn:
    """One red line on stderr, then exit code 2 (bad input)."""
    errors.print(f"[bold red]error:[/] {escape(capped(message))}", markup=True, highlight=False)
    raise typer.Exit(code=2) from None


def print_plans(batch: Any, show: int, reasons: Callable[[int], str] | None = None) -> None:
    """The first ``show`` found plans, each under its row's label (and the reasons of the row at that
    position, when given)."""
    count = 0
    for position, r in enumerate(batch):
        if r.status != "found" or count >= show:
            continue
        count += 1
        console.print(f"\n[bold]Applicant {escape(capped(str(r.row), 80))}[/]:")
        if reasons is not None:
            console.print(reasons(position), highlight=False)
        console.print(capped(r.describe()), highlight=False, markup=False)
        for other in r.alternatives:  # synthesize --k: the next cheapest plans, with other actions
            console.print("or:\n" + capped(other.describe()), highlight=False, markup=False)


def print_summary(batch: Any, seconds: float) -> None:
    """A one-line table of a recourse batch: counts per status, median cost, time."""
    summary = batch.summary()
    table = Table(title="Summary")
    headers = (
        "rows",
        "found",
        "not found",
        "infeasible",
        "already favourable",
        "errors",
        "median cost",
        "seconds",
    )
    for header in headers:  # no word cut short in an 80-column terminal ("infeasi…")
        table.add_column(header, min_width=max(len(word) for word in header.split()))
    table.add_row(
        str(summary["rows"]),
        str(summary["found"]),
        str(summary["not_found"]),
        str(summary["infeasible"]),
        str(summary["already_favourable"]),
        str(summary["error"]),
        f"{summary['cost_median']:.3g}" if math.isfinite(summary["cost_median"]) else "-",  # none found
        f"{seconds:.1f}",
    )
    console.print(table)


def printable_streams() -> None:
    """A terminal or pipe that cannot encode a name or level (``PYTHONIOENCODING=ascii``, a latin-1
    locale) shows it escaped rather than failing with a traceback (which would exit 1, "rows failed")."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
