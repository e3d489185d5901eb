"""`snapshot checkout --output DIR` never deletes what it did not create."""

from __future__ import annotations

import pytest

from flows.cli import main
from cleaning.snapshot import CHECKOUT_MARKER, SnapshotError, check_destination


def _baseline_run_id(root) -> str:
    from mlflow.tracking import MlflowClient

    from cleaning.project import Project

    from cleaning.snapshot import locked_hash

    project = Project.load(root)
    client = MlflowClient()  # the session's store: other clones of the baseline log to the same experiment
    experiment = client.get_experiment_by_name(project.params.tracking.experiment)
    md5 = locked_hash(project)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.dvc_snapshot = '{md5}'")
    return runs[0].info.run_id  # a run whose snapshot this clone has


@pytest.mark.parametrize("output", [".", "keep.txt", "data-of-mine"])
def test_checkout_refuses_to_replace_what_is_not_a_previous_checkout(project, output, capsys):
    (project / "keep.txt").write_text("the user's work")
    (project / "data-of-mine").mkdir()
    (project / "data-of-mine" / "x.csv").write_text("1")
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    code = main(["--project", str(project), "snapshot", "checkout", _baseline_run_id(project), "--output", str(project / output)])
    assert code != 0
    assert "nothing was changed" in capsys.readouterr().err or output == "keep.txt"
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == before
    assert (project / "keep.txt").read_text() == "the user's work"


def test_a_previous_checkout_is_replaced_and_verified(project, tmp_path):
    run_id = _baseline_run_id(project)
    out = tmp_path / "restored"
    assert main(["--project", str(project), "snapshot", "checkout", run_id, "--output", str(out)]) == 0
    assert main(["--project", str(project), "snapshot", "checkout", run_id, "--output", str(out)]) == 0  # again: replaced
    assert (out / "clean.parquet").is_file() and (out / CHECKOUT_MARKER).is_file()


def test_an_empty_folder_or_a_previous_checkout_may_be_replaced(tmp_path):
    check_destination(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_destination(tmp_path / "empty")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "clean.parquet").write_bytes(b"x")
    with pytest.raises(SnapshotError, match="not a previous snapshot checkout"):
        check_destination(tmp_path / "old")
    (tmp_path / "old" / CHECKOUT_MARKER).write_text("abc.dir\n")
    check_destination(tmp_path / "old")
