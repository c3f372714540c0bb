"""service.core.launcher: the Celery worker command lines, without starting a worker (the
e2e tests start real ones)."""

from __future__ import annotations

import os

import pytest

from service.core import launcher
from tests.conftest import ROOT


def test_worker_args_and_the_app_named_not_imported() -> None:
    args = launcher.celery_worker_args(["gpu", "cpu"], "w@h", 2, "WARNING")
    assert args[:7] == ["worker", "-Q", "gpu,cpu", "-n", "w@h", "-c", "2"]
    assert "--pool" in args and args[args.index("--pool") + 1] == "prefork"
    assert launcher.WORKER_APP == "worker.celery_app"


def test_child_env_puts_the_checkout_first_on_the_path(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = launcher.child_env({"CUDA_VISIBLE_DEVICES": "1"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert (launcher.ROOT / "worker" / "celery_app.py").is_file()


def test_parse_gpus() -> None:
    assert launcher.parse_gpus("0, 2") == ["0", "2"]
    with pytest.raises(SystemExit, match="--gpus"):
        launcher.parse_gpus(" , ")
