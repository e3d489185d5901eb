"""LossVal on a GPU: correctness against the CPU on small data, then rows per minute at 10^5 to 10^7 rows.

1. Correctness: the OT term (value and weight gradient of a batched call)
   and a whole small ``LossVal.fit`` on the device against the same on the
   CPU. The OT term must agree to float32 rounding; the fitted values of a
   whole run agree closely but not bit for bit (different kernels round
   differently and training amplifies it), so the check reports their
   Spearman correlation and 2-means F1 on injected noise for both.
2. Timing: ``LossVal.fit`` and plain training of the same MLP, both with
   :func:`lossval.large_data_settings` for the size, on tables of
   :func:`bench.scale.scaled_table` (real rows resampled with small noise),
   1000 validation rows; prints wall time, rows per minute and the ratio.

The code path is the library's own: ``device="cuda"`` puts the data, the
network, the weights and the OT term on the GPU; nothing else changes.

    python -m bench.gpu                                  # CUDA if present: check, then 1e5 1e6 1e7 rows
    python -m bench.gpu --device cpu --sizes 20000       # the same script on the CPU (tests/bench runs it tiny)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from bench.common import datasets_dir, machine
from bench.scale import scaled_table


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_ot(device: torch.device, *, rows: int = 256, reference: int = 300, group: int = 32) -> float:
    """Largest relative difference of the batched OT term's value and gradient, device against CPU."""
    from lossval.ot import SinkhornToReference, diameter_bound

    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(rows, 8, generator=g), torch.randn(reference, 8, generator=g) * 1.1
    w = torch.rand(rows // group, group, generator=g) + 0.5
    d = diameter_bound(torch.cat([x, ref]), ref)
    results = []
    for dev in (torch.device("cpu"), device):
        ot = SinkhornToReference(ref.to(dev), diameter=d, reference_rows=128)
        ww = w.to(dev).requires_grad_()
        value = ot(ww, x.to(dev).view(-1, group, 8))
        (grad,) = torch.autograd.grad(value.sum(), ww)
        results.append((value.detach().cpu(), grad.cpu()))
    (v0, g0), (v1, g1) = results
    return float(max((v1 - v0).abs().max() / v0.abs().max(), (g1 - g0).abs().max() / g0.abs().max()))


def check_fit(device: torch.device, folder: Path, *, rows: int, epochs: int) -> dict[str, float]:
    """A small fit on the CPU and on the device: Spearman of the values, F1 of each."""
    from lossval import LossVal
    from lossval.metrics import detection_f1

    data = scaled_table("electricity", rows, 100, folder=folder, seed=0, kind="labels")
    values = []
    for dev in ("cpu", device):
        lv = LossVal(data["task"], epochs=epochs, random_state=0, progress=False, device=dev)
        values.append(lv.fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"]).values_.to_numpy())
    return {
        "spearman": float(spearmanr(values[0], values[1]).statistic),
        "f1_cpu": detection_f1(values[0], data["noisy"]),
        "f1_device": detection_f1(values[1], data["noisy"]),
    }


def time_size(device: torch.device, folder: Path, n: int, *, val: int, dataset: str, epochs: int | None) -> dict[str, float]:
    """Wall seconds of plain training and of LossVal.fit at ``n`` rows with the large-data settings."""
    from lossval import MLP, LossVal, large_data_settings
    from lossval.metrics import detection_auroc, detection_f1

    data = scaled_table(dataset, n, val, folder=folder, seed=0)
    settings = large_data_settings(n)
    if epochs:
        settings["epochs"] = epochs
    shared = {k: settings[k] for k in ("batch_size", "epochs")}
    out: dict[str, float] = {"rows": n, **shared}
    for name in ("plain", "lossval"):
        _sync(device)
        started = time.perf_counter()
        if name == "plain":
            MLP(data["task"], **shared, random_state=0, progress=False, device=device).fit(data["X_train"], data["y_train"])
        else:
            lv = LossVal(data["task"], **settings, random_state=0, progress=False, device=device)
            values = lv.fit(data["X_train"], data["y_train"], data["X_val"], data["y_val"]).values_.to_numpy()
            out["f1"], out["auroc"] = detection_f1(values, data["noisy"]), detection_auroc(values, data["noisy"])
        _sync(device)
        out[f"{name}_s"] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--datasets", help="folder of the shared datasets (default ../shared/datasets)")
    parser.add_argument("--dataset", default="cpu_activity")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--epochs", type=int, help="override the settings' epochs (e.g. a short smoke run)")
    parser.add_argument("--check-rows", type=int, default=2000, help="rows of the CPU-against-device fit")
    parser.add_argument("--check-epochs", type=int, default=5)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    folder = datasets_dir(args.datasets)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"machine: {machine()}; device: {device} ({name})")
    ot_error = check_ot(device)
    fit = check_fit(device, folder, rows=args.check_rows, epochs=args.check_epochs)
    print(f"check: OT term value/gradient max relative difference to the CPU {ot_error:.1e}; "
          f"fit values Spearman {fit['spearman']:.4f}, F1 CPU {fit['f1_cpu']:.3f} vs device {fit['f1_device']:.3f}")  # fmt: skip
    ok = ot_error < 1e-3 and fit["spearman"] > 0.9
    print("check:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)
    print("| rows | batch | epochs | plain s | LossVal s | ratio | LossVal rows/min | F1 / AUROC |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        r = time_size(device, folder, n, val=args.val, dataset=args.dataset, epochs=args.epochs)
        print(f"| {n:,} | {r['batch_size']} | {r['epochs']} | {r['plain_s']:.1f} | {r['lossval_s']:.1f} | "
              f"{r['lossval_s'] / r['plain_s']:.2f}x | {n / r['lossval_s'] * 60:,.0f} | {r['f1']:.2f} / {r['auroc']:.2f} |",
              flush=True)  # fmt: skip
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
