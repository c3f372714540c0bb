"""Engine exceptions with messages meant for users (the CLI and the API print them as is)."""

from __future__ import annotations


class VaelabError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""


class SpecError(VaelabError):
    """An invalid spec. ``errors`` lists every bad field: ``[{"field", "message"}]``."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        lines = [f"{e['field']}: {e['message']}" for e in errors]
        super().__init__("invalid spec: " + "; ".join(lines))


class DataError(VaelabError):
    """A dataset that cannot be loaded or has the wrong shape/values."""


class NonFiniteLossError(VaelabError):
    """Training produced a non-finite loss."""

    def __init__(self, step: int, last_checkpoint: str | None, key: str = "loss"):
        self.step = step
        self.last_checkpoint = last_checkpoint
        where = last_checkpoint or "none (no checkpoint written yet)"
        super().__init__(f"non-finite {key} at step {step}; last good checkpoint: {where}")
