"""Latent traversals and on-demand samples from a checkpoint.

A traversal (Higgins et al. 2017, beta-VAE, fig. 1/7) encodes one example to its posterior
mean, then for each chosen latent unit sets that unit to each of ``values`` (absolute values
in prior standard deviations, N(0, 1) prior) with every other unit held at the example's
posterior mean, and decodes. Row r of the grid is unit ``units[r]``; column c is
``values[c]``.

Which units: explicit ``units``; else the most active by ``unit_scores`` (e.g. the stored
summary's ``active_units_variance``, Burda et al. 2015's A_u: the units above the spec's
``eval.au_threshold``, most active first); else the units carrying the most information
about this example, ranked by KL(q(z_u|x) || N(0, 1)). :func:`posterior_mean_variance`
computes A_u over a batch when no summary is at hand.

Hierarchical models (vae_engine.models.hierarchical): only the top group is traversed. Its
prior is N(0, I), so values in prior standard deviations mean the same as for a flat model;
the lower groups have conditional priors p(z_g | z_<g) whose scale varies, so fixed values
would not be comparable there. With the top group set, each lower group is set to its
conditional prior mean given the groups above it (a temperature-0 top-down pass, the
convention of NVAE / VDVAE figures that fix the top latents and let the rest follow the
prior): the row then shows what the top unit controls generatively rather than a decoder
fed stale lower codes inferred for the original top.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch

from vae_engine.checkpoint import LoadedCheckpoint
from vae_engine.errors import VaelabError
from vae_engine.images import png_bytes
from vae_engine.models.base import gaussian_kl_std_normal
from vae_engine.models.hierarchical_nn import HierarchicalVAE

log = logging.getLogger(__name__)

MAX_SAMPLES = 1024
MAX_VALUES = 64


def default_values() -> torch.Tensor:
    return torch.linspace(-3.0, 3.0, 9)


def traversable_units(ck: LoadedCheckpoint) -> int:
    """How many units can be traversed: all of a flat model, the top group of a hierarchy."""
    model = ck.model
    if isinstance(model, HierarchicalVAE):
        return model.group_sizes[0]
    return int(model.latent_dim)


@torch.no_grad()
def posterior_mean_variance(
    ck: LoadedCheckpoint, x: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """A_u = Var_x(E_q[z_u]) over a batch x (B, C, H, W), B >= 2 -> (M,) (Burda et al.)."""
    if x.shape[0] < 2:
        raise VaelabError("posterior_mean_variance needs at least 2 examples")
    device = next(ck.model.parameters()).device
    mu = torch.cat([ck.model.encode(xb.to(device))[0] for xb in x.split(batch_size)])  # (B, M)
    return mu.var(dim=0, correction=1)


def select_units(
    scores: Sequence[float] | torch.Tensor, max_units: int = 10,
    threshold: float | None = None,
) -> list[int]:
    """Units ranked by score (descending, ties by index), at most ``max_units``.

    With a threshold, only units scoring above it; if none does (posterior collapse), the
    top-scoring units anyway, with a warning, so a traversal is never empty.
    """
    s = torch.as_tensor(scores, dtype=torch.float64).flatten()
    order = sorted(range(s.numel()), key=lambda u: (-float(s[u]), u))
    if threshold is not None:
        active = [u for u in order if float(s[u]) > threshold]
        if not active:
            log.warning("no unit scores above %g; traversing the top %d anyway", threshold,
                        max_units)
        else:
            order = active
    return order[:max_units]


def _check_units(units: Sequence[int], n_units: int, max_units: int, what: str) -> list[int]:
    out = [int(u) for u in units]
    if not out:
        raise VaelabError("units: give at least one latent unit")
    if len(out) > max_units:
        raise VaelabError(f"units: {len(out)} units exceed max_units={max_units}")
    bad = [u for u in out if not 0 <= u < n_units]
    if bad:
        raise VaelabError(f"units {bad} out of range: {what} has units 0..{n_units - 1}")
    if len(set(out)) != len(out):
        raise VaelabError(f"units: {out} repeats a unit")
    return out


def _check_x(ck: LoadedCheckpoint, x: torch.Tensor) -> torch.Tensor:
    shape = tuple(ck.meta.get("data_shape") or ())
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or (shape and tuple(x.shape[1:]) != shape):
        raise VaelabError(f"x must be one example of shape (1, {', '.join(map(str, shape))}), "
                          f"got {tuple(x.shape)}")
    return x


@torch.no_grad()
def _decode_top(model: HierarchicalVAE, top: torch.Tensor) -> torch.Tensor:
    """Decoder params for top-group codes (B, M_0), lower groups at their prior means."""
    b = top.shape[0]
    zs = [top.reshape(b, model.lc, *model.scale_sizes[0])]
    zs += [top.new_zeros(b, model.lc, *model.scale_sizes[i]) for i in model.group_scales[1:]]
    for g in range(1, len(zs)):  # mu_p of group g depends only on z_<g, already final
        _, groups = model.top_down(b, zs=zs)
        zs[g] = groups[g][3]
    return model.top_down(b, zs=zs)[0]


@torch.no_grad()
def traversal_grid(
    ck: LoadedCheckpoint, x: torch.Tensor, units: Sequence[int] | None = None,
    values: torch.Tensor | Sequence[float] | None = None, max_units: int = 10,
    unit_scores: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Traverse latent units around one example x (1, C, H, W).

    Returns the likelihood means (len(units) * len(values), C, H, W), row-major: image
    r * len(values) + c has unit ``units[r]`` set to ``values[c]``. Unit choice and the
    hierarchical case: see the module docstring. Deterministic (posterior means, no noise).
    """
    model, lik = ck.model, ck.likelihood
    vals = default_values() if values is None else torch.as_tensor(values, dtype=torch.float32)
    vals = vals.flatten()
    if not 1 <= vals.numel() <= MAX_VALUES or not torch.isfinite(vals).all():
        raise VaelabError(f"values: give 1..{MAX_VALUES} finite values")
    x = _check_x(ck, x)
    device = next(model.parameters()).device
    hier = isinstance(model, HierarchicalVAE)
    n_units = traversable_units(ck)
    what = "the top latent group" if hier else "the model"
    mu, logvar = model.encode(x.to(device))  # (1, M) each
    mu, logvar = mu[:, :n_units], logvar[:, :n_units]  # the top group comes first
    if units is None:
        if unit_scores is not None:
            scores = torch.as_tensor(unit_scores, dtype=torch.float64).flatten()
            if scores.numel() not in (n_units, model.latent_dim):
                raise VaelabError(f"unit_scores has {scores.numel()} entries; {what} has "
                                  f"{n_units} units")
            units = select_units(scores[:n_units], max_units, ck.spec.eval.au_threshold)
        else:
            units = select_units(gaussian_kl_std_normal(mu, logvar)[0], max_units)
    units = _check_units(units, n_units, max_units, what)

    rows, cols = len(units), vals.numel()
    z = mu.repeat(rows * cols, 1)  # (R*C, M_top)
    for r, u in enumerate(units):
        z[r * cols : (r + 1) * cols, u] = vals.to(device=device, dtype=z.dtype)
    if hier:
        params = _decode_top(model, z)
    else:
        params = model.decode(z)  # (R*C, P*C, H, W)
    return lik.mean(params)


