"""A run's ``--set`` overrides, kept in their own parameters file so that ``params.yaml`` is never edited.

``params.overrides.yaml`` holds the overrides of the last run (``{}`` for none), nested like
``params.yaml``. Every stage of ``dvc.yaml`` lists it as a parameters file, so DVC records the
run's effective parameters natively: ``dvc status`` and ``dvc params diff`` see them, every saved
experiment carries them (``dvc exp show`` has a column per overridden key), and ``dvc repro``
reproduces the last run as it ran. A run without ``--set`` writes ``{}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lossval.io import write_text

OVERRIDES_FILE = "params.overrides.yaml"
HEADER = (
    "# The last run's overrides (`lossval-clean run --set key=value`, or a flow run's `overrides`), written by the run.\n"
    "# params.yaml is never edited; every stage of dvc.yaml lists this file, so DVC records the effective parameters.\n"
)


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of :func:`nested`; a mapping value at a known leaf (e.g. ``value.options``) stays whole
    only when it is empty, which is all an override of a mapping can be told apart by."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flat(value, prefix=f"{name}.")
        else:
            out[name] = value
    return out


def read_overrides(root: Path) -> dict[str, Any]:
    path = Path(root) / OVERRIDES_FILE
    if not path.is_file():
        return {}
    return flat(yaml.safe_load(path.read_text()) or {})


def write_overrides(root: Path, overrides: Mapping[str, Any]) -> Path:
    """Record ``overrides`` as the run's (atomically; unchanged bytes when they are the same)."""
    path = Path(root) / OVERRIDES_FILE
    text = HEADER + yaml.safe_dump(nested(overrides), sort_keys=True, default_flow_style=False)
    if path.is_file() and path.read_text() == text:
        return path
    return write_text(text, path)
