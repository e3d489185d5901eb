"""The core library stays pure: importing it pulls in neither Prefect nor MLflow nor DVC."""

from __future__ import annotations

import subprocess
import sys


def test_import_lossval_is_pure():
    code = "import sys, lossval; bad = [m for m in ('prefect', 'mlflow', 'dvc') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pipeline_package_never_imports_prefect():
    """cleaning/ is the stages and their data logic; Prefect only wraps it (tasks/, flows/)."""
    import ast
    from pathlib import Path

    offenders = []
    for path in sorted((Path(__file__).resolve().parents[1] / "cleaning").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "prefect"]
    assert not offenders, offenders
