"""The multilayer perceptron LossVal trains, its paper defaults, and device choice."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}

#: The architectures of the LossVal paper's experiments (Wibiral et al., 2024,
#: taken from OpenDataVal's MLPs): classification 5 linear layers of 100 units
#: with ReLU, regression 3 linear layers of 90 units with tanh.
PAPER_ARCHITECTURE: dict[str, tuple[tuple[int, ...], str]] = {
    "classification": ((100, 100, 100, 100), "relu"),
    "regression": ((90, 90), "tanh"),
}


def build_mlp(in_features: int, out_features: int, hidden_layers: Sequence[int], activation: str) -> nn.Sequential:
    """An MLP ``in -> hidden... -> out`` with ``activation`` between layers; the output is raw (logits)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    width = in_features
    for hidden in hidden_layers:
        layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; anything else must be a usable torch device."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available on this machine")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return resolved


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU generator seeded, restoring its state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
