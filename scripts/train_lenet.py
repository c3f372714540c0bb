"""Train (or load) the fd_lenet classifier of a data set and write it to vae_engine/data/lenet/,
the engine's data folder, where evaluation finds it without training (mnist5k ships this way).

    PYTHONPATH=. python scripts/train_lenet.py mnist5k
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(name: str) -> None:
    os.environ["VAELAB_CACHE_DIR"] = str(ROOT / "vae_engine" / "data" / "lenet")
    from vae_engine.data import load_dataset
    from vae_engine.evaluate.lenet import lenet_for
    from vae_engine.spec import parse_spec

    data = load_dataset(parse_spec({"dataset": {"name": name}}).dataset)
    col = data.factor_names.index("label")
    start = time.perf_counter()
    _, acc = lenet_for(data.x_train, data.factors_train[:, col], data.x_test,
                       data.factors_test[:, col])
    print(f"{name}: test accuracy {acc:.4f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mnist5k")
