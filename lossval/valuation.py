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

Two training schedules, chosen by ``weight_updates``: ``"per_epoch"`` (default; the weights step
once per epoch, so every batch's OT term is solved in one batched call when the epoch starts,
:mod:`lossval.per_epoch`) and ``"per_batch"`` (the paper's code: one Adam over network and
weights, OT solved per batch, :mod:`lossval.per_batch`; :meth:`LossVal.paper` is the authors'
variant: this schedule, raw masses, the squared OT term).

Weights stay valid masses: after every weight update they are clipped to
``[min_weight, max_weight]`` (positive and finite; :meth:`LossVal.paper` leaves
them unconstrained, as the authors' code does), and training stops with
:class:`~lossval.errors.TrainingDivergedError` if any metric becomes NaN/inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from lossval._checks import check_choice, check_float, check_int
from lossval._types import Callback, Combine, Features, Target, WeightOptimizer, WeightUpdates
from lossval.epoch_transport import Accumulators, transport_points
from lossval.loss import LossValLoss
from lossval.model import TabularNetwork
from lossval.ot import SOLVERS, SinkhornToReference, check_loop, diameter_bound
from lossval.per_batch import train_per_batch
from lossval.per_epoch import train_per_epoch
from lossval.row_weights import OPTIMIZERS, WeightStepper, epoch_metrics
from lossval.scoring import tie_free_values
from lossval.settings import AUTO, NORMALIZED_WEIGHT_LR, PAPER_BATCH, PAPER_EPOCHS, SMALL_TABLE_OT, Auto, check_auto_int
from lossval.tabular import MAX_LEVELS

WEIGHT_UPDATES: tuple[str, ...] = ("per_epoch", "per_batch")
__all__ = ["LossVal", "NORMALIZED_WEIGHT_LR", "WEIGHT_UPDATES"]


class LossVal(TabularNetwork):
    """Value each training row by its learned LossVal weight.

    Args:
        task: ``"classification"`` or ``"regression"``.
        epochs, batch_size, lr: training of the network (paper: 30, 32, 0.01, Adam); ``epochs`` and
            ``batch_size`` default to ``"auto"``, as do ``ot_batch_size``, ``reference_rows``,
            ``ot_every``, ``scaling`` and ``sinkhorn_loop`` (and ``weight_lr=None``): resolved at ``fit`` from the number of training rows,
            the paper's settings on small tables, :func:`lossval.large_data_settings` beyond
            (:mod:`lossval.settings`); explicit values win. ``settings_`` records what was used.
        hidden_layers, activation: the MLP; default to the paper's per task
            (classification 4 x 100 ReLU, regression 2 x 90 tanh).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``.
        random_state: seed; the same seed on the CPU gives identical values.
        progress: show a progress bar over epochs (default: when stderr is a TTY).
        callbacks: callables ``f(epoch, metrics)`` run after every epoch, with
            ``loss``, ``weighted_loss``, ``ot``, ``weight_min``, ``weight_p05``,
            ``weight_median``, ``weight_p95``, ``weight_max`` and ``seconds``.
        weight_lr: step size of the row weights (default: 0.04 for the ``"normalized"`` optimizers,
            scaled by 30 / epochs on large tables; ``lr`` for ``"adam"``).
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
        blur, scaling, debias: geomloss Sinkhorn settings (0.05, 0.5, True as in geomloss); ``scaling``
            (the epsilon-scaling ratio: smaller = fewer Sinkhorn iterations) is "auto": 0.5 on small
            tables, :data:`lossval.large_data.LARGE_SCALING` on large ones.
        solver: ``"fast"`` or ``"geomloss"`` (``SamplesLoss`` itself); same numbers, see :mod:`lossval.ot`.
        sinkhorn_loop: ``"geomloss"`` or ``"trimmed"`` (half the soft-mins; ``solver="fast"`` only; :mod:`lossval.ot`);
            "auto": ``"trimmed"`` on large tables unless ``solver="geomloss"``.
        min_weight, max_weight: the weights are clipped to this range after every update.
        clip_weights: ``False``: no clipping, the weights are unconstrained as in the authors'
            code (:meth:`paper`); a weight may then go to or below 0, where geomloss's log-weights
            treat it as no mass. Needs ``normalize_masses=False`` and ``weight_updates="per_batch"``.
        reference_rows: ``None``: every batch meets the whole validation set (cost ``O(batch x M)``); an
            integer: the set is split at random into ``ceil(M / reference_rows)`` parts every epoch and each
            batch meets one (``O(batch x reference_rows)`` whatever ``M`` is): faster, at some F1 cost
            (docs/benchmarks.md, section 3). "auto": ``None`` on small tables, 128 on large ones.
        ot_batch_size: rows per OT problem (per-epoch updates only): the epoch's permuted rows are cut
            into groups of this size, each with its own OT term; a batch's objective sums ``L_g * OT_g ** power``
            over its groups (``None`` = ``batch_size``: the paper's objective), so a large ``batch_size`` trains
            fast while the OT term keeps the paper's batch size. "auto": ``None`` on small tables, 32 on large ones.
        ot_every: per-epoch updates only: the OT term (groups, reference parts, values and
            gradients) is solved every ``ot_every`` epochs and held in between, each row keeping
            its group (1 = solved every epoch, exact); see :mod:`lossval.per_epoch`.
        max_levels: a DataFrame's categorical (``category`` / ``object``) and boolean columns are encoded
            inside (:mod:`lossval.tabular`): one-hot, at most ``max_levels`` columns per feature (default 32;
            rarer levels pool into ``other``). The OT ground cost then weighs a category change like a
            one-standard-deviation change of a numeric feature (squared distance 1 each).
        tie_break: ``values_`` = the weights, ties (the floor) broken by the parts (:func:`lossval.scoring.tie_free_values`); False: the weights.

    Learned attributes: ``values_`` (Series, index of ``X_train``), ``weights_`` (the learned weights), ``model_``
    (the trained network), ``history_`` (per-epoch metrics), ``parts_``
    (per-row mean loss ``loss_part`` and mean OT gradient ``transport_part``
    over training; :func:`lossval.reasons.row_reasons` reads them), ``diameter_``, ``settings_``
    (``epochs``, ``batch_size``, ``ot_batch_size``, ``reference_rows``, ``ot_every``, ``scaling``,
    ``sinkhorn_loop``, ``weight_lr`` as used, ``"auto"`` resolved).
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
        scaling: float | Auto = AUTO,
        debias: bool = True,
        solver: str = "fast",
        sinkhorn_loop: str | Auto = AUTO,
        min_weight: float = 1e-3,
        max_weight: float = 1e3,
        clip_weights: bool = True,
        reference_rows: int | Auto | None = AUTO,
        ot_batch_size: int | Auto | None = AUTO,
        ot_every: int | Auto = AUTO,
        max_levels: int = MAX_LEVELS,
        tie_break: bool = True,
    ) -> None:
        super().__init__(
            task, epochs=epochs, batch_size=batch_size, lr=lr, hidden_layers=hidden_layers, activation=activation,
            device=device, random_state=random_state, progress=progress, callbacks=callbacks, max_levels=max_levels,
        )  # fmt: skip
        self.weight_updates = check_choice("weight_updates", weight_updates, WEIGHT_UPDATES)
        if weight_optimizer is None:
            weight_optimizer = "normalized" if self.weight_updates == "per_epoch" else "adam"
        self.weight_optimizer = check_choice("weight_optimizer", weight_optimizer, OPTIMIZERS)
        if self.weight_optimizer != "adam" and self.weight_updates != "per_epoch":
            raise ValueError(f"weight_optimizer={weight_optimizer!r} needs weight_updates='per_epoch' "
                             f"(per_batch steps one joint Adam), got weight_updates={weight_updates!r}")  # fmt: skip
        if weight_lr is None and self.weight_optimizer == "adam":
            weight_lr = self.lr
        self.weight_lr = None if weight_lr in (None, AUTO) else check_float("weight_lr", weight_lr)
        self.weight_clip = check_float("weight_clip", weight_clip, allow_zero=True)
        self.average_last = check_int("average_last", average_last)
        if self.average_last > 1 and self.weight_updates != "per_epoch":
            raise ValueError(f"average_last={average_last!r} needs weight_updates='per_epoch', got {weight_updates!r}")
        self.loss_fn = LossValLoss(self.task, combine=combine, power=ot_power)
        self.combine, self.ot_power = self.loss_fn.combine, self.loss_fn.power
        self.normalize_masses = bool(normalize_masses)
        self.blur = check_float("blur", blur)
        self.scaling = scaling if scaling == AUTO else check_float("scaling", scaling)
        if self.scaling != AUTO and not self.scaling < 1:
            raise ValueError(f"scaling must be in (0, 1) or 'auto', got {scaling!r}")
        self.debias = bool(debias)
        self.solver = check_choice("solver", solver, SOLVERS)
        self.sinkhorn_loop = sinkhorn_loop if sinkhorn_loop == AUTO else check_loop("sinkhorn_loop", sinkhorn_loop, self.solver)
        self.min_weight = check_float("min_weight", min_weight)
        self.max_weight = check_float("max_weight", max_weight)
        if not self.min_weight < 1 < self.max_weight:
            raise ValueError(f"need min_weight < 1 < max_weight, got {min_weight!r} and {max_weight!r}")
        self.clip_weights = bool(clip_weights)
        self.tie_break = bool(tie_break)
        if not self.clip_weights and (self.normalize_masses or self.weight_updates != "per_batch"):
            raise ValueError("clip_weights=False needs normalize_masses=False and weight_updates='per_batch' (the authors' "
                             f"schedule; normalised masses need positive weights), got {normalize_masses!r} and {weight_updates!r}")  # fmt: skip
        self.ot_label_scale = check_float("ot_label_scale", ot_label_scale, allow_zero=True)
        self.reference_rows = check_auto_int("reference_rows", reference_rows, allow_none=True)
        self.ot_batch_size = check_auto_int("ot_batch_size", ot_batch_size, allow_none=True)
        self.ot_every = check_auto_int("ot_every", ot_every)
        self._check_schedule(self.batch_size)

    def _check_schedule(self, batch_size: int | str) -> None:
        """Per-batch updates solve one OT term per batch, every batch: no other group size, no held terms."""
        if self.weight_updates == "per_epoch":
            return
        if self.ot_batch_size not in (None, AUTO) and self.ot_batch_size != batch_size:
            raise ValueError(
                f"ot_batch_size={self.ot_batch_size!r} needs weight_updates='per_epoch' (per_batch solves one OT term "
                f"per batch of batch_size={batch_size}), got {self.weight_updates!r}"
            )
        if self.ot_every not in (AUTO, 1):
            raise ValueError(f"ot_every={self.ot_every!r} needs weight_updates='per_epoch', got {self.weight_updates!r}")

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
            ot_power=2.0, solver="geomloss", clip_weights=False, epochs=PAPER_EPOCHS, batch_size=PAPER_BATCH,
            reference_rows=None, tie_break=False, **{k: SMALL_TABLE_OT[k] for k in ("scaling", "sinkhorn_loop")},
        )  # fmt: skip
        return cls(task, **{**settings, **overrides})

    def _extra_lr(self) -> str:
        return f", weight_lr={self.settings_['weight_lr']}"

    # ---- fit -------------------------------------------------------------
    def fit(self, X_train: Features, y_train: Target, X_val: Features, y_val: Target) -> LossVal:
        """Train the network and the row weights; the weights become ``values_``.

        Args:
            X_train: (N, D) training features, unscaled; numpy or DataFrame.
            y_train: (N,) labels (classification, any hashable) or floats (regression).
            X_val: (M, D) trusted validation features, same columns as ``X_train``.
            y_val: (M,) validation targets; their classes must occur in ``y_train``.

        Returns:
            self, with ``values_`` indexed like ``X_train`` (a RangeIndex for arrays) and ``settings_``.
        """
        X, y, index = self._fit_inputs(X_train, y_train)
        settings = self._resolve(len(X))
        X_ref, _ = self._features(X_val, "X_val")
        y_ref = self._targets(y_val, "y_val", n_rows=len(X_ref), rows_name="X_val")  # not trained on
        Z, Z_ref = self._transport_points(X, y), self._transport_points(X_ref, y_ref)  # (N, D'), (M, D')
        self.diameter_ = diameter_bound(torch.cat([Z, Z_ref]), Z_ref)
        transport = SinkhornToReference(
            Z_ref, blur=self.blur, scaling=settings["scaling"], diameter=self.diameter_, debias=self.debias,
            normalize=self.normalize_masses, solver=self.solver, reference_rows=settings["reference_rows"], loop=settings["sinkhorn_loop"],
        )  # fmt: skip
        seed = self._seed()
        net = self._init_network(seed)
        weights = torch.nn.Parameter(torch.ones(len(X), device=self.device_))  # (N,)
        state = Accumulators(len(X), self.device_)
        self._history = []
        net.train()
        if self.weight_updates == "per_epoch":
            stepper = WeightStepper(
                weights, optimizer=self.weight_optimizer, lr=settings["weight_lr"], clip=self.weight_clip,
                average_last=self.average_last, min_weight=self.min_weight, max_weight=self.max_weight,
                epochs=settings["epochs"],
            )  # fmt: skip
            train_per_epoch(self, net, stepper, transport, X, Z, y, self._generator(seed), state)
            final = stepper.values()
        else:
            train_per_batch(self, net, weights, transport, X, Z, y, self._generator(seed), state)
            final = weights.detach()
        self.model_ = net.eval()
        values = final.double().cpu().numpy()
        self.weights_ = pd.Series(values, index=index, name="weight")
        self.parts_ = pd.DataFrame(
            {
                "loss_part": (state.loss_sum / settings["epochs"]).double().cpu().numpy(),
                "transport_part": (state.transport_sum / settings["epochs"]).double().cpu().numpy(),
            },
            index=index,
        )
        parts = {k: self.parts_[k].to_numpy() for k in ("loss_part", "transport_part")}
        self.values_ = pd.Series(tie_free_values(values, **parts) if self.tie_break else values, index=index, name="value")
        self.history_ = pd.DataFrame(self._history)
        return self

    def _resolve(self, n_rows: int) -> dict[str, Any]:
        """``settings_`` for ``n_rows`` training rows; the per-batch schedule keeps one exact OT term per batch."""
        ot = {"ot_batch_size": self.ot_batch_size, "ot_every": self.ot_every}
        if self.weight_updates == "per_batch":
            ot = {k: SMALL_TABLE_OT[k] if v == AUTO else v for k, v in ot.items()}
        loop = self.sinkhorn_loop  # SamplesLoss runs geomloss's own loop
        ot["sinkhorn_loop"] = SMALL_TABLE_OT["sinkhorn_loop"] if loop == AUTO and self.solver != "fast" else loop
        settings = self._resolve_settings(
            n_rows, reference_rows=self.reference_rows, **ot, scaling=self.scaling, weight_lr=self.weight_lr
        )
        self._check_schedule(settings["batch_size"])
        return settings

    # ---- helpers ---------------------------------------------------------
    def _transport_points(self, X: Tensor, y: Tensor) -> Tensor:
        """(N, D') the features, plus the label when ``ot_label_scale > 0`` (:func:`~lossval.epoch_transport.transport_points`)."""
        return transport_points(X, y, task=self.task, n_outputs=self._n_outputs, label_scale=self.ot_label_scale)

    @torch.no_grad()
    def _clip(self, weights: Tensor) -> None:
        if self.clip_weights:
            weights.nan_to_num_(nan=self.min_weight).clamp_(self.min_weight, self.max_weight)

    def _metrics(self, means: Tensor, weights: Tensor) -> dict[str, float]:
        return epoch_metrics(means, weights)
