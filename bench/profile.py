"""Where LossVal's time goes: the OT term, the network's training loop, the weights, the setup.

Phase times come from timers wrapped around LossVal's own methods (no
profiler running); the split of the training loop into operator time
(``aten::`` kernels: the MLP's arithmetic) and the rest (Python, the
dispatcher, autograd's bookkeeping: "Python overhead") comes from a second,
one-epoch fit under ``torch.profiler``. Both on the tables of
:func:`bench.scale.scaled_table`.

    python -m bench.profile --sizes 10000 1000000 --val 1000 --threads 1
    python -m bench.profile --sizes 1000000 --recipe        # the large-data settings of lossval.large_data_settings
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import torch

from bench.common import datasets_dir, machine
from bench.scale import parse_options, scaled_table
import lossval.per_epoch as per_epoch
from lossval import LossVal
from lossval.loss import LossValLoss
from lossval.ot import SinkhornToReference
from lossval.row_weights import WeightStepper

#: phase name -> (owner, method) of the LossVal pieces timed
PHASES = {
    "OT term (batched Sinkhorn, value and gradient)": [(per_epoch, "epoch_transport")],
    "OT setup (reference self terms, part splits)": [(SinkhornToReference, "__init__"), (SinkhornToReference, "shuffle_parts")],
    "weights (closed-form gradient, step, metrics)": [
        (LossValLoss, "weight_gradient"), (WeightStepper, "step"), (LossVal, "_metrics"),
    ],
    "input checks, scaling, tensors": [(LossVal, "_fit_inputs"), (LossVal, "_features"), (LossVal, "_targets")],
}  # fmt: skip


@contextlib.contextmanager
def timed_phases(totals: dict[str, list[float]]) -> Iterator[None]:
    """Wrap every method of PHASES with wall and CPU timers (outermost call only)."""
    originals, depth = [], defaultdict(int)
    for phase, methods in PHASES.items():
        for owner, name in methods:
            original = getattr(owner, name)

            def wrapper(*args, __original=original, __phase=phase, **kwargs):
                depth[__phase] += 1
                wall, cpu = time.perf_counter(), time.process_time()
                try:
                    return __original(*args, **kwargs)
                finally:
                    depth[__phase] -= 1
                    if depth[__phase] == 0:
                        totals[__phase][0] += time.perf_counter() - wall
                        totals[__phase][1] += time.process_time() - cpu

            originals.append((owner, name, original))
            setattr(owner, name, wrapper)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def operator_split(make, data) -> tuple[float, float, float, list[tuple[str, float]]]:
    """One-epoch fit under torch.profiler: (operator ms in the OT term, operator ms elsewhere, wall ms, top ops)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    original = per_epoch.epoch_transport

    def marked(*args, **kwargs):
        with record_function("lossval.ot"):
            return original(*args, **kwargs)

    per_epoch.epoch_transport = marked
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            make().fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"])
            wall = time.perf_counter() - started
    finally:
        per_epoch.epoch_transport = original
    ot_ms = other_ms = 0.0
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent, in_ot = event.cpu_parent, False
        while parent is not None:
            if parent.name == "lossval.ot":
                in_ot = True
                break
            parent = parent.cpu_parent
        ms = event.self_cpu_time_total / 1000
        by_op[event.name] += ms
        if in_ot:
            ot_ms += ms
        else:
            other_ms += ms
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:8]
    return ot_ms, other_ms, wall * 1000, top


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--dataset", default="cpu_activity")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 1000000])
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the timed fit (the profiled fit runs 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--recipe", action="store_true", help="batch size and LossVal options from lossval.large_data_settings")
    parser.add_argument("--lossval", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = datasets_dir(args.datasets)
    print(f"machine: {machine()}")
    for n in args.sizes:
        data = scaled_table(args.dataset, n, args.val, folder=Path(folder), seed=0)
        options = dict(batch_size=args.batch_size)
        if args.recipe:
            from lossval import large_data_settings

            options = large_data_settings(n)
        options = {**options, **parse_options(args.lossval), "random_state": 0, "progress": False, "device": "cpu"}

        def make(epochs: int, options=options, task=data["task"]) -> LossVal:
            return LossVal(task, **{**options, "epochs": epochs})

        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        with timed_phases(totals):
            wall, cpu = time.perf_counter(), time.process_time()
            make(args.epochs).fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        loop = [wall - sum(t[0] for t in totals.values()), cpu - sum(t[1] for t in totals.values())]
        shown = {k: v for k, v in options.items() if k not in ("random_state", "progress", "device")}
        print(f"\n{n:,} rows x {data['X_train'].shape[1]} features, {args.val} validation rows, {args.epochs} epochs, {shown}")
        print(f"fit: {wall:.2f} s wall, {cpu:.2f} s CPU\n")
        print("| phase | wall s | share | CPU s |\n|---|---|---|---|")
        for phase, (w, c) in [*totals.items(), ("network training loop (forward, backward, Adam, batching)", loop)]:
            print(f"| {phase} | {w:.2f} | {w / wall:.0%} | {c:.2f} |")
        ot_ms, other_ms, prof_wall, top = operator_split(lambda: make(1), data)
        print(f"\none epoch under torch.profiler ({prof_wall / 1000:.2f} s wall, profiler overhead included):")
        print(f"  operator time in the OT term {ot_ms / 1000:.2f} s; operator time elsewhere (the MLP's "
              f"forward/backward/Adam, weights) {other_ms / 1000:.2f} s; the rest "
              f"(Python, dispatcher, autograd bookkeeping) {(prof_wall - ot_ms - other_ms) / 1000:.2f} s")
        print("  top operators (self CPU s): " + ", ".join(f"{name} {ms / 1000:.2f}" for name, ms in top))


if __name__ == "__main__":
    main()
