"""The performance benchmarks run end to end on the CPU, tiny, on the bundled data (as on a fresh clone)."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch

from bench import gpu, profile, scale, shards
from bench.common import BUNDLED, load


def test_scaled_table_resamples_beyond_the_dataset_and_marks_the_noise():
    small = scale.scaled_table("white_wine", 500, 100, folder=BUNDLED, seed=0)
    large = scale.scaled_table("white_wine", 20_000, 100, folder=BUNDLED, seed=0)  # more rows than the dataset
    assert small["X_train"].shape == (500, 11) and large["X_train"].shape == (20_000, 11)
    assert small["X_val"].shape == (100, 11) and np.array_equal(small["X_val"], large["X_val"])
    assert len(np.unique(large["X_train"], axis=0)) == 20_000  # resampled with jitter: no two rows equal
    assert large["noisy"].sum() == 2000 and small["noisy"].sum() == 50


def test_gpu_script_runs_on_the_cpu(capsys):
    gpu.main(["--device", "cpu", "--datasets", str(BUNDLED), "--dataset", "white_wine", "--sizes", "3000",
              "--val", "100", "--epochs", "1", "--check-rows", "300", "--check-epochs", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert "check: OK" in out
    assert "| 3,000 | 32 | 1 |" in out  # below the large-data size: the paper's batch


def test_gpu_check_of_the_ot_term_is_exact_on_one_device():
    assert gpu.check_ot(torch.device("cpu")) == 0.0


def test_scale_child_run_and_summary(tmp_path):
    spec = dict(dataset="white_wine", n_train=400, n_val=100, method="lossval", rep=0, epochs=1, batch_size=32, lr=0.01,
                threads=1, device="cpu", datasets=str(BUNDLED), options={"reference_rows": 50})  # fmt: skip
    row = scale.run_one(spec)
    assert row["seconds"] > 0 and row["peak_rss_mb"] >= row["rss_before_mb"] > 0 and 0 <= row["auroc"] <= 1
    plain = scale.run_one({**spec, "method": "plain", "options": {}})
    table = scale.summarize([plain, row])
    assert len(table) == 1 and table[0]["ratio"] == row["seconds"] / plain["seconds"]
    assert "| 400 | 100 | 1 | 32 |" in scale.markdown(table)


def test_profile_phases_cover_the_fit(capsys):
    profile.main(["--datasets", str(BUNDLED), "--dataset", "white_wine", "--sizes", "600", "--val", "100", "--epochs", "1"])
    out = capsys.readouterr().out
    assert "| OT term (batched Sinkhorn, value and gradient) |" in out and "operator time in the OT term" in out


def test_shards_simulation_writes_its_cell(tmp_path):
    out = tmp_path / "shards.csv"
    shards.main(["--datasets", str(BUNDLED), "--names", "white_wine", "--kinds", "labels", "--rows", "400",
                 "--lossval", "epochs=1", "--out", str(out)])  # fmt: skip
    runs = pd.read_csv(out)
    assert len(runs) == 1 and runs["spearman_sharded"].between(-1, 1).all() and runs["f1_pooled"].between(0, 1).all()


def test_ot_levers_bench_compares_every_lever_with_the_default(tmp_path, capsys):
    from bench import ot_levers

    out = tmp_path / "levers.csv"
    ot_levers.main(["--names", "white_wine", "--rows", "3000", "--val", "300", "--repeats", "1",
                    "--datasets", str(BUNDLED), "--out", str(out)])  # fmt: skip
    rows = pd.read_csv(out).set_index("variant")
    assert {"default", "warm1", "warm3", "two_pass", "chunk18", "scaling0.01"} <= set(rows.index)
    for same in ("default", "two_pass", "chunk18"):  # the same arithmetic up to rounding
        assert rows.loc[same, "grad_r_default"] > 0.9999 and rows.loc[same, "value_r_default"] > 0.9999
    assert rows.loc["scaling0.01", "schedule"] < rows.loc["default", "schedule"]
    assert (rows["cpu_s"] > 0).all() and rows["grad_r_converged"].between(-1, 1).all()
    assert ot_levers.ot.softmin is ot_levers._softmin  # the patched solver is put back
    # one temperature fewer, the same solution to rounding; no clamp under flush-to-zero: the same arithmetic
    assert rows.loc["one_diameter", "schedule"] == rows.loc["default", "schedule"] - 1
    assert rows.loc["one_diameter", "grad_r_default"] > 0.999 and rows.loc["no_clamp_ftz", "grad_r_default"] > 0.9999
    # the mean start: both diameter**2 steps left out; the trimmed loop: blur**2's repeat too; the same solution
    assert rows.loc["mean_start", "schedule"] == rows.loc["default", "schedule"] - 2
    assert rows.loc["trimmed", "schedule"] == rows.loc["default", "schedule"] - 3
    assert rows.loc["mean_start", "grad_r_default"] > 0.999 and rows.loc["trimmed", "grad_r_default"] > 0.999
    # the trimmed loop with its costs in one gemm: the same loop, the same solution to rounding
    assert rows.loc["one_gemm_costs", "schedule"] == rows.loc["trimmed", "schedule"]
    assert abs(rows.loc["one_gemm_costs", "grad_r_default"] - rows.loc["trimmed", "grad_r_default"]) < 1e-3
    assert ot_levers.ot.half_squared_distances is ot_levers._costs  # put back
    assert torch.zeros(1).add(1e-40).item() != 0.0  # flush-to-zero switched off again (a float32 denormal survives)
    some = tmp_path / "some.csv"
    ot_levers.main(["--names", "white_wine", "--rows", "3000", "--val", "300", "--repeats", "1",
                    "--datasets", str(BUNDLED), "--out", str(some), "--variants", "one_diameter"])  # fmt: skip
    assert list(pd.read_csv(some)["variant"]) == ["default", "one_diameter"]


def test_ot_floor_splits_the_epoch_and_puts_the_solver_and_flush_mode_back(tmp_path):
    from bench import ot_floor

    out = tmp_path / "floor.csv"
    ot_floor.main(["--names", "white_wine", "--rows", "3000", "--val", "300", "--repeats", "2", "--epochs", "2",
                   "--plain-rows", "100000", "--no-compile", "--datasets", str(BUNDLED), "--out", str(out)])  # fmt: skip
    row = pd.read_csv(out).iloc[0]
    assert row["part"] == 112 and row["temperatures"] >= 3  # 300 validation rows: three parts of 100, padded to 112
    assert 0 < row["softmin_share"] < 1 and row["epoch_us_per_row"] > 0
    assert row["eager_ns"] > 0 and row["exp_ns"] > 0 and row["log_softmax_ns"] > 0 and row["log_softmax_err"] < 1e-3
    assert row["exp_us_per_row"] < row["epoch_us_per_row"]  # the soft-mins at one pass each: a lower bound
    assert row["plain_us_per_row"] > 0 and row["exp_ratio"] < row["eager_ratio"]
    assert row["eager_ratio"] == pytest.approx(1 + row["epoch_us_per_row"] / row["plain_us_per_row"], abs=0.011)
    assert pd.isna(row["compiled_ns"]) and pd.isna(row["compiled_us_per_row"])  # --no-compile
    assert ot_floor.ot.softmin is ot_floor.SOFTMIN  # the timed solver is put back
    assert torch.zeros(1).add(1e-40).item() != 0.0  # flush-to-zero switched off again


def test_warm_transport_without_a_warm_call_is_the_default_solve():
    from bench.ot_levers import warm_transport
    from lossval.epoch_transport import epoch_transport
    from lossval.ot import SinkhornToReference, diameter_bound

    g = torch.Generator().manual_seed(0)
    x, ref, w = torch.randn(640, 5, generator=g), torch.randn(300, 5, generator=g), torch.rand(640, generator=g) + 0.5
    transport = SinkhornToReference(ref, scaling=0.2, diameter=diameter_bound(torch.cat([x, ref]), ref), reference_rows=128)
    value, grad = epoch_transport(transport, w, x, 32)
    warm_value, warm_grad = warm_transport(transport, w, x, 32, 1)  # 20 groups: one call, solved cold
    assert torch.allclose(warm_value, value, atol=1e-5) and torch.allclose(warm_grad, grad, atol=1e-6)


def test_static_ot_variants_change_the_fit_and_put_lossval_back():
    import lossval.per_epoch as per_epoch
    from bench import static_ot
    from lossval import LossVal
    from lossval.loss import LossValLoss

    X, y, _ = load("white_wine", BUNDLED)
    originals = (per_epoch.epoch_transport, LossValLoss.factor, LossValLoss.weight_gradient_parts)
    fits = {}
    for arm in ("default", *static_ot.PATCHES):
        model = LossVal("regression", epochs=3, random_state=0, progress=False)
        with static_ot.PATCHES.get(arm, contextlib.nullcontext)():
            model.fit(X[:300], y[:300], X[300:400], y[300:400])
        fits[arm] = model.weights_.to_numpy()
        assert (per_epoch.epoch_transport, LossValLoss.factor, LossValLoss.weight_gradient_parts) == originals
    for arm in static_ot.PATCHES:  # each variant moves the weights, none breaks the fit
        assert np.isfinite(fits[arm]).all() and not np.allclose(fits[arm], fits["default"])


def test_ot_warmup_is_the_default_while_warm_then_the_loss_alone_and_puts_lossval_back():
    import lossval.per_epoch as per_epoch
    from bench import ot_warmup
    from lossval import LossVal
    from lossval.loss import LossValLoss

    X, y, _ = load("white_wine", BUNDLED)
    originals = (per_epoch.epoch_transport, LossValLoss.factor, LossValLoss.weight_gradient_parts)

    def fit(epochs=None, **options):
        model = LossVal("regression", epochs=4, random_state=0, progress=False, **options)
        with ot_warmup.ot_warmup(epochs) if epochs is not None else contextlib.nullcontext():
            model.fit(X[:300], y[:300], X[300:400], y[300:400])
        assert (per_epoch.epoch_transport, LossValLoss.factor, LossValLoss.weight_gradient_parts) == originals
        return model.weights_.to_numpy()

    default = fit()
    np.testing.assert_array_equal(fit(4), default)  # warm for the whole fit: the default, bit for bit
    warm_then_loss = fit(2)
    assert np.isfinite(warm_then_loss).all() and not np.allclose(warm_then_loss, default)
    # no warm epoch at all: the weights step as loss_only's do (the network's objective differs only by
    # a constant factor per batch, which Adam does not see exactly, so the weights agree closely)
    np.testing.assert_allclose(fit(0), fit(combine="loss_only"), rtol=0.05)


def test_dev_cell_experiments_write_each_arm_once_and_refuse_reported_datasets(tmp_path, capsys):
    from bench import dev_cells, seed_ensemble

    folder = tmp_path / "datasets"
    folder.mkdir()
    # the bundled Elec2 rows under a development dataset's name (the loop admits development datasets only)
    pd.read_csv(BUNDLED / "electricity.csv").to_csv(folder / "adult.csv", index=False)
    out = tmp_path / "runs.csv"
    argv = ["--datasets", str(folder), "--names", "adult", "--kinds", "labels", "--rates", "0.1", "--reps", "0",
            "--out", str(out)]  # fmt: skip
    seed_ensemble.main(argv)
    rows = pd.read_csv(out)
    assert list(rows["arm"]) == list(seed_ensemble.ARMS) and list(rows.columns) == dev_cells.COLUMNS
    assert rows[["f1", "auroc", "precision_at_k"]].apply(lambda c: c.between(0, 1)).all().all()
    assert rows["seconds"].is_monotonic_increasing  # mean_K costs K fits
    capsys.readouterr()
    seed_ensemble.main(argv)  # resumable: nothing left to fit, nothing written
    assert len(pd.read_csv(out)) == 3 and capsys.readouterr().out == ""
    with pytest.raises(SystemExit, match="development datasets only"):
        seed_ensemble.main([*argv[:4], "electricity", *argv[5:]])


def test_net_decay_swaps_only_the_network_optimizer_and_puts_torch_back():
    import lossval.per_epoch as per_epoch
    from bench import net_decay
    from bench.common import patched
    from lossval import LossVal

    X, y, _ = load("white_wine", BUNDLED)

    def fit(decay=None):
        model = LossVal("regression", epochs=3, random_state=0, progress=False)
        with patched(per_epoch, torch=net_decay._Torch(decay)) if decay is not None else contextlib.nullcontext():
            model.fit(X[:300], y[:300], X[300:400], y[300:400])
        assert per_epoch.torch is torch
        return model.weights_.to_numpy()

    default = fit()
    np.testing.assert_allclose(fit(0.0), default, rtol=1e-5, atol=1e-6)  # AdamW without decay is Adam
    assert not np.allclose(fit(3.0), default)


def test_step_size_arms_change_only_the_weight_step_and_its_0_04_arm_is_the_default():
    from bench import dev_cells, step_size
    from bench.quality import Spec, make_cell

    X, y, task = load("electricity", BUNDLED)
    cell = make_cell(Spec("paper", "electricity", "labels", 0.1, 0), X, y, task)
    default, _ = dev_cells.timed_fit(cell, epochs=3)
    arm, _ = step_size.fit_arm(cell, "lr_0.04", epochs=3)
    np.testing.assert_array_equal(arm.values_.to_numpy(), default.values_.to_numpy())
    smaller, _ = step_size.fit_arm(cell, "lr_0.01", epochs=3)
    assert smaller.settings_["weight_lr"] == 0.01 and not np.allclose(smaller.weights_, default.weights_)
