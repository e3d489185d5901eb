"""Each stage is defined once: the DVC stage entry and the Prefect task call the same function of cleaning/stages.py."""

from __future__ import annotations

import yaml

from tests.helpers import REPO


def test_dvc_stage_entry_and_prefect_task_call_the_same_function():
    from flows.cli import build_parser
    from cleaning import stages
    from tasks import steps

    dvc_stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(dvc_stages) == list(stages.STAGES)  # dvc.yaml runs every stage, in the flow's order
    for name, entry in dvc_stages.items():
        assert entry["cmd"] == f"lossval-clean stage {name}"  # -> flows.cli.cmd_stage -> cleaning.stages.run_stage(name)
        task = getattr(steps, name)
        assert task.fn is stages.STAGES[name], f"the Prefect task {name!r} does not call cleaning.stages.{name}"
        assert task.name == name
    args = build_parser().parse_args(["stage", "value"])
    assert args.func.__name__ == "cmd_stage"
    assert set(build_parser()._subparsers._group_actions[0].choices["stage"]._actions[1].choices) == set(stages.STAGES)


def test_every_stage_reads_the_run_overrides_file_and_params_yaml_is_never_edited():
    from cleaning.overrides import OVERRIDES_FILE, flat, nested

    for name, entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        files = [p for p in entry.get("params", []) if isinstance(p, dict)]
        assert {OVERRIDES_FILE: None} in files, f"stage {name} does not list {OVERRIDES_FILE}"
    assert flat(nested({"quarantine.strategy": "quantile", "value.options": {}})) == {"quarantine.strategy": "quantile", "value.options": {}}


def test_overrides_round_trip_through_the_file(tmp_path):
    from cleaning.overrides import read_overrides, write_overrides

    (tmp_path / "params.yaml").write_text("base: {}\n")
    write_overrides(tmp_path, {"quarantine.quantile": 0.05, "value.options.weight_lr": 0.1})
    assert read_overrides(tmp_path) == {"quarantine.quantile": 0.05, "value.options.weight_lr": 0.1}
    write_overrides(tmp_path, {})
    assert read_overrides(tmp_path) == {}


def test_no_module_over_about_300_lines():
    too_long = {}
    for folder in ("pipeline", "tasks", "flows", "lossval", "schemas"):
        for path in (REPO / folder).glob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > 320:  # "about 300" (issue 13)
                too_long[path.relative_to(REPO).as_posix()] = lines
    assert not too_long, too_long
