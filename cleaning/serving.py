"""The models a run logs, as MLflow serves them: raw feature rows in, class names (or numbers) out.

:class:`LabelModel` wraps a network saved by :func:`lossval.model.export_state`:
it takes a DataFrame of the raw feature columns (numeric columns as numbers,
categorical ones as text, as in the training file), encodes them as in
training (:func:`lossval.model.design_input`) and returns the class names
(classification) or the predictions in the target's units (regression).

:func:`log_label_model` logs it with MLflow's "models from code" (no pickled
Python object: the weights load with ``torch.load(weights_only=True)``), the
``lossval`` package and this module shipped in the model's ``code/`` folder,
the class names in the model's metadata, and explicit pip requirements (no
slow inference of the environment). Load it back with
``mlflow.pyfunc.load_model("models:/<name>@champion").predict(raw_rows)``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import Model
from mlflow.models.model import ModelInfo

import lossval
from lossval.model import design_input, module_from_state

STATE = "state"  # the artifact holding export_state's dict

#: The models-from-code entry MLflow runs to build the model (written next to the model at log time).
ENTRY = '"""lossval-clean\'s served model: cleaning.serving.LabelModel."""\n' "import mlflow\n\nfrom cleaning.serving import LabelModel\n\nmlflow.models.set_model(LabelModel())\n"


class LabelModel(mlflow.pyfunc.PythonModel):
    """Raw feature rows (N rows, the training feature columns) -> (N,) class names or numbers."""

    def load_context(self, context: Any) -> None:
        self.state = torch.load(context.artifacts[STATE], weights_only=True)
        self.module = module_from_state(self.state)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        """Class names (classification, the ``classes`` of the state) or floats (regression), one per row."""
        x = torch.from_numpy(design_input(self.state, pd.DataFrame(model_input)))
        with torch.no_grad():
            out = self.module(x)
        if self.state["task"] == "classification":
            return np.asarray(self.state["classes"], dtype=object)[out.argmax(dim=1).numpy()]
        return out[:, 0].double().numpy()


def requirements() -> list[str]:
    """The served model's pip requirements (pinned to this environment's versions), given so MLflow need not infer them."""
    import tqdm

    return [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}", f"pandas=={pd.__version__}", f"tqdm=={tqdm.__version__}"]


def log_label_model(
    *,
    run_id: str,
    name: str,
    state: dict[str, Any],
    input_rows: pd.DataFrame,
    class_names: Sequence[str] | None = None,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log ``state`` (export_state's dict) as a :class:`LabelModel` named ``name`` in the run ``run_id``.

    ``input_rows``: a few raw feature rows (the input example; the signature is inferred from them).
    ``class_names``: the classes in the network's output order (default: the state's ``classes``);
    they are stored in the state the model predicts with and in the model's metadata ``classes``.
    """
    state = dict(state)
    if state["task"] == "classification":
        classes = [str(c) for c in (class_names if class_names is not None else state["classes"])]
        if len(classes) != state["n_outputs"]:
            raise ValueError(f"{len(classes)} class names {classes} for a network with {state['n_outputs']} outputs")
        state["classes"] = classes
    metadata = {"task": state["task"], "classes": list(state["classes"]), "features": [str(c) for c in input_rows.columns]}
    with tempfile.TemporaryDirectory(prefix="lossval-model-") as tmp:
        folder = Path(tmp)
        torch.save(state, folder / "state.pt")
        package = folder / "code" / "cleaning"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text('"""The part of lossval-clean\'s pipeline package that the served model needs."""\n')
        shutil.copy2(Path(__file__), package / "serving.py")
        library = folder / "code" / "lossval"
        shutil.copytree(Path(lossval.__file__).parent, library, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "entry.py").write_text(ENTRY)
        return Model.log(
            artifact_path=None, name=name, flavor=mlflow.pyfunc, run_id=run_id, python_model=str(folder / "entry.py"),
            artifacts={STATE: str(folder / "state.pt")}, code_paths=[str(package), str(library)],
            input_example=input_rows, pip_requirements=requirements(), metadata=metadata,
            registered_model_name=registered_model_name,
        )  # fmt: skip
