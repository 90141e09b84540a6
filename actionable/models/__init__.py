"""Models: one torch network from the canonical tensor to logits, whatever the user brought.

``as_model`` wraps a torch module or converts a fitted scikit-learn estimator or Pipeline exactly
(``sklearn.py``) into a ``TorchModel`` (``core.py``) made of the closed set of layers (``layers.py``);
``save_model`` / ``load_model`` (``files.py``) write and read it as safetensors + JSON, checked as data
(``specs.py``) before anything is built; ``training.py`` fits the default networks; ``read_keras`` /
``load_keras`` (``keras.py``) read a Keras .h5 / .keras file as data into the same closed set of layers.
"""

from actionable.models.core import Task, TorchModel, as_model
from actionable.models.files import load_model, save_model
from actionable.models.keras import KerasNetwork, load_keras, read_keras

__all__ = [
    "KerasNetwork",
    "Task",
    "TorchModel",
    "as_model",
    "load_keras",
    "load_model",
    "read_keras",
    "save_model",
]
