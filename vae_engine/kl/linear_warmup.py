"""Linear KL warm-up (Sonderby et al. 2016), in NVAE's form (Vahdat & Kautz 2020, kl_coeff):

    w(t) = beta_max * max(min((t - t_const) / t_anneal, 1), w_min)
    t_anneal = anneal_portion * T,  t_const = const_portion * T.
"""

from __future__ import annotations

from vae_engine.kl.base import SCHEMES, KLScheme


def warmup_weight(
    step: int, total_steps: int, anneal_portion: float, const_portion: float, min_weight: float
) -> float:
    t_anneal = anneal_portion * total_steps
    t_const = const_portion * total_steps
    return max(min((step - t_const) / t_anneal, 1.0), min_weight)


@SCHEMES.register("linear_warmup")
class LinearWarmup(KLScheme):
    summary = "KL weight ramps linearly from w_min to beta_max over a portion of training."
    paper = "Sonderby et al. 2016, Ladder VAE; NVAE (Vahdat & Kautz 2020) form"

    def _ramp(self, step: int) -> float:
        s = self.spec
        return warmup_weight(
            step, self.ctx.total_steps, s.anneal_portion, s.const_portion, s.min_weight
        )

    def weight(self, step: int) -> float:
        return float(self.spec.beta_max) * self._ramp(step)

    def in_warmup(self, step: int) -> bool:
        return self._ramp(step) < 1.0
