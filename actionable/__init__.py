"""actionable: what a person can do to change a model's decision, and why the model decided.

The public API: the nouns (``Schema``, ``Feature``, ``Target``, models via ``as_model``, actions), goals,
the error family, and the three verbs built on them: ``attribute`` (with ``advise_gradient``), ``invert``
(with ``invert_sweep`` and the projections it uses) and ``synthesize`` (with ``survival``).
Bundled data: ``actionable.datasets``.
"""

from actionable import registry
from actionable._version import __version__
from actionable.actions import Action, ActionSet, Param
from actionable.advice import advise_gradient
from actionable.attribution import attribute
from actionable.errors import ActionableError, ConfigError, DataError, ModelError, SpecError
from actionable.goals import Goal, resolve_goal
from actionable.inverse import invert, invert_sweep
from actionable.models import (
    KerasNetwork,
    TorchModel,
    as_model,
    load_keras,
    load_model,
    read_keras,
    save_model,
)
from actionable.models.input_encoding import InputEncoding, on_schema
from actionable.projections import project_box, project_weighted_l1_ball
from actionable.results import Advice, Attribution, FeatureAdvice, Recourse, RecourseBatch, Step
from actionable.robustness import survival
from actionable.schema import Feature, Schema, Target
from actionable.synthesis import synthesize

__all__ = [
    "Action",
    "ActionSet",
    "ActionableError",
    "Advice",
    "Attribution",
    "ConfigError",
    "DataError",
    "Feature",
    "FeatureAdvice",
    "Goal",
    "InputEncoding",
    "KerasNetwork",
    "ModelError",
    "Param",
    "Recourse",
    "RecourseBatch",
    "Schema",
    "SpecError",
    "Step",
    "Target",
    "TorchModel",
    "__version__",
    "advise_gradient",
    "as_model",
    "attribute",
    "invert",
    "invert_sweep",
    "load_keras",
    "load_model",
    "on_schema",
    "project_box",
    "project_weighted_l1_ball",
    "read_keras",
    "registry",
    "resolve_goal",
    "save_model",
    "survival",
    "synthesize",
]
