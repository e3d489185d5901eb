"""How close the large-table OT term is to its floor on this CPU, and what a fused soft-min would buy.

Issue 17 asks for LossVal <= 1.5x plain training at 10^6 rows, so the OT term may cost at most half
of plain training per row and epoch. Most of the term's time is soft-mins over (groups, 32, part)
cost buffers (:func:`lossval.ot.softmin`: six passes: add, amax, sub, clamp, exp, sum). Per cost
entry, one torch thread, on the buffers LossVal's large-table settings build (32-row groups of a
development dataset against ``reference_rows=128`` parts of ``--val`` validation rows, one batched
call of :func:`lossval.ot.chunk_entries` entries), this times:

- ``eager``: :func:`lossval.ot.softmin` on the rows' side and on the reference side (a transposed view);
- ``compiled``: :func:`lossval.ot.softmin` through ``torch.compile`` (inductor's fused C++ kernel, which
  reads the buffer once for the max and once for the sum), compile time reported apart;
- ``log_softmax``: the same soft-min through ATen's fused, vectorised log-softmax kernel (``h - C / eps``
  formed first, the log-sum-exp read off one column), with the CPU's flush-to-zero mode on, without
  which that kernel takes the slow path on the many exponents that underflow (the clamp's job in
  :func:`lossval.ot.softmin`);
- ``exp``: ``torch.exp`` of the buffer into a preallocated one: a single pass that any soft-min makes.

The whole epoch of the OT term (:func:`lossval.epoch_transport.epoch_transport`, the trimmed loop)
is timed too, with the CPU time inside its soft-mins summed in the same runs (its share), the rest
being cost matrices, gathers and the gradient; and, taking turns with it, one epoch of plain training
of LossVal's network on the same rows at the batch size of ``--plain-rows`` rows (1024 at 10^6), so the
budget of the target (half of plain training per row and epoch) is measured in the same machine state.
The soft-min variants take turns call by call too, so the machine's drift (+-30 % here between runs
minutes apart) hits all alike. Each variant's projection (``<variant>_us_per_row``) is the epoch with its
soft-min share scaled by that variant's per-entry time over the eager one's; ``<variant>_ratio`` is
``1 + OT / plain`` per row and epoch, LossVal against plain training without LossVal's other (small)
costs. ``exp`` is a floor: a soft-min must at least exponentiate.

    python -m bench.ot_floor --rows 100000 --out bench/results/ot_floor17.csv
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.common import DEVELOPMENT, REPO, datasets_dir, machine, patched, results_csv
from bench.scale import scaled_table
import lossval.ot as ot
from lossval import MLP, large_data_settings
from lossval.epoch_transport import epoch_transport
from lossval.ot import SinkhornToReference, diameter_bound, half_squared_distances, log_weights

#: the soft-min variants timed per cost entry; all but the first also projected to the epoch (``<variant>_us_per_row``)
VARIANTS = ("eager", "compiled", "log_softmax", "exp")
COLUMNS = ["dataset", "rows", "part", "temperatures", "epoch_us_per_row", "softmin_share", *(f"{k}_ns" for k in VARIANTS),
           "log_softmax_err", "compile_s", *(f"{k}_us_per_row" for k in VARIANTS[1:]), "plain_us_per_row",
           *(f"{k}_ratio" for k in VARIANTS), "machine"]  # fmt: skip
SOFTMIN = ot.softmin


def log_softmax_softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
    """The soft-min through ``torch.log_softmax``: ``lse_i = z_i0 - log_softmax(z)_i0`` (run it under flush-to-zero)."""
    z = h_y.unsqueeze(1).add(C_xy, alpha=-1.0 / eps)  # (B, N, M)
    return (z[..., 0] - torch.log_softmax(z, dim=2)[..., 0]).mul_(-eps)


def interleaved_ns(runs: dict[str, Callable[[], object]], entries: int, repeats: int) -> dict[str, float]:
    """Median nanoseconds per cost entry (CPU time) of each run, the runs taking turns so drift hits all alike."""
    times: dict[str, list[float]] = {key: [] for key in runs}
    for key, run in runs.items():
        run()  # warm-up (and compile)
    for _ in range(repeats):
        for key, run in runs.items():
            started = time.process_time()
            run()
            times[key].append(time.process_time() - started)
    return {key: statistics.median(t) / entries * 1e9 for key, t in times.items()}


def timed_epochs(transport: SinkhornToReference, x: torch.Tensor, w: torch.Tensor, epochs: int,
                 plain: Callable[[], float]) -> tuple[float, float, float]:  # fmt: skip
    """Median CPU seconds of one epoch of the OT term, the median share of it spent inside soft-mins, and the
    median seconds of one epoch of ``plain()`` training, taking turns with the OT epochs."""
    inside = [0.0]

    def softmin(eps: float, C_xy: torch.Tensor, h_y: torch.Tensor) -> torch.Tensor:
        started = time.process_time()
        try:
            return SOFTMIN(eps, C_xy, h_y)
        finally:
            inside[0] += time.process_time() - started

    seconds, shares, plain_s = [], [], []
    with patched(ot, softmin=softmin):
        epoch_transport(transport, w, x, 32)
        for _ in range(epochs):
            inside[0], started = 0.0, time.process_time()
            epoch_transport(transport, w, x, 32)
            seconds.append(time.process_time() - started)
            shares.append(inside[0] / seconds[-1])
            plain_s.append(plain())
    return statistics.median(seconds), statistics.median(shares), statistics.median(plain_s)


def plain_epoch(table: dict, batch_size: int) -> Callable[[], float]:
    """One epoch of plain training of LossVal's network on the table's rows at ``batch_size``: its seconds
    (:class:`lossval.MLP`'s own per-epoch timer, setup left out)."""

    def run() -> float:
        model = MLP(table["task"], epochs=1, batch_size=batch_size, random_state=0, progress=False)
        return float(model.fit(table["X_train"], table["y_train"]).history_["seconds"].iloc[0])

    return run


def measure(
    transport: SinkhornToReference, x: torch.Tensor, plain: Callable[[], float], *, repeats: int, epochs: int, compile_: bool
) -> dict[str, float]:
    """The epoch's time per row, its soft-min share and plain training's; per-entry times of the soft-min variants."""
    size, part = 32, transport.part_rows
    w = torch.rand(len(x), generator=torch.Generator().manual_seed(1)) * 0.5 + 0.75  # weights mid-fit
    epoch_s, share, plain_s = timed_epochs(transport, x, w, epochs, plain)
    groups = max(1, min(len(x) // size, ot.chunk_entries(x.device) // (size * (part + size))))  # one batched call
    xs = x[: groups * size].reshape(groups, size, -1)  # (G, 32, D)
    ref = transport.reference[transport.part_index[torch.arange(groups) % transport.n_parts]]  # (G, S, D)
    C = half_squared_distances(xs, ref)  # (G, 32, S)
    alpha, beta = torch.full((groups, size), 1.0 / size), transport.reference_mass.expand(groups, part)
    eps = transport.eps_list[-1]  # the last temperature: the exponents spread the most
    h_m = log_weights(beta) + torch.bmm(alpha.unsqueeze(1), C).squeeze(1) / eps  # (G, S) from the mean costs
    h_n = log_weights(alpha) + torch.bmm(C, beta.unsqueeze(2)).squeeze(2) / eps  # (G, 32)
    sides = ((C, h_m), (C.transpose(1, 2), h_n))  # the rows' side, the reference side
    z = h_m.unsqueeze(1) - C / eps
    clamped, buffer = (z - z.amax(dim=2, keepdim=True)).clamp_(min=ot._MIN_EXPONENT), torch.empty_like(C)
    runs = {"eager": lambda: [SOFTMIN(eps, c, h) for c, h in sides],
            "exp": lambda: [torch.exp(clamped, out=buffer) for _ in sides]}  # fmt: skip
    compile_s = float("nan")
    if compile_:
        fused = torch.compile(SOFTMIN, dynamic=False)  # lossval.ot.softmin itself, fused by inductor
        started = time.perf_counter()
        for c, h in sides:
            fused(eps, c, h)
        compile_s = time.perf_counter() - started
        runs["compiled"] = lambda: [fused(eps, c, h) for c, h in sides]
    with torch.no_grad():
        ns = {k: v / 2 for k, v in interleaved_ns(runs, C.numel(), repeats).items()}  # per soft-min: two per run
        torch.set_flush_denormal(True)
        try:
            ns["log_softmax"] = interleaved_ns({"x": lambda: [log_softmax_softmin(eps, c, h) for c, h in sides]}, C.numel(), repeats)["x"] / 2
            error = max((log_softmax_softmin(eps, c, h) - SOFTMIN(eps, c, h)).abs().max().item() for c, h in sides)
        finally:
            torch.set_flush_denormal(False)
    epoch_us = epoch_s / len(x) * 1e6
    softmin_us, rest_us = epoch_us * share, epoch_us * (1 - share)
    at = {k: rest_us + softmin_us * ns[k] / ns["eager"] if k in ns else float("nan") for k in VARIANTS}  # us per row
    plain_us = plain_s / len(x) * 1e6
    return {
        "part": part, "temperatures": len(transport._cooling()) + 1, "epoch_us_per_row": round(epoch_us, 3),
        "softmin_share": round(share, 3), **{f"{k}_ns": round(ns.get(k, float("nan")), 3) for k in VARIANTS},
        "log_softmax_err": float(f"{error:.2e}"), "compile_s": round(compile_s, 1),
        **{f"{k}_us_per_row": round(at[k], 3) for k in VARIANTS[1:]}, "plain_us_per_row": round(plain_us, 3),
        **{f"{k}_ratio": round(1 + at[k] / plain_us, 2) for k in VARIANTS},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(DEVELOPMENT))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=200, help="calls per soft-min timing (median)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the OT term timed (median)")
    parser.add_argument("--plain-rows", type=int, default=1_000_000, help="plain training at this size's batch (1024 at 10^6)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile column (no C++ compiler needed)")
    parser.add_argument("--datasets", type=Path, default=None, help="datasets folder (default ../shared/datasets)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ot_floor17.csv", help="CSV, appended to")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = datasets_dir(args.datasets)
    with results_csv(args.out, COLUMNS, key=lambda r: (r["dataset"], r["rows"])) as (_, write):
        for name in args.names:
            table = scaled_table(name, args.rows, args.val, folder=folder)
            x, ref = torch.tensor(table["X_train"], dtype=torch.float32), torch.tensor(table["X_val"], dtype=torch.float32)
            transport = SinkhornToReference(ref, scaling=0.2, diameter=diameter_bound(torch.cat([x, ref]), ref),
                                            reference_rows=128, loop="trimmed")  # fmt: skip
            plain = plain_epoch(table, large_data_settings(args.plain_rows)["batch_size"])
            row = measure(transport, x, plain, repeats=args.repeats, epochs=args.epochs, compile_=not args.no_compile)
            write({"dataset": name, "rows": args.rows, **row, "machine": machine()})


if __name__ == "__main__":
    main()
