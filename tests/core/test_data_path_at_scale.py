"""Issue 17's data path at scale: the faster code gives the very same results (row ids, a contract persisted
in ledgers; the canary count interval), and the report's cost stays bounded in the number of rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from lossval import rows
from lossval.rows import assign_row_ids, content_ids, read_table
from tests.helpers import EXAMPLE

# Every row id of a bundled file, joined by newlines and hashed, as the row-by-row implementation before
# issue 17 (pandas str.cat + hashlib per row, commit 70a12aa) gave them.
BEFORE = {
    "electricity.csv": "0d29d35b13bf64066d42f16bfcec7f8c47cac8d3ea1feae5725092ce885382ed",
    "adult_raw_sample.csv": "1c06eb3d1dbffec10d502c3c0622a73b6602779948394d8a2ad3707c42650fea",
}


def _mixed() -> pd.DataFrame:
    return pd.DataFrame({
        "a": ["x", None, "é€", "", "a\x1fb", "x"], "b": [1, 2, None, 4, 5, 1], "c": [1.5, None, 2.0, float("nan"), 3.25, 1.5],
        "d": pd.array([1, None, 3, 4, 5, 1], dtype="Int64"), "e": [True, False, None, True, False, True],
    })  # fmt: skip


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_the_ids_of_the_bundled_files_are_the_ones_before_issue_17(name):
    ids, _ = assign_row_ids(read_table(EXAMPLE / name))
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == BEFORE[name]


def test_a_content_id_is_the_sha256_of_the_cells_as_text_joined_by_unit_separators():
    frame = _mixed()
    cells = frame.astype("string").fillna("\x00")
    expected = [hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:16] for row in cells.itertuples(index=False)]
    assert content_ids(frame).tolist() == expected
    assert content_ids(frame).tolist() == [  # the values before issue 17
        "e54499e86dc7b1a3", "9a4abc0c61352a65", "b7b0cd078f45bcf7", "3c52cfc0007d540a", "dfb74844b07a474b", "e54499e86dc7b1a3",
    ]  # fmt: skip
    single = frame[["a"]]
    assert content_ids(single).tolist() == [hashlib.sha256(v.encode()).hexdigest()[:16] for v in single["a"].astype("string").fillna("\x00")]


def test_hashing_in_chunks_gives_the_same_ids_on_the_same_index(monkeypatch):
    frame = _mixed().set_axis([10, 11, 12, 13, 14, 15])
    whole = content_ids(frame)
    monkeypatch.setattr(rows, "HASH_CHUNK", 4)
    chunked = content_ids(frame)
    assert chunked.equals(whole) and list(chunked.index) == [10, 11, 12, 13, 14, 15]
    assert content_ids(frame.iloc[[]]).empty


def test_duplicate_and_missing_ids_get_the_same_suffixes_as_before():
    frame = pd.DataFrame({"id": ["a", "a", "a~2", "a", None, None, "b~x"], "v": ["1", "1", "2", "3", "4", "4", "5"]})
    ids, duplicate = assign_row_ids(frame, "id")
    assert ids.tolist() == ["a", "a~3", "a~2", "a~4", "<missing>~5cc3f9d1b3a18305", "<missing>~5cc3f9d1b3a18305~2", "b~x"]
    assert duplicate.tolist() == [False, True, False, True, False, False, False]
    ids, duplicate = assign_row_ids(_mixed())
    assert ids.tolist()[-1] == "e54499e86dc7b1a3~2" and duplicate.tolist() == [False] * 5 + [True]


def _old_estimate(train, bad, clean, seed):
    """The canary count interval as computed before issue 17: 200 resamples, each sorted."""
    from lossval.calibrate import N_BOOT, mixture_share

    rng = np.random.default_rng(seed)
    boots = [mixture_share(rng.choice(train, len(train)), rng.choice(bad, len(bad)), rng.choice(clean, len(clean))) for _ in range(N_BOOT)]
    return tuple(float(v) for v in np.quantile(boots, [0.05, 0.95]) * len(train))


@pytest.mark.parametrize("seed", [0, 3])
def test_the_canary_interval_is_the_one_the_sorting_bootstrap_gave(seed):
    from lossval.calibrate import _estimate

    rng = np.random.default_rng(seed)
    n, k = 5000, 60  # tie-free ranks of training rows and canaries, shuffled together
    ranks = rng.permutation(n + 2 * k).astype(np.float64)
    train, bad, clean = ranks[:n], np.sort(ranks[n:])[:k], np.sort(ranks[n:])[k:]  # corrupted canaries rank low
    share, low, high, _ = _estimate(train, bad, clean, seed)
    assert (low, high) == _old_estimate(train, bad, clean, seed)
    assert 0 < share < 1


def test_the_sorted_values_plot_draws_a_bounded_number_of_points_at_their_true_ranks(monkeypatch):
    from matplotlib.axes import Axes

    from lossval import report

    drawn = []
    original = Axes.scatter
    monkeypatch.setattr(Axes, "scatter", lambda self, x, y, **kw: drawn.append((np.asarray(x), np.asarray(y))) or original(self, x, y, **kw))
    values = np.random.default_rng(0).normal(size=20_000)
    flagged = values < -1.0
    monkeypatch.setattr(report, "SORTED_POINTS", 500)
    assert report.sorted_values(values, flagged, -1.0).startswith(b"\x89PNG")
    x, y = drawn[-1]
    assert 500 <= len(x) <= 502 and x[0] == 0 and x[-1] == len(values) - 1
    assert np.array_equal(y, np.sort(values)[x])  # each point at its true rank
    last_flagged = int(flagged.sum()) - 1
    assert last_flagged in x  # the edge of the quarantined rows is drawn
    report.sorted_values(values[:300], flagged[:300], -1.0)
    assert len(drawn[-1][0]) == 300  # a small table: every row


def test_the_report_lists_at_most_schema_rows_failures_and_says_so(monkeypatch):
    from lossval import report

    monkeypatch.setattr(report, "SCHEMA_ROWS", 3)
    schema = pd.DataFrame({"row_id": [f"s{i}" for i in range(5)], "reason": ["schema:isin:target"] * 5})
    worst = pd.DataFrame({"row_id": ["r1"], "value": [0.1], "reason": ["value:label-like"]})
    page = report.render_html(report.ReportData(title="t", counts={"rows_in": 5}, scores={}, metric="accuracy", rule="r", worst=worst,
                                                images={}, schema_failures=schema))
    assert "Rows that failed the schema (5)" in page and "The first 3 of 5 are shown" in page
    assert "s2" in page and "s3" not in page


EDGE_NUMBERS = ["1.5", " 2", "3 ", "+4", "1e3", "inf", "-inf", "nan", "NaN", "0x10", "1_000", ".5", "5.", "-0", "-0.0", "0", "infinity", "1e400",
                "4.9e-324", "00012", "Inf", "-nan", "1d3", "12345678901234567890", "9007199254740993", "0.1234567890123456789", "", None, "abc"]


@pytest.mark.parametrize("column", [
    pd.Series(EDGE_NUMBERS, dtype="str"), pd.Series(EDGE_NUMBERS, dtype=object),
    pd.Series([v for v in EDGE_NUMBERS if v not in (" 2", "3 ", "0x10", "1_000", "1d3", "abc", "")], dtype="str"),  # Arrow's path
    pd.Series(np.random.default_rng(0).normal(size=2000) * 10.0 ** np.random.default_rng(1).integers(-300, 300, 2000)).astype(str),
    pd.Series([1, None, 3], dtype="Int64"), pd.Series([1.5, np.nan, -0.0]), pd.Series([True, False]), pd.Series([2**53 + 1, 5]),
    pd.Series([1, "2", 3.5, None], dtype=object), pd.Series([], dtype="str"),
])  # fmt: skip
def test_numbers_parse_as_pandas_to_numeric_parses_them_to_the_bit(column):
    from schemas.dataset import parse_numbers

    expected = pd.to_numeric(column, errors="coerce").astype(float).to_numpy()
    parsed = parse_numbers(column.set_axis(np.arange(len(column)) + 7))
    assert list(parsed.index) == list(np.arange(len(column)) + 7)
    got = parsed.to_numpy()
    assert np.array_equal(got, expected, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(expected))


def test_the_reference_distance_scales_only_the_rows_it_draws_and_gives_the_same_numbers():
    from lossval.reference import reference_distance

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    mixed = X.assign(k=rng.choice(["x", "y", "z"], 600), f=rng.random(600) < 0.3)
    # the numbers the version that scaled every training row first gave (commit 70a12aa)
    numeric = reference_distance(X, X.iloc[:80] + 0.5, seed=3)
    assert numeric == pytest.approx({"reference_distance": 1.1667524576, "train_distance": 0.6256653666, "reference_distance_ratio": 1.8648186711})
    assert reference_distance(X.to_numpy(), X.iloc[:80].to_numpy() + 0.5, seed=3) == numeric
    assert reference_distance(mixed, mixed.iloc[:80], seed=3) == pytest.approx(
        {"reference_distance": 0.9413219690, "train_distance": 0.9951528906, "reference_distance_ratio": 0.9459068830})
    with pytest.raises(ValueError, match="missing"):  # a missing cell anywhere is still refused, not only in the rows drawn
        reference_distance(mixed.assign(k=mixed["k"].where(mixed.index != 599)), mixed.iloc[:80], seed=3)
