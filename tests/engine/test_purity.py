"""STYLE rule 1: vae_engine imports nothing from the service side."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "vae_engine"
FORBIDDEN = {"service", "worker", "fastapi", "sqlalchemy", "celery", "starlette", "alembic",
             "redis", "kombu", "uvicorn"}


def test_no_forbidden_imports_in_source():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_engine_loads_no_service_modules():
    code = ("import sys, vae_engine.trainer, vae_engine.cli, vae_engine.evaluate;"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r});"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_spec_module_does_not_import_torch():
    code = "import sys, vae_engine.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_validating_and_the_catalogue_do_not_import_torch():
    # The API process validates specs and serves GET /api/v1/schemes without torch (2.3 s and
    # 250 MB to import): every component's config must import without it.
    code = (
        "import sys, vae_engine, vae_engine.spec as S\n"
        "S.parse_spec({'dataset': {'name': 'shapes', 'size': 32}, 'model': {'arch': "
        "'hierarchical'}, 'likelihood': {'kind': 'gaussian'}, 'kl': {'schedule': {'kind': "
        "'linear_warmup'}, 'balancing': {}, 'free_bits': {'group': 'per_group'}}})\n"
        "S.build_sweep({}, grid={'kl.schedule.kind': ['geco'], "
        "'kl.schedule.kappa': [5.0]})\n"
        "vae_engine.catalogue(); S.spec_json_schema()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
