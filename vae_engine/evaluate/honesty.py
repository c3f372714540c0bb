"""Is the reported ELBO / IWAE a bound on a normalised likelihood of the data as given?
(ENGINE_SPEC section 7, "Bounds".)

``elbo`` and ``iwae`` lower-bound log p(x) only if p(x|z) is a normalised density or mass
function *of the data as the model sees it*, with parameters that do not depend on the x
being scored. Every summary carries ``bound`` (bool) and ``bound_reason`` (str):

- a pmf (Bernoulli) bounds log P(x) of binary data; on grey levels it is not normalised;
- a discrete 8-bit likelihood (discretized logistic) bounds log P(x) of 8-bit data;
- a continuous density (Gaussian, continuous Bernoulli) bounds log p(x) of continuous data.
  On data that only takes a few levels (binary, 8-bit) a density is not a probability: it can
  exceed 1 without limit (a learned per-pixel sigma collapses on pixels that are always 0), so
  it bounds nothing. With uniform dequantisation (``likelihood.dequantize``, 8-bit data) the
  density of x~ = (255 x + u)/256 gives a bound on the discrete log-likelihood:
  log P(x) >= E_u log p(x~) - N log 256, and bits/dim are reported in those discrete units;
- a sigma fitted to the very image being scored (``gaussian`` ``optimal_per_image``) makes
  p(x|z) depend on x: never a bound (on mnist5k/shapes it reads ~59 nats above a shared sigma).
  ``optimal_shared`` evaluates with the sigma fitted on training batches, which is fine.
"""

from __future__ import annotations

import math

import torch

LOG_256 = math.log(256.0)


def data_kind(x: torch.Tensor) -> str:
    """``binary`` (every value 0 or 1), ``8bit`` (every value k/255) or ``continuous``."""
    if bool(((x == 0) | (x == 1)).all()):
        return "binary"
    scaled = x * 255.0
    if bool(((scaled - scaled.round()).abs() < 1e-3).all()):
        return "8bit"
    return "continuous"


def bound_status(likelihood: object, kind: str, dequantized: bool) -> tuple[bool, str]:
    """(bound, reason) for a likelihood (its ``support`` and ``fits_sigma_to_x`` attributes)
    on data of ``kind`` (see :func:`data_kind`)."""
    support = getattr(likelihood, "support", "unknown")
    if getattr(likelihood, "fits_sigma_to_x", False):
        return False, ("sigma is fitted to each scored image (optimal_per_image): p(x|z) depends "
                       "on x, so elbo/iwae bound nothing (they read tens of nats too high)")
    if support == "binary":
        if kind == "binary":
            return True, "Bernoulli mass function of binary data"
        return False, ("Bernoulli on non-binary data is not normalised; binarize the data or "
                       "use continuous_bernoulli")
    if support == "8bit":
        if kind in ("8bit", "binary"):
            return True, "discrete likelihood of 8-bit data: bits/dim are comparable with " \
                         "published numbers"
        return False, "a discrete 8-bit likelihood on data that is not on the 8-bit grid"
    if support == "continuous":
        if dequantized:
            return True, ("density of uniformly dequantised 8-bit data: elbo/iwae bound "
                          "log p(x~); bits/dim bound the discrete log-likelihood")
        if kind == "continuous":
            return True, "normalised density of continuous data"
        return False, (f"a continuous density evaluated on {kind} data is not a probability "
                       "(it can exceed 1; a learned sigma collapses on constant pixels); set "
                       "likelihood.dequantize: true (8-bit data) or use a discrete likelihood")
    return False, "this likelihood does not say what it is normalised over"


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x~ = (255 x + u) / 256 with u ~ U[0, 1) per value; x on the 8-bit grid in [0, 1]."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ((x * 255.0).round() + u) / 256.0
