"""KL-weighting schemes. Importing this package registers every built-in scheme."""

from vae_engine.kl import (  # noqa: F401  (registration)
    beta_norm,
    capacity,
    constant,
    cyclical,
    dual_ascent,
    geco,
    linear_warmup,
    pi_controller,
    sigmoid,
)
from vae_engine.kl.base import SCHEMES, KLScheme, SchemeContext
from vae_engine.kl.rate import rate_term


def build_scheme(spec, ctx: SchemeContext) -> KLScheme:
    return SCHEMES.get(spec.kind, "kl.schedule.kind")(spec, ctx)


__all__ = ["SCHEMES", "KLScheme", "SchemeContext", "build_scheme", "rate_term"]
