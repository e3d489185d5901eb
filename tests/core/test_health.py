"""The night's health lines, the quarantine breakdown, run-to-run changes and the report's order (pure, fast)."""

from __future__ import annotations

import pandas as pd

from lossval.health import OK, WARN, breakdown, changes, night_health
from lossval.report import ReportData, render_html

COUNTS = {"rows_in": 100, "rows_quarantined_schema": 2, "rows_quarantined_value": 10, "rows_clean": 88}
CAL = {"estimated_bad": 12.0, "estimated_bad_low": 6.0, "estimated_bad_high": 20.0, "estimated_precision": 0.7,
       "estimated_recall": 0.6, "canary_auroc": 0.9, "canary_recall": 0.6}
GATE = {"promoted": "all", "reason": "all rows stays champion: weighted is better by +0.0040 accuracy [-0.0010, +0.0090]",
        "metric": "accuracy", "test_rows": 183, "one_point": 0.01, "resolves_one_point": False, "confidence": 0.9,
        "improvement": {"clean": [-0.02, -0.04, -0.001], "weighted": [0.004, -0.001, 0.009]}}


def _lines(**overrides):
    args = dict(counts=COUNTS, calibration=CAL, reliable=True, capped=False, max_fraction=0.25, gate=GATE, reference_ratio=1.2, max_ratio=3.0)
    return {topic: (status, text) for topic, status, text in night_health(**(args | overrides))}


def test_health_opens_with_the_estimate_and_says_what_is_wrong():
    lines = _lines()
    assert list(lines)[0] == "flagged vs estimate"
    assert lines["flagged vs estimate"][1].startswith("10 rows quarantined by value; the canaries estimate 12 bad rows (90 % interval 6-20)")
    assert lines["canary check"][0] == OK and lines["champion"][1].startswith("all: all rows stays champion")
    assert lines["clean vs all rows"][0] == WARN  # worse beyond its interval
    assert lines["test set"] == (WARN, "183 rows: too small to resolve a one-point difference (0.01 accuracy)")
    assert lines["cap"][0] == OK and lines["reference distance"][0] == OK
    bad = _lines(reliable=False, capped=True, reference_ratio=4.0)
    assert bad["canary check"][0] == WARN and "nothing was quarantined by value" in bad["canary check"][1]
    assert bad["cap"][0] == WARN and bad["reference distance"][0] == WARN


def test_breakdown_and_changes():
    q = pd.DataFrame({"row_id": list("abcd"), "stage": ["schema", "value", "value", "value"],
                      "reason": ["schema:x", "value:label-like", "value:label-like", "value:feature-like"], "target": [None, "UP", "DOWN", "UP"]})
    by_reason, by_class = breakdown(q, target="target")
    assert by_reason.iloc[0].to_dict() == {"stage": "value", "reason": "value:label-like", "rows": 2}
    assert set(map(tuple, by_class.to_numpy().tolist())) == {("schema", "<missing>", 1), ("value", "UP", 2), ("value", "DOWN", 1)}
    assert changes(current={"a", "b", "c"}, previous=None, restored=set()) is None
    assert changes(current={"a", "b", "c"}, previous={"b", "c", "d", "e"}, restored={"d"}) == {"new": 1, "recurring": 2, "restored": 1, "released": 1}


def test_report_shows_health_first_schema_failures_and_rows_sorted_by_value():
    worst = pd.DataFrame({"row_id": ["r2", "r1"], "value": [0.2, 0.001], "reason": ["value:label-like"] * 2})  # unsorted
    schema = pd.DataFrame({"row_id": ["s1", "s2", "s3"], "reason": ["schema:not_nullable:nswprice", "schema:in_range:day", "schema:isin:target"]})
    data = ReportData(
        title="t", counts=COUNTS, scores={"test_accuracy_all": 0.8}, metric="accuracy", rule="calibrated:p>=0.6,k=10", worst=worst,
        images={}, health=night_health(counts=COUNTS, calibration=CAL, reliable=True, capped=False, max_fraction=0.25, gate=GATE,
                                       reference_ratio=1.0, max_ratio=3.0),
        schema_failures=schema, links={"MLflow run": "http://127.0.0.1:5000/#/experiments/1/runs/abc"},
    )
    page = render_html(data)
    assert page.index("Tonight's health") < page.index("<h2>Rows</h2>") < page.index("failed the schema") < page.index("Lowest-valued rows")
    assert all(r in page for r in ("s1", "s2", "s3")) and page.index("r1") < page.index("r2")
    assert 'href="http://127.0.0.1:5000/#/experiments/1/runs/abc"' in page and "No previous run of this dataset" in page
