"""docker-compose.yml wiring, checked by parsing it (no Docker here)."""

from __future__ import annotations

import re

import pytest
import yaml

from service.cli import build_parser
from service.cli.server import cmd_api, cmd_migrate, cmd_worker
from service.core.config import Settings
from tests.conftest import ROOT

APP_SERVICES = ("migrate", "api", "worker-gpu", "worker-cpu")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _expand(arg: str) -> str:
    """Compose's ${VAR:-default} with the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", arg)


def _args(service: dict):  # noqa: ANN202
    cmd = [_expand(a) for a in service["command"]]
    assert cmd[0] == "vaelab"
    return build_parser().parse_args(cmd[1:])


def test_every_vaelab_env_name_is_a_setting(compose: dict) -> None:
    known = {f"VAELAB_{name.upper()}" for name in Settings.model_fields}
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        names = {k for k in env if k.startswith("VAELAB_")}
        assert names, name
        assert names <= known, f"{name}: unknown settings {names - known}"
        assert env["VAELAB_ENV"] == "production"
        assert env["VAELAB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["VAELAB_BROKER_URL"].startswith("redis://redis:")


def test_production_settings_accept_the_compose_environment(compose: dict) -> None:
    env = compose["services"]["api"]["environment"]
    values = {k.removeprefix("VAELAB_").lower(): _expand(v).replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "s3cret") for k, v in env.items()}
    s = Settings(**values)
    assert s.visibility_timeout_s >= 24 * 3600


def test_services_wait_for_healthy_db_redis_and_the_migration(compose: dict) -> None:
    services = compose["services"]
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] \
        == "yes"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker-gpu", "worker-cpu"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
    assert "healthcheck" in services["api"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_commands_match_the_cli(compose: dict) -> None:
    services = compose["services"]
    assert _args(services["migrate"]).func is cmd_migrate
    api = _args(services["api"])
    assert api.func is cmd_api and api.host == "0.0.0.0" and api.port == 8000
    gpu = _args(services["worker-gpu"])
    assert gpu.func is cmd_worker and gpu.gpus == "all" and not gpu.cpu
    cpu = _args(services["worker-cpu"])
    assert cpu.func is cmd_worker and cpu.cpu and cpu.gpus is None


def test_gpu_reservation_and_shared_artifacts(compose: dict) -> None:
    services = compose["services"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("api", "worker-gpu", "worker-cpu"):
        root = services[name]["environment"]["VAELAB_ARTIFACT_ROOT"]
        assert f"artifacts:{root}" in services[name]["volumes"], name
    assert "artifacts" in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==${TORCH_VERSION}" in dockerfile and "alembic.ini" in dockerfile
