"""`value` and `retrain` epochs / batch_size: an integer or "auto" (resolved by lossval.settings at fit)."""

from __future__ import annotations

import pytest

from schemas.params import ParamsError, load_params
from tests.helpers import REPO


def test_the_defaults_are_auto_and_integers_still_work():
    params = load_params(REPO / "params.yaml")
    assert (params.value.epochs, params.value.batch_size, params.retrain.epochs, params.retrain.batch_size) == ("auto",) * 4
    set_ = load_params(REPO / "params.yaml", overrides=["value.epochs=12", "retrain.batch_size=256"])
    assert (set_.value.epochs, set_.retrain.batch_size, set_.value.batch_size) == (12, 256, "auto")


@pytest.mark.parametrize("bad", ["thirty", "0", "2.5", "true"])
def test_anything_else_fails_naming_the_key_and_value(bad):
    with pytest.raises(ParamsError, match=r"value.epochs: Input should be a valid integer >= 1 or 'auto', got"):
        load_params(REPO / "params.yaml", overrides=[f"value.epochs={bad}"])
