"""LossVal: data valuation by learned per-row weights (Wibiral et al., 2024, arXiv 2412.04158).

Every training row n gets a weight w_n, initialised to 1 and trained together
with the network on ``sum_n w_n loss_n * OT_w(batch, validation) ** 2``
(see :mod:`lossval.loss` and :mod:`lossval.ot`). After training, ``w`` is the
value of each row: higher = more valuable, lower = more likely noisy.

This project's default differs from the paper's code in three measured ways
(docs/benchmarks.md, section 2, has the benchmark and the experiment log):

- the OT term transports probability measures (``normalize_masses=True``:
  weights / their sum against 1/M per validation row), a true OT distance;
  the paper's raw masses are not one when the weights do not sum to M;
- the weights move by projected, normalised gradient descent
  (``weight_optimizer="normalized"``, :mod:`lossval.row_weights`), which keeps
  the relative sizes of the rows' gradients that per-row Adam discards;
- the weights step once per epoch (``weight_updates="per_epoch"``), which
  also makes the OT term cheap (below).

Two training schedules, chosen by ``weight_updates``:

``"per_epoch"`` (default)
    The network steps after every batch; the weights take one step per
    epoch with the gradient each row got in its batch. Since a row's weight
    then does not move until the epoch ends, the OT term of *every* batch of
    the epoch depends only on weights known when the epoch starts, so all
    batches' Sinkhorn problems are solved together in one batched geomloss
    call, and each batch step uses that value with its exact gradient
    (dOT/dw is linear at the fixed point). No per-batch OT solve, no
    per-batch host synchronisation.

``"per_batch"`` (the paper's code)
    One Adam over network and weights, stepped after every batch, with the
    OT term solved per batch. :meth:`LossVal.paper` is the authors' variant
    (this schedule, raw masses, the squared OT term).

Weights stay valid masses: after every weight update they are clipped to
``[min_weight, max_weight]`` (positive and finite; :meth:`LossVal.paper` leaves
them unconstrained, as the authors' code does), and training stops with
:class:`~lossval.errors.TrainingDivergedError` if any metric becomes NaN/inf.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lossval._checks import check_choice, check_float, check_int
from lossval._types import Callback, Combine, Features, Target, WeightOptimizer, WeightUpdates
from lossval.loss import LossValLoss, row_losses
from lossval.model import TabularNetwork, epoch_batches
from lossval.ot import SOLVERS, SinkhornToReference, chunk_entries, diameter_bound
from lossval.row_weights import OPTIMIZERS, WeightStepper
from lossval.scoring import tie_free_values
from lossval.tabular import MAX_LEVELS

WEIGHT_UPDATES: tuple[str, ...] = ("per_epoch", "per_batch")
#: Default step of the weights under the "normalized" optimizers: a typical row moves by 4 % of the
#: mean weight per epoch (chosen on the development grid of docs/benchmarks.md; 0.01-0.08 were tried).
NORMALIZED_WEIGHT_LR = 0.04


class LossVal(TabularNetwork):
    """Value each training row by its learned LossVal weight.

    Args:
        task: ``"classification"`` or ``"regression"``.
        epochs, batch_size, lr: training of the network (paper: 30, 32, 0.01, Adam).
        hidden_layers, activation: the MLP; default to the paper's per task
            (classification 4 x 100 ReLU, regression 2 x 90 tanh).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``.
        random_state: seed; the same seed on the CPU gives identical values.
        progress: show a progress bar over epochs (default: when stderr is a TTY).
        callbacks: callables ``f(epoch, metrics)`` run after every epoch, with
            ``loss``, ``weighted_loss``, ``ot``, ``weight_min``, ``weight_p05``,
            ``weight_median``, ``weight_p95``, ``weight_max`` and ``seconds``.
        weight_lr: step size of the row weights (default: 0.04 for the
            ``"normalized"`` optimizers, ``lr`` for ``"adam"``).
        weight_updates: ``"per_epoch"`` (fast, default) or ``"per_batch"`` (paper); see module doc.
        weight_optimizer: ``"normalized"`` (projected gradient scaled by its mean
            absolute value over the rows), ``"normalized_rms"`` or ``"adam"`` (per row,
            the paper's); see :mod:`lossval.row_weights`. Default: ``"normalized"``
            with per-epoch updates; per-batch updates always step one joint Adam.
        weight_clip: under ``"normalized*"``, no row moves more than ``weight_clip * weight_lr``
            per epoch (0 = no limit).
        average_last: the value is the mean weight over the last ``average_last`` epochs
            (1 = the final weight, as in the paper).
        combine: ``"product"`` (paper), ``"loss_only"`` or ``"ot_only"`` (ablations).
        ot_power: exponent of the OT factor (2 = paper's squared OT).
        normalize_masses: transport probability measures (weights / sum; default) rather
            than the paper's raw masses (w against 1 per validation row); see :mod:`lossval.ot`.
        ot_label_scale: transport features and labels jointly: the label is appended to
            the features (one-hot times ``ot_label_scale / sqrt(2)``, or the standardised
            target times ``ot_label_scale``); 0 (default) = features only, as in the paper.
        blur, scaling, debias: geomloss Sinkhorn settings (0.05, 0.5, True as in geomloss).
        solver: ``"fast"`` or ``"geomloss"`` (``SamplesLoss`` itself); same numbers, see :mod:`lossval.ot`.
        min_weight, max_weight: the weights are clipped to this range after every update.
        clip_weights: ``False``: no clipping, the weights are unconstrained as in the authors'
            code (:meth:`paper`); a weight may then go to or below 0, where geomloss's log-weights
            treat it as no mass. Needs ``normalize_masses=False`` and ``weight_updates="per_batch"``.
        reference_rows: ``None`` (default): every batch is transported to the whole validation
            set (cost ``O(batch x M)`` per batch). An integer: the validation set is split at
            random into ``ceil(M / reference_rows)`` parts of nearly equal size every epoch and
            each batch meets one part, so the OT cost per batch is ``O(batch x reference_rows)``
            whatever ``M`` is; with ``M <= reference_rows`` the whole set, exactly. Faster for
            large validation sets (M = 1000, 128: 2x less fit time), at some F1 cost
            (docs/benchmarks.md, section 3); :func:`lossval.large_data_settings` uses it.
        ot_batch_size: rows per OT problem (per-epoch updates only): the epoch's permuted
            rows are cut into groups of this size, each group gets its own OT term, and a
            training batch's objective is the sum of ``L_g * OT_g ** power`` over its groups
            (``None`` = ``batch_size``: one group per batch, the paper's objective). Lets a
            large ``batch_size`` train the network fast while the OT term keeps the paper's
            batch size (its batch self-term costs ``O(ot_batch_size)`` per row).
        max_levels: a DataFrame's categorical (``category`` / ``object``) and boolean columns are
            encoded inside (:mod:`lossval.tabular`): one-hot, at most ``max_levels`` columns per
            feature (default 32; rarer levels pool into ``other``). The OT ground cost then weighs
            a category change like a one-standard-deviation change of a numeric feature
            (squared distance 1 each).
        tie_break: ``values_`` are the weights with their ties (the floor) broken by the parts
            (:func:`lossval.scoring.tie_free_values`); ``False``: the weights themselves (:meth:`paper`).

    Learned attributes: ``values_`` (Series, index of ``X_train``), ``weights_`` (the learned weights), ``model_``
    (the trained network), ``history_`` (per-epoch metrics), ``parts_``
    (per-row mean loss ``loss_part`` and mean OT gradient ``transport_part``
    over training; :func:`lossval.reasons.row_reasons` reads them), ``diameter_``.
    """

    def __init__(
        self,
        task: str = "classification",
        *,
        epochs: int = 30,
        batch_size: int = 32,
        lr: float = 0.01,
        hidden_layers: Sequence[int] | None = None,
        activation: str | None = None,
        device: str | torch.device = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
        callbacks: Sequence[Callback] = (),
        weight_lr: float | None = None,
        weight_updates: WeightUpdates = "per_epoch",
        weight_optimizer: WeightOptimizer | None = None,
        weight_clip: float = 3.0,
        average_last: int = 1,
        combine: Combine = "product",
        ot_power: float = 2.0,
        normalize_masses: bool = True,
        ot_label_scale: float = 0.0,
        blur: float = 0.05,
        scaling: float = 0.5,
        debias: bool = True,
        solver: str = "fast",
        min_weight: float = 1e-3,
        max_weight: float = 1e3,
        clip_weights: bool = True,
        reference_rows: int | None = None,
        ot_batch_size: int | None = None,
        max_levels: int = MAX_LEVELS,
        tie_break: bool = True,
    ) -> None:
        super().__init__(
            task,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            hidden_layers=hidden_layers,
            activation=activation,
            device=device,
            random_state=random_state,
            progress=progress,
            callbacks=callbacks,
            max_levels=max_levels,
        )
        self.weight_updates = check_choice("weight_updates", weight_updates, WEIGHT_UPDATES)
        if weight_optimizer is None:
            weight_optimizer = "normalized" if self.weight_updates == "per_epoch" else "adam"
        self.weight_optimizer = check_choice("weight_optimizer", weight_optimizer, OPTIMIZERS)
        if self.weight_optimizer != "adam" and self.weight_updates != "per_epoch":
            raise ValueError(
                f"weight_optimizer={weight_optimizer!r} needs weight_updates='per_epoch' "
                f"(per_batch steps one joint Adam), got weight_updates={weight_updates!r}"
            )
        if weight_lr is None:
            weight_lr = self.lr if self.weight_optimizer == "adam" else NORMALIZED_WEIGHT_LR
        self.weight_lr = check_float("weight_lr", weight_lr)
        self.weight_clip = check_float("weight_clip", weight_clip, allow_zero=True)
        self.average_last = check_int("average_last", average_last)
        if self.average_last > 1 and self.weight_updates != "per_epoch":
            raise ValueError(f"average_last={average_last!r} needs weight_updates='per_epoch', got {weight_updates!r}")
        self.loss_fn = LossValLoss(self.task, combine=combine, power=ot_power)
        self.combine, self.ot_power = self.loss_fn.combine, self.loss_fn.power
        self.normalize_masses = bool(normalize_masses)
        self.blur = check_float("blur", blur)
        self.scaling = check_float("scaling", scaling)
        if not self.scaling < 1:
            raise ValueError(f"scaling must be in (0, 1), got {scaling!r}")
        self.debias = bool(debias)
        self.solver = check_choice("solver", solver, SOLVERS)
        self.min_weight = check_float("min_weight", min_weight)
        self.max_weight = check_float("max_weight", max_weight)
        if not self.min_weight < 1 < self.max_weight:
            raise ValueError(f"need min_weight < 1 < max_weight, got {min_weight!r} and {max_weight!r}")
        self.clip_weights = bool(clip_weights)
        self.tie_break = bool(tie_break)
        if not self.clip_weights and (self.normalize_masses or self.weight_updates != "per_batch"):
            raise ValueError(
                "clip_weights=False needs normalize_masses=False and weight_updates='per_batch' (the authors' "
                f"schedule; normalised masses need positive weights), got {normalize_masses!r} and {weight_updates!r}"
            )
        self.ot_label_scale = check_float("ot_label_scale", ot_label_scale, allow_zero=True)
        self.reference_rows = None if reference_rows is None else check_int("reference_rows", reference_rows)
        self.ot_batch_size = None if ot_batch_size is None else check_int("ot_batch_size", ot_batch_size)
        if self.ot_batch_size not in (None, self.batch_size) and self.weight_updates != "per_epoch":
            raise ValueError(
                f"ot_batch_size={ot_batch_size!r} needs weight_updates='per_epoch' (per_batch solves one OT term "
                f"per batch of batch_size={self.batch_size}), got {weight_updates!r}"
            )

    @classmethod
    def paper(cls, task: str = "classification", **overrides: Any) -> LossVal:
        """The authors' variant: per-batch OT and joint Adam, unnormalised masses, unconstrained weights, OT squared.

        As the authors' code (github.com/twibiral/LossVal, ``src/LossVal``) except: the OT factor is
        squared (their experiment scripts' "squared" Sinkhorn does not square; the paper's formula and
        their standalone reference do), and training stops with ``TrainingDivergedError`` on a
        non-finite metric where theirs would carry NaN on.
        """
        settings: dict[str, Any] = dict(
            weight_updates="per_batch", weight_optimizer="adam", normalize_masses=False, combine="product",
            ot_power=2.0, solver="geomloss", clip_weights=False, tie_break=False,
        )  # fmt: skip
        return cls(task, **{**settings, **overrides})

    def _extra_lr(self) -> str:
        return f", weight_lr={self.weight_lr}"

    # ---- fit -------------------------------------------------------------
    def fit(self, X_train: Features, y_train: Target, X_val: Features, y_val: Target) -> LossVal:
        """Train the network and the row weights; the weights become ``values_``.

        Args:
            X_train: (N, D) training features, unscaled; numpy or DataFrame.
            y_train: (N,) labels (classification, any hashable) or floats (regression).
            X_val: (M, D) trusted validation features, same columns as ``X_train``.
            y_val: (M,) validation targets; their classes must occur in ``y_train``.

        Returns:
            self, with ``values_`` indexed like ``X_train`` (a RangeIndex for arrays).
        """
        X, y, index = self._fit_inputs(X_train, y_train)
        X_ref, _ = self._features(X_val, "X_val")
        y_ref = self._targets(y_val, "y_val", n_rows=len(X_ref), rows_name="X_val")  # not trained on
        Z, Z_ref = self._transport_points(X, y), self._transport_points(X_ref, y_ref)  # (N, D'), (M, D')
        self.diameter_ = diameter_bound(torch.cat([Z, Z_ref]), Z_ref)
        transport = SinkhornToReference(
            Z_ref,
            blur=self.blur,
            scaling=self.scaling,
            diameter=self.diameter_,
            debias=self.debias,
            normalize=self.normalize_masses,
            solver=self.solver,
            reference_rows=self.reference_rows,
        )
        seed = self._seed()
        net = self._init_network(seed)
        weights = torch.nn.Parameter(torch.ones(len(X), device=self.device_))  # (N,)
        state = _Accumulators(len(X), self.device_)
        self._history = []
        net.train()
        if self.weight_updates == "per_epoch":
            stepper = WeightStepper(
                weights, optimizer=self.weight_optimizer, lr=self.weight_lr, clip=self.weight_clip,
                average_last=self.average_last, min_weight=self.min_weight, max_weight=self.max_weight, epochs=self.epochs,
            )  # fmt: skip
            self._train_per_epoch(net, stepper, transport, X, Z, y, self._generator(seed), state)
            final = stepper.values()
        else:
            self._train_per_batch(net, weights, transport, X, Z, y, self._generator(seed), state)
            final = weights.detach()
        self.model_ = net.eval()
        values = final.double().cpu().numpy()
        self.weights_ = pd.Series(values, index=index, name="weight")
        self.parts_ = pd.DataFrame(
            {
                "loss_part": (state.loss_sum / self.epochs).double().cpu().numpy(),
                "transport_part": (state.transport_sum / self.epochs).double().cpu().numpy(),
            },
            index=index,
        )
        parts = {k: self.parts_[k].to_numpy() for k in ("loss_part", "transport_part")}
        self.values_ = pd.Series(tie_free_values(values, **parts) if self.tie_break else values, index=index, name="value")
        self.history_ = pd.DataFrame(self._history)
        return self

    def _train_per_epoch(
        self, net, stepper: WeightStepper, transport: SinkhornToReference, X: Tensor, Z: Tensor, y: Tensor, generator, state
    ) -> None:
        n = len(X)
        weights = stepper.weights
        net_opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        group = self.ot_batch_size or self.batch_size
        group_of = torch.arange(n, device=self.device_) // group  # (N,) OT group of each permuted position
        rows_p = torch.empty(n, device=self.device_)  # (N,) per-row loss, per permuted position
        for epoch in self._epochs("LossVal"):
            started = time.perf_counter()
            perm, batches = epoch_batches(n, self.batch_size, generator, self.device_)
            X_p, y_p, w_p = X[perm], y[perm], weights.detach()[perm]  # (N, D), (N, ...), (N,)
            Z_p = X_p if Z is X else Z[perm]  # (N, D') the transported points
            if transport.n_parts > 1:
                transport.shuffle_parts(generator)
            # Weights only move at the end of the epoch, so every group's OT term is known now.
            ot_value, ot_grad = self._epoch_transport(transport, w_p, Z_p, group)  # (n_groups,), (N,)
            factor = self.loss_fn.factor(ot_value)  # (n_groups,)
            if self.combine == "ot_only":  # the ablation trains the weights alone
                with torch.no_grad():
                    rows_p = row_losses(self.task, net(X_p), y_p)
            elif group == self.batch_size:  # one group per batch: L_b * F(OT_b), the paper's objective
                for b, sl in enumerate(batches):
                    rows = row_losses(self.task, net(X_p[sl]), y_p[sl])  # (B,)
                    net_opt.zero_grad(set_to_none=True)
                    ((w_p[sl] * rows).sum() * factor[b]).backward()
                    net_opt.step()
                    rows_p[sl] = rows.detach()
            else:  # a batch sums L_g * F(OT_g) over its groups: each row's loss scaled by w_n F(OT_g(n))
                scale = w_p * factor[group_of]  # (N,)
                for sl in batches:
                    rows = row_losses(self.task, net(X_p[sl]), y_p[sl])  # (B,)
                    net_opt.zero_grad(set_to_none=True)
                    (scale[sl] * rows).sum().backward()
                    net_opt.step()
                    rows_p[sl] = rows.detach()
            grad_p = self.loss_fn.weight_gradient(rows_p, w_p, group_of, ot_value, ot_grad)  # (N,)
            stepper.step(torch.empty_like(grad_p).index_copy_(0, perm, grad_p))
            state.add(perm, rows_p, ot_grad)
            weighted = torch.zeros_like(ot_value).index_add_(0, group_of, w_p * rows_p)  # (n_groups,)
            total = factor if self.combine == "ot_only" else weighted * factor
            means = torch.stack([total.mean(), weighted.mean(), ot_value.abs().mean()])
            self._end_epoch(epoch, self._metrics(means, weights), started)

    def _epoch_transport(self, transport: SinkhornToReference, w_p: Tensor, Z_p: Tensor, size: int) -> tuple[Tensor, Tensor]:
        """OT value of every group of ``size`` consecutive rows (n_groups,) and its gradient per row (N,).

        Solved in batched calls of at most :func:`~lossval.ot.chunk_entries` cost-matrix entries; group g
        meets reference part ``g % n_parts``; a last, smaller group is solved on its own.
        """
        n = len(w_p)
        n_full, n_groups = n // size, -(-n // size)
        if self.combine == "loss_only":
            return torch.zeros(n_groups, device=self.device_), torch.zeros_like(w_p)
        parts = torch.arange(n_groups, device=self.device_) % transport.n_parts  # (n_groups,)
        chunk = max(1, chunk_entries(self.device_) // (size * (transport.part_rows + size)))
        pieces = [(lo, min(lo + chunk, n_full)) for lo in range(0, n_full, chunk)]
        if n_groups > n_full:
            pieces.append((n_full, n_groups))
        values, grads = [], []
        with torch.enable_grad():
            for lo, hi in pieces:
                rows = slice(lo * size, min(hi * size, n))
                w = w_p[rows].reshape(hi - lo, -1).detach().requires_grad_()  # (k, size)
                x = Z_p[rows].reshape(hi - lo, w.shape[1], -1)  # (k, size, D)
                value = transport(w, x, parts[lo:hi])  # (k,)
                (grad,) = torch.autograd.grad(value.sum(), w)
                values.append(value.detach())
                grads.append(grad.reshape(-1))
        return torch.cat(values), torch.cat(grads)

    def _train_per_batch(
        self, net, weights: Tensor, transport: SinkhornToReference, X: Tensor, Z: Tensor, y: Tensor, generator, state
    ) -> None:
        n = len(X)
        optimizer = torch.optim.Adam([*net.parameters(), weights], lr=self.lr)
        if self.weight_lr != self.lr:
            optimizer = torch.optim.Adam(
                [{"params": list(net.parameters())}, {"params": [weights], "lr": self.weight_lr}], lr=self.lr
            )
        rows_p = torch.empty(n, device=self.device_)
        ot_grad = torch.zeros(n, device=self.device_)
        for epoch in self._epochs("LossVal"):
            started = time.perf_counter()
            perm, batches = epoch_batches(n, self.batch_size, generator, self.device_)
            X_p, y_p = X[perm], y[perm]
            Z_p = X_p if Z is X else Z[perm]
            if transport.n_parts > 1:
                transport.shuffle_parts(generator)
            parts = torch.arange(len(batches), device=self.device_) % transport.n_parts  # (n_batches,)
            sums = torch.zeros(3, device=self.device_)
            for b, sl in enumerate(batches):
                w_b = weights[perm[sl]]  # (B,), gradient flows into the full weight vector
                ot_b = None
                if self.combine != "loss_only":
                    ot_b = transport(w_b, Z_p[sl], parts[b : b + 1])
                    (ot_grad[sl],) = torch.autograd.grad(ot_b, w_b, retain_graph=True)
                terms = self.loss_fn.terms(w_b, net(X_p[sl]), y_p[sl], transport=ot_b)
                optimizer.zero_grad(set_to_none=True)
                terms.total.backward()
                optimizer.step()
                self._clip(weights)
                rows_p[sl] = terms.rows
                sums += torch.stack([terms.total.detach(), terms.weighted_loss.detach(), terms.transport.detach()])
            state.add(perm, rows_p, ot_grad)
            self._end_epoch(epoch, self._metrics(sums / len(batches), weights), started)

    # ---- helpers ---------------------------------------------------------
    def _transport_points(self, X: Tensor, y: Tensor) -> Tensor:
        """The points the OT term transports: the features, plus the label scaled by ``ot_label_scale``.

        Classification adds the one-hot label times ``ot_label_scale / sqrt(2)``
        (two classes lie ``ot_label_scale`` apart), regression the
        standardised target times ``ot_label_scale``.
        """
        if self.ot_label_scale == 0:
            return X
        if self.task == "classification":
            label = torch.nn.functional.one_hot(y, self._n_outputs).to(X.dtype) * (self.ot_label_scale / 2**0.5)
        else:
            label = y.reshape(len(y), -1) * self.ot_label_scale
        return torch.cat([X, label], dim=1)  # (N, D + K)

    @torch.no_grad()
    def _clip(self, weights: Tensor) -> None:
        if not self.clip_weights:
            return
        weights.nan_to_num_(nan=self.min_weight).clamp_(self.min_weight, self.max_weight)

    def _metrics(self, means: Tensor, weights: Tensor) -> dict[str, float]:
        loss, weighted, ot = means.tolist()
        w = weights.detach().float().cpu().numpy()
        quantiles = np.quantile(w, [0.0, 0.05, 0.5, 0.95, 1.0])
        names = ("weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max")
        return {"loss": loss, "weighted_loss": weighted, "ot": ot, **dict(zip(names, map(float, quantiles)))}


class _Accumulators:
    """Per-row running sums of the two parts of the objective, for ``parts_``."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.loss_sum = torch.zeros(n, device=device)
        self.transport_sum = torch.zeros(n, device=device)

    def add(self, perm: Tensor, rows_p: Tensor, ot_grad_p: Tensor) -> None:
        self.loss_sum.index_add_(0, perm, rows_p)
        self.transport_sum.index_add_(0, perm, ot_grad_p)
