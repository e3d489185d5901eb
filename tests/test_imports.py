"""The core library stays pure: importing it pulls in neither Prefect nor MLflow nor DVC."""

from __future__ import annotations

import subprocess
import sys


def test_import_lossval_is_pure():
    code = "import sys, lossval; bad = [m for m in ('prefect', 'mlflow', 'dvc') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
