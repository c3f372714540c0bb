"""STYLE rules 1 and 13: imports run worker -> service; the worker holds no SQL, and SQL
lives under service/db/ (routes read and write through it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# worker.launcher is being moved into service/core by another change; until it lands,
# service/cli.py and service/serve.py import it from there (and only it)
PENDING_MOVE = {"worker.launcher"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from worker import launcher` names the submodule it takes
            names += ([f"worker.{a.name}" for a in node.names] if node.module == "worker"
                      else [node.module])
    return names


def _offenders(package: str, bad: set[str], allowed: set[str] = frozenset()) -> list[str]:
    return [f"{p.relative_to(ROOT)}: {n}" for p in (ROOT / package).rglob("*.py")
            for n in _imports(p)
            if n.split(".")[0] in bad and n not in allowed]


def test_service_never_imports_the_worker() -> None:
    assert _offenders("service", {"worker"}, PENDING_MOVE) == []


def test_worker_imports_no_sqlalchemy() -> None:
    assert _offenders("worker", {"sqlalchemy"}) == []


def test_routes_hold_no_sql() -> None:
    # results.py is being split by another change and reads artifacts itself until then
    routes = [p for p in (ROOT / "service/api/routes").glob("*.py") if p.name != "results.py"]
    offenders = [f"{p.name}: {n}" for p in routes for n in _imports(p)
                 if n.split(".")[0] == "sqlalchemy"]
    assert offenders == []