def traversal_png(
    ck: LoadedCheckpoint, x: torch.Tensor, units: Sequence[int] | None = None,
    values: torch.Tensor | Sequence[float] | None = None, max_units: int = 10,
    unit_scores: Sequence[float] | torch.Tensor | None = None, scale: int = 2,
) -> bytes:
    """:func:`traversal_grid` as a PNG, one row per unit."""
    images = traversal_grid(ck, x, units, values, max_units, unit_scores)
    cols = default_values().numel() if values is None else torch.as_tensor(values).numel()
    return png_bytes(images, nrow=cols, scale=scale)


def fresh_samples(
    ck: LoadedCheckpoint, n: int, temperature: float = 1.0, seed: int | None = None,
    scale: int = 2,
) -> bytes:
    """A PNG grid of n new samples: likelihood means at prior draws z ~ N(0, T^2 I).

    The same (n, temperature, seed) gives the same image; seed None draws a fresh one.
    """
    if not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise VaelabError(f"n must be an integer in 1..{MAX_SAMPLES}, got {n!r}")
    if not math.isfinite(temperature) or temperature < 0:
        raise VaelabError(f"temperature must be finite and >= 0, got {temperature!r}")
    if seed is not None and not 0 <= seed < 2**63:
        raise VaelabError(f"seed must be in 0..2**63-1, got {seed!r}")
    images = ck.sample(n, temperature, seed)  # (n, C, H, W)
    return png_bytes(images, nrow=max(1, math.ceil(math.sqrt(n))), scale=scale)


__all__ = ["default_values", "fresh_samples", "posterior_mean_variance", "select_units",
           "traversable_units", "traversal_grid", "traversal_png"]
