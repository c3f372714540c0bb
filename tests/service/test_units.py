"""Pure pieces: the downsampler, the settings guard, the migration guard, import weight."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from service.core.config import Settings
from service.db.metrics import minmax_downsample
from tests.conftest import ROOT


def test_downsampler_keeps_every_spike_and_the_ends() -> None:
    rng = random.Random(0)  # seed 0, 100,000 points
    steps = list(range(0, 1_000_000, 10))
    values = [rng.gauss(0, 1) for _ in steps]
    spikes = {123_450: 1e6, 555_550: -1e6, 999_990: 5e5}
    for s, v in spikes.items():
        values[s // 10] = v
    ds_steps, ds_values = minmax_downsample(steps, values, 500)
    assert len(ds_steps) <= 500
    assert ds_steps == sorted(ds_steps) and len(set(ds_steps)) == len(ds_steps)
    kept = dict(zip(ds_steps, ds_values, strict=True))
    for s, v in spikes.items():
        assert kept[s] == v
    assert ds_steps[0] == 0 or min(ds_values) <= values[0]
    # every kept point is a real point
    original = dict(zip(steps, values, strict=True))
    assert all(original[s] == v for s, v in kept.items())
    # each bucket's extremes equal the true extremes of its slice
    assert max(ds_values) == max(values) and min(ds_values) == min(values)


def test_downsampler_returns_short_series_unchanged_and_handles_nan() -> None:
    assert minmax_downsample([1, 2, 3], [1.0, None, 3.0], 10) == ([1, 2, 3], [1.0, None, 3.0])
    steps = list(range(100))
    values: list[float | None] = [None] * 50 + [float(i) for i in range(50)]
    ds_steps, ds_values = minmax_downsample(steps, values, 10)
    assert len(ds_steps) <= 10
    assert None in ds_values  # an all-NaN stretch stays visible
    assert 49.0 in ds_values


@pytest.mark.parametrize("n,max_points", [(1000, 2), (1001, 3), (7, 6), (10_000, 999)])
def test_downsampler_never_exceeds_max_points(n: int, max_points: int) -> None:
    rng = random.Random(n)
    steps = sorted(rng.sample(range(10 * n), n))
    values = [rng.random() for _ in steps]
    ds_steps, _ = minmax_downsample(steps, values, max_points)
    assert len(ds_steps) <= max_points


def test_production_refuses_insecure_defaults() -> None:
    with pytest.raises(ValueError) as err:
        Settings(env="production")
    msg = str(err.value)
    assert "VAELAB_DATABASE_URL" in msg and "VAELAB_BROKER_URL" in msg
    assert "VAELAB_ARTIFACT_ROOT" in msg
    with pytest.raises(ValueError, match="SQLite"):
        Settings(env="production", database_url="sqlite:///x.db", broker_url="redis://r",
                 artifact_root="/a")
    ok = Settings(env="production", database_url="postgresql+psycopg://u:secret@db/v",
                  broker_url="redis://redis:6379/0", artifact_root="/artifacts")
    assert ok.queue_for("cuda") == "gpu" and ok.queue_for("cpu") == "cpu"


def test_embedded_defaults_live_under_the_data_dir(tmp_path) -> None:  # noqa: ANN001
    s = Settings(data_dir=tmp_path)
    assert s.db_url == f"sqlite:///{tmp_path}/vaelab.db"
    assert s.broker == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert s.artifacts == tmp_path / "artifacts"
    assert s.embedded_broker


def test_api_refuses_an_unmigrated_database(tmp_path, procs) -> None:  # noqa: ANN001
    """A real `vaelab api` process on an empty database exits, saying what to run."""
    env = {"VAELAB_DATA_DIR": str(tmp_path), "VAELAB_DATABASE_URL": "",
           "VAELAB_BROKER_URL": "", "VAELAB_REAPER_ENABLED": "false"}
    proc = procs.start(["api", "--port", "0"], env, "api-unmigrated")
    assert proc.wait(timeout=60) != 0
    log = open(proc.log_path).read()
    assert "not migrated" in log and "vaelab migrate" in log


def test_api_import_does_not_import_torch() -> None:
    code = ("import sys; from service.main import create_app; create_app(); "
            "import service.api.routes.jobs, vae_engine.spec; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
