"""Exporting a fitted network for serving: a self-contained module, its state, and its input.

:func:`export_state` saves plain tensors and settings (``torch.load(..., weights_only=True)``
reads them back), :func:`module_from_state` rebuilds the serving module, :func:`design_input`
builds its input from raw rows. Also importable from :mod:`lossval.model`, their first home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from lossval.network import build_mlp
from lossval.tabular import TabularEncoder

if TYPE_CHECKING:
    from lossval.model import TabularNetwork


def export_state(estimator: TabularNetwork) -> dict[str, Any]:
    """Weights and the few settings needed to rebuild :meth:`TabularNetwork.export_module`.

    Plain tensors, numbers and strings only, so ``torch.load(..., weights_only=True)``
    reads it back without unpickling code. The module's input is the design matrix
    (``feature_names``); for a mixed-type frame ``encoder`` holds
    :meth:`lossval.tabular.TabularEncoder.state` (``{}`` for numeric features), and
    :func:`design_input` builds that input from raw rows.
    """
    module = estimator.export_module()
    return {
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "task": estimator.task,
        "n_features": int(estimator.n_features_in_),
        "n_outputs": int(estimator._n_outputs),
        "hidden_layers": list(estimator.hidden_layers),
        "activation": estimator.activation,
        "feature_names": list(estimator.feature_names_in_ or []),
        "classes": [str(c) for c in estimator.classes_] if estimator.task == "classification" else [],
        "encoder": estimator.encoder_.state() if estimator.encoder_ is not None else {},
    }


def design_input(state: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The serving module's float32 input (N, D) for raw feature rows ``frame``, per :func:`export_state`'s ``state``."""
    if state.get("encoder"):
        frame = TabularEncoder.from_state(state["encoder"]).design(frame)
    else:
        frame = frame[state["feature_names"]] if state["feature_names"] else frame
    return np.array(frame.to_numpy(dtype=np.float32), copy=True)


def module_from_state(state: dict[str, Any]) -> nn.Module:
    """Rebuild the serving module saved by :func:`export_state`."""
    layers: list[nn.Module] = [Affine(np.zeros(state["n_features"]), np.ones(state["n_features"]), inverse=False)]
    layers.append(build_mlp(state["n_features"], state["n_outputs"], state["hidden_layers"], state["activation"]))
    if state["task"] == "regression":
        layers.append(Affine(np.zeros(1), np.ones(1), inverse=True))
    module = nn.Sequential(*layers)
    module.load_state_dict(state["state_dict"])
    return module.eval()


class Affine(nn.Module):
    """``(x - mean) / scale``, or its inverse ``x * scale + mean``, with float32 buffers."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, *, inverse: bool) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float32)))
        self.inverse = inverse

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.mean if self.inverse else (x - self.mean) / self.scale
