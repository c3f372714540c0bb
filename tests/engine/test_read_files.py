"""``train(read_files=...)``: a user file read from another path than the spec names (the
worker reads a verified open descriptor, ``/proc/self/fd/N``). The spec, in every
checkpoint and in the resume check, keeps the path the user named, so an attempt whose
descriptor has another number resumes, and a checkpoint names the user's file."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest

from vae_engine import train
from vae_engine.checkpoint import read_checkpoint
from vae_engine.errors import VaelabError
from vae_engine.io import ListSink, LocalArtifacts
from vae_engine.spec import parse_spec, reading_from


@pytest.fixture
def npz_spec(tiny_spec, tmp_path):  # noqa: ANN001, ANN201
    from sklearn.datasets import load_digits

    x = (load_digits().images * (255 / 16)).astype(np.uint8)
    np.savez(tmp_path / "real.npz", x_train=x[:256], x_test=x[256:320])
    spec = copy.deepcopy(tiny_spec)
    spec["dataset"] = {"name": "npz", "path": "datasets/mine/digits.npz", "binarize": "dynamic"}
    spec["optim"]["batch_size"] = 64
    return spec


def _strip(points):  # noqa: ANN001, ANN202
    return [(s, {k: v for k, v in m.items() if k != "examples_per_s"}) for s, m in points]


def test_the_spec_keeps_the_users_path_and_a_resume_reads_from_another(npz_spec, tmp_path):  # noqa: ANN001
    first_copy = tmp_path / "fd-7"
    shutil.copy(tmp_path / "real.npz", first_copy)
    calls = {"n": 0}

    def stop_at_5() -> bool:
        calls["n"] += 1
        return calls["n"] == 5

    first = ListSink()
    stopped = train(npz_spec, first, LocalArtifacts(tmp_path / "run"), should_stop=stop_at_5,
                    read_files={"dataset.path": str(first_copy)})
    assert stopped.status == "stopped" and stopped.step == 5
    _, meta = read_checkpoint(stopped.last_checkpoint)
    assert meta["spec"]["dataset"]["path"] == "datasets/mine/digits.npz"  # not fd-7

    # the next attempt reads the same file through another descriptor
    first_copy.unlink()
    second_copy = tmp_path / "fd-9"
    shutil.copy(tmp_path / "real.npz", second_copy)
    second = ListSink()
    done = train(npz_spec, second, LocalArtifacts(tmp_path / "run"),
                 resume_from=stopped.last_checkpoint,
                 read_files={"dataset.path": str(second_copy)})
    assert done.status == "completed"
    ref = ListSink()
    train(npz_spec, ref, LocalArtifacts(tmp_path / "ref"),
          read_files={"dataset.path": str(tmp_path / "real.npz")})
    assert _strip(first.points) + _strip(second.points) == _strip(ref.points)


def test_a_checkpoint_still_refuses_a_different_spec(npz_spec, tmp_path):  # noqa: ANN001
    read = {"dataset.path": str(tmp_path / "real.npz")}
    calls = {"n": 0}

    def stop_at_3() -> bool:
        calls["n"] += 1
        return calls["n"] == 3

    stopped = train(npz_spec, ListSink(), LocalArtifacts(tmp_path / "run"),
                    should_stop=stop_at_3, read_files=read)
    other = copy.deepcopy(npz_spec)
    other["dataset"]["path"] = "datasets/mine/other.npz"
    with pytest.raises(VaelabError, match="different spec"):
        train(other, ListSink(), LocalArtifacts(tmp_path / "run"),
              resume_from=stopped.last_checkpoint, read_files=read)


def test_reading_from_replaces_only_declared_user_file_fields(npz_spec) -> None:  # noqa: ANN001
    spec = parse_spec(npz_spec)
    part = reading_from(spec.dataset, "dataset", {"dataset.path": "/proc/self/fd/7",
                                                  "model.path": "/elsewhere"})
    assert part.path == "/proc/self/fd/7" and spec.dataset.path == "datasets/mine/digits.npz"
    assert reading_from(spec.dataset, "dataset", None) is spec.dataset
    assert reading_from(spec.dataset, "dataset", {}) is spec.dataset
    digits = parse_spec({**npz_spec, "dataset": {"name": "digits"}})
    assert reading_from(digits.dataset, "dataset", {"dataset.path": "/x"}) is digits.dataset
