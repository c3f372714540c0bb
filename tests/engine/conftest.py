import pytest

TINY = {
    "name": "tiny",
    "dataset": {"name": "digits", "binarize": "dynamic"},
    "model": {"arch": "mlp", "latent_dim": 4, "hidden": [32]},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"lr": 1e-3, "batch_size": 128},
    "train": {"epochs": 2, "seed": 0, "log_every": 2, "eval_every_epochs": 1,
              "checkpoint_every_epochs": 1},
    "eval": {"iwae_k": 8, "max_examples": 64, "n_samples": 16},
}


@pytest.fixture
def tiny_spec():
    import copy

    return copy.deepcopy(TINY)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Tiny models: one thread is faster than two fighting over a 2-core CI machine, and it
    # keeps CPU results independent of the thread count.
    import torch

    from vae_engine import threads

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    threads.set_default_threads(1)  # what train() applies when a test names no count
    yield
    threads.set_default_threads(None)
    torch.set_num_threads(old)


def assert_resumes_exactly(spec: dict, tmp_path, stop_at: int) -> list:
    """Train ``spec`` uninterrupted, then stopped after ``stop_at`` steps and resumed from the
    checkpoint the stop wrote: both must log the same metrics (wall-clock aside) and end with
    the same summary. Returns the uninterrupted run's metric points."""
    from vae_engine import train
    from vae_engine.io import ListSink, LocalArtifacts

    def strip(points):
        return [(s, {k: v for k, v in m.items() if k != "examples_per_s"}) for s, m in points]

    full = ListSink()
    ref = train(spec, full, LocalArtifacts(tmp_path / "full"))
    assert ref.status == "completed"
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == stop_at

    first, second = ListSink(), ListSink()
    stopped = train(spec, first, LocalArtifacts(tmp_path / "part"), should_stop=stop)
    assert stopped.status == "stopped" and stopped.step == stop_at
    res = train(spec, second, LocalArtifacts(tmp_path / "part"),
                resume_from=stopped.last_checkpoint)
    assert strip(first.points) + strip(second.points) == strip(full.points)
    assert res.summary["elbo"] == ref.summary["elbo"]
    return full.points
