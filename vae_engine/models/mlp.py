"""Fully connected VAE (Kingma & Welling 2014, appendix C): config, builder, registration.

The network is in mlp_nn.py (torch), imported when a model is built; see models/config.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from vae_engine.models.config import ARCHITECTURES, ArchitectureConfig

Activation = Literal["relu", "elu", "gelu", "tanh"]


class MlpModel(ArchitectureConfig):
    """Fully connected encoder/decoder (mirrored hidden sizes)."""

    paper: ClassVar[str] = "Kingma & Welling 2014, Auto-Encoding Variational Bayes (ICLR)"

    arch: Literal["mlp"] = "mlp"
    latent_dim: int = Field(default=16, ge=1, le=4096, description="latent units M")
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default_factory=lambda: [512], description="encoder hidden sizes (decoder mirrored)"
    )
    activation: Activation = "relu"

    def size_estimate(self, shape: tuple[int, int, int], out_channels: int) -> tuple[int, int]:
        c, h, w = shape
        m = self.latent_dim
        encoder = [c * h * w, *self.hidden, 2 * m]
        decoder = [m, *reversed(self.hidden), out_channels * h * w]
        params = sum(a * b + b for layers in (encoder, decoder)
                     for a, b in zip(layers, layers[1:], strict=False))
        return params, sum(encoder) + sum(decoder)


@ARCHITECTURES.register(MlpModel)
def build_mlp(spec: MlpModel, data_shape: tuple[int, int, int], out_channels: int) -> Any:
    from vae_engine.models.mlp_nn import MlpVAE

    return MlpVAE(data_shape, out_channels, spec.latent_dim, list(spec.hidden), spec.activation)
