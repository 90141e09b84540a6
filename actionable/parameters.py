"""An action's parameter: a finite box in raw units, real or whole-number, with an optional resolution.

``Param`` checks its own declaration (NFKC name, finite bounds holding a whole number when integer, a
positive resolution, an initial value inside the box) and rounds a value to what a person can do.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from actionable.errors import SpecError, did_you_mean, shown
from actionable.schema import is_number, normal_name, type_name

__all__ = ["MAX_PARAMS", "PARAM_KEYS", "Param", "params_from_table"]

PARAM_KEYS = {"bounds", "kind", "resolution", "init"}
MAX_PARAMS = 64


@dataclass(frozen=True)
class Param:
    """An action parameter in raw units: a finite box, real or whole-number, with an optional resolution."""

    name: str
    bounds: tuple[float, float]
    kind: Literal["real", "integer"] = "real"
    resolution: float | None = None
    init: float | None = None

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if isinstance(self.name, str) and not normal_name(self.name):
            raise SpecError(
                f"{where}: the name is not in Unicode normal form NFKC ({unicodedata.normalize('NFKC', self.name)!r}),"
                " so expressions would read it as another name; write it in that form."
            )
        bounds = self.bounds
        if not isinstance(bounds, list | tuple) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
            raise SpecError(
                f"{where}: 'bounds' must be [lower, upper], two numbers; got {shown(bounds)}"
                f" ({type_name(bounds)}); write e.g. bounds = [0, 100] without quotes."
            )
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise SpecError(f"{where}: bounds [{lo}, {hi}] must be finite with lower <= upper.")
        if self.kind not in ("real", "integer"):
            raise SpecError(f"{where}: kind = {shown(self.kind)}; use 'real' or 'integer'.")
        if self.kind == "integer" and math.ceil(lo) > math.floor(hi):
            raise SpecError(
                f"{where}: bounds [{lo:g}, {hi:g}] hold no whole number; widen them or use kind 'real'."
            )
        if self.resolution is not None and not (
            is_number(self.resolution) and math.isfinite(self.resolution) and self.resolution > 0
        ):
            raise SpecError(
                f"{where}: resolution must be a finite number > 0; got {shown(self.resolution)} "
                f"({type_name(self.resolution)})."
            )
        if self.init is not None and not is_number(self.init):
            raise SpecError(
                f"{where}: init must be a number inside the bounds; got {shown(self.init)} "
                f"({type_name(self.init)})."
            )
        object.__setattr__(self, "bounds", (lo, hi))
        start = self.init if self.init is not None else min(max(0.0, lo), hi)
        if not lo <= float(start) <= hi:
            raise SpecError(f"{where}: init {start} is outside bounds [{lo}, {hi}].")
        object.__setattr__(self, "init", float(start))

    def round(self, value: torch.Tensor) -> torch.Tensor:
        """What a person can do: whole numbers for integer parameters, else the resolution grid."""
        lo, hi = self.bounds
        if self.kind == "integer":
            value = torch.round(value)
        elif self.resolution is not None:
            value = torch.round(value / self.resolution) * self.resolution
        return value.clamp(
            math.ceil(lo) if self.kind == "integer" else lo, math.floor(hi) if self.kind == "integer" else hi
        )


def params_from_table(label: str, raw_params: Any) -> list[Param]:
    """The ``params`` table of one ``[[action]]``: name -> { bounds, kind, resolution, init }."""
    params = []
    if not isinstance(raw_params, Mapping):
        raise SpecError(f"{label}, params: give a table such as {{ amount = {{ bounds = [0, 100] }} }}.")
    if len(raw_params) > MAX_PARAMS:
        raise SpecError(f"{label}, params: {len(raw_params)} parameters (at most {MAX_PARAMS}).")
    for name, spec in raw_params.items():
        if not isinstance(spec, Mapping):
            raise SpecError(f"{label}, params.{name}: give a table with 'bounds'.")
        for key in spec:
            if key not in PARAM_KEYS:
                raise SpecError(
                    f"{label}, params.{name}: unknown key {shown(key)}." + did_you_mean(key, PARAM_KEYS)
                )
        if "bounds" not in spec:
            raise SpecError(f"{label}, params.{name}: missing 'bounds' = [lower, upper] (raw units).")
        if "kind" in spec and not isinstance(spec["kind"], str):
            raise SpecError(
                f"{label}, params.{name}, key 'kind': must be a string, got {shown(spec['kind'])} "
                f'({type_name(spec["kind"])}); write kind = "integer" or kind = "real".'
            )
        try:
            params.append(Param(name, spec["bounds"], **{k: v for k, v in spec.items() if k != "bounds"}))
        except SpecError as exc:
            raise SpecError(f"{label}, params.{name}: {str(exc).split(': ', 1)[-1]}") from None
    return params
