"""Published methods as named presets over the library's verbs: one catalogue, no separate code paths.

A ``Preset`` is a verb (``synthesize`` or ``invert``), the settings a paper used and a one-line citation;
``run(name, model, X, spec, **overrides)`` calls the verb with those settings (overrides win). ``spec`` is
an ``ActionSet`` or a ``Schema``: inverse classification takes the schema (of an ``ActionSet``, its
schema); action synthesis takes the catalogue, or, for a preset with a ``catalogue`` builder such as
"wachter", derives one from the schema. Results carry the preset's name as ``provenance["method"]`` and the
verb it ran as ``provenance["verb"]``.

Synthesis presets name the engine's parts: "ramakrishnan2020" is the exhaustive search
(``search.Exhaustive()``), "ramakrishnan2020-objective" and "-gradient" are the paper's Algorithm 1,
best-first on one of its score functions (``search.BestFirst(score=OBJECTIVE)``, ``...GRADIENT``). A new
strategy is one class in ``search`` plus one line here.

"wachter" (Wachter, Mittelstadt and Russell 2017) is ``synthesize`` over one generic action that moves every
numeric direct feature that is not protected at once, one parameter per feature, at cost the weighted L1 distance. With one
action and ``max_length = 1`` the search is a single joint optimisation of distance + c * loss (adaptive c),
which is Wachter's objective with the Carlini-Wagner hinge in place of the squared loss, and ``synthesize``
already does it (barriers keep bounds and directions; the plan is replayed exactly). This was preferred to a
budget sweep of ``invert``, which maximises the probability within a budget rather than minimising the
distance, needs every direct feature costed and would need a new outer search over budgets.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from actionable.actions import Action, ActionSet, Param
from actionable.errors import ConfigError, did_you_mean
from actionable.inverse import invert
from actionable.results import RecourseBatch
from actionable.schema import Schema
from actionable.search import GRADIENT, OBJECTIVE, BestFirst, Exhaustive
from actionable.synthesis import synthesize

__all__ = [
    "CATALOGUE",
    "Preset",
    "Spec",
    "Verb",
    "direct_moves",
    "get",
    "names",
    "run",
]


Spec = ActionSet | Schema
Verb = Callable[..., RecourseBatch]


@dataclass(frozen=True)
class Preset:
    """A published method: the verb it runs, the paper's settings for it and a one-line citation.

    ``catalogue``: for a synthesis preset that needs no hand-written actions, a builder of its
    ``ActionSet`` from the schema (so the preset also accepts a bare ``Schema``).
    """

    verb: Verb
    defaults: Mapping[str, Any]
    cite: str
    catalogue: Callable[[Schema], ActionSet] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    @property
    def takes(self) -> str:
        """What the verb consumes: ``"schema"`` (inverse classification) or ``"actions"`` (synthesis)."""
        return "schema" if _spec_parameter(self.verb) == "schema" else "actions"

    def prepare(self, spec: Spec, name: str = "preset") -> Spec:
        """The ``ActionSet`` or ``Schema`` the verb takes, from the user's ``spec``."""
        if not isinstance(spec, ActionSet | Schema):
            raise ConfigError(
                f"{name}: spec must be an ActionSet or a Schema; got {type(spec).__name__}. Load one with "
                "ActionSet.from_toml / Schema.from_toml, or take datasets.load(name).schema."
            )
        schema = spec.schema if isinstance(spec, ActionSet) else spec
        if self.takes == "schema":
            return schema
        if self.catalogue is not None:
            return self.catalogue(schema)
        if isinstance(spec, Schema):
            raise ConfigError(
                f"{name}: this method searches an action catalogue; got a Schema. Pass an ActionSet "
                "(ActionSet.from_toml('actions.toml', schema)), or use 'wachter', which needs none."
            )
        return spec


def direct_moves(schema: Schema) -> ActionSet:
    """One action, ``move``, changing every numeric direct feature by its own parameter (raw units).

    A parameter's box is the feature's range in its allowed direction (whole numbers for integer and binary
    features); the cost is the weighted L1 distance: ``cost_up`` / ``cost_down`` per raw unit where the
    schema gives them, else 1 / (upper - lower bound), so every feature's full range costs 1 (Wachter et
    al. divide by the median absolute deviation of the training data; give ``cost_up`` / ``cost_down`` =
    1 / MAD in the schema to get exactly theirs). Category features are left as they are (Wachter et al.
    move continuous features), and so are protected ones (``protected = true``): the derived action never
    asks a person to change them.
    """
    params, effects, costs, texts = [], {}, [], []
    for f in schema.features:
        if not f.is_direct or f.is_category or f.protected:
            continue
        lo, hi = f.bounds
        span = hi - lo
        if not 0 < span < float("inf"):
            continue  # a pinned or unbounded feature cannot be priced by its range
        p = f"change_{f.name}"
        if p in schema.names:
            raise ConfigError(f"wachter: feature name {p!r} clashes with the parameter for {f.name!r}.")
        down = -span if f.may_decrease else 0.0
        up = span if f.may_increase else 0.0
        whole = f.is_whole
        params.append(Param(p, (down, up), kind="integer" if whole else "real"))
        effects[f.name] = f"{f.name} + {p}"
        w_up, w_down = (f.cost_up or 1 / span), (f.cost_down or 1 / span)
        costs.append(f"{w_up!r} * max({p}, 0) + {w_down!r} * max(-{p}, 0)")
        texts.append(f"{f.name} by {{{p}:+.4g}}")
    if not params:
        raise ConfigError(
            "wachter: the schema has no numeric direct feature with finite bounds to change (protected ones "
            "are never moved); mark some real / integer / binary features mutability = 'direct' with bounds."
        )
    action = Action("move", effects, " + ".join(costs), text="Change " + ", ".join(texts), params=params)
    return ActionSet([action], schema, where="wachter (derived from the schema)")


