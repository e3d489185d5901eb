"""Levers on the OT term of a large-table epoch, measured: warm-started potentials, a one-pass soft-min, chunk sizes.

Issue 17 listed "warm-started Sinkhorn potentials, fewer iterations once warm" among the untried
levers. LossVal's large-table epoch draws its 32-row groups and its 128-row reference parts again
at every solve, so no earlier solution of *the same* problem exists; the nearest warm start is a
population potential per reference part: the mean reference-side potential ``g`` of the epoch's
first batched call (solved cold, with the full epsilon schedule), given to every later group of
that part, which then runs only the last ``J`` temperatures of the schedule (variant ``warm<J>``).

``two_pass`` is the soft-min as it was before this measurement (``C.div(-eps).add_(h)``, two
passes over the (B, N, M) buffer; the default now forms ``h - C / eps`` in one,
``h.add(C, alpha=-1/eps)``), and ``chunk<k>`` the batched calls capped at ``2**k`` cost-matrix
entries instead of ``2**20``; ``scaling<s>`` the epsilon-scaling ratio ``s`` instead of 0.2
(fewer temperatures in the schedule). ``one_diameter`` drops the schedule's repeated first temperature
(geomloss's list starts with ``diameter**2`` twice, and the loop's first soft-min already solves at it);
``no_clamp_ftz`` leaves the soft-min's clamp pass out and sets the CPU's flush-to-zero mode instead
(``torch.set_flush_denormal``), the other way to keep exp() off its slow path for underflowing arguments.
``trimmed`` is ``SinkhornToReference(loop="trimmed")`` (LossVal's ``sinkhorn_loop="trimmed"``): each
solve starts from the mean costs and leaves out the schedule's repeated temperatures (both
``diameter**2`` steps, and the loop's step at ``blur**2`` before the last extrapolation at it);
``mean_start`` leaves out the two ``diameter**2`` steps only (the trimmed loop as first committed).
``one_gemm_costs`` is the trimmed loop with its cost matrices built in one ``baddbmm`` and two in-place
passes instead of six passes (compare its time with ``trimmed``'s). ``unaligned_parts`` is the trimmed loop
with reference parts of ``ceil(M / n_parts)`` rows, not padded to a multiple of :data:`lossval.ot.PART_ALIGN`
(125 rather than 128 for 1000 validation rows; the same problem).

Each variant's OT value per group and gradient per row over one epoch
(:func:`lossval.epoch_transport.epoch_transport`, the large-table settings: scaling 0.2, groups of
32 against 128-row parts of the validation rows) is compared with the default solver's and with a
near-converged one (``scaling=0.9``: about 7x the iterations), by Pearson correlation, on the
development datasets at ``--rows`` rows (``bench.scale.scaled_table``: 10 % mixed noise); CPU
seconds of the epoch are the median of ``--repeats`` interleaved runs, one torch thread.

    python -m bench.ot_levers --rows 100000 --repeats 3 --out bench/results/ot_levers17.csv
    python -m bench.ot_levers --rows 100000 --repeats 3 --variants one_diameter no_clamp_ftz --out bench/results/ot_levers17_r5.csv
    python -m bench.ot_levers --rows 100000 --repeats 5 --variants mean_start one_diameter --out bench/results/ot_levers17_r6.csv
    python -m bench.ot_levers --rows 100000 --repeats 5 --variants trimmed mean_start --out bench/results/ot_levers17_r7.csv
    python -m bench.ot_levers --rows 100000 --repeats 9 --variants trimmed one_gemm_costs --out bench/results/ot_levers17_r8.csv
    python -m bench.ot_levers --rows 100000 --repeats 9 --variants trimmed unaligned_parts --out bench/results/ot_levers17_r9.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import DEVELOPMENT, REPO, datasets_dir, machine, patched, results_csv
from bench.scale import scaled_table
import lossval.ot as ot
from lossval.epoch_transport import epoch_transport
from lossval.ot import SinkhornToReference, diameter_bound, half_squared_distances, log_weights, sinkhorn_loop

COLUMNS = ["dataset", "rows", "variant", "schedule", "cpu_s", "value_r_default", "grad_r_default", "value_r_converged",
           "grad_r_converged", "machine"]
_softmin, _chunk, _costs = ot.softmin, ot.MAX_CHUNK_ENTRIES, ot.half_squared_distances


def _no_grad_variant(variant):
    """A soft-min that is ``variant`` on the no-grad path and :func:`lossval.ot.softmin` on the grad path
    (the last extrapolation), where the levers here do not apply."""

    def softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (h_y.requires_grad or C_xy.requires_grad):
            return _softmin(eps, C_xy, h_y)
        return variant(eps, C_xy, h_y)

    softmin.__doc__ = variant.__doc__
    return softmin


@_no_grad_variant
def two_pass_softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
    """:func:`lossval.ot.softmin` as it was: ``h - C / eps`` in two passes."""
    z = C_xy.div(-eps).add_(h_y.unsqueeze(1))  # (B, N, M)
    top = z.amax(dim=2, keepdim=True)
    return z.sub_(top).clamp_(min=ot._MIN_EXPONENT).exp_().sum(dim=2).log_().add_(top.squeeze(2)).mul_(-eps)


@_no_grad_variant
def no_clamp_softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
    """:func:`lossval.ot.softmin` without its clamp pass; run under flush-to-zero."""
    z = h_y.unsqueeze(1).add(C_xy, alpha=-1.0 / eps)
    top = z.amax(dim=2, keepdim=True)
    return z.sub_(top).exp_().sum(dim=2).log_().add_(top.squeeze(2)).mul_(-eps)


def one_gemm_costs(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`lossval.ot.half_squared_distances` as ``|x|^2/2 - x.y`` in one ``baddbmm``, then ``+ |y|^2/2`` and the
    clamp in place: three passes over the (B, N, M) costs instead of six; equal up to rounding."""
    x2 = (x * x).sum(-1, keepdim=True).mul_(0.5)  # (B, N, 1)
    y2 = (y * y).sum(-1).mul_(0.5).unsqueeze(1)  # (B, 1, M)
    return torch.baddbmm(x2, x, y.transpose(1, 2), alpha=-1.0).add_(y2).clamp_min_(0)


