"""The house's shape (DESIGN.md; STYLE.md rules 1, 2 and 13): imports run worker -> service
-> vae_engine, the worker holds no SQL, every statement on a table lives under service/db/,
modules stay small, and only the inference module runs torch code in the service."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 400
# engine modules that import torch when imported: only the inference module may use them
TORCH_MODULES = ("torch", "vae_engine.checkpoint", "vae_engine.traversal", "vae_engine.data",
                 "vae_engine.models", "vae_engine.trainer")
# engine modules under those that are numpy-only (checked below): the upload validation
TORCH_FREE = ("vae_engine.data.npz",)
# what code outside service/db/ may take from sqlalchemy: the Session type it is handed, and
# the URL parser; no statement builders
SQLALCHEMY_OUTSIDE_DB = {("sqlalchemy.orm", "Session"), ("sqlalchemy.engine", "make_url")}


def _imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) of every absolute import; name None for ``import module``."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, a.name) for a in node.names]
    return out


def _modules(path: Path) -> set[str]:
    return {m if m != "worker" or n is None else f"worker.{n}" for m, n in _imports(path)}


def _files(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _files("vae_engine", "service", "worker")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_service_never_imports_the_worker() -> None:
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _files("service")
                 for m in _modules(p) if m.split(".")[0] == "worker"]
    assert offenders == []


def test_the_worker_imports_no_sqlalchemy() -> None:
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _files("worker")
                 for m in _modules(p) if m.split(".")[0] == "sqlalchemy"]
    assert offenders == []


def test_statements_on_tables_live_only_in_service_db() -> None:
    db = ROOT / "service" / "db"
    offenders = [f"{p.relative_to(ROOT)}: {m}.{n}" for p in _files("service", "worker")
                 if db not in p.parents
                 for m, n in _imports(p)
                 if m.split(".")[0] == "sqlalchemy" and (m, n) not in SQLALCHEMY_OUTSIDE_DB]
    assert offenders == []


def test_only_the_inference_module_imports_torch_code() -> None:
    users = {str(p.relative_to(ROOT)) for p in _files("service")
             if any((m == t or m.startswith(t + ".")) and m not in TORCH_FREE
                    for m in _modules(p) for t in TORCH_MODULES)}
    assert users == {"service/core/inference.py"}


def test_the_torch_free_engine_modules_import_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys\n" + "".join(f"import {m}\n" for m in TORCH_FREE)
            + "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
