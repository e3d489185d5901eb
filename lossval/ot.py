"""Weighted Sinkhorn divergence from (batches of) weighted rows to one fixed reference set.

This is the OT term of LossVal (Wibiral et al., 2024, arXiv 2412.04158, Eq. 3):
the entropy-regularised optimal transport distance between a batch of
training rows carrying masses ``w`` and the validation rows, computed with
geomloss (``p=2``, ``blur=0.05``, ``scaling=0.5`` by default, as in geomloss).

Two solvers give the same numbers (tested to 1e-4):

``"geomloss"``
    ``geomloss.SamplesLoss("sinkhorn", backend="tensorized")`` as the authors
    call it: the reference implementation, used by :meth:`LossVal.paper`.

``"fast"`` (default)
    geomloss's own Sinkhorn loop (``sinkhorn_loop``/``sinkhorn_cost``, same epsilon-scaling, same last
    extrapolation for the gradient) with three changes that matter on a CPU: (1) the soft-min clamps its
    exponents at -80, because exp() of arguments that underflow float32 takes a ~15x slower path on x86
    CPUs and small-blur Sinkhorn is full of them; (2) the reference's self term ``OT(b, b)`` of the
    debiased divergence does not depend on the weights and is solved once at construction, where
    ``SamplesLoss(debias=True)`` re-solves that (M, M) problem in every call; (3) one cost matrix serves
    both directions, and the batch's self term ``OT(a, a)`` uses geomloss's symmetric update.

The loop (``loop``): ``"geomloss"`` (default) is geomloss's own. ``"trimmed"`` leaves out its
repeated temperatures: it starts from the mean costs (``f_i = sum_j b_j C_ij``, the ``eps -> inf``
limit of a soft-min, nearly what one gives at ``diameter ** 2``) instead of two steps at
``diameter ** 2``, and the last extrapolation is its only step at ``blur ** 2``: half the soft-mins,
same gradients to 4 decimals, LossVal's default on large tables ("17: overhead levers", docs/benchmarks.md).

Settings are fixed at construction. ``diameter`` (the start of the epsilon-scaling) is an upper bound of
every training-to-reference distance computed once per fit (:func:`diameter_bound`), never per batch and
without a host sync. geomloss's ``backend="auto"`` would switch to KeOps backends that are not installed
for large problems, so the backend is always tensorized.

Reference parts (``reference_rows``): with a large reference set, each batch can be transported to one
*part* of it instead of all of it. The reference rows are split into ``ceil(M / reference_rows)`` parts
of nearly equal size, padded to a multiple of :data:`PART_ALIGN` with zero-mass copies of their own rows
where that adds at most an eighth (:meth:`SinkhornToReference.shuffle_parts` draws a new split; the last
part wraps around to the first rows), and the self term of every part is solved once per split, so a batch costs
``O(batch x part)`` instead of ``O(batch x M)`` and nothing ``O(M x M)`` is ever built. With
``reference_rows >= M`` there is one part, the whole reference, exactly the full problem (tested).

Masses: balanced Sinkhorn assumes both measures carry the same total mass.
With ``normalize=True`` the weights are divided by their sum and each
reference row carries ``1/M``: a true OT divergence between probability
measures. ``normalize=False`` reproduces the authors' code (masses ``w``
against masses 1), which still yields a number and a gradient, but not an OT
distance when ``sum(w) != M``. Which one detects bad rows better is measured
in docs/benchmarks.md.
"""

from __future__ import annotations

import torch
from geomloss import SamplesLoss
from torch import Tensor, nn

try:  # geomloss 0.3.1 keeps its solver in _legacy; 0.3.0 at the top level
    from geomloss._legacy.sinkhorn_divergence import epsilon_schedule, log_weights, sinkhorn_cost, sinkhorn_loop
except ImportError:  # pragma: no cover
    from geomloss.sinkhorn_divergence import epsilon_schedule, log_weights, sinkhorn_cost, sinkhorn_loop

