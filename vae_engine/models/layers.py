"""Small building blocks shared by the architectures."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()
