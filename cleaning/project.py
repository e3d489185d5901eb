"""Where a pipeline run reads and writes: the project root, its parameters and every path.

All paths in ``params.yaml`` are relative to the project root. Inputs may be
read from anywhere the user points to; outputs are only ever written below
``base.data_dir``, which must stay inside the project (no ``..``, no absolute
path elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.params import Params, ParamsError, load_params

PARAMS_FILE = "params.yaml"


def find_root(start: str | Path | None = None) -> Path:
    """The project root: ``LOSSVAL_PROJECT_DIR``, else the nearest folder upward holding params.yaml."""
    if start is None and os.environ.get("LOSSVAL_PROJECT_DIR"):
        start = os.environ["LOSSVAL_PROJECT_DIR"]
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE).is_file():
            return folder
    raise ParamsError(f"no {PARAMS_FILE} in {here} or any parent folder: run from a lossval-clean project")


@dataclass(frozen=True)
class Project:
    root: Path
    params: Params
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        root: str | Path | None = None,
        *,
        params_file: str = PARAMS_FILE,
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
    ) -> Project:
        """The project at ``root``; ``overrides`` None = the last run's (cleaning/overrides.py), as DVC stages see them."""
        from cleaning.overrides import read_overrides

        root = find_root(root)
        overrides = read_overrides(root) if overrides is None else dict(_as_mapping(overrides))
        project = cls(root=root, params=load_params(root / params_file, overrides), overrides=overrides)
        project.data_dir  # validates the output folder
        return project

    # ---- folders ---------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.output_path(self.params.base.data_dir)

    def output_path(self, relative: str) -> Path:
        """A path to write to, guaranteed inside the project root."""
        raw = Path(relative)
        if raw.is_absolute() or ".." in raw.parts:
            raise ParamsError(f"output path {relative!r} must be relative to the project, without '..'")
        path = (self.root / raw).resolve()
        if not path.is_relative_to(self.root):
            raise ParamsError(f"output path {relative!r} resolves outside the project ({path})")
        return path

    def input_path(self, relative: str) -> Path:
        """A path to read from: relative to the project root unless absolute."""
        raw = Path(relative).expanduser()
        return raw if raw.is_absolute() else self.root / raw

    @property
    def work(self) -> Path:
        return self.data_dir / "work"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshot"

    @property
    def metrics_dir(self) -> Path:
        return self.data_dir / "metrics"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def work_file(self, name: str) -> Path:
        return self.work / name

    @property
    def ledger_path(self) -> Path:
        return self.snapshot_dir / "ledger.parquet"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / ".run.lock"


INPUT_KEYS = ("ingest.path", "reference.path")


def check_flow_parameters(project: Project, *, params_file: str, project_dir: str | None, deployment_run: bool = False) -> None:
    """Refuse flow parameters that point outside the project (a flow run can be created through the
    Prefect API by anyone who can reach it): ``params_file`` must be a file inside the project, a
    ``project_dir`` of a deployment's run must be the deployment's own (``LOSSVAL_PROJECT_DIR``), and
    overrides of ``ingest.path`` / ``reference.path`` must stay inside the project unless the
    operator's params file sets ``ingest.allow_outside_overrides: true`` (an override cannot).

    Raises:
        ParamsError: naming the parameter and the path.
    """
    raw = Path(params_file)
    if raw.is_absolute() or ".." in raw.parts or not (project.root / raw).resolve().is_relative_to(project.root):
        raise ParamsError(f"params_file {params_file!r} must be a file inside the project, relative to it, without '..'")
    home = os.environ.get("LOSSVAL_PROJECT_DIR")
    if project_dir and home and deployment_run and Path(project_dir).resolve() != Path(home).resolve():
        raise ParamsError(f"project_dir {project_dir!r} is not this deployment's project ({home}); refused")
    if load_params(project.root / params_file).ingest.allow_outside_overrides:
        return
    for key in INPUT_KEYS:
        value = project.overrides.get(key)
        if value is not None and not project.input_path(str(value)).resolve().is_relative_to(project.root):
            raise ParamsError(
                f"override {key}={value!r} points outside the project; set ingest.allow_outside_overrides: true "
                "in the params file to allow it, or put the file in the project"
            )


def _as_mapping(overrides: Mapping[str, Any] | Sequence[str]) -> Mapping[str, Any]:
    if isinstance(overrides, Mapping):
        return overrides
    from schemas.params import parse_override

    return dict(parse_override(o) for o in overrides)
