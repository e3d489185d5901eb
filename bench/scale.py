"""LossVal at scale: wall time, rows per second and peak memory against plain training, 10^3 to 10^6 rows.

Every fit runs in a fresh child process (so its peak RSS is its own), with
plain training of the same MLP (same epochs, batch size, Adam, lr) and
``LossVal.fit`` interleaved per repetition: plain, LossVal, plain, LossVal...
The table reports medians and the median per-round ratio; each row of the
CSV is one fit.

Data (:func:`scaled_table`): one real dataset from ``../shared/datasets``,
standardised. The validation rows (100 or 1000) come from a held-out 20 %
of the real rows; the training rows are drawn from the other 80 %: without
replacement while the size allows, else resampled with replacement plus
N(0, ``jitter``^2) noise on every standardised feature (no two rows equal).
A fraction ``--noise-rate`` of the training rows is then corrupted as in the
quality benchmark (mixed: half labels, half features), so every timing run
also reports the detection F1 and AUROC at its size.

    python -m bench.scale --sizes 1000 10000 100000 --val 100 1000 --repeats 3
    python -m bench.scale --plot docs/scale.png             # log-log time against rows, from the CSV

Big-data settings are explicit: ``--batch-size``, ``--epochs``, ``--lr`` and
``--lossval`` (``key=value`` options of ``LossVal``) apply to both fits
except ``--lossval``; ``--recipe`` uses :func:`lossval.large_data_settings`.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, datasets_dir, load, machine

DEFAULT_OUT = REPO / "bench" / "results" / "scale.csv"
COLUMNS = [
    "dataset", "task", "n_train", "n_val", "method", "rep", "epochs", "batch_size", "lr", "options", "threads",
    "seconds", "cpu_s", "rows_per_s", "rss_before_mb", "peak_rss_mb", "f1", "auroc", "load1",
]  # fmt: skip


@functools.lru_cache(maxsize=4)
def _loaded(name: str, folder: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """One read and standardisation per dataset in a process (``scaled_table`` only indexes into it: copies)."""
    return load(name, folder)


def scaled_table(
    name: str, n_train: int, n_val: int, *, folder: Path, seed: int = 0, jitter: float = 0.05, noise_rate: float = 0.1,
    kind: str = "mixed",
) -> dict[str, Any]:
    """Training and validation rows of ``name`` at any size (see the module doc); ``noisy`` marks corrupted rows."""
    from lossval.noise import add_noise

    X, y, task = _loaded(name, folder)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(X))
    n_hold = max(n_val, len(X) // 5)
    val, pool = perm[:n_val], perm[n_hold:]
    if n_train <= len(pool):
        rows = pool[:n_train]
        X_train, y_train = X[rows], y[rows]
    else:
        rows = rng.choice(pool, size=n_train, replace=True)
        X_train = X[rows] + rng.normal(0.0, jitter, size=(n_train, X.shape[1]))
        y_train = y[rows]
    noisy = np.zeros(n_train, dtype=bool)
    if noise_rate > 0:
        X_train, y_train, corrupted, _ = add_noise(X_train, y_train, kind=kind, rate=noise_rate, task=task, rng=rng)
        noisy[corrupted] = True
    return dict(X_train=X_train, y_train=y_train, X_val=X[val], y_val=y[val], task=task, noisy=noisy)


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set size, MiB: current (``VmRSS``) or peak (``VmHWM``, never below the current)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings to keyword arguments (values as Python literals, else strings)."""
    from bench.methods import parse_option

    return dict(map(parse_option, items))


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit in this process; returns the CSV row (seconds = fit only, data preparation excluded)."""
    import torch

    from lossval import MLP, LossVal
    from lossval.metrics import detection_auroc, detection_f1

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    data = scaled_table(spec["dataset"], spec["n_train"], spec["n_val"], folder=Path(spec["datasets"]), seed=spec["rep"])
    task = data["task"]
    common = dict(epochs=spec["epochs"], batch_size=spec["batch_size"], lr=spec["lr"], random_state=spec["rep"],
                  progress=False, device=spec["device"])  # fmt: skip
    before = rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    f1 = auroc = float("nan")
    if spec["method"] == "plain":
        MLP(task, **common).fit(data["X_train"], data["y_train"])
    else:
        model = LossVal(task, **common, **spec["options"]).fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"])
        values = model.values_.to_numpy()
        f1, auroc = detection_f1(values, data["noisy"]), detection_auroc(values, data["noisy"])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = rss_mb("VmHWM")
    return {
        **{k: spec[k] for k in ("dataset", "n_train", "n_val", "method", "rep", "epochs", "batch_size", "lr", "threads")},
        "task": task, "options": json.dumps(spec["options"], sort_keys=True), "seconds": round(seconds, 3), "cpu_s": round(cpu, 3),
        "rows_per_s": round(spec["n_train"] / seconds, 1), "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
        "f1": round(f1, 4), "auroc": round(auroc, 4), "load1": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def in_child(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--child", json.dumps(spec)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"child run failed for {spec}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians per (dataset, size, validation size, epochs, batch, LossVal options), each LossVal fit paired
    with the plain fit just before it (the runs interleave): plain s, LossVal s, median per-pair ratio
    (wall and CPU)."""
    last_plain: dict[tuple, dict] = {}
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for r in rows:  # in file order: each LossVal fit follows the plain fit it is compared with
        key = (r["dataset"], int(r["n_train"]), int(r["n_val"]), int(r["epochs"]), int(r["batch_size"]))
        if r["method"] == "plain":
            last_plain[key] = r
        elif key in last_plain:
            groups.setdefault((*key, r["options"]), []).append((last_plain.pop(key), r))
    table = []
    for (*key, options), pairs in sorted(groups.items()):
        dataset, n, m, epochs, batch = key
        p_s, v_s = [float(p["seconds"]) for p, _ in pairs], [float(v["seconds"]) for _, v in pairs]
        table.append(dict(
            dataset=dataset, n_train=n, n_val=m, epochs=epochs, batch_size=batch, options=options, repeats=len(pairs),
            plain_s=statistics.median(p_s), lossval_s=statistics.median(v_s),
            ratio=statistics.median(v / p for p, v in zip(p_s, v_s)),
            cpu_ratio=statistics.median(float(v["cpu_s"]) / float(p["cpu_s"]) for p, v in pairs),
            plain_rows_s=n / statistics.median(p_s), lossval_rows_s=n / statistics.median(v_s),
            plain_peak_mb=max(float(p["peak_rss_mb"]) for p, _ in pairs),
            lossval_peak_mb=max(float(v["peak_rss_mb"]) for _, v in pairs),
            f1=statistics.median(float(v["f1"]) for _, v in pairs),
            auroc=statistics.median(float(v["auroc"]) for _, v in pairs),
            load=statistics.median(float(x["load1"]) for pair in pairs for x in pair),
        ))  # fmt: skip
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | val | epochs | batch | LossVal options | plain s | LossVal s | ratio (wall) | ratio (CPU) | LossVal rows/s | peak RSS plain / LossVal (MiB) | F1 / AUROC | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        options = ", ".join(f"{k}={v}" for k, v in json.loads(t["options"]).items()) or "defaults"
        lines.append(
            f"| {t['n_train']:,} | {t['n_val']} | {t['epochs']} | {t['batch_size']} | {options} | {t['plain_s']:.2f} | {t['lossval_s']:.2f} "
            f"| {t['ratio']:.2f}x | {t['cpu_ratio']:.2f}x | {t['lossval_rows_s']:,.0f} | {t['plain_peak_mb']:.0f} / {t['lossval_peak_mb']:.0f} "
            f"| {t['f1']:.2f} / {t['auroc']:.2f} | {t['load']:.1f} |"
        )
    return "\n".join(lines)


