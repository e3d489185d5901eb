"""The OT term of one large-data epoch, eager against ``torch.compile``: is compiling the solver a lever?

Times :func:`lossval.epoch_transport.epoch_transport` (value and gradient of every 32-row group
against 128-row parts of a 1000-row reference, as the large-data settings solve them) on random
standardised points, eager and with ``SinkhornToReference.forward`` compiled; reports the compile
time (first call) apart from the steady-state time, and the largest difference of the values.

    python -m bench.compile_ot --rows 100000 --features 14 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from lossval.epoch_transport import epoch_transport
from lossval.ot import SinkhornToReference, diameter_bound


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=14)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(args.rows, args.features, generator=g), torch.randn(args.reference, args.features, generator=g)
    w = torch.rand(args.rows, generator=g) + 0.5
    eager = SinkhornToReference(ref, diameter=diameter_bound(torch.cat([x, ref]), ref), reference_rows=128)
    compiled = SinkhornToReference(ref, diameter=eager.diameter, reference_rows=128)
    compiled.forward = torch.compile(compiled.forward, dynamic=False)
    results = {}
    for name, transport in (("eager", eager), ("compiled", compiled)):
        times = []
        for _ in range(args.repeats + 1):  # the first call of the compiled one includes compiling
            started = time.perf_counter()
            value, _ = epoch_transport(transport, w, x, 32)
            times.append(time.perf_counter() - started)
        results[name] = value
        print(f"{name}: first call {times[0]:.2f} s, then {min(times[1:]):.2f} s per epoch ({args.rows} rows)", flush=True)
    print(f"largest value difference: {(results['eager'] - results['compiled']).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