CATALOGUE: dict[str, Preset] = {
    "ramakrishnan2020": Preset(
        synthesize,
        {"max_length": 4, "search": Exhaustive()},
        "Ramakrishnan, Lee and Albarghouthi, Synthesizing action sequences for modifying model decisions, "
        "AAAI 2020: every sequence of up to 4 actions (the paper's L), parameters by Carlini-Wagner.",
    ),
    "ramakrishnan2020-objective": Preset(
        synthesize,
        {"max_length": 4, "search": BestFirst(score=OBJECTIVE)},
        "Ramakrishnan et al. 2020, Algorithm 1 with the objective score: best-first on the optimised "
        "objective of the sequence extended, pruned by the best verified cost.",
    ),
    "ramakrishnan2020-gradient": Preset(
        synthesize,
        {"max_length": 4, "search": BestFirst(score=GRADIENT)},
        "Ramakrishnan et al. 2020, Algorithm 1 with the gradient score: best-first on the mean |gradient| "
        "of the loss over the features the next action writes, pruned by the best verified cost.",
    ),
    "lash2017": Preset(
        invert,
        {"method": "shrink", "rounding": False},
        "Lash, Lin, Street and Robinson, Generalized inverse classification, ICDMW 2017, as published: "
        "the original code's proportional shrink and a continuous relaxation.",
    ),
    "lash2017-exact": Preset(
        invert,
        {"method": "exact", "rounding": True},
        "Lash et al. 2017 with the exact Euclidean projection onto the budget set and whole-number "
        "rounding (this library's default).",
    ),
    "wachter": Preset(
        synthesize,
        {"max_length": 1},
        "Wachter, Mittelstadt and Russell, Counterfactual explanations without opening the black box, "
        "2017: min weighted L1 distance + c * loss over the numeric direct features, no action catalogue.",
        catalogue=direct_moves,
    ),
}


def names() -> tuple[str, ...]:
    """The registered method names, sorted."""
    return tuple(sorted(CATALOGUE))


def get(name: str) -> Preset:
    """The preset called ``name``; ``ConfigError`` (with the closest name) when there is none."""
    if not isinstance(name, str) or name not in CATALOGUE:
        raise ConfigError(
            f"registry: no method {name!r}; choose one of {list(names())}." + did_you_mean(name, CATALOGUE)
        )
    return CATALOGUE[name]


def run(name: str, model: Any, X: pd.DataFrame, spec: Spec, /, **overrides: Any) -> RecourseBatch:
    """Recourse for every row of ``X`` by the method ``name``: its verb with its settings and ``overrides``.

    ``spec``: an ``ActionSet`` or a ``Schema`` (see ``Preset.prepare``). Inverse classification presets
    need ``budget=``. Unknown overrides raise ``ConfigError`` naming the valid ones.
    """
    preset = get(name)
    _check_options(name, preset.verb, overrides)
    batch = preset.verb(model, X, preset.prepare(spec, name), **{**preset.defaults, **overrides})
    verb = preset.verb.__name__
    return RecourseBatch(
        tuple(replace(r, provenance={**r.provenance, "method": name, "verb": verb}) for r in batch),
        batch.index_names,
    )


def _spec_parameter(verb: Verb) -> str:
    """The name of the verb's third parameter: ``actions`` (synthesis) or ``schema`` (inversion)."""
    return list(inspect.signature(verb).parameters)[2]


def _check_options(name: str, verb: Verb, options: Mapping[str, Any]) -> None:
    """Reject keys the verb does not take (a verb with ``**options`` validates its own)."""
    signature = inspect.signature(verb)
    parameters = list(signature.parameters.values())[3:]  # after model, X and the spec
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    known = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in known:
            raise ConfigError(
                f"{name}: unknown option {key!r}; {verb.__name__} takes {known}." + did_you_mean(key, known)
            )