SOLVERS: tuple[str, ...] = ("fast", "geomloss")
#: The Sinkhorn loops (see the module doc); check_loop: one of them, runnable by the solver.
LOOPS: tuple[str, ...] = ("geomloss", "trimmed")
#: exp() of arguments below about -87 underflows float32, and takes a slow path
#: (about 15x slower on the x86 CPUs we measured); exp(-80) ~ 2e-35 is
#: negligible next to the largest term of a log-sum-exp, which is exp(0) = 1.
_MIN_EXPONENT = -80.0
#: Largest number of cost-matrix entries one batched Sinkhorn call holds (LossVal chunks its calls to this).
#: 4 MiB per (B, N, M) temporary: with the whole 1000-row reference, chunks of 2^24 entries (the
#: earlier setting) cost 2.5x more CPU time per row than 2^18-2^20 here (docs/benchmarks.md, section 3).
MAX_CHUNK_ENTRIES = 2**20
#: The same on a GPU (256 MiB per temporary): few, large kernels, not thousands of small launches.
MAX_CHUNK_ENTRIES_CUDA = 2**26
#: Reference parts padded to a multiple of 16 rows: each row of costs fills whole 64-byte lines (16 float32), and an
#: epoch of the OT term takes 12-14 % less CPU time with parts of 128 columns than of 125 ("17: overhead levers").
PART_ALIGN = 16


def check_loop(name: str, loop: str, solver: str) -> str:
    if loop not in LOOPS:
        raise ValueError(f"{name} must be one of {list(LOOPS)}, got {loop!r}")
    if loop != "geomloss" and solver != "fast":
        raise ValueError(f"{name}={loop!r} needs solver='fast' (SamplesLoss runs geomloss's own loop), got {solver!r}")
    return loop


def chunk_entries(device: torch.device) -> int:
    """Largest number of cost-matrix entries one Sinkhorn call holds on ``device``."""
    return MAX_CHUNK_ENTRIES_CUDA if device.type == "cuda" else MAX_CHUNK_ENTRIES


def softmin(eps: float, C_xy: Tensor, h_y: Tensor) -> Tensor:
    """geomloss's tensorized soft-C-transform ``-eps log sum_j exp(h_j - C_ij / eps)``, with clamped exponents.

    Args:
        eps: temperature; C_xy: (B, N, M) costs; h_y: (B, M) log-weights plus potentials / eps.

    Returns:
        (B, N) potential on the x side.
    """
    if not (torch.is_grad_enabled() and (h_y.requires_grad or C_xy.requires_grad)):
        # the same arithmetic in place, in one (B, N, M) buffer: a third less time (no autograd to feed);
        # h - C / eps in one pass, as h + C * (-1 / eps) (7-17 % less OT time: bench.ot_levers)
        z = h_y.unsqueeze(1).add(C_xy, alpha=-1.0 / eps)  # (B, N, M)
        top = z.amax(dim=2, keepdim=True)  # (B, N, 1)
        return z.sub_(top).clamp_(min=_MIN_EXPONENT).exp_().sum(dim=2).log_().add_(top.squeeze(2)).mul_(-eps)
    z = h_y.unsqueeze(1).add(C_xy, alpha=-1.0 / eps)  # (B, N, M)
    top = z.detach().amax(dim=2, keepdim=True)  # (B, N, 1)
    lse = (z - top).clamp(min=_MIN_EXPONENT).exp().sum(dim=2).log() + top.squeeze(2)  # (B, N)
    return -eps * lse


def half_squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """Cost ``|x_i - y_j|^2 / 2`` for (B, N, D) and (B, M, D) clouds: (B, N, M)."""
    x2 = (x * x).sum(-1, keepdim=True)  # (B, N, 1)
    y2 = (y * y).sum(-1).unsqueeze(1)  # (B, 1, M)
    return (x2 + y2 - 2 * torch.bmm(x, y.transpose(1, 2))).clamp_min(0) / 2