#: variants that build their cost matrices otherwise (with the trimmed loop, compared with ``trimmed``)
COSTS = {"one_gemm_costs": one_gemm_costs}
#: variant -> (soft-min, cost-matrix entries per call) while it runs; SCALINGS: the epsilon-scaling ratios tried
SETUP = {"two_pass": (two_pass_softmin, _chunk), "chunk18": (_softmin, 2**18), "chunk19": (_softmin, 2**19),
         "no_clamp_ftz": (no_clamp_softmin, _chunk)}  # fmt: skip
#: variants that run with the CPU's flush-to-zero mode on
FLUSH = {"no_clamp_ftz"}
SCALINGS = (0.1, 0.05, 0.01, 0.001)


class MeanStart(SinkhornToReference):
    """The trimmed loop with its step at ``blur**2`` before the last extrapolation kept (``loop="trimmed"`` of 45e29cb)."""

    def _cooling(self) -> list[float]:
        return self.eps_list[2:]


def warm_transport(transport: SinkhornToReference, w: torch.Tensor, x: torch.Tensor, size: int, last: int):
    """:func:`epoch_transport` (full groups only) with every group after the first call warm-started
    from its part's mean potential ``g`` and run for the ``last`` final temperatures of the schedule."""
    n_groups = len(w) // size
    parts = torch.arange(n_groups) % transport.n_parts
    W, Xg = w[: n_groups * size].reshape(n_groups, size), x[: n_groups * size].reshape(n_groups, size, -1)
    s, chunk = transport.part_rows, max(1, ot.chunk_entries(w.device) // (size * (transport.part_rows + size)))
    eps_list, eps = transport.eps_list, transport.eps_list[-1]
    values, grads, g_pop = [], [], None
    for lo in range(0, n_groups, chunk):
        hi = min(n_groups, lo + chunk)
        wv = W[lo:hi].clone().requires_grad_()
        alpha = transport.masses(wv)
        ref = transport.reference[transport.part_index[parts[lo:hi]]]
        beta = transport.reference_mass.expand(hi - lo, s)
        with torch.no_grad():
            C = half_squared_distances(Xg[lo:hi], ref)
            a_log, b_log = log_weights(alpha), log_weights(beta)
            if g_pop is None:  # the first call: cold, the full schedule; its mean g per part warms the rest
                _, _, g_ab, f_ba = sinkhorn_loop(
                    _softmin, a_log, b_log, None, None, C, C.transpose(1, 2), eps_list, None, debias=False,
                    last_extrapolation=False,
                )  # fmt: skip
                counts = torch.bincount(parts[lo:hi], minlength=transport.n_parts).clamp_min(1).unsqueeze(1)
                g_pop = torch.zeros(transport.n_parts, s).index_add_(0, parts[lo:hi], g_ab) / counts
            else:
                tail = eps_list[-last:]
                g_ab = g_pop[parts[lo:hi]]
                f_ba = _softmin(tail[0], C, b_log + g_ab / tail[0])
                for e in tail:
                    ft, gt = _softmin(e, C, b_log + g_ab / e), _softmin(e, C.transpose(1, 2), a_log + f_ba / e)
                    f_ba, g_ab = 0.5 * (f_ba + ft), 0.5 * (g_ab + gt)
            f_ba, g_ab = _softmin(eps, C, b_log + g_ab / eps), _softmin(eps, C.transpose(1, 2), a_log + f_ba / eps)
        cost = (alpha * f_ba).sum(1) + (beta * g_ab).sum(1)
        cost = cost - 0.5 * transport._self_ot(alpha, Xg[lo:hi]) - 0.5 * transport.part_self_terms[parts[lo:hi]]
        (grad,) = torch.autograd.grad(cost.sum(), wv)
        values.append(cost.detach())
        grads.append(grad.reshape(-1))
    return torch.cat(values), torch.cat(grads)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", type=Path, default=None, help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ot_levers17.csv", help="CSV, appended to")
    parser.add_argument("--variants", nargs="+", default=None, help="these variants only (and the default they are compared with)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = datasets_dir(args.datasets)
    with results_csv(args.out, COLUMNS, key=lambda r: (r["dataset"], r["rows"], r["variant"])) as (_, write):
        for name in args.names:
            table = scaled_table(name, args.rows, args.val, folder=folder)
            x, ref = torch.tensor(table["X_train"], dtype=torch.float32), torch.tensor(table["X_val"], dtype=torch.float32)
            diameter = diameter_bound(torch.cat([x, ref]), ref)
            w = torch.rand(len(x), generator=torch.Generator().manual_seed(1)) * 0.5 + 0.75  # weights mid-fit
            transports = {s: SinkhornToReference(ref, scaling=s, diameter=diameter, reference_rows=128) for s in (0.2, 0.9, *SCALINGS)}
            transport = transports[0.2]
            one_diameter = SinkhornToReference(ref, scaling=0.2, diameter=diameter, reference_rows=128)
            one_diameter.eps_list = one_diameter.eps_list[1:]  # the repeated diameter**2 left out
            one_diameter.shuffle_parts(None)  # the parts' self terms on the same schedule
            trimmed = SinkhornToReference(ref, scaling=0.2, diameter=diameter, reference_rows=128, loop="trimmed")
            mean_start = MeanStart(ref, scaling=0.2, diameter=diameter, reference_rows=128, loop="trimmed")
            with patched(ot, PART_ALIGN=1):  # parts of 125 rows for 1000 validation rows, as before alignment
                unaligned = SinkhornToReference(ref, scaling=0.2, diameter=diameter, reference_rows=128, loop="trimmed")
            converged = epoch_transport(transports[0.9], w, x, 32)
            variants = {
                "default": lambda: epoch_transport(transport, w, x, 32),
                **{f"warm{j}": (lambda j=j: warm_transport(transport, w, x, 32, j)) for j in (1, 2, 3)},
                **{key: (lambda: epoch_transport(transport, w, x, 32)) for key in SETUP},
                **{f"scaling{s}": (lambda t=transports[s]: epoch_transport(t, w, x, 32)) for s in SCALINGS},
                "one_diameter": lambda: epoch_transport(one_diameter, w, x, 32),
                "mean_start": lambda: epoch_transport(mean_start, w, x, 32),
                "trimmed": lambda: epoch_transport(trimmed, w, x, 32),
                **{key: (lambda: epoch_transport(trimmed, w, x, 32)) for key in COSTS},
                "unaligned_parts": lambda: epoch_transport(unaligned, w, x, 32),
            }
            if args.variants:
                variants = {k: v for k, v in variants.items() if k == "default" or k in args.variants}
            schedules = {f"scaling{s}": len(transports[s].eps_list) for s in SCALINGS} | {"one_diameter": len(one_diameter.eps_list),
                                                                                            "mean_start": len(mean_start._cooling()),
                                                                                            "trimmed": len(trimmed._cooling())}
            schedules |= {key: len(trimmed._cooling()) for key in (*COSTS, "unaligned_parts")}
            seconds: dict[str, list[float]] = {k: [] for k in variants}
            found = {}
            for _ in range(args.repeats):
                for key, run in variants.items():
                    softmin, chunk = SETUP.get(key, (_softmin, _chunk))
                    torch.set_flush_denormal(key in FLUSH)
                    try:
                        with patched(ot, softmin=softmin, MAX_CHUNK_ENTRIES=chunk, half_squared_distances=COSTS.get(key, _costs)):
                            started = time.process_time()
                            found[key] = run()
                            seconds[key].append(time.process_time() - started)
                    finally:
                        torch.set_flush_denormal(False)
            default = found["default"]
            r = lambda a, b: round(float(np.corrcoef(a.numpy(), b.numpy())[0, 1]), 4)  # noqa: E731
            for key, (value, grad) in found.items():
                m, k = len(grad), len(value)  # the warm variants solve full groups only
                write({
                    "dataset": name, "rows": args.rows, "variant": key, "schedule": schedules.get(key, len(transport.eps_list)),
                    "cpu_s": round(float(np.median(seconds[key])), 3),
                    "value_r_default": r(value, default[0][:k]), "grad_r_default": r(grad, default[1][:m]),
                    "value_r_converged": r(value, converged[0][:k]), "grad_r_converged": r(grad, converged[1][:m]), "machine": machine(),
                })  # fmt: skip


if __name__ == "__main__":
    main()
