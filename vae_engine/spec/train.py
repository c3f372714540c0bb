"""``TrainSpec``: one VAE training job, assembled from the registries.

Each component section (``dataset``, ``model``, ``likelihood``, and in ``kl`` the schedule,
modifiers and estimator) is a union over its registry (unions.py). The rules that involve
several sections live with the component that needs them (its ``problems`` hook, e.g. NVAE
balancing needs a warm-up schedule and several latent groups); ``TrainSpec`` runs every
chosen component's hook once the whole spec is known and raises one
:class:`~vae_engine.spec.errors.CrossFieldError` listing them all (STYLE rule 4).

When a registry changes, :func:`rebuild` regenerates the validators and the JSON schema of
``KLSpec`` and ``TrainSpec`` in place, so the same classes accept the new component.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from vae_engine.data import DATASETS
from vae_engine.kl import ESTIMATORS, MODIFIERS, SCHEMES
from vae_engine.likelihoods import LIKELIHOODS
from vae_engine.models import ARCHITECTURES
from vae_engine.registry import ComponentConfig, Section
from vae_engine.spec.errors import CrossFieldError
from vae_engine.spec.kl import KLSpec, default_of
from vae_engine.spec.sections import EvalSpec, OptimSpec, TrainSection
from vae_engine.spec.unions import RegistryUnion

REGISTRIES = (DATASETS, ARCHITECTURES, LIKELIHOODS, SCHEMES, MODIFIERS, ESTIMATORS)


class TrainSpec(Section):
    """One VAE training job."""

    name: str = Field(default="vae", min_length=1, max_length=200)
    dataset: Annotated[ComponentConfig, RegistryUnion(DATASETS)] = Field(
        default_factory=default_of(DATASETS, "mnist5k")
    )
    model: Annotated[ComponentConfig, RegistryUnion(ARCHITECTURES)] = Field(
        default_factory=default_of(ARCHITECTURES, "mlp")
    )
    likelihood: Annotated[ComponentConfig, RegistryUnion(LIKELIHOODS)] = Field(
        default_factory=default_of(LIKELIHOODS, "bernoulli")
    )
    kl: KLSpec = Field(default_factory=KLSpec)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    def components(self) -> list[ComponentConfig]:
        """Every chosen component, in the order their cross-field problems are reported."""
        return [*self.kl.components(), self.model, self.dataset, self.likelihood]

    @model_validator(mode="after")
    def _cross_checks(self) -> TrainSpec:
        problems = [p for c in self.components() for p in c.problems(self)]
        if self.train.cuda_graph and self.train.device == "cpu":
            problems.append("train.cuda_graph: needs a CUDA device; train.device is cpu")
        if problems:
            raise CrossFieldError(problems)
        return self


def rebuild() -> None:
    """Regenerate the spec's validators after a registry changed (inner models first)."""
    KLSpec.model_rebuild(force=True)
    TrainSpec.model_rebuild(force=True)


for _registry in REGISTRIES:
    _registry.on_change(rebuild)
