"""What inverse classification checks before it solves: the model on the schema, protected and direct features.

Kept apart from the solver (``inverse``) so that each reads as one job; every refusal names the field and
the fix.
"""

from __future__ import annotations

import math
from typing import Any

from actionable.errors import ConfigError, SpecError
from actionable.models import TorchModel, as_model
from actionable.schema import Feature, Schema

__all__ = ["check_direct", "check_protected", "on_schema"]


def on_schema(obj: Any, schema: Schema, **options: Any) -> TorchModel:
    """``as_model``, also accepting a model built on a schema with the same encoding (its hash): bounds,
    mutability and costs may be edited for inverse classification without rebuilding the model."""
    if isinstance(obj, TorchModel) and obj.schema != schema and obj.schema.hash == schema.hash:
        return obj
    return as_model(obj, schema, **options)


def check_protected(schema: Schema, allowed: bool, predicted: bool) -> None:
    """Inverse classification changes every direct feature, and every indirect one when an indirect model
    re-predicts them (``predicted``): a protected one among them is a ``SpecError`` unless the caller
    allows it (to reproduce a study that did)."""
    moved = [
        f.name for f in schema.features if f.protected and (f.is_direct or (f.is_indirect and predicted))
    ]
    if moved and not allowed:
        raise SpecError(
            f"invert: the protected feature(s) {moved} (protected = true in the schema) are "
            f"{'/'.join(sorted({schema[n].mutability for n in moved}))}, so inverse classification would change "
            "them, which recourse must not ask of a person; make them mutability = 'fixed', or, only to "
            "reproduce a study that changed them, pass allow_protected=True."
        )


def check_direct(f: Feature) -> None:
    """A direct feature inverse classification can move: a finite number with a positive cost each way it may go."""
    where = f"invert: direct feature {f.name!r}"
    if f.is_category:
        raise ConfigError(
            f"{where} is a category; inverse classification moves numbers. Declare its levels as "
            "binary features or make it fixed."
        )
    if not all(map(math.isfinite, f.bounds)):
        raise ConfigError(f"{where} has infinite bounds {list(f.bounds)}; give finite 'bounds'.")
    for allowed, key, may in (
        ("increase", "cost_up", f.may_increase),
        ("decrease", "cost_down", f.may_decrease),
    ):
        cost = getattr(f, key)
        if may and (cost is None or cost <= 0):
            raise ConfigError(
                f"{where} may {allowed} but {key} = {cost!r}; give {key} > 0 (cost per raw unit), "
                f"or set direction to forbid it."
            )
