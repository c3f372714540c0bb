"""The service's shape (DESIGN.md, STYLE.md 1-2): small modules, torch only in the inference
module, the worker started by name and never imported for it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SERVICE = ROOT / "service"
MAX_LINES = 400
# engine modules that import torch when imported: only the inference module may use them
TORCH_MODULES = ("torch", "vae_engine.checkpoint", "vae_engine.traversal", "vae_engine.data",
                 "vae_engine.models", "vae_engine.trainer")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_service_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in SERVICE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_only_the_inference_module_imports_torch_code() -> None:
    users = {str(p.relative_to(ROOT)) for p in SERVICE.rglob("*.py")
             if any(n == m or n.startswith(m + ".") for n in _imports(p) for m in TORCH_MODULES)}
    assert users == {"service/core/inference.py"}


def test_the_service_does_not_import_the_launcher_from_the_worker() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in SERVICE.rglob("*.py")
                 if any(n.startswith("worker.launcher") or n == "worker" for n in _imports(p))]
    assert offenders == []
