"""A tabular MLP estimator: input checks, scaling, batching, prediction.

:class:`MLP` trains the network plainly (the downstream model of the
pipeline, and the baseline LossVal's cost is compared with);
:class:`lossval.LossVal` shares everything here and replaces the training loop.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lossval._checks import as_features, as_target, check_float, check_hidden_layers, check_int, check_task
from lossval._types import Callback, Features, Target
from lossval.errors import NotFittedError, TrainingDivergedError
from lossval.loss import row_losses
from lossval.network import PAPER_ARCHITECTURE, build_mlp, resolve_device, seeded
from lossval.preprocessing import LabelCodec, Standardizer
from lossval.export import Affine, design_input, export_state, module_from_state  # noqa: F401 (their home was here)
from lossval.settings import AUTO, Auto, check_auto_int, resolve_settings
from lossval.tabular import MAX_LEVELS, TabularEncoder, is_mixed


class TabularNetwork:
    """Shared base of :class:`MLP` and :class:`lossval.LossVal`; not used directly.

    Features are standardised with the training rows' mean and standard
    deviation (constant columns map to 0); regression targets too, and
    predictions are mapped back. Class labels may be of any hashable type;
    ``predict`` returns them as given. A DataFrame may also hold categorical
    (``category`` / ``object`` / ``string``) and boolean columns: they are
    one-hot / 0-1 encoded by :class:`lossval.tabular.TabularEncoder` (at most
    ``max_levels`` columns per categorical feature, rarer levels pooled into
    ``other``); ``feature_names_in_`` then names the encoded columns
    (``workclass=Private``) and ``encoder_`` holds the encoding.

    ``epochs`` and ``batch_size`` default to ``"auto"``: resolved at ``fit`` from the
    number of training rows (the paper's 30 epochs of 32-row batches on small
    tables, :func:`lossval.large_data_settings` beyond; see :mod:`lossval.settings`);
    explicit integers always win. ``settings_`` holds the values the fit used.
    """

    def __init__(
        self,
        task: str = "classification",
        *,
        epochs: int | Auto = AUTO,
        batch_size: int | Auto = AUTO,
        lr: float = 0.01,
        hidden_layers: Sequence[int] | None = None,
        activation: str | None = None,
        device: str | torch.device = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
        callbacks: Sequence[Callback] = (),
        max_levels: int = MAX_LEVELS,
    ) -> None:
        self.task = check_task(task)
        self.max_levels = check_int("max_levels", max_levels, minimum=2)
        default_layers, default_activation = PAPER_ARCHITECTURE[self.task]
        self.epochs = check_auto_int("epochs", epochs)
        self.batch_size = check_auto_int("batch_size", batch_size)
        self.lr = check_float("lr", lr)
        self.hidden_layers = check_hidden_layers(default_layers if hidden_layers is None else hidden_layers)
        self.activation = default_activation if activation is None else activation
        self.device = device
        resolve_device(device)  # fail early on an unusable device
        if random_state is not None:
            check_int("random_state", random_state, minimum=0)
        self.random_state = random_state
        self.progress = progress
        if callable(callbacks):
            callbacks = (callbacks,)
        callbacks = tuple(callbacks)
        if not all(callable(c) for c in callbacks):
            raise ValueError(f"callbacks must be callables taking (epoch, metrics), got {callbacks!r}")
        self.callbacks = callbacks

    # ---- learned state -------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a learned attribute before fit.
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(
                f"{type(self).__name__}.{name} does not exist yet: call fit(...) first"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, epochs={self.epochs!r}, batch_size={self.batch_size!r}, lr={self.lr})"

    def _resolve_settings(self, n_rows: int, **more: Any) -> dict[str, Any]:
        """Resolve ``"auto"`` settings for ``n_rows`` training rows into ``settings_`` (and return it)."""
        self.settings_ = resolve_settings(n_rows, {"epochs": self.epochs, "batch_size": self.batch_size, **more})
        return self.settings_

    # ---- data ------------------------------------------------------------
    def _fit_inputs(self, X: Features, y: Target) -> tuple[Tensor, Tensor, pd.Index]:
        """Check and encode the training rows; fit the scalers. Returns (X (N, D), y, index)."""
        self.encoder_ = TabularEncoder.fit(X, max_levels=self.max_levels, name="X_train") if is_mixed(X) else None
        values, index, columns = as_features(X if self.encoder_ is None else self.encoder_.design(X, name="X_train"), "X_train")
        target = as_target(y, "y_train", task=self.task, n_rows=len(values), rows_name="X_train")
        self.feature_names_in_ = columns
        self.n_features_in_ = values.shape[1]
        self.feature_scaler_ = Standardizer.fit(values) if self.encoder_ is None else self.encoder_.scaler
        self.device_ = resolve_device(self.device)
        if self.task == "classification":
            self.label_codec_ = LabelCodec.fit(target)
            if len(self.label_codec_.classes) < 2:
                raise ValueError(
                    f"y_train has a single class {self.label_codec_.classes.tolist()[0]!r}; classification needs at least 2"
                )
            y_tensor = torch.as_tensor(self.label_codec_.encode(target, name="y_train"), device=self.device_)
        else:
            self.target_scaler_ = Standardizer.fit(target)
            y_tensor = self._as_tensor(self.target_scaler_.transform(target)[:, None])
        return self._as_tensor(self.feature_scaler_.transform(values)), y_tensor, index

    def _features(self, X: Features, name: str) -> tuple[Tensor, pd.Index]:
        """Check new rows against the training columns and scale them: (N, D)."""
        if self.encoder_ is not None:
            X = self.encoder_.design(X, name=name)
        elif isinstance(X, pd.DataFrame) and self.feature_names_in_ is not None:
            missing = [c for c in self.feature_names_in_ if c not in set(map(str, X.columns))]
            if missing:
                raise ValueError(f"{name} lacks the training feature columns {missing}")
            X = X.rename(columns=str)[self.feature_names_in_]
        values, index, _ = as_features(X, name)
        if values.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {values.shape[1]} features but X_train had {self.n_features_in_}")
        return self._as_tensor(self.feature_scaler_.transform(values)), index

    def _targets(self, y: Target, name: str, n_rows: int, rows_name: str) -> Tensor:
        target = as_target(y, name, task=self.task, n_rows=n_rows, rows_name=rows_name)
        if self.task == "classification":
            return torch.as_tensor(self.label_codec_.encode(target, name=name), device=self.device_)
        return self._as_tensor(self.target_scaler_.transform(target)[:, None])

    def _as_tensor(self, values: np.ndarray) -> Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=self.device_)

    # ---- training helpers ----------------------------------------------
    @property
    def _n_outputs(self) -> int:
        return len(self.label_codec_.classes) if self.task == "classification" else 1

    def _init_network(self, seed: int) -> nn.Module:
        with seeded(seed):
            net = build_mlp(self.n_features_in_, self._n_outputs, self.hidden_layers, self.activation)
        return net.to(self.device_)

    def _seed(self) -> int:
        if self.random_state is not None:
            return self.random_state
        return int(np.random.default_rng().integers(2**31 - 1))

    def _generator(self, seed: int) -> torch.Generator:
        generator = torch.Generator(device=self.device_)
        generator.manual_seed(seed + 1)
        return generator

    def _epochs(self, desc: str) -> Iterator[int]:
        show = sys.stderr.isatty() if self.progress is None else bool(self.progress)
        return iter(tqdm(range(1, self.settings_["epochs"] + 1), desc=desc, unit="epoch", disable=not show, leave=False))

    def _end_epoch(self, epoch: int, metrics: dict[str, float], started: float) -> None:
        metrics["seconds"] = time.perf_counter() - started
        bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
        if bad:
            raise TrainingDivergedError(
                f"{type(self).__name__} training diverged at epoch {epoch}: {bad} became NaN or inf. "
                f"Lower the learning rate (lr={self.lr}{self._extra_lr()}) or scale extreme input values."
            )
        self._history.append({"epoch": epoch, **metrics})
        for callback in self.callbacks:
            callback(epoch, dict(metrics))

    def _extra_lr(self) -> str:
        return ""

    # ---- prediction ------------------------------------------------------
    @torch.no_grad()
    def _outputs(self, X: Features) -> Tensor:
        features, _ = self._features(X, "X")
        self.model_.eval()
        return self.model_(features)

    def predict(self, X: Features) -> np.ndarray:
        """Class labels as given in ``y_train`` (classification) or floats in the target's units (regression)."""
        out = self._outputs(X)
        if self.task == "classification":
            return self.label_codec_.decode(out.argmax(dim=1).cpu().numpy())
        return self.target_scaler_.inverse(out[:, 0].double().cpu().numpy())

    def predict_proba(self, X: Features) -> np.ndarray:
        """Class probabilities (N, K), columns in the order of ``classes_`` (classification only)."""
        if self.task != "classification":
            raise ValueError("predict_proba is only defined for task='classification'")
        return torch.softmax(self._outputs(X), dim=1).double().cpu().numpy()

    @property
    def classes_(self) -> np.ndarray:
        return self.label_codec_.classes

    def export_module(self) -> nn.Module:
        """A self-contained CPU module for serving: raw features (N, D) in ``feature_names_in_`` order in,
        logits (classification, columns in ``classes_`` order) or predictions in the target's units out.
        The scaling is baked in as buffers, so the module needs nothing else to predict."""
        import copy

        layers: list[nn.Module] = [Affine(self.feature_scaler_.mean, self.feature_scaler_.scale, inverse=False)]
        layers.append(copy.deepcopy(self.model_).cpu().eval())
        if self.task == "regression":
            layers.append(Affine(self.target_scaler_.mean, self.target_scaler_.scale, inverse=True))
        return nn.Sequential(*layers).eval()


