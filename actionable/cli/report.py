"""``actionable report DIR [DIR ...] --out report.html``: one self-contained HTML page over finished batch runs.

A thin shell over ``actionable.report.write_report``: a folder that holds no finished run is refused (exit 2)
before anything is written, and the page is written whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from actionable.cli._shell import console, friendly
from actionable.cli.outputs import writable

__all__ = ["report_command"]


@friendly
def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(help="Folders of finished batch runs (manifest.json + parts/).")
    ],
    out: Annotated[Path, typer.Option(help="The HTML page to write.")] = Path("report.html"),
) -> None:
    """An HTML summary of batch runs: statuses, costs, first actions, changed features, reasons, errors."""
    from actionable.report import write_report

    # the page never replaces a run's own files (its manifest, or anything under parts/)
    writable(reads=tuple(p for d in dirs for p in (d / "manifest.json", d / "parts")), out=out)
    write_report(dirs, out)
    console.print(f"wrote {out}", markup=False, highlight=False)
