"""The public API of LossVal: shapes, indexes, labels, learned state, callbacks, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossval import MLP, LossVal, NotFittedError

FAST = dict(epochs=3, random_state=0, progress=False)


def test_fit_returns_self_and_values_are_a_series_on_a_range_index(tiny_classification):
    X, y, Xv, yv = tiny_classification
    lv = LossVal(task="classification", **FAST)
    assert lv.fit(X, y, Xv, yv) is lv
    assert isinstance(lv.values_, pd.Series)
    assert lv.values_.index.equals(pd.RangeIndex(100))
    assert lv.values_.dtype == np.float64 and np.isfinite(lv.values_).all()
    assert (lv.values_ > 0).all()


def test_values_keep_the_dataframe_index(tiny_classification):
    X, y, Xv, yv = tiny_classification
    index = pd.Index([f"row-{i}" for i in range(100)], name="row_id")
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=index)
    lv = LossVal(**FAST).fit(frame, pd.Series(y, index=index), pd.DataFrame(Xv, columns=["a", "b", "c"]), yv)
    assert lv.values_.index.equals(index)
    assert lv.parts_.index.equals(index)
    assert list(lv.parts_.columns) == ["loss_part", "transport_part"]


def test_predict_returns_labels_as_given(tiny_classification):
    X, y, Xv, yv = tiny_classification
    lv = LossVal(**{**FAST, "epochs": 20}).fit(X, y, Xv, yv)
    pred = lv.predict(Xv)
    assert set(pred) <= {"yes", "no"}
    assert (pred == yv).mean() > 0.8
    proba = lv.predict_proba(Xv)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(lv.classes_) == ["no", "yes"]


def test_regression_predicts_floats_in_target_units():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = 1000.0 + 50.0 * X[:, 0]
    lv = LossVal("regression", **{**FAST, "epochs": 15}).fit(X[:150], y[:150], X[150:], y[150:])
    pred = lv.predict(X[150:])
    assert pred.dtype == np.float64
    assert np.abs(pred - y[150:]).mean() < 20.0  # on the target's own scale (std 50)


def test_reading_learned_state_before_fit_raises_clearly():
    lv = LossVal()
    for name in ("values_", "model_", "history_"):
        with pytest.raises(NotFittedError, match=f"{name} does not exist yet: call fit"):
            getattr(lv, name)
    with pytest.raises(NotFittedError):
        lv.predict(np.zeros((2, 3)))


def test_history_and_callbacks_see_every_epoch(tiny_classification):
    X, y, Xv, yv = tiny_classification
    seen: list[tuple[int, dict]] = []
    lv = LossVal(**FAST, callbacks=[lambda epoch, metrics: seen.append((epoch, metrics))]).fit(X, y, Xv, yv)
    assert [e for e, _ in seen] == [1, 2, 3]
    expected = {"loss", "weighted_loss", "ot", "weight_min", "weight_p05", "weight_median", "weight_p95", "weight_max", "seconds"}
    assert expected <= set(seen[0][1])
    assert list(lv.history_["epoch"]) == [1, 2, 3]
    assert (lv.history_["weight_min"] <= lv.history_["weight_median"]).all()


def test_same_seed_gives_identical_values_on_cpu(tiny_classification):
    X, y, Xv, yv = tiny_classification
    a = LossVal(**FAST, device="cpu").fit(X, y, Xv, yv).values_
    b = LossVal(**FAST, device="cpu").fit(X, y, Xv, yv).values_
    c = LossVal(**{**FAST, "random_state": 1}, device="cpu").fit(X, y, Xv, yv).values_
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize(
    "options",
    [
        dict(weight_updates="per_batch"),
        dict(combine="loss_only"),
        dict(combine="ot_only"),
        dict(ot_power=1.0),
        dict(normalize_masses=False),
        dict(solver="geomloss"),
        dict(weight_optimizer="adam"),
        dict(weight_optimizer="normalized_rms", weight_clip=0.0),
        dict(average_last=2),
        dict(ot_label_scale=2.0),
        dict(ot_label_scale=2.0, weight_updates="per_batch"),
    ],
)
def test_every_variant_trains(tiny_classification, options):
    X, y, Xv, yv = tiny_classification
    lv = LossVal(**FAST, **options).fit(X, y, Xv, yv)
    assert np.isfinite(lv.values_).all() and lv.values_.nunique() > 1


def test_paper_preset_is_the_authors_variant():
    lv = LossVal.paper("regression", epochs=1)
    assert (lv.weight_updates, lv.normalize_masses, lv.solver, lv.ot_power) == ("per_batch", False, "geomloss", 2.0)
    assert (lv.weight_optimizer, lv.weight_lr, lv.ot_label_scale) == ("adam", 0.01, 0.0)
    assert lv.hidden_layers == (90, 90) and lv.activation == "tanh" and lv.batch_size == 32 and lv.lr == 0.01
    assert lv.clip_weights is False and LossVal().clip_weights is True


def test_the_authors_variant_leaves_the_weights_unconstrained_the_default_clips(tiny_classification):
    X, y, Xv, yv = tiny_classification
    options = dict(epochs=30, random_state=0, progress=False, lr=0.1)  # a large step drives some weights below 0
    paper = LossVal.paper("classification", **options).fit(X, y, Xv, yv).values_
    clipped = LossVal.paper("classification", **options, clip_weights=True).fit(X, y, Xv, yv).values_
    assert np.isfinite(paper).all() and paper.min() < 0
    assert clipped.min() >= 1e-3 - 1e-9 and clipped.max() <= 1e3


def test_defaults_are_the_benchmarked_ones():
    lv = LossVal()
    assert (lv.weight_updates, lv.weight_optimizer, lv.weight_lr, lv.weight_clip) == ("per_epoch", "normalized", None, 3.0)
    assert lv._resolve(1000)["weight_lr"] == 0.04  # "auto" on a small table: the benchmarked step
    assert (lv.normalize_masses, lv.combine, lv.ot_power, lv.average_last, lv.ot_label_scale) == (True, "product", 2.0, 1, 0.0)
    assert LossVal(weight_optimizer="adam").weight_lr == lv.lr  # Adam steps with the network's rate by default
    assert LossVal(weight_updates="per_batch").weight_optimizer == "adam"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(weight_optimizer="sgd"), "weight_optimizer must be one of"),
        (dict(weight_optimizer="normalized", weight_updates="per_batch"), "needs weight_updates='per_epoch'"),
        (dict(average_last=3, weight_updates="per_batch"), "average_last=3 needs weight_updates='per_epoch'"),
        (dict(average_last=0), "average_last"),
        (dict(weight_clip=-1.0), "weight_clip"),
        (dict(ot_label_scale=-1.0), "ot_label_scale"),
        (dict(clip_weights=False), "clip_weights=False needs normalize_masses=False"),
    ],
)
def test_bad_method_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        LossVal(**options)


@pytest.mark.parametrize("options", [dict(), dict(weight_updates="per_batch")])
def test_validation_labels_are_never_read_unless_transported(tiny_classification, options):
    X, y, Xv, yv = tiny_classification
    flipped = np.where(yv == "yes", "no", "yes")
    a = LossVal(**FAST, **options).fit(X, y, Xv, yv).values_
    pd.testing.assert_series_equal(a, LossVal(**FAST, **options).fit(X, y, Xv, flipped).values_)
    joint = dict(options, ot_label_scale=2.0)
    b = LossVal(**FAST, **joint).fit(X, y, Xv, yv).values_
    assert not b.equals(LossVal(**FAST, **joint).fit(X, y, Xv, flipped).values_)


def test_loss_only_ignores_the_validation_rows(tiny_classification):
    X, y, Xv, yv = tiny_classification
    a = LossVal(**FAST, combine="loss_only").fit(X, y, Xv, yv).values_
    b = LossVal(**FAST, combine="loss_only").fit(X, y, Xv[::-1] * 3 + 1, yv[::-1]).values_
    pd.testing.assert_series_equal(a, b)


def test_joint_transport_points_put_two_classes_ot_label_scale_apart(tiny_classification):
    import torch

    X, y, Xv, yv = tiny_classification
    lv = LossVal(**FAST, ot_label_scale=2.0).fit(X, y, Xv, yv)
    features = torch.zeros(2, 3)
    points = lv._transport_points(features, torch.tensor([0, 1]))  # (2, 3 + 2 classes)
    assert points.shape == (2, 5)
    assert float((points[0] - points[1]).norm()) == pytest.approx(2.0)
    regression = LossVal("regression", **FAST, ot_label_scale=3.0)
    assert regression._transport_points(features, torch.tensor([[0.5], [-1.0]]))[:, 3].tolist() == [1.5, -3.0]


def test_batch_larger_than_the_data_still_trains(tiny_classification):
    X, y, Xv, yv = tiny_classification
    lv = LossVal(**{**FAST, "batch_size": 512}).fit(X, y, Xv, yv)
    assert len(lv.values_) == 100


def test_plain_mlp_has_the_same_interface(tiny_classification):
    X, y, Xv, yv = tiny_classification
    mlp = MLP(**{**FAST, "epochs": 20}).fit(X, y)
    assert (mlp.predict(Xv) == yv).mean() > 0.8
    weighted = MLP(**FAST).fit(X, y, sample_weight=np.ones(100))
    assert weighted.history_.shape[0] == 3


def test_device_auto_picks_the_cpu_without_cuda(tiny_classification):
    import torch

    X, y, Xv, yv = tiny_classification
    lv = LossVal(**FAST).fit(X, y, Xv, yv)
    assert lv.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