def diameter_bound(x: Tensor, reference: Tensor) -> float:
    """An upper bound of ``max |x_i - r_j|`` in O(N + M), by the triangle inequality through the reference's mean."""
    center = reference.mean(dim=0)  # (D,)
    reach_x = (x - center).norm(dim=1).max()  # ()
    reach_r = (reference - center).norm(dim=1).max()  # ()
    return float(reach_x + reach_r) or 1.0


class SinkhornToReference(nn.Module):
    """Debiased weighted Sinkhorn divergence to a fixed reference point cloud.

    Args:
        reference: (M, D) reference (validation) features.
        blur: target blur scale; epsilon is ``blur ** 2``.
        scaling: epsilon-scaling ratio in (0, 1).
        diameter: upper bound of point distances; defaults to the reference's own.
        debias: Sinkhorn divergence ``OT(a,b) - OT(a,a)/2 - OT(b,b)/2`` rather than raw entropic OT.
        normalize: divide the weights by their sum and give the reference rows mass
            1/(part size) (probability measures); else mass 1 per reference row.
        solver: ``"fast"`` or ``"geomloss"`` (see the module doc).
        reference_rows: largest reference part one batch is transported to; ``None``
            (or ``>= M``) = the whole reference, exactly (see the module doc).
        loop: ``"geomloss"`` (geomloss's loop) or ``"trimmed"`` (from the mean costs, without
            the schedule's repeated temperatures; ``solver="fast"`` only); see the module doc.

    Call with ``weights`` (N,) and ``x`` (N, D) for one batch, or ``weights``
    (B, N) and ``x`` (B, N, D) for B batches at once; returns () or (B,).
    ``parts`` (B,) picks each batch's reference part (default: batch b gets
    part ``b % n_parts``). Differentiable in ``weights`` (not in ``x``).
    Lower = closer to the reference.
    """

    def __init__(
        self,
        reference: Tensor,
        *,
        blur: float = 0.05,
        scaling: float = 0.5,
        diameter: float | None = None,
        debias: bool = True,
        normalize: bool = True,
        solver: str = "fast",
        reference_rows: int | None = None,
        loop: str = "geomloss",
    ) -> None:
        super().__init__()
        if reference.dim() != 2 or reference.shape[0] < 1:
            raise ValueError(f"reference must be (M, D) with M >= 1, got shape {tuple(reference.shape)}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
        if reference_rows is not None and (isinstance(reference_rows, bool) or int(reference_rows) < 1):
            raise ValueError(f"reference_rows must be None or an integer >= 1, got {reference_rows!r}")
        reference = reference.detach()
        m = reference.shape[0]
        self.n_parts = 1 if reference_rows is None else -(-m // min(int(reference_rows), m))
        self.part_size = -(-m // self.n_parts)  # (M,) split into n_parts nearly equal parts of part_size rows each
        aligned = -(-self.part_size // PART_ALIGN) * PART_ALIGN  # padded with zero-mass rows if that adds at most 1/8
        self.part_rows = aligned if self.n_parts > 1 and 8 * (aligned - self.part_size) <= self.part_size else self.part_size
        mass = (torch.arange(self.part_rows) < self.part_size).to(reference.dtype) / (self.part_size if normalize else 1.0)
        self.register_buffer("reference", reference)  # (M, D)
        self.register_buffer("reference_mass", mass.to(reference.device))  # (S,) none on the padding
        self.blur, self.scaling, self.debias, self.normalize, self.solver = blur, scaling, debias, normalize, solver
        self.diameter = float(diameter) if diameter is not None else diameter_bound(reference, reference)
        self.eps_list = epsilon_schedule(2, self.diameter, blur, scaling)
        self.loop = check_loop("loop", loop, solver)
        self._samples_loss = SamplesLoss(
            "sinkhorn", p=2, blur=blur, scaling=scaling, diameter=self.diameter, debias=debias, backend="tensorized"
        )
        self.shuffle_parts(None)

    @torch.no_grad()
    def shuffle_parts(self, generator: torch.Generator | None) -> None:
        """Split the reference rows into parts again (at random with ``generator``; in row order with None),
        and solve each part's self term ``OT(b, b)``. One part: the whole reference, nothing drawn."""
        m, n, s = self.reference.shape[0], self.n_parts, self.part_rows
        device = self.reference.device
        if n == 1:
            order = torch.arange(m, device=device)
        else:
            order = torch.randperm(m, generator=generator, device=device) if generator is not None else torch.arange(m, device=device)
        size = self.part_size  # the padding repeats each part's first rows
        windows = torch.arange(n, device=device).unsqueeze(1) * size + torch.arange(s, device=device) % size  # (n, S)
        self.register_buffer("part_index", order[windows % m], persistent=False)  # (n, S) rows of each part; the last wraps
        self_terms = []
        limit = chunk_entries(device)
        chunk = max(1, limit // (s * s))
        for lo in range(0, n, chunk):
            ref = self.reference[self.part_index[lo : lo + chunk]]  # (k, S, D)
            beta = self.reference_mass.expand(len(ref), s)  # (k, S)
            if not self.debias:
                self_terms.append(torch.zeros(len(ref), device=device))
            elif s * s > limit:  # one large part: its (S, S) costs a block of rows at a time
                self_terms.append(self._blockwise_self_ot(beta[0], ref[0]).reshape(1))
            else:
                self_terms.append(self._self_ot(beta, ref))
        self.register_buffer("part_self_terms", torch.cat(self_terms), persistent=False)  # (n,) OT(b, b) of every part

    def masses(self, weights: Tensor) -> Tensor:
        """The transported masses for ``weights`` (..., N)."""
        if self.normalize:
            return weights / weights.sum(dim=-1, keepdim=True)
        return weights

    def _entropic_ot(self, alpha: Tensor, x: Tensor, beta: Tensor, y: Tensor) -> Tensor:
        """Raw entropic OT between (B, N) masses on (B, N, D) and (B, M) masses on (B, M, D): (B,)."""
        with torch.no_grad():
            C_xy = half_squared_distances(x, y)  # (B, N, M)
        if self.loop == "geomloss":
            potentials = sinkhorn_loop(
                softmin, log_weights(alpha), log_weights(beta), None, None, C_xy, C_xy.transpose(1, 2),
                self.eps_list, None, debias=False,
            )
            return sinkhorn_cost(self.eps_list[-1], None, alpha, beta, *potentials, batch=True, debias=False)
        with torch.no_grad():  # the trimmed loop (module doc): from the mean costs, no repeated temperatures
            C_yx, a_log, b_log = C_xy.transpose(1, 2), log_weights(alpha), log_weights(beta)  # C_yx: (B, M, N)
            f = torch.bmm(C_xy, beta.unsqueeze(2)).squeeze(2)  # (B, N) sum_j b_j C_ij
            g = torch.bmm(alpha.unsqueeze(1), C_xy).squeeze(1)  # (B, M) sum_i a_i C_ij
            for eps in self._cooling():
                f, g = 0.5 * (f + softmin(eps, C_xy, b_log + g / eps)), 0.5 * (g + softmin(eps, C_yx, a_log + f / eps))
            eps = self.eps_list[-1]  # the last extrapolation: the gradient in the masses is the potential
            f, g = softmin(eps, C_xy, b_log + g / eps), softmin(eps, C_yx, a_log + f / eps)
        return (alpha * f).sum(dim=-1) + (beta * g).sum(dim=-1)

    def _cooling(self) -> list[float]:
        """The loop's temperatures between its start and the last extrapolation: all, or without ``diameter**2`` and ``blur**2``."""
        return self.eps_list if self.loop == "geomloss" else self.eps_list[2:-1]

    def _self_ot(self, alpha: Tensor, x: Tensor) -> Tensor:
        """Raw entropic OT(a, a) of (B, N) masses on (B, N, D) with itself: (B,).

        The symmetric update of geomloss's debiased loop (one soft-min per
        step instead of two), then one last extrapolation that carries the
        gradient ``2 f_aa`` with respect to the masses, as geomloss does.
        """
        with torch.no_grad():
            C_xx = half_squared_distances(x, x)  # (B, N, N)
            a_log = log_weights(alpha)
            if self.loop == "geomloss":
                f = softmin(self.eps_list[0], C_xx, a_log)
            else:
                f = torch.bmm(C_xx, alpha.unsqueeze(2)).squeeze(2)  # (B, N) the mean costs
            for eps in self._cooling():
                f = 0.5 * (f + softmin(eps, C_xx, a_log + f / eps))
        eps = self.eps_list[-1]
        f = softmin(eps, C_xx, (log_weights(alpha) + f / eps).detach())  # (B, N)
        return 2 * (alpha * f).sum(dim=-1)

    def _blockwise_self_ot(self, beta: Tensor, y: Tensor) -> Tensor:
        """:meth:`_self_ot` of one (S,) measure on (S, D) points without its (S, S) cost matrix: () value.

        Each soft-min needs all of the previous potential but only one row of
        costs per output, so the rows are done in blocks of :func:`chunk_entries`
        entries and memory stays ``O(block)`` (the value, not a gradient:
        the reference's masses are fixed).
        """
        s = len(y)
        rows = max(1, chunk_entries(y.device) // s)
        b_log = log_weights(beta)  # (S,)

        def soft(eps: float, h: Tensor) -> Tensor:  # (S,) soft-min over all columns, rows in blocks
            return torch.cat([
                softmin(eps, half_squared_distances(y[lo : lo + rows].unsqueeze(0), y.unsqueeze(0)), h.unsqueeze(0))[0]
                for lo in range(0, s, rows)
            ])  # fmt: skip

        if self.loop == "geomloss":
            f = soft(self.eps_list[0], b_log)
        else:  # the mean costs, a block of rows at a time
            f = torch.cat([half_squared_distances(y[lo : lo + rows].unsqueeze(0), y.unsqueeze(0))[0] @ beta for lo in range(0, s, rows)])
        for eps in self._cooling():
            f = 0.5 * (f + soft(eps, b_log + f / eps))
        eps = self.eps_list[-1]
        return 2 * (beta * soft(eps, b_log + f / eps)).sum()

    def forward(self, weights: Tensor, x: Tensor, parts: Tensor | None = None) -> Tensor:
        batched = weights.dim() == 2
        if not batched:
            weights, x = weights.unsqueeze(0), x.unsqueeze(0)  # (1, N), (1, N, D)
        if x.dim() != 3 or x.shape[:2] != weights.shape or x.shape[2] != self.reference.shape[1]:
            raise ValueError(
                f"x must be (B, N, {self.reference.shape[1]}) matching weights {tuple(weights.shape)}, got {tuple(x.shape)}"
            )
        x = x.detach()
        n_batches, s = x.shape[0], self.part_rows
        if parts is None:
            parts = torch.arange(n_batches, device=x.device) % self.n_parts
        parts = parts.reshape(n_batches)  # (B,)
        alpha = self.masses(weights)  # (B, N)
        if self.n_parts == 1:
            reference = self.reference.expand(n_batches, s, -1)  # (B, M, D), a view
        else:
            reference = self.reference[self.part_index[parts]]  # (B, S, D)
        beta = self.reference_mass.expand(n_batches, s)  # (B, S)
        if self.solver == "geomloss":
            cost = self._samples_loss(alpha, x, beta, reference)  # (B,)
        else:
            cost = self._entropic_ot(alpha, x, beta, reference)  # (B,)
            if self.debias:
                cost = cost - 0.5 * self._self_ot(alpha, x) - 0.5 * self.part_self_terms[parts]
        return cost if batched else cost[0]
