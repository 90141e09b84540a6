"""Models: one torch network from the canonical tensor to logits, whatever the user brought.

``as_model`` wraps a torch module or converts a fitted scikit-learn estimator or Pipeline exactly
(``sklearn.py``) into a ``TorchModel`` (``core.py``) made of the closed set of layers (``layers.py``);
``save_model`` / ``load_model`` (``files.py``) write and read it as safetensors + JSON, checked as data
(``specs.py``) before anything is built; ``training.py`` fits the default networks.
"""

from actionable.models.core import Task, TorchModel, as_model
from actionable.models.files import load_model, save_model

__all__ = ["Task", "TorchModel", "as_model", "load_model", "save_model"]
