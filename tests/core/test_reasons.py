"""row_reasons: label-like or feature-like, from LossVal.parts_."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossval import LossVal
from lossval.reasons import robust_z, row_reasons


def test_robust_z_against_a_hand_computed_reference():
    z = robust_z(pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]))
    # median 3, MAD 1 -> scale 1.4826
    np.testing.assert_allclose(z.to_numpy(), np.array([-2, -1, 0, 1, 97]) / 1.4826)
    assert (robust_z(pd.Series([5.0, 5.0, 5.0])) == 0).all()
    # more than half equal: MAD 0, the standard deviation takes over
    np.testing.assert_allclose(robust_z(pd.Series([0.0, 0.0, 0.0, 3.0])).to_numpy(), [0, 0, 0, 3 / np.std([0, 0, 0, 3])])


def test_a_row_far_from_the_validation_set_is_feature_like_and_any_other_label_like():
    parts = pd.DataFrame(
        {"loss_part": [0.1, 0.2, 5.0, 4.0, 0.15, 0.1], "transport_part": [0.0, 0.1, -0.1, 3.0, 0.05, -0.05]},
        index=pd.Index(list("abcdef"), name="row_id"),
    )
    reasons = row_reasons(parts)
    assert reasons.index.equals(parts.index) and reasons.name == "reason"
    # d: high transport (and high loss, as corrupted features cause) -> feature; c: high loss only -> label
    assert reasons.to_dict() == {"a": "label", "b": "label", "c": "label", "d": "feature", "e": "label", "f": "label"}
    assert row_reasons(parts, feature_z=100.0).eq("label").all()


def test_bad_parts_are_refused_with_the_columns_named():
    with pytest.raises(ValueError, match=r"lacks the columns \['transport_part'\]"):
        row_reasons(pd.DataFrame({"loss_part": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="feature_z"):
        row_reasons(pd.DataFrame({"loss_part": [1.0], "transport_part": [0.0]}), feature_z=float("nan"))


def test_reasons_name_the_injected_noise_on_a_toy_problem():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(330, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X_train, y_train = X[:300].copy(), y[:300].copy()
    y_train[:15] = 1 - y_train[:15]  # label noise
    X_train[15:30] += rng.normal(0, 3, size=(15, 4))  # feature noise
    lv = LossVal(epochs=15, random_state=0, progress=False).fit(X_train, y_train, X[300:], y[300:])
    feature = row_reasons(lv.parts_).to_numpy() == "feature"
    assert feature[15:30].mean() >= 0.9  # corrupted features
    assert feature[:15].mean() <= 0.3  # corrupted labels
    assert feature[30:].mean() <= 0.3
