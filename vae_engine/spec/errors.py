"""Turning pydantic's validation errors into one entry per bad field.

pydantic reports a union member's errors under the member's tag
(``kl.schedule.constant.beta``) and a model validator's errors at the document root; users
wrote ``kl.schedule.beta`` and want each cross-field problem under its own field.
"""

from __future__ import annotations

from pydantic import ValidationError

from vae_engine.spec.unions import tagged_unions


class CrossFieldError(ValueError):
    """Problems that involve several fields, each ``"<dotted.field>: <message>"``.

    pydantic reports a validator's error at the document root; ``format_validation_error``
    takes the problems back out so that each is reported under its own field.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))

    def entries(self) -> list[dict[str, str]]:
        out = []
        for p in self.problems:
            field, sep, message = p.partition(": ")
            out.append({"field": field, "message": message} if sep
                       else {"field": "<root>", "message": p})
        return out


def format_validation_error(err: ValidationError) -> list[dict[str, str]]:
    """One entry per bad field: ``{"field": "kl.schedule.beta", "message": ...}``."""
    from vae_engine.spec.train import TrainSpec

    tagged = tagged_unions(TrainSpec)
    out = []
    for e in err.errors(include_url=False):
        cross = (e.get("ctx") or {}).get("error")
        if isinstance(cross, CrossFieldError):
            out += cross.entries()
            continue
        loc = list(e["loc"])
        cleaned = [
            part
            for i, part in enumerate(loc)
            if not (i > 0 and loc[i - 1] in tagged and isinstance(part, str))
        ]
        field = ".".join(str(p) for p in cleaned) or "<root>"
        out.append({"field": field, "message": e["msg"]})
    return out
