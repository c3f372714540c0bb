"""Convolutional VAE in the style of Burgess et al. 2018 / disentangling-vae: config, builder,
registration. The network is in conv_nn.py (torch); see models/config.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from vae_engine.models.config import ARCHITECTURES, ArchitectureConfig
from vae_engine.models.mlp import Activation


class ConvModel(ArchitectureConfig):
    """Strided-convolution encoder, transposed-convolution decoder (8, 28, 32, 64 px inputs)."""

    paper: ClassVar[str] = (
        "Higgins et al. 2017, beta-VAE (ICLR); Burgess et al. 2018 convolutional "
        "encoder/decoder"
    )

    arch: Literal["conv"] = "conv"
    latent_dim: int = Field(default=16, ge=1, le=4096, description="latent units M")
    channels: list[Annotated[int, Field(ge=1, le=2048)]] = Field(
        default_factory=lambda: [32, 64], min_length=1, max_length=4,
        description="channels of each stride-2 conv layer (each halves H and W)",
    )
    hidden: int = Field(default=256, ge=1, le=65536, description="fully connected layer size")
    activation: Activation = "relu"

    def size_estimate(self, shape: tuple[int, int, int], out_channels: int) -> tuple[int, int]:
        c, h, w = shape
        chans = [c, *self.channels]
        convs = sum(16 * a * b + b for a, b in zip(chans, chans[1:], strict=False))
        flat = chans[-1] * (h >> len(self.channels)) * (w >> len(self.channels))
        dense = flat * self.hidden + 2 * self.hidden * self.latent_dim  # encoder side
        params = 2 * (convs + dense) + self.hidden * flat  # decoder mirrors it
        maps = sum(b * (h >> i) * (w >> i) for i, b in enumerate(chans[1:], 1))
        acts = 2 * (c * h * w + maps + self.hidden) + 3 * self.latent_dim \
            + out_channels * h * w
        return params, acts


@ARCHITECTURES.register(ConvModel)
def build_conv(spec: ConvModel, data_shape: tuple[int, int, int], out_channels: int) -> Any:
    from vae_engine.models.conv_nn import ConvVAE

    return ConvVAE(
        data_shape, out_channels, spec.latent_dim, list(spec.channels), spec.hidden,
        spec.activation,
    )
