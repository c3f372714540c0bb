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


def test_worker_threads_and_jobs_per_gpu_options() -> None:
    from service.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["worker", "--gpus", "0,1", "--jobs-per-gpu", "3", "--threads",
                              "2"])
    assert args.jobs_per_gpu == 3 and args.threads == 2
    assert parser.parse_args(["worker", "--cpu"]).jobs_per_gpu == 1
    for bad in (["--threads", "0"], ["--jobs-per-gpu", "-1"], ["--threads", "two"]):
        with pytest.raises(SystemExit) as info:  # argparse: one line naming the option, exit 2
            parser.parse_args(["worker", "--cpu", *bad])
        assert info.value.code == 2
    # What each GPU's worker process is started with: N prefork children on its GPU.
    started = launcher.gpu_worker_commands(["0", "1"], "gpu", "INFO", jobs_per_gpu=3)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1"]
    for cmd, _ in started:
        assert cmd[cmd.index("-c") + 1] == "3" and cmd[cmd.index("-Q") + 1] == "gpu"
