"""beta sweep on shapes: MIG and DCI disentanglement against beta (README, "What an
evaluation reports"). beta in {1, 4, 16} x seeds {0, 1}, a conv VAE with 10 latents on the
32-px shapes set, Bernoulli decoder, final-evaluation disentanglement metrics only.

    PYTHONPATH=. python bench/shapes_beta_sweep.py [--epochs 10] [--out bench/shapes_beta.json]

Prints a table (beta, seed, rate, distortion, MIG, DCI-D, DCI-C, DCI-I, FactorVAE, beta-VAE,
seconds) and writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

BASE = {
    "dataset": {"name": "shapes", "size": 32, "n_train": 4000, "n_test": 500, "seed": 0},
    "model": {"arch": "conv", "latent_dim": 10, "channels": [32, 64], "hidden": 256},
    "likelihood": {"kind": "bernoulli"},
    "optim": {"lr": 0.002, "batch_size": 64},
    "train": {"epochs": 10, "log_every": 50, "eval_every_epochs": 0,
              "checkpoint_every_epochs": 0, "device": "cpu"},
    "eval": {"iwae_k": 10, "max_examples": 500,
             "metrics": ["disentanglement", "factor_vae", "beta_vae"]},
}
KEYS = ("rate", "distortion", "mig", "dci_disentanglement", "dci_completeness",
        "dci_informativeness", "factor_vae_score", "beta_vae_score")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="bench/shapes_beta.json")
    p.add_argument("--quick", action="store_true", help="2 epochs, beta 1 and 16, seed 0")
    a = p.parse_args()
    if a.quick:
        a.epochs, a.betas, a.seeds = 2, [1.0, 16.0], [0]
    from vae_engine import train

    rows = []
    print("beta seed " + " ".join(f"{k[:9]:>9}" for k in KEYS) + "  seconds")
    for beta in a.betas:
        for seed in a.seeds:
            spec = json.loads(json.dumps(BASE))
            spec["kl"] = {"schedule": {"kind": "constant", "beta": beta}}
            spec["train"].update(epochs=a.epochs, seed=seed)
            start = time.perf_counter()
            s = train(spec).summary
            row = {"beta": beta, "seed": seed, **{k: s[k] for k in KEYS},
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            print(f"{beta:4g} {seed:4d} " + " ".join(f"{row[k]:9.3f}" for k in KEYS)
                  + f"  {row['seconds']:7.0f}", flush=True)
    with open(a.out, "w") as fh:
        json.dump(rows, fh, indent=1)
    # One line for bench/report.py: the MIG at the smallest and the largest beta (the
    # expectation, not a hard target: more pressure on the rate, more disentangled codes).
    lo, hi = min(a.betas), max(a.betas)
    mig = {b: sum(r["mig"] for r in rows if r["beta"] == b) / len(a.seeds) for b in (lo, hi)}
    print(json.dumps({"bench": "shapes_beta_sweep", "epochs": a.epochs, "betas": a.betas,
                      "seeds": a.seeds, "mig_low_beta": round(mig[lo], 4),
                      "mig_high_beta": round(mig[hi], 4),
                      "seconds": round(sum(r["seconds"] for r in rows), 1),
                      "targets": {"mig_high_beta_above_low_beta": True},
                      "met": mig[hi] > mig[lo]}))


if __name__ == "__main__":
    main()
