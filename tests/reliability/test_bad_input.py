"""Bad input, kind by kind: either rows quarantined with a precise reason while the run goes on, or one
clear error message with nothing written and the previous snapshot, ledger and MLflow history untouched.
(The LossVal API's own bad inputs are in tests/core/test_bad_input.py.)"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.cli import main
from flows.pipeline import lossval_clean
from cleaning.failures import EXIT_DATA, EXIT_USAGE
from cleaning.project import Project
from tests.reliability.conftest import assert_unchanged, capture


def _raw(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "data" / "raw.csv", dtype=str, keep_default_na=False)


def _write(root: Path, frame: pd.DataFrame, name: str = "raw.csv") -> None:
    frame.to_csv(root / "data" / name, index=False)


def _params(root: Path, **changes) -> None:
    tree = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        tree[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))


# ---- inputs that must fail the run with one clear message ------------------------------------
def empty_file(root):
    (root / "data" / "raw.csv").write_bytes(b"")
    return "raw.csv is empty"


def header_only(root):
    (root / "data" / "raw.csv").write_text((root / "data" / "raw.csv").read_text().splitlines()[0] + "\n")
    return "raw.csv has a header but no data rows"


def missing_file(root):
    (root / "data" / "raw.csv").unlink()
    return "input file not found"


def bad_gzip(root):
    (root / "data" / "raw.csv.gz").write_bytes(gzip.compress((root / "data" / "raw.csv").read_bytes())[:200])
    _params(root, ingest__path="data/raw.csv.gz")
    return "cannot read raw.csv.gz"


def bad_parquet(root):
    (root / "data" / "raw.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    _params(root, ingest__path="data/raw.parquet")
    return "cannot read raw.parquet as parquet"


def wrong_delimiter(root):
    _raw(root).to_csv(root / "data" / "raw.csv", index=False, sep=";")
    return "wrong delimiter"


def wrong_encoding(root):
    text = (root / "data" / "raw.csv").read_text().replace("target", "cible_é", 1)
    (root / "data" / "raw.csv").write_bytes(text.encode("latin-1"))
    return "not UTF-8 text"


def missing_target(root):
    _write(root, _raw(root).drop(columns="target"))
    return "target column 'target' not found"


def missing_feature(root):
    _write(root, _raw(root).drop(columns="vicdemand"))
    return r"feature column\(s\) \['vicdemand'\] not found"


def duplicated_columns(root):
    text = (root / "data" / "raw.csv").read_text().replace("nswdemand", "nswprice", 1)
    (root / "data" / "raw.csv").write_text(text)
    return r"duplicated column names: \['nswprice'\]"


def wrong_types_everywhere(root):
    _write(root, _raw(root).assign(period="noon"))
    return "column 'period' is not numeric"


def single_class(root):
    _write(root, _raw(root).assign(target="UP"))
    return "the data has a single class 'UP'"


def _flat_reference(root):
    ref = pd.read_csv(root / "data" / "reference.csv", dtype=str)
    _write(root, ref.assign(target=np.where(np.arange(len(ref)) % 10 == 0, "FLAT", ref["target"])), "reference.csv")


def unseen_reference_class(root):
    _flat_reference(root)  # a class the schema allows but the data never has
    _params(root, validate__schema_name="params", validate__classes=["DOWN", "UP", "FLAT"])
    return r"reference set has classes never seen in the data: \['FLAT'\]"


def reference_fails_schema(root):
    _flat_reference(root)  # a class the schema does not allow: the trusted set is not clean
    return r"the reference set must be clean, but 12 of its rows fail the schema \(e.g. schema:isin:target\)"


def reference_too_small(root):
    _write(root, pd.read_csv(root / "data" / "reference.csv", dtype=str).head(40), "reference.csv")
    return "reference set too small"


def reference_empty(root):
    ref = root / "data" / "reference.csv"
    ref.write_text(ref.read_text().splitlines()[0] + "\n")
    return "reference.csv has a header but no data rows"


def all_rows_invalid(root):
    _write(root, _raw(root).assign(nswprice="-1"))
    return "no rows left: all 300 rows fail validation"


def params_unknown_key(root):
    _params(root, quarantine__strategyy="auto")
    return r"quarantine.strategyy: Extra inputs are not permitted"


def params_wrong_type(root):
    _params(root, value__epochs="thirty")
    return r"value.epochs: Input should be a valid integer"


def threshold_quarantines_everything(root):
    _params(root, quarantine__strategy="value", quarantine__value=1e9, quarantine__max_fraction=1.0)
    return "would quarantine every valued row"


def output_outside_project(root):
    _params(root, base__data_dir="../elsewhere")
    return "must be relative to the project, without '..'"


FAILING = [
    empty_file, header_only, missing_file, bad_gzip, bad_parquet, wrong_delimiter, wrong_encoding, missing_target,
    missing_feature, duplicated_columns, wrong_types_everywhere, single_class, unseen_reference_class, reference_fails_schema, reference_too_small,
    reference_empty, all_rows_invalid, params_unknown_key, params_wrong_type, threshold_quarantines_everything,
    output_outside_project,
]


@pytest.mark.parametrize("corrupt", FAILING, ids=[f.__name__ for f in FAILING])
def test_cli_run_fails_clearly_and_changes_nothing(project, corrupt, capsys):
    experiment = Project.load(project).params.tracking.experiment
    before = capture(project, experiment)
    message = corrupt(project)
    usage = corrupt in (params_unknown_key, params_wrong_type, output_outside_project)
    assert main(["--project", str(project), "run"]) == (EXIT_USAGE if usage else EXIT_DATA)  # cleaning/failures.py
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lossval-clean run: error: ")
    import re

    assert re.search(message, err), err
    assert_unchanged(project, experiment, before)


# ---- inputs whose bad rows are quarantined while the run goes on ------------------------------
def _run_and_quarantine(root: Path, **overrides) -> pd.DataFrame:
    summary = lossval_clean(project_dir=str(root), overrides=overrides)
    project = Project.load(root)
    clean = pd.read_parquet(project.snapshot_dir / "clean.parquet")
    quarantine = pd.read_parquet(project.snapshot_dir / "quarantine.parquet")
    ids = set(clean["row_id"]) | set(quarantine["row_id"])
    assert len(ids) == len(clean) + len(quarantine) == summary["rows_in"]  # every row, exactly once
    return quarantine


def _schema_reasons(quarantine: pd.DataFrame) -> list[str]:
    return quarantine.loc[quarantine["stage"] == "schema", "reason"].tolist()


def test_truncated_file_quarantines_the_cut_row(project):
    raw = project / "data" / "raw.csv"
    text = raw.read_text()
    raw.write_text(text[: text.rstrip("\n").rfind(",") - 3])  # cut inside the last row
    reasons = _schema_reasons(_run_and_quarantine(project))
    assert len(reasons) == 1 and "schema:not_nullable:target" in reasons[0]


def test_extra_columns_are_kept_not_used(project):
    _write(project, _raw(project).assign(comment="free text", batch="7"))
    _run_and_quarantine(project)
    clean = pd.read_parquet(Project.load(project).snapshot_dir / "clean.parquet")
    assert {"comment", "batch"} <= set(clean.columns)


def test_duplicated_row_ids_are_quarantined(project):
    frame = _raw(project)
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    frame.loc[[5, 9], "id"] = "r1"
    _write(project, frame)
    q = _run_and_quarantine(project, **{"ingest.id_column": "id"})
    dup = q[q["reason"] == "schema:duplicate_id"]
    assert sorted(dup["row_id"]) == ["r1~2", "r1~3"]


def test_non_numeric_strings_are_quarantined(project):
    frame = _raw(project)
    frame.loc[[3, 4], "nswprice"] = ["n/a", "12,5"]
    _write(project, frame)
    assert _schema_reasons(_run_and_quarantine(project)) == ["schema:not_numeric:nswprice"] * 2


def test_nan_and_inf_in_features_are_quarantined(project):
    frame = _raw(project)
    frame.loc[3, "nswprice"] = ""
    frame.loc[4, "vicdemand"] = "inf"
    frame.loc[5, "transfer"] = "-inf"
    _write(project, frame)
    reasons = sorted(_schema_reasons(_run_and_quarantine(project)))
    assert reasons == ["schema:greater_than_or_equal_to:transfer", "schema:less_than_or_equal_to:vicdemand", "schema:not_nullable:nswprice"]


def test_nan_in_target_is_quarantined(project):
    frame = _raw(project)
    frame.loc[7, "target"] = ""
    _write(project, frame)
    assert _schema_reasons(_run_and_quarantine(project)) == ["schema:not_nullable:target"]


def test_constant_column_runs(project):
    _write(project, _raw(project).assign(vicprice="0.003467"))
    assert _schema_reasons(_run_and_quarantine(project)) == []


def test_dataset_smaller_than_the_batch(project):
    _write(project, _raw(project).head(20))
    q = _run_and_quarantine(project, **{"ingest.max_row_drop": 1.0})  # 280 rows fewer than the baseline run: allowed here
    assert len(q) <= 5  # the 25 % cap of 20 rows


@pytest.fixture()
def regression_project(tmp_path, use_mlflow):
    """White wine as regression with a schema built from params (no ranges): for inf and 1e300 targets/features."""
    from tests.conftest import EXAMPLE
    from tests.helpers import make_project

    root = make_project(tmp_path / "wine", rows=10, reference_rows=10, epochs=1, experiment=f"wine-{tmp_path.name}")
    wine = pd.read_csv(EXAMPLE / "white_wine.csv.gz", dtype=str).drop_duplicates()
    wine.iloc[:260].to_csv(root / "data" / "raw.csv", index=False)
    wine.iloc[260:400].to_csv(root / "data" / "reference.csv", index=False)
    _params(root, base__task="regression", validate__schema_name="params", validate__classes=None)
    return root


def test_inf_in_target_is_quarantined_and_huge_magnitudes_run(regression_project):
    frame = _raw(regression_project)
    frame.loc[2, "target"] = "inf"
    frame.loc[[10, 11], "alcohol"] = ["1e300", "-1e300"]
    _write(regression_project, frame)
    q = _run_and_quarantine(regression_project)
    assert _schema_reasons(q) == ["schema:finite:target"]
    values = pd.read_parquet(Project.load(regression_project).work_file("values.parquet"))
    assert np.isfinite(values["value"]).all()
