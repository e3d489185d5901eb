"""How strong is regression label noise? The paper's (``mix``) against the permutation (``permute``).

Per regression dataset: the mean absolute change of a corrupted target (in
standard deviations of the target) and the share of "corrupted" rows that
kept their value, over 5 random 1000-row draws x the benchmark's 4 rates.

    python -m bench.noise_stats [--datasets DIR]
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import REGRESSION, datasets_dir, load
from bench.quality import RATES
from lossval.noise import REGRESSION_LABEL_NOISE, add_noise


def noise_strength(y: np.ndarray, X: np.ndarray, *, variant: str, draws: int = 5) -> tuple[float, float]:
    """(mean |change| in target SDs, share unchanged) of ``variant``'s label noise on 1000-row draws of (X, y)."""
    changes, same = [], []
    for draw in range(draws):
        rows = np.random.default_rng(draw).permutation(len(y))[:1000]
        for rate in RATES:
            rng = np.random.default_rng([draw, int(rate * 100)])
            _, noisy, chosen, _ = add_noise(X[rows], y[rows], kind="labels", rate=rate, task="regression", rng=rng,
                                            regression_labels=variant)  # fmt: skip
            changes.append(np.abs(noisy[chosen] - y[rows][chosen]))
            same.append(noisy[chosen] == y[rows][chosen])
    return float(np.concatenate(changes).mean() / y.std()), float(np.concatenate(same).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="datasets folder (default ../shared/datasets)")
    args = parser.parse_args(argv)
    folder = datasets_dir(args.datasets)
    print("| dataset | distinct targets | " + " | ".join(f"{v}: mean change (SD), unchanged" for v in REGRESSION_LABEL_NOISE) + " |")
    print("|---|---|" + "---|" * len(REGRESSION_LABEL_NOISE))
    for name in REGRESSION:
        X, y, _ = load(name, folder)
        cells = [noise_strength(y, X, variant=v) for v in REGRESSION_LABEL_NOISE]
        print(f"| {name} | {len(np.unique(y))} | " + " | ".join(f"{c:.2f}, {s:.1%}" for c, s in cells) + " |")


if __name__ == "__main__":
    main()
