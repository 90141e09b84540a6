"""``actionable demo``: the main job on bundled German credit, with no arguments.

Denied test applicants get the cheapest verified plan each (at most 4 actions) and, beside it, the three
features pulling hardest toward denial (Integrated Gradients; protected features are never cited as
reasons); a summary table ends the run. The catalogue is the dataset's default ``actions.toml``, in which no
action changes a protected feature.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import pandas as pd
import typer

from actionable.cli._shell import console, friendly, print_plans, print_summary, shown
from actionable.cli.progress import QUIET_HELP
from actionable.cli.synthesize import with_progress

__all__ = ["demo_command", "denial_reasons"]


@friendly
def demo_command(quiet: Annotated[bool, typer.Option("--quiet", help=QUIET_HELP)] = False) -> None:
    """Run the main job on bundled German credit with its default model (no arguments)."""
    import torch

    from actionable import datasets
    from actionable.actions import ActionSet
    from actionable.goals import resolve_goal

    data = datasets.load("german")
    model = data.model
    metrics = model.provenance.get("metrics", {})
    console.print(
        f"[bold]{data.title}[/]: {len(data.frame)} applicants, {len(data.schema)} features "
        f"({sum(f.mutable for f in data.schema.features)} changeable)."
    )
    console.print(
        f"Default model: {_describe_network(model)}; test accuracy {metrics.get('test_accuracy', float('nan')):.3f}."
    )
    goal = resolve_goal(model)
    with torch.no_grad():
        favourable = goal.satisfied(model(data.schema.encode(data.X_test))).numpy()
    denied: pd.DataFrame = data.X_test.loc[~favourable]
    console.print(
        f"Of {len(data.X_test)} test applicants the model denies {len(denied)}; "
        "finding the cheapest verified plan for each (at most 4 actions):"
    )
    catalogue = ActionSet.from_toml(data.path / "actions.toml", data.schema)
    started = time.perf_counter()
    batch = with_progress(model, denied, catalogue, max_length=4, quiet=quiet)
    print_plans(batch, 5, reasons=denial_reasons(model, denied, data.X_train))
    print_summary(batch, time.perf_counter() - started)


def denial_reasons(model: Any, denied: pd.DataFrame, train: pd.DataFrame) -> Callable[[int], str]:
    """A sentence per denied row: the three features pulling hardest toward denial (Integrated
    Gradients of the favourable class's logit against the average training applicant). Protected features
    are never given as reasons; one that would rank among the three is named apart, as such."""
    from actionable.attribution import attribute, training_mean

    result = attribute(model, denied, "integrated_gradients", baseline=training_mean(model.schema, train))
    tops = result.top(3, sign="negative", exclude_protected=True)
    leaning = result.top(3, sign="negative")

    def sentence(row: int) -> str:
        person = denied.iloc[row]  # each reason shows this applicant's own value, e.g. savings '< 100 DM'
        named = ", ".join(f"{name} {shown(person[name])} ({value:+.2f})" for name, value in tops[row])
        text = f"Top reasons against approval (Integrated Gradients, logit, vs. the average applicant): {named or 'none'}."
        also = [f"{name} ({value:+.2f})" for name, value in leaning[row] if name in result.protected]
        if also:
            text += (
                f" The model also leans on protected {', '.join(also)}, which may not be given as a reason."
            )
        return text

    return sentence


def _describe_network(model: Any) -> str:
    """The network's shape in words, e.g. ``MLP 40x40``."""
    from actionable.models import layers as L

    kinds = [m for m in getattr(model.network, "children", list)() if isinstance(m, L.Linear)]
    hidden = "x".join(str(m.out_features) for m in kinds[:-1])
    return f"MLP {hidden or 'linear'}"
