"""The one progress bar of every long command: done / total, rate, time left, on stderr.

``bar`` yields a callback ``progress(done, total)`` (the library's ``Progress`` convention) that drives a
transient rich bar on the stderr console, so stdout stays the command's results. Where stderr is not a
terminal (a pipe, a log file, a test runner) or with ``--quiet``, the callback does nothing and nothing
is shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from actionable.cli._shell import errors

__all__ = ["QUIET_HELP", "RateColumn", "bar"]

QUIET_HELP = "No progress bar (it is shown on stderr only when stderr is a terminal)."


class RateColumn(ProgressColumn):
    """Units done per second, e.g. ``152 rows/s``: rich's recent rate, else the mean since the start (a
    single update), ``-`` before anything is done."""

    def __init__(self, unit: str = "rows") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        """The task's rate in this column's unit."""
        speed = task.finished_speed or task.speed
        if speed is None and task.completed and task.elapsed:
            speed = task.completed / task.elapsed
        shown = "-" if speed is None else f"{speed:.3g}" if speed < 10 else f"{speed:,.0f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


@contextlib.contextmanager
def bar(
    description: str,
    total: int,
    quiet: bool,
    *,
    console: Console | None = None,
    unit: str = "rows",
) -> Iterator[Callable[[int, int], None]]:
    """A transient bar ``description [=====] done/total  rate  time left`` on ``console`` (default: the
    stderr console), driven by the yielded ``progress(done, total)``; a no-op callback when ``quiet`` or
    when the console is not a terminal."""
    shown_on = errors if console is None else console
    if quiet or not shown_on.is_terminal:
        yield _ignore
        return
    with Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
        console=shown_on,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _ignore(done: int, total: int) -> None:
    """The callback where no bar is shown."""
