"""The ``kl`` section: how the rate enters the objective (ENGINE_SPEC section 2).

A schedule or controller (``kl.schedule``, the SCHEMES registry) x an optional rate modifier
(``kl.free_bits``, ``kl.balancing``: the MODIFIERS registry, by section) x the estimator
(``kl.estimator``, the ESTIMATORS registry) x the reduction (``kl.reduction``). The choices
of each come from the registries (unions.py); the rules between them are the components'
``problems`` hooks, run by TrainSpec once the whole spec is known (train.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from vae_engine.kl import ESTIMATORS, MODIFIERS, SCHEMES
from vae_engine.registry import ComponentConfig, Registry, Section
from vae_engine.spec.unions import RegistryChoice, RegistryUnion


def default_of(registry: Registry[Any], name: str) -> Callable[[], ComponentConfig]:
    """A default_factory: the named component with its defaults, looked up when used."""
    return lambda: registry.config(name)()


def in_section(section: str) -> Callable[[type[ComponentConfig]], bool]:
    return lambda config: getattr(config, "section", None) == section


def _balancing_kind(v: Any) -> str | None:
    # Let users omit the kind (``balancing: {alpha: sqrt}``): the first registered one (nvae).
    # The name of this function appears in pydantic's error for an unknown kind.
    kinds = [c.model_fields["kind"].default for c in MODIFIERS.configs()
             if in_section("balancing")(c)]
    default = kinds[0] if kinds else None
    return v.get("kind", default) if isinstance(v, dict) else getattr(v, "kind", default)


class KLSpec(Section):
    schedule: Annotated[ComponentConfig, RegistryUnion(SCHEMES)] = Field(
        default_factory=default_of(SCHEMES, "constant")
    )
    reduction: Literal["sum", "mean"] = Field(
        default="sum", description="sum: the true ELBO; mean: per-dim means of both terms."
    )
    free_bits: Annotated[
        ComponentConfig | None,
        RegistryUnion(MODIFIERS, where=in_section("free_bits"), optional=True),
    ] = Field(default=None, description="Free-bits rate modifier (off by default).")
    balancing: Annotated[
        ComponentConfig | None,
        RegistryUnion(MODIFIERS, where=in_section("balancing"), discriminator=_balancing_kind,
                      optional=True),
    ] = Field(
        default=None, description="KL balancing across latent groups (hierarchical models)."
    )
    estimator: Annotated[str, RegistryChoice(ESTIMATORS)] = Field(
        default="analytic",
        description="analytic: per-example KL; batch_stats: moment-matched KL of the batch of z.",
    )

    def components(self) -> list[ComponentConfig]:
        """The chosen KL components, in the order their cross-field problems are reported."""
        out = [self.balancing, self.free_bits, ESTIMATORS.config(self.estimator)(),
               self.schedule]
        return [c for c in out if c is not None]