def epoch_batches(n_rows: int, batch_size: int, generator: torch.Generator, device: torch.device) -> tuple[Tensor, list[slice]]:
    """A fresh permutation of the rows and the slices of it that make this epoch's batches."""
    perm = torch.randperm(n_rows, generator=generator, device=device)  # (N,)
    return perm, [slice(start, min(start + batch_size, n_rows)) for start in range(0, n_rows, batch_size)]


class MLP(TabularNetwork):
    """Plain MLP training (Adam, mean loss): the downstream model and LossVal's cost baseline.

    Same options, scaling and batching as :class:`lossval.LossVal`, without row weights.
    Learned attributes: ``model_``, ``history_`` (per-epoch loss), ``settings_`` (the
    ``epochs`` and ``batch_size`` used, ``"auto"`` resolved).
    """

    def fit(self, X: Features, y: Target, *, sample_weight: Target | None = None) -> MLP:
        X_t, y_t, _ = self._fit_inputs(X, y)
        n = len(X_t)
        batch_size = self._resolve_settings(n)["batch_size"]
        row_weight = None
        if sample_weight is not None:
            w = as_target(sample_weight, "sample_weight", task="regression", n_rows=n, rows_name="X")
            if (w < 0).any():
                raise ValueError("sample_weight must be >= 0")
            row_weight = self._as_tensor(w)
        seed = self._seed()
        net = self._init_network(seed)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        generator = self._generator(seed)
        self._history = []
        net.train()
        for epoch in self._epochs("MLP"):
            started = time.perf_counter()
            perm, batches = epoch_batches(n, batch_size, generator, self.device_)
            X_p, y_p = X_t[perm], y_t[perm]
            w_p = row_weight[perm] if row_weight is not None else None
            total = torch.zeros((), device=self.device_)
            for sl in batches:
                rows = row_losses(self.task, net(X_p[sl]), y_p[sl])  # (B,)
                loss = rows.mean() if w_p is None else (w_p[sl] * rows).sum() / w_p[sl].sum().clamp_min(1e-12)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            self._end_epoch(epoch, {"loss": float(total) / len(batches)}, started)
        self.model_ = net.eval()
        self.history_ = pd.DataFrame(self._history)
        return self
