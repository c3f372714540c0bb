"""NVAE-style hierarchical VAE (Vahdat & Kautz 2020, "NVAE: A Deep Hierarchical Variational
Autoencoder"): config, builder, registration. The network is in hierarchical_nn.py (torch);
see models/config.py.

Every latent scale and the stem halve the image, so an image side must exceed
2**len(groups_per_scale); the config checks this against the dataset's declared image size at
parse time, the builder against the loaded data (a user's npz has no declared size).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from vae_engine.errors import SpecError
from vae_engine.models.config import ARCHITECTURES, ArchitectureConfig


def max_scales(size: int) -> int:
    """Most latent scales an image side allows: the stem and every scale halve it."""
    return (size - 1).bit_length() - 1


class HierarchicalModel(ArchitectureConfig):
    """NVAE-style top-down hierarchical VAE: residual cells, latent groups at several scales."""

    paper: ClassVar[str] = (
        "Vahdat & Kautz 2020, NVAE: A Deep Hierarchical Variational Autoencoder (NeurIPS)"
    )
    grouped: ClassVar[bool] = True

    arch: Literal["hierarchical"] = "hierarchical"
    channels: int = Field(default=16, ge=4, le=512, description="Feature channels of every cell.")
    latent_channels: int = Field(
        default=2, ge=1, le=256, description="Channels of each latent group's feature map."
    )
    groups_per_scale: list[Annotated[int, Field(ge=1, le=16)]] = Field(
        default_factory=lambda: [2, 2], min_length=2, max_length=4,
        description="Latent groups at each scale, largest spatial scale first (NVAE order: the "
        "top, smallest scale is last). Each scale halves the resolution.",
    )
    cells_per_group: int = Field(
        default=1, ge=1, le=8, description="Residual cells per group in each path."
    )

    size_field: ClassVar[str] = "model.channels"

    def latent_groups(self) -> int:
        return sum(self.groups_per_scale)

    def size_estimate(self, shape: tuple[int, int, int], out_channels: int) -> tuple[int, int]:
        c, h, w = shape
        ch, lc, cells = self.channels, self.latent_channels, self.cells_per_group
        # per group: residual cells in both paths (two 3x3 convs each), the posterior and
        # prior heads, the combiner; plus the stem and the output convs
        per_group = 2 * cells * 2 * 9 * ch * ch + 2 * (18 * ch * ch + 18 * ch * lc) \
            + (ch + lc) * ch
        params = self.latent_groups() * per_group + 9 * ch * (c + out_channels + 3 * ch)
        acts = 0
        for scale, groups in enumerate(self.groups_per_scale, 1):
            pixels = (h >> scale) * (w >> scale)
            acts += groups * pixels * (4 * cells * ch + 6 * ch + 4 * lc)
        return params, acts + (c + out_channels + 2 * ch) * h * w

    def problems(self, spec: Any) -> list[str]:
        size = spec.dataset.side()
        n_scales = len(self.groups_per_scale)
        # the stem and every latent scale halve the image: a side must exceed 2**n_scales
        if size is not None and size <= 2**n_scales:
            return [
                f"model.groups_per_scale: {n_scales} latent scales need images larger than "
                f"{size}x{size}; use at most {max_scales(size)} scales"
            ]
        return []


@ARCHITECTURES.register(HierarchicalModel)
def build_hierarchical(
    spec: HierarchicalModel, data_shape: tuple[int, int, int], out_channels: int
) -> Any:
    n_scales = len(spec.groups_per_scale)
    side = min(data_shape[1:])
    if n_scales > max_scales(side):
        raise SpecError([{
            "field": "model.groups_per_scale",
            "message": f"{n_scales} latent scales need images larger than {side}x{side} "
            f"(at most {max(max_scales(side), 0)} scales here)",
        }])
    from vae_engine.models.hierarchical_nn import HierarchicalVAE

    return HierarchicalVAE(
        data_shape, out_channels, spec.channels, spec.latent_channels,
        list(spec.groups_per_scale), spec.cells_per_group,
    )
