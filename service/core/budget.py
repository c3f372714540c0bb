"""The spec resource budget of this deployment: the engine's estimate
(vae_engine/spec/budget.py) checked at submit, for a job and for every point of a sweep,
against the ``VAELAB_MAX_*`` settings. Over budget is a 422 naming the field, with the
estimate and the limit."""

from __future__ import annotations

from typing import Any

from service.core.config import Settings


def check(spec: Any, settings: Settings) -> None:
    """Raise :class:`vae_engine.errors.SpecError` when the parsed spec is over budget."""
    from vae_engine.errors import SpecError
    from vae_engine.spec.budget import Limits, estimate, over_budget

    limits = Limits(max_parameters=settings.max_parameters,
                    max_activation_bytes=settings.max_activation_bytes,
                    max_iwae_elements=settings.max_iwae_elements,
                    max_logged_points=settings.max_logged_points)
    problems = over_budget(spec, estimate(spec), limits)
    if problems:
        raise SpecError(problems)
