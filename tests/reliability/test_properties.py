"""Property-based: random messy tables thrown at ingestion, validation and the quarantine decision.
Invariant: every input row ends in the clean output or in the quarantine, exactly once, by id."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossval.rows import ROW_ID
from schemas.dataset import DatasetError
from cleaning.ingest import check_rows, failed_rows, read_input
from cleaning.project import Project
from cleaning.quarantine import decide_rows
from cleaning.value import CANARY_COLUMNS, Valued
from tests.helpers import REPO

FEATURES = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer"]

good = st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda v: f"{v:.6g}")
messy = st.one_of(
    good, good, good,
    st.sampled_from(["", "nan", "inf", "-inf", "1e300", "-0.5", "2", "abc", "1,5", " ", "NULL", "=1+1"]),
    st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=4),  # a raw newline would be a new CSV row
)
day = st.one_of(st.integers(1, 7).map(str), st.sampled_from(["0", "8", "3.5", "", "x"]))
label = st.sampled_from(["UP", "DOWN", "UP", "DOWN", "FLAT", "", "up"])
row = st.fixed_dictionaries({**{f: messy for f in FEATURES if f != "day"}, "day": day, "target": label})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prop")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    tree = yaml.safe_load((root / "params.yaml").read_text())
    tree["ingest"]["path"] = "data/raw.csv"
    # random values and no canaries: the value rules here are the plain ones (calibrated needs canaries;
    # its accounting is tested with them in tests/pipeline/test_decisions_flow.py)
    tree["quarantine"]["strategy"] = "auto"
    (root / "params.yaml").write_text(yaml.safe_dump(tree))
    (root / "data").mkdir()
    return root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=40), duplicates=st.integers(0, 5), extra=st.booleans(), seed=st.integers(0, 2**16))
def test_every_row_is_clean_or_quarantined_exactly_once(workspace, rows, duplicates, extra, seed):
    frame = pd.DataFrame(rows)[FEATURES + ["target"]]
    frame = pd.concat([frame, frame.head(duplicates)], ignore_index=True)  # exact duplicate rows
    if extra:
        frame["comment"] = "x"
    frame.sample(frac=1, random_state=seed).to_csv(workspace / "data" / "raw.csv", index=False)
    project = Project.load(workspace)
    ingested = read_input(project)
    ids = list(ingested.frame[ROW_ID])
    assert len(ids) == len(set(ids)) == len(frame)  # every row has its own id
    try:
        validated = check_rows(project, ingested)
    except DatasetError as e:  # the file as a whole is unusable: one clear message, nothing written
        assert "no rows left" in str(e) or "not numeric" in str(e)
        return
    failures = failed_rows(ingested, validated)
    valid_ids, failed_ids = list(validated.valid[ROW_ID]), list(failures[ROW_ID])
    assert not set(valid_ids) & set(failed_ids)
    assert sorted(valid_ids + failed_ids) == sorted(ids)
    assert failures["reason"].str.match(r"^schema:[a-z_]+(:[a-z]+)?(;schema:[a-z_]+(:[a-z]+)?)*$").all(), failures["reason"].tolist()
    # the decision on top of any values keeps the accounting exact
    rng = np.random.default_rng(seed)
    values = pd.DataFrame({ROW_ID: valid_ids, "value": rng.random(len(valid_ids)), "loss_part": 0.0, "transport_part": 0.0,
                           "reason": rng.choice(["label", "feature"], len(valid_ids))})
    valued = Valued(values=values, history=pd.DataFrame(), model_state={}, device="cpu", seconds=0.0, canaries=pd.DataFrame(columns=CANARY_COLUMNS))
    try:
        cleaned = decide_rows(project, rows_in=len(ids), input_sha256="x", valid=validated.valid, schema_failures=failures,
                              valued=valued, run_id="r", at="2026-01-01T00:00:00+00:00")
    except DatasetError as e:
        assert "would quarantine every valued row" in str(e)
        return
    clean_ids, quarantined_ids = list(cleaned.clean[ROW_ID]), list(cleaned.quarantine[ROW_ID])
    assert not set(clean_ids) & set(quarantined_ids)
    assert sorted(clean_ids + quarantined_ids) == sorted(ids)
    assert cleaned.counts["rows_in"] == len(clean_ids) + len(quarantined_ids)
