"""The atomic writer keeps the mode a normal write would give, and never replaces what is not a regular file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from lossval.io import write_json, write_text


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_mode_of_a_normal_write(tmp_path, umask_022):
    write_text("x", tmp_path / "new.txt")
    (tmp_path / "plain.txt").write_text("x")
    assert _mode(tmp_path / "new.txt") == _mode(tmp_path / "plain.txt") == 0o644


def test_an_existing_file_keeps_its_mode(tmp_path, umask_022):
    target = tmp_path / "shared.json"
    target.write_text("{}")
    target.chmod(0o664)
    write_json({"a": 1}, target)
    assert _mode(target) == 0o664 and target.read_text().startswith("{")


def test_a_symlink_is_written_through_not_replaced(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_text("new", link)
    assert link.is_symlink() and real.read_text() == "new"


def test_dev_null_through_a_link_stays_a_device(tmp_path):
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    write_text("discarded", link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text("through the pipe", fifo)
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert received == ["through the pipe"]


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_text("x", tmp_path)


def test_quarantine_csv_dash_writes_to_standard_output(tmp_path, capsys):
    import pandas as pd

    from flows.cli import main
    from tests.helpers import REPO

    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    snapshot = tmp_path / "data" / "pipeline" / "snapshot"
    snapshot.mkdir(parents=True)
    pd.DataFrame({"row_id": ["r1"], "stage": ["value"], "reason": ["value:label-like"], "value": [0.1], "rule": ["auto"],
                  "note": ["=1+1"]}).to_parquet(snapshot / "quarantine.parquet")
    assert main(["--project", str(tmp_path), "quarantine", "--csv", "-"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["row_id,stage,reason,value,rule,note", "r1,value,value:label-like,0.1,auto,'=1+1"]
    assert "wrote 1 rows" in err and not (tmp_path / "-").exists()
