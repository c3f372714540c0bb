"""beta sweep on shapes: MIG and DCI disentanglement against beta (README, "What an
evaluation reports"). beta in {1, 4, 16} x seeds {0, 1}, a conv VAE with 10 latents on the
32-px shapes set, Bernoulli decoder, no intermediate evaluations, final-evaluation
disentanglement metrics only.

    PYTHONPATH=. python bench/shapes_beta_sweep.py [--epochs 12] [--out bench/shapes_beta.json]
        [--plot docs/img/shapes_beta_sweep.png]
    PYTHONPATH=. python bench/shapes_beta_sweep.py --from-json bench/shapes_beta.json \
        --plot docs/img/shapes_beta_sweep.png      # table and plot again, no training

Prints a row per run (beta, seed, rate, distortion, MIG, DCI-D, DCI-C, DCI-I, FactorVAE,
beta-VAE, wall seconds), then a markdown table of the mean and spread over seeds per beta and
one JSON line with every row; writes the rows as JSON and, with --plot, a PNG of MIG and DCI
against beta (each seed a dot, the seed mean a line).
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
    "train": {"epochs": 12, "log_every": 50, "eval_every_epochs": 0,
              "checkpoint_every_epochs": 0, "device": "cpu"},
    "eval": {"iwae_k": 10, "max_examples": 500,
             "metrics": ["disentanglement", "factor_vae", "beta_vae"]},
}
KEYS = ("rate", "distortion", "mig", "dci_disentanglement", "dci_completeness",
        "dci_informativeness", "factor_vae_score", "beta_vae_score")
PLOTTED = (("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"),
           ("dci_completeness", "DCI completeness"))


def run(epochs: int, betas: list[float], seeds: list[int]) -> list[dict]:
    from vae_engine import train

    rows = []
    print("beta seed " + " ".join(f"{k[:9]:>9}" for k in KEYS) + "  seconds")
    for beta in betas:
        for seed in seeds:
            spec = json.loads(json.dumps(BASE))
            spec["kl"] = {"schedule": {"kind": "constant", "beta": beta}}
            spec["train"].update(epochs=epochs, seed=seed)
            start, cpu = time.perf_counter(), time.process_time()
            s = train(spec).summary
            row = {"beta": beta, "seed": seed, **{k: s[k] for k in KEYS},
                   "active_units": s["active_units"],
                   "seconds": time.perf_counter() - start,
                   "cpu_seconds": time.process_time() - cpu}
            rows.append(row)
            print(f"{beta:4g} {seed:4d} " + " ".join(f"{row[k]:9.3f}" for k in KEYS)
                  + f"  {row['seconds']:7.0f}", flush=True)
    return rows


def by_beta(rows: list[dict]) -> dict[float, list[dict]]:
    out: dict[float, list[dict]] = {}
    for r in rows:
        out.setdefault(r["beta"], []).append(r)
    return dict(sorted(out.items()))


def table(rows: list[dict]) -> str:
    """Markdown: per beta, the seed mean of each key and (in brackets) its min-max."""
    keys = ("rate", "distortion", "active_units", "mig", "dci_disentanglement",
            "dci_completeness", "dci_informativeness", "factor_vae_score", "beta_vae_score")
    keys = tuple(k for k in keys if all(k in r for r in rows))
    lines = ["| β | seeds | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for beta, group in by_beta(rows).items():
        cells = []
        for k in keys:
            v = [float(r[k]) for r in group]
            mean = sum(v) / len(v)
            cells.append(f"{mean:.1f}" if k in ("rate", "distortion", "active_units")
                         else f"{mean:.3f} ({min(v):.3f}–{max(v):.3f})")
        lines.append(f"| {beta:g} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: str, epochs: int | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    groups = by_beta(rows)
    betas = list(groups)
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for (key, label), colour in zip(PLOTTED, ("C0", "C1", "C2"), strict=True):
        means = [sum(r[key] for r in g) / len(g) for g in groups.values()]
        ax.plot(betas, means, "-", color=colour, label=f"{label} (seed mean)")
        for beta, g in groups.items():
            ax.plot([beta] * len(g), [r[key] for r in g], "o", color=colour, alpha=0.6,
                    markersize=5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(betas, [f"{b:g}" for b in betas])
    ax.set_xlabel("β (constant KL weight)")
    ax.set_ylabel("score (0 = entangled, 1 = disentangled)")
    seeds = sorted({r["seed"] for r in rows})
    ax.set_title(f"shapes 32 px, conv VAE, 10 latents{f', {epochs} epochs' if epochs else ''}; "
                 f"seeds {', '.join(map(str, seeds))}", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def summary(rows: list[dict], epochs: int | None) -> str:
    """One line for bench/report.py: the seed-mean MIG at the smallest and the largest beta
    (the expectation, not a hard target: more pressure on the rate, more disentangled
    codes)."""
    groups = by_beta(rows)
    lo, hi = min(groups), max(groups)
    mig = {b: sum(r["mig"] for r in groups[b]) / len(groups[b]) for b in (lo, hi)}
    return json.dumps({"bench": "shapes_beta_sweep", "epochs": epochs, "betas": list(groups),
                       "runs": len(rows), "mig_low_beta": round(mig[lo], 4),
                       "mig_high_beta": round(mig[hi], 4),
                       "seconds": round(sum(r.get("seconds", 0.0) for r in rows), 1),
                       "targets": {"mig_high_beta_above_low_beta": True},
                       "met": mig[hi] > mig[lo]})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", default="bench/shapes_beta.json")
    p.add_argument("--from-json", help="read the rows of an earlier run instead of training")
    p.add_argument("--plot", help="write a PNG of MIG and DCI against beta here")
    p.add_argument("--quick", action="store_true", help="2 epochs, beta 1 and 16, seed 0 "
                                                         "(make bench)")
    a = p.parse_args()
    if a.quick:
        a.epochs, a.betas, a.seeds = 2, [1.0, 16.0], [0]
    if a.from_json:
        with open(a.from_json) as fh:
            data = json.load(fh)
        rows = data["rows"] if isinstance(data, dict) else data
        epochs = data.get("epochs") if isinstance(data, dict) else None
    else:
        rows, epochs = run(a.epochs, a.betas, a.seeds), a.epochs
        with open(a.out, "w") as fh:
            json.dump({"epochs": epochs, "rows": rows}, fh, indent=1)
    print(table(rows))
    print(summary(rows, epochs))
    if a.plot:
        plot(rows, a.plot, epochs)


if __name__ == "__main__":
    main()
