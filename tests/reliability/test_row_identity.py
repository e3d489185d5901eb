"""Row identity: ids unique by construction whatever the input, exact integer ids, reserved column names,
and the input's bytes hashed as they were read (no pipeline run needed: these are the ingestion steps)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lossval.rows import ROW_ID, TableError, assign_row_ids
from cleaning.ingest import check_rows, failed_rows, read_input
from cleaning.project import Project
from tests.helpers import EXAMPLE, REPO


def _workspace(root: Path, frame: pd.DataFrame | pa.Table, name: str = "raw.csv", **params) -> Project:
    """A folder with params.yaml and one input file: enough for the ingest and validate steps."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    tree = yaml.safe_load((root / "params.yaml").read_text())
    tree["ingest"]["path"] = f"data/{name}"
    for dotted, value in params.items():
        section, key = dotted.split("__")
        tree[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    if isinstance(frame, pa.Table):
        pq.write_table(frame, root / "data" / name)
    else:
        frame.to_csv(root / "data" / name, index=False)
    return Project.load(root)


def _electricity(rows: int) -> pd.DataFrame:
    return pd.read_csv(EXAMPLE / "electricity.csv", dtype=str, keep_default_na=False).head(rows)


# ---- 1. ids unique by construction ---------------------------------------------------------------
def test_a_suffixed_id_already_in_the_input_is_never_reused():
    frame = pd.DataFrame({"id": ["a", "a", "a~2"], "x": ["1", "2", "3"]})
    ids, duplicate = assign_row_ids(frame, "id")
    assert ids.is_unique, ids.tolist()
    assert ids.tolist() == ["a", "a~3", "a~2"]  # the user's own "a~2" keeps its id
    assert duplicate.tolist() == [False, True, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "a~2", "a~3", "a~2~2", "b", "~", "a~", "<missing>", None]), min_size=1, max_size=30))
def test_ids_are_unique_whatever_the_input(values):
    frame = pd.DataFrame({"id": pd.Series(values, dtype=object), "x": range(len(values))})
    ids, duplicate = assign_row_ids(frame, "id")
    assert ids.is_unique and ids.notna().all()
    present = frame["id"].notna()
    firsts = ~frame["id"].duplicated() & present
    assert (ids[firsts] == frame.loc[firsts, "id"]).all()  # every first occurrence keeps its own id
    assert (duplicate == (present & ~firsts)).all()


def test_colliding_ids_flow_through_validation_and_the_ledger_once_each(tmp_path):
    frame = _electricity(6)
    frame.insert(0, "id", ["a", "a", "a~2", "b", "b~2", "b"])
    project = _workspace(tmp_path, frame, ingest__id_column="id")
    ingested = read_input(project)
    assert ingested.frame[ROW_ID].is_unique
    failures = failed_rows(ingested, check_rows(project, ingested))
    assert sorted(failures[ROW_ID]) == ["a~3", "b~3"] and set(failures["reason"]) == {"schema:duplicate_id"}


# ---- 2. id types ------------------------------------------------------------------------------------
def test_integer_ids_with_a_null_in_parquet_stay_integers_and_stable(tmp_path):
    data = _electricity(4)
    columns = {c: pa.array(data[c].astype(float)) for c in data.columns if c != "target"}
    with_null = pa.table({"id": pa.array([7, None, 9, 2**53 + 1], pa.int64()), **columns, "target": pa.array(data["target"])})
    project = _workspace(tmp_path / "a", with_null, name="raw.parquet", ingest__id_column="id")
    ingested = read_input(project)
    ids = ingested.frame[ROW_ID].tolist()
    assert ids[0] == "7" and ids[2] == "9" and ids[3] == str(2**53 + 1)
    assert ids[1].startswith("<missing>~")
    result = check_rows(project, ingested)
    assert failed_rows(ingested, result)[["row_id", "reason"]].values.tolist() == [[ids[1], "schema:missing_id"]]

    without_null = with_null.filter(pa.array([True, False, True, True]))
    later = read_input(_workspace(tmp_path / "b", without_null, name="raw.parquet", ingest__id_column="id"))
    assert later.frame[ROW_ID].tolist() == ["7", "9", str(2**53 + 1)]  # same rows, same ids


def test_integers_above_2_to_the_53_are_not_false_duplicates(tmp_path):
    data = _electricity(3)
    columns = {c: pa.array(data[c].astype(float)) for c in data.columns if c != "target"}
    table = pa.table({"id": pa.array([2**53, 2**53 + 1, None], pa.int64()), **columns, "target": pa.array(data["target"])})
    project = _workspace(tmp_path, table, name="raw.parquet", ingest__id_column="id")
    ingested = read_input(project)
    assert not ingested.frame["_duplicate"].any()
    assert ingested.frame[ROW_ID].tolist()[:2] == [str(2**53), str(2**53 + 1)]


def test_a_missing_id_in_a_csv_is_a_schema_quarantine_with_its_own_reason(tmp_path):
    frame = _electricity(4)
    frame.insert(0, "id", ["r1", "", "r3", ""])
    project = _workspace(tmp_path, frame, ingest__id_column="id")
    ingested = read_input(project)
    assert ingested.frame[ROW_ID].is_unique
    failures = failed_rows(ingested, check_rows(project, ingested))
    assert failures["reason"].tolist() == ["schema:missing_id"] * 2
    assert all(r.startswith("<missing>~") for r in failures[ROW_ID])