def plot(table: list[dict[str, Any]], path: Path) -> None:
    """Log-log wall time against training rows: one line per (settings, validation size) for LossVal and one
    per settings for plain training, with a slope-1 guide (a fit linear in rows runs parallel to it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    settings = sorted({(t["epochs"], t["batch_size"]) for t in table}, reverse=True)
    for k, (epochs, batch) in enumerate(settings):
        same = [t for t in table if (t["epochs"], t["batch_size"]) == (epochs, batch)]
        options = max(same, key=lambda t: t["n_train"])["options"]  # one option set per line: the largest size's
        same = [t for t in same if t["options"] == options]
        label = f"{epochs} epochs, batch {batch}"
        for j, m in enumerate(sorted({t["n_val"] for t in same})):
            pts = sorted((t["n_train"], t["lossval_s"]) for t in same if t["n_val"] == m)
            ax.plot(*zip(*pts), "o-" if k == 0 else "^-", color=f"C{2 * k + j}", label=f"LossVal, {m} val. rows ({label})")
        plain = sorted({t["n_train"]: t["plain_s"] for t in same}.items())
        ax.plot(*zip(*plain), "s--", color="gray" if k == 0 else "silver", label=f"plain training ({label})")
    xs = np.array(sorted({t["n_train"] for t in table}), dtype=float)
    ref = max(t["lossval_s"] for t in table if t["n_train"] == xs[-1])
    ax.plot(xs, ref * xs / xs[-1], ":", color="black", label="slope 1 (linear)")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("training rows"), ax.set_ylabel("fit wall time (s)")
    ax.grid(True, which="both", alpha=0.3), ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--dataset", default="cpu_activity")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--val", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--recipe", action="store_true", help="epochs, batch (both fits) and LossVal options from lossval.large_data_settings(rows)")
    parser.add_argument("--lossval", nargs="*", default=[], metavar="KEY=VALUE", help="LossVal options")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV, appended to")
    parser.add_argument("--plot", type=Path, help="write the log-log plot of the CSV's rows (filtered by --dataset) and exit")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(json.loads(args.child))))
        return
    if args.plot:
        with args.out.open() as fh:
            rows = [r for r in csv.DictReader(fh) if r["dataset"] == args.dataset]
        table = summarize(rows)
        plot(table, args.plot)
        print(markdown(table))
        return
    folder = datasets_dir(args.datasets)
    print(f"machine: {machine()}; load {os.getloadavg()}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    rows = []
    with args.out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for n in args.sizes:
            settings = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
            options = parse_options(args.lossval)
            if args.recipe:  # the network's settings for both fits, the rest for LossVal
                from lossval import large_data_settings

                recipe = large_data_settings(n)
                settings.update({k: v for k, v in recipe.items() if k in settings})
                options = {**{k: v for k, v in recipe.items() if k not in settings}, **options}
            for m in args.val:
                for rep in range(args.repeats):
                    for method in ("plain", "lossval"):
                        spec = dict(dataset=args.dataset, n_train=n, n_val=m, method=method, rep=rep, threads=args.threads,
                                    device=args.device, datasets=str(folder), **settings,
                                    options=options if method == "lossval" else {})  # fmt: skip
                        row = in_child(spec)
                        writer.writerow(row)
                        fh.flush()
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    print(markdown(summarize(rows)))


if __name__ == "__main__":
    main()
