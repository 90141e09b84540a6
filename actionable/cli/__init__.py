"""The ``actionable`` command: a thin shell over the library. Exit codes: 0 every row answered (``not_found``
and ``infeasible`` are answers), 1 some rows not processed (status ``error``, recorded), 2 bad input.

This module holds the typer ``app`` and ``main`` and registers one command per module: ``datasets`` and
``info`` (datasets.py), ``train``, ``synthesize``, ``explain``, ``invert``, ``demo``, ``report`` (report.py),
``import-keras`` (keras.py) and ``batch synthesize|invert|explain``. What every command
shares lives beside them: the error boundary and printing (_shell.py), the one loader of a bundled
``--dataset`` or the user's own files (inputs.py), the one JSON Lines writer and reporter of rows not
processed (outputs.py).
"""

from __future__ import annotations

import typer

from actionable.cli import batch, datasets, demo, explain, invert, keras, report, synthesize, train
from actionable.cli._shell import friendly, printable_streams
from actionable.threads import DEFAULT_THREADS, set_threads

__all__ = ["app", "main"]

app = typer.Typer(
    name="actionable",
    help="What a person can do to change a model's decision, and why the model decided.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
@friendly
def threads_option(
    threads: int = typer.Option(
        DEFAULT_THREADS,
        "--threads",
        help="Intra-op threads of this process (torch and BLAS). One is steadiest where cores are shared; "
        "for parallelism run several processes.",
    ),
) -> None:
    """What a person can do to change a model's decision, and why the model decided."""
    set_threads(threads)


app.command("datasets")(datasets.datasets_command)
app.command("info")(datasets.info_command)
app.command("train")(train.train_command)
app.command("synthesize")(synthesize.synthesize_command)
app.command("explain")(explain.explain_command)
app.command("invert")(invert.invert_command)
app.command("demo")(demo.demo_command)
app.command("report")(report.report_command)
app.command("import-keras")(keras.import_keras_command)
batch.batch_app.command("synthesize")(batch.synthesize_batch_command)
batch.batch_app.command("invert")(batch.invert_batch_command)
batch.batch_app.command("explain")(batch.explain_batch_command)
app.add_typer(batch.batch_app, name="batch")


def main() -> None:  # pragma: no cover
    """The console entry point: streams that cannot encode a name show it escaped, then the app."""
    printable_streams()
    app()
