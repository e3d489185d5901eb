"""The test clones copy the checkout as a ``git clone`` would hold it, without the state of a run made in it:
a user runs the README's main command, then its test command, in the same clone."""

from __future__ import annotations

from tests.helpers import clone_files, committed_bytes, git_commit_all, is_run_state


def test_a_run_in_the_checkout_does_not_reach_the_test_clones(tmp_path):
    repo = tmp_path / "repo"
    (repo / "cleaning").mkdir(parents=True)
    (repo / "cleaning" / "code.py").write_text("x = 1\n")
    (repo / "params.overrides.yaml").write_text("{}\n")
    git_commit_all(repo, "source")
    # what the demo leaves behind (tests/pipeline/test_gitignore.py: files DVC writes for git), and a developer's edits
    (repo / "params.overrides.yaml").write_text("ingest:\n  path: data/demo/electricity_noisy.csv\n")
    (repo / "data" / "pipeline" / "metrics").mkdir(parents=True)
    (repo / "data" / "pipeline" / "metrics" / "counts.json").write_text('{"rows_in": 3000}')
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    (repo / "cleaning" / "code.py").write_text("x = 2\n")
    (repo / "cleaning" / "new.py").write_text("y = 1\n")

    assert clone_files(repo) == ["cleaning/code.py", "cleaning/new.py", "params.overrides.yaml"]
    assert is_run_state("params.overrides.yaml") and not is_run_state("cleaning/code.py")
    assert committed_bytes("params.overrides.yaml", repo) == b"{}\n"  # what the clone gets instead of the run's edit
