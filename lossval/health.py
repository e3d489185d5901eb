"""The night's health: what a run's report and summary say first (pure functions, plain data in and out).

:func:`night_health` turns a run's facts into short lines, each with a status
(``ok`` or ``warn``): rows flagged against the canaries' estimate, the
champion decision with its intervals, the test-set size, the canary self-test,
the cap, the reference distance. :func:`breakdown` counts the quarantine by
reason and by class; :func:`changes` compares the quarantined rows with the
previous run of the same dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

OK, WARN = "ok", "warn"


def night_health(
    *,
    counts: Mapping[str, int],
    calibration: Mapping[str, float] | None,
    reliable: bool,
    capped: bool,
    max_fraction: float,
    gate: Mapping[str, Any] | None,
    reference_ratio: float | None,
    max_ratio: float,
) -> list[tuple[str, str, str]]:
    """``(topic, status, sentence)`` lines, most important first.

    Args:
        counts: rows_in, rows_quarantined_schema, rows_quarantined_value, rows_clean.
        calibration: :meth:`lossval.calibrate.Calibration.as_metrics` (None without canaries).
        reliable: the canary self-test passed (True without canaries).
        capped: the max_fraction cap bound.
        gate: ``cleaning.retrain.gate_record`` (promoted, reason, metric, test_rows, scores,
            improvement {variant: [point, low, high]}, confidence, resolves_one_point, one_point).
        reference_ratio: reference-to-train OT over train-to-train (higher = farther); max_ratio: the warning level.
    """
    lines: list[tuple[str, str, str]] = []
    flagged = int(counts["rows_quarantined_value"])
    if calibration is not None:
        est, low, high = calibration["estimated_bad"], calibration["estimated_bad_low"], calibration["estimated_bad_high"]
        precision = calibration.get("estimated_precision", float("nan"))
        sentence = f"{flagged} rows quarantined by value; the canaries estimate {est:.0f} bad rows (90 % interval {low:.0f}-{high:.0f})"
        if flagged:
            sentence += f", estimated precision {precision:.2f} and recall {calibration['estimated_recall']:.2f}"
        lines.append(("flagged vs estimate", OK if reliable else WARN, sentence))
        auroc = calibration["canary_auroc"]
        if reliable:
            lines.append(("canary check", OK, f"passed: corrupted canaries rank below clean controls with AUROC {auroc:.2f}"))
        else:
            lines.append(("canary check", WARN, f"FAILED: canary AUROC {auroc:.2f}: the valuation did not find known-bad rows, "
                          "so nothing was quarantined by value (schema quarantine still applies)"))
    else:
        lines.append(("flagged vs estimate", WARN, f"{flagged} rows quarantined by value; no canaries, so no estimate of how many are bad"))
    if gate:
        lines.append(("champion", OK, f"{gate['promoted']}: {gate['reason']}"))
        for name, (point, low, high) in gate["improvement"].items():
            lines.append((f"{name} vs all rows", OK if low > 0 else (WARN if high < 0 else OK),
                          f"{point:+.4f} {gate['metric']} ({gate['confidence']:.0%} paired-bootstrap interval {low:+.4f} to {high:+.4f})"))
        resolves = gate["resolves_one_point"]
        lines.append(("test set", OK if resolves else WARN, f"{gate['test_rows']} rows: "
                      + ("resolves" if resolves else "too small to resolve") + f" a one-point difference ({gate['one_point']:.3g} {gate['metric']})"))
    lines.append(("cap", WARN if capped else OK, f"the max_fraction cap ({max_fraction:g}) " + ("bound: more rows looked bad" if capped else "did not bind")))
    if reference_ratio is not None:
        far = reference_ratio > max_ratio
        lines.append(("reference distance", WARN if far else OK,
                      f"OT ratio to the training rows {reference_ratio:.2f} (warning above {max_ratio:g})"))
    return lines


def breakdown(quarantine: pd.DataFrame, *, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts by reason, counts by class) of a quarantine table (stage, reason, the row's columns)."""
    by_reason = quarantine.groupby(["stage", "reason"], dropna=False).size().rename("rows").reset_index()
    by_reason = by_reason.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)
    if target in quarantine.columns:
        by_class = quarantine.assign(**{target: quarantine[target].astype("string").fillna("<missing>")})
        by_class = by_class.groupby(["stage", target]).size().rename("rows").reset_index()
    else:
        by_class = pd.DataFrame(columns=["stage", target, "rows"])
    return by_reason, by_class


def changes(*, current: set[str], previous: set[str] | None, restored: set[str]) -> dict[str, int] | None:
    """New / recurring / restored / released rows of this quarantine against the previous run's (same dataset).

    Returns None without a previous run. ``restored``: rows the operator took off quarantine;
    ``released``: in the previous quarantine, neither quarantined now nor restored.
    """
    if previous is None:
        return None
    return {
        "new": len(current - previous),
        "recurring": len(current & previous),
        "restored": len(previous & restored),
        "released": len(previous - current - restored),
    }
