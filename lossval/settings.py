"""Size-aware training settings: what ``"auto"`` means for :class:`lossval.LossVal` and :class:`lossval.MLP`.

``epochs``, ``batch_size`` (both estimators) and the OT settings of LossVal
(``ot_batch_size``, ``reference_rows``, ``ot_every``, ``scaling``, ``sinkhorn_loop``, ``weight_lr``) default to
``"auto"`` (``weight_lr``: ``None``). At ``fit`` time :func:`resolve_settings`
turns every ``"auto"`` into a number from the number of training rows, by
the one table of :func:`lossval.large_data.large_data_settings`: the paper's
settings (30 epochs, batch 32, every batch's OT term exact) below
:data:`lossval.large_data.LARGE_FROM` rows, the measured large-table settings
from there on. Explicit values always win. The fitted estimator records the
resolved values in ``settings_`` (docs/benchmarks.md, section 3, has the
measurements behind the table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from lossval._checks import check_int

AUTO = "auto"
Auto = Literal["auto"]
#: The paper's network settings (Wibiral et al., 2024): 30 epochs of 32-row batches.
PAPER_EPOCHS = 30
PAPER_BATCH = 32
#: Default step of the weights under the "normalized" optimizers: a typical row moves by 4 % of the
#: mean weight per epoch (chosen on the development grid of docs/benchmarks.md; 0.01-0.08 were tried).
NORMALIZED_WEIGHT_LR = 0.04
#: What the LossVal-only OT settings resolve to below the large-table size: the paper's objective, exactly.
SMALL_TABLE_OT: dict[str, Any] = {
    "ot_batch_size": None, "reference_rows": None, "ot_every": 1, "scaling": 0.5, "sinkhorn_loop": "geomloss",
}  # fmt: skip


def check_auto_int(name: str, value: Any, *, allow_none: bool = False) -> int | str | None:
    """``"auto"``, an integer >= 1 (or ``None`` when allowed); anything else fails naming ``name``."""
    if value == AUTO and isinstance(value, str):
        return AUTO
    if value is None and allow_none:
        return None
    try:
        return check_int(name, value)
    except ValueError:
        extra = ", None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= 1 or 'auto'{extra}, got {value!r}") from None


def resolve_settings(n_rows: int, requested: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve the ``"auto"`` entries of ``requested`` for a table of ``n_rows`` training rows.

    Args:
        n_rows: number of training rows.
        requested: setting name -> value as given to the estimator; keys among ``epochs``,
            ``batch_size``, ``ot_batch_size``, ``reference_rows``, ``ot_every``, ``scaling``, ``sinkhorn_loop``,
            ``weight_lr``.
            ``"auto"`` (``weight_lr``: ``None``) is resolved, any other value is kept as given.

    Returns:
        the same keys, resolved. On a large table an automatic ``weight_lr`` (the step of the
        "normalized" weight optimizers) is :data:`NORMALIZED_WEIGHT_LR` scaled by ``30 / epochs`` (the weights take one step per epoch, so they travel as far in
        fewer epochs); below the large-table size it is the default step itself.
    """
    from lossval.large_data import large_data_settings

    table = large_data_settings(n_rows)
    large = "ot_batch_size" in table
    table = {**SMALL_TABLE_OT, **table}
    resolved = {key: table[key] if value == AUTO and key in table else value for key, value in requested.items()}
    if "weight_lr" in requested and requested["weight_lr"] in (None, AUTO):
        epochs = resolved.get("epochs", table["epochs"])
        resolved["weight_lr"] = NORMALIZED_WEIGHT_LR * PAPER_EPOCHS / epochs if large else NORMALIZED_WEIGHT_LR
    return resolved