# ---- 3. reserved column names ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["reason", "value", "rule", "row_id", "_duplicate", "stage"])
def test_a_reserved_column_name_is_refused_naming_the_column(tmp_path, name):
    frame = _electricity(5).assign(**{name: "mine"})
    project = _workspace(tmp_path, frame)
    with pytest.raises(TableError, match=rf"has a column named '{name}', a name lossval-clean uses for its own columns"):
        read_input(project)


def test_a_reserved_column_as_the_id_column_is_refused(tmp_path):
    frame = _electricity(5)
    frame.insert(0, "row_id", [f"r{i}" for i in range(5)])
    with pytest.raises(TableError, match="has a column named 'row_id'"):
        read_input(_workspace(tmp_path, frame, ingest__id_column="row_id"))


# ---- 5. the hash is of the bytes that were read ------------------------------------------------------
def test_the_input_hash_is_of_the_bytes_read_even_while_the_file_grows(tmp_path, monkeypatch):
    project = _workspace(tmp_path, _electricity(10))
    path = project.input_path(project.params.ingest.path)
    read_bytes = path.read_bytes()
    original = pd.read_csv

    def still_being_written(*args, **kwargs):
        frame = original(*args, **kwargs)
        if kwargs.get("nrows") is None:  # the data read: the writer appends more right after
            with open(path, "a") as f:
                f.write(path.read_text().splitlines()[1] + "\n")
        return frame

    monkeypatch.setattr(pd, "read_csv", still_being_written)
    ingested = read_input(project)
    assert ingested.rows_in == 10
    assert ingested.input_sha256 == hashlib.sha256(read_bytes).hexdigest()


# ---- 5. a partly delivered file is refused -----------------------------------------------------------
def _previous_run_read(project: Project, rows: int) -> None:
    project.metrics_dir.mkdir(parents=True, exist_ok=True)
    (project.metrics_dir / "counts.json").write_text(f'{{"rows_in": {rows}}}')


def test_a_file_with_far_fewer_rows_than_the_previous_run_is_refused(tmp_path):
    project = _workspace(tmp_path, _electricity(40))
    _previous_run_read(project, 100)
    with pytest.raises(TableError, match=r"raw.csv has 40 rows, 60% fewer than the previous run's 100 \(more than ingest.max_row_drop=0.5\)"):
        read_input(project)
    assert read_input(Project.load(tmp_path, overrides={"ingest.max_row_drop": 1.0})).rows_in == 40  # the operator's choice
    assert read_input(Project.load(tmp_path, overrides={"ingest.max_row_drop": 0.6})).rows_in == 40  # within the share


# ---- 12. real columns named like pandas' renames; a reference missing a feature ----------------------
def test_columns_named_price_and_price_1_are_two_real_columns(tmp_path):
    frame = _electricity(5).assign(**{"price": "1", "price.1": "2"})
    ingested = read_input(_workspace(tmp_path, frame))
    assert {"price", "price.1"} <= set(ingested.frame.columns) and ingested.frame["price.1"].tolist() == ["2"] * 5


def test_a_repeated_column_name_is_still_refused(tmp_path):
    frame = _electricity(5)
    path = tmp_path / "raw.csv"
    project = _workspace(tmp_path, frame)
    text = project.input_path(project.params.ingest.path).read_text().replace("nswdemand", "nswprice", 1)
    project.input_path(project.params.ingest.path).write_text(text)
    del path
    with pytest.raises(TableError, match=r"duplicated column names: \['nswprice'\]"):
        read_input(project)


def test_a_reference_file_missing_a_feature_fails_clearly(tmp_path):
    from schemas.dataset import DatasetError
    from cleaning.ingest import feature_names
    from cleaning.split import split_reference

    data = _electricity(200)
    project = _workspace(tmp_path, data, validate__schema_name="params", reference__path="data/reference.csv")
    data.drop(columns="vicdemand").head(100).to_csv(tmp_path / "data" / "reference.csv", index=False)
    ingested = read_input(project)
    valid = check_rows(project, ingested).valid
    with pytest.raises(DatasetError, match=r"the reference set data/reference.csv lacks column\(s\) \['vicdemand'\]"):
        split_reference(project, valid=valid, features=feature_names(project, valid))


@pytest.mark.parametrize("extra", [",surplus", ",,"])
def test_a_row_with_an_extra_field_is_that_rows_quarantine_not_the_files(tmp_path, extra):
    project = _workspace(tmp_path, _electricity(6))
    path = project.input_path(project.params.ingest.path)
    lines = path.read_text().splitlines()
    lines[3] += extra  # data row 3 has one or two fields more than the header
    path.write_text("\n".join(lines) + "\n")
    ingested = read_input(project)
    assert ingested.rows_in == 6
    result = check_rows(project, ingested)
    failures = failed_rows(ingested, result)
    assert failures["reason"].tolist() == ["schema:extra_fields"] and len(result.valid) == 5
    assert failures["target"].tolist() == [_electricity(6)["target"].iloc[2]]  # the row's own fields are kept
    from lossval.rows import read_table

    with pytest.raises(TableError, match="more fields than the header"):  # a reference file must be clean
        read_table(path)
