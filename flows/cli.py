"""The ``lossval-clean`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "data" / "example"


def demo(args: argparse.Namespace) -> int:
    """Value the bundled example with 10 % of its labels flipped, and show what LossVal catches."""
    import numpy as np
    import pandas as pd

    from lossval import LossVal
    from lossval.metrics import detection_auroc, detection_f1
    from lossval.noise import add_noise

    data = pd.read_csv(EXAMPLE / "electricity.csv")
    reference = pd.read_csv(EXAMPLE / "electricity_reference.csv")
    X, y = data.drop(columns="target"), data["target"].to_numpy()
    rng = np.random.default_rng(args.seed)
    _, y_noisy, rows, _ = add_noise(X.to_numpy(), y, kind="labels", rate=args.rate, task="classification", rng=rng)
    print(f"example: {len(data)} rows of Elec2, {len(rows)} labels flipped ({args.rate:.0%}); reference: {len(reference)} trusted rows")
    lv = LossVal("classification", random_state=args.seed, progress=True)
    lv.fit(X, y_noisy, reference.drop(columns="target"), reference["target"])
    noisy = np.zeros(len(data), dtype=bool)
    noisy[rows] = True
    values = lv.values_
    lowest = values.nsmallest(len(rows))
    caught = int(noisy[lowest.index].sum())
    table = data.loc[lowest.index[: args.show]].assign(value=lowest.iloc[: args.show], label_given=y_noisy[lowest.index[: args.show]], flipped=noisy[lowest.index[: args.show]])
    print(f"\nthe {args.show} lowest-valued rows (value: higher = more valuable):")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\ncaught: {caught} of the {len(rows)} flipped rows are among the {len(rows)} lowest-valued rows ({caught / len(rows):.0%})")
    print(f"AUROC {detection_auroc(values.to_numpy(), noisy):.3f}, 2-means F1 {detection_f1(values.to_numpy(), noisy):.3f}, "
          f"fit {lv.history_['seconds'].sum():.1f} s on {lv.device_}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossval-clean", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="value the bundled example data with injected label noise")
    p.add_argument("--rate", type=float, default=0.1, help="fraction of labels to flip (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=15, help="how many of the lowest rows to print")
    p.set_defaults(func=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
