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

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
