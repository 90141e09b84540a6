"""actionable: what a person can do to change a model's decision, and why the model decided.

The public API: the nouns (``Schema``, ``Feature``, ``Target``, models via ``as_model``), goals, the
bundled datasets and the error family. Engines (``attribute``, ``invert``, ``synthesize``) build on these.
"""

__version__ = "0.1.0"

from actionable.errors import ActionableError, ConfigError, DataError, ModelError, SpecError
from actionable.goals import Goal, resolve_goal
from actionable.models import TorchModel, as_model, load_model, save_model
from actionable.schema import Feature, Schema, Target

__all__ = [
    "ActionableError",
    "ConfigError",
    "DataError",
    "Feature",
    "Goal",
    "ModelError",
    "Schema",
    "SpecError",
    "Target",
    "TorchModel",
    "__version__",
    "as_model",
    "load_model",
    "resolve_goal",
    "save_model",
]
