"""The rate-distortion plane of a sweep as data (Alemi et al. 2018, "Fixing a Broken ELBO",
sec. 3): which runs are on the frontier, the mean over seeds, the CSV table.

Every finished run is a point (R, D) in nats per example: rate R = E KL(q(z|x) || p(z)),
distortion D = E[-log p(x|z)], and -ELBO = R + D, so lines of equal ELBO have slope -1.
Sweeping the KL weight traces the empirical frontier: the runs no other run beats on both
rate and distortion (the Pareto set when minimising both).

Rows are plain dicts, one per finished job::

    {"job_id": 3, "params": {"kl.schedule.beta": 0.3, "train.seed": 1},
     "rate": 21.4, "distortion": 63.0, "elbo": -84.4, "iwae": -82.9}

:func:`aggregate_seeds` merges rows that differ only in the seed into one row per
configuration (means, plus std / min / max under ``"spread"``); :func:`frontier_table` flags
the frontier and :func:`to_csv` renders either kind of row. Pure numpy, no torch: the API
computes this per request. The plot is :mod:`service.core.frontier_plot`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

METRICS = ("rate", "distortion", "elbo", "iwae")
# Reported when the runs have them (vae_engine.evaluate: MI and its ceiling, the final
# evaluation's disentanglement scores and fd_lenet); columns appear only if some row has one.
OPTIONAL_METRICS = ("bits_per_dim", "mutual_information", "marginal_kl", "mig", "sap",
                    "dci_disentanglement", "dci_completeness", "dci_informativeness",
                    "factor_vae_score", "beta_vae_score", "fd_lenet")
SPREAD_STATS = ("std", "min", "max")
SEED_KEY = "train.seed"

# --------------------------------------------------------------------------- the frontier


def pareto_front(points: Iterable[Sequence[float]]) -> list[bool]:
    """Which (rate, distortion) points are on the empirical Pareto frontier (minimise both).

    A point is on the frontier unless another point is <= in both coordinates and < in at
    least one. Duplicates of a frontier point are all on it; of two points with equal rate
    only the lower distortion can be. Non-finite points are never on it and dominate
    nothing. O(n log n): sort by (rate, distortion), sweep keeping the best distortion seen
    at strictly smaller rates.
    """
    pts = np.asarray(list(points), dtype=float).reshape(-1, 2)  # (n, 2)
    n = pts.shape[0]
    on = np.zeros(n, dtype=bool)
    finite = np.flatnonzero(np.isfinite(pts).all(axis=1))
    if finite.size == 0:
        return on.tolist()
    r, d = pts[finite, 0], pts[finite, 1]
    order = finite[np.lexsort((d, r))]  # by rate, then distortion
    best = math.inf  # lowest distortion among points of strictly smaller rate
    i = 0
    while i < order.size:
        rate = pts[order[i], 0]
        j = i
        while j < order.size and pts[order[j], 0] == rate:
            j += 1
        d_min = pts[order[i], 1]  # the group of equal rate is sorted by distortion
        if d_min < best:
            for k in range(i, j):
                if pts[order[k], 1] == d_min:
                    on[order[k]] = True
            best = d_min
        i = j
    return on.tolist()


def metric_value(row: dict[str, Any], key: str) -> float | None:
    """``row[key]`` as a finite float, else None (missing, bool, NaN, inf)."""
    v = row.get(key)
    if v is None or isinstance(v, bool):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def rd_row(job_id: Any, params: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """A row from a job's evaluation summary (vae_engine.evaluate keys)."""
    row = {"job_id": job_id, "params": dict(params)}
    row.update({m: metric_value(summary, m) for m in METRICS})
    row.update({m: v for m in OPTIONAL_METRICS if (v := metric_value(summary, m)) is not None})
    if isinstance(summary.get("bound"), bool):  # do elbo/iwae bound a likelihood of the data?
        row["bound"] = summary["bound"]
    if isinstance(summary.get("mi_saturated"), bool):
        row["mi_saturated"] = summary["mi_saturated"]
    return row


def _present(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """METRICS, then the optional metrics some row has a value for."""
    extra = tuple(m for m in OPTIONAL_METRICS if any(r.get(m) is not None for r in rows))
    return METRICS + extra


def frontier_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` (per job or per configuration) with ``on_frontier`` set.

    Per-job rows come out as ``{job_id, params, rate, distortion, elbo, iwae,
    on_frontier}``; extra keys of aggregated rows (``n``, ``seeds``, ``job_ids``,
    ``spread``) are kept. Missing or non-finite metrics become None.
    """
    out = []
    for row in rows:
        new: dict[str, Any] = {}
        if "job_id" in row or "job_ids" not in row:  # aggregated rows carry job_ids instead
            new["job_id"] = row.get("job_id")
        new["params"] = dict(row.get("params") or {})
        new.update({m: metric_value(row, m) for m in METRICS})
        new.update({k: v for k, v in row.items() if k not in new})
        out.append(new)
    pts = [(r["rate"] if r["rate"] is not None else math.nan,
            r["distortion"] if r["distortion"] is not None else math.nan) for r in out]
    for r, flag in zip(out, pareto_front(pts), strict=True):
        r["on_frontier"] = flag
    return out


# --------------------------------------------------------------------------- seeds


def canonical(value: Any) -> str:
    """A hashable spelling of a param value (lists and dicts included), equal iff equal."""
    return json.dumps(value, sort_keys=True, default=str)


def _stats(values: list[float]) -> tuple[float | None, dict[str, float | None]]:
    if not values:
        return None, {s: None for s in SPREAD_STATS}
    a = np.asarray(values, dtype=float)
    std = float(a.std(ddof=1)) if a.size > 1 else None  # sample std; undefined for one run
    return float(a.mean()), {"std": std, "min": float(a.min()), "max": float(a.max())}


def seeds_vary(rows: Sequence[dict[str, Any]], seed_key: str = SEED_KEY) -> bool:
    """True if the rows' params give more than one value of ``seed_key``."""
    seen = {canonical((r.get("params") or {}).get(seed_key)) for r in rows
            if seed_key in (r.get("params") or {})}
    return len(seen) > 1


def aggregate_seeds(
    rows: Sequence[dict[str, Any]], group_keys: Sequence[str] | None = None,
    seed_key: str = SEED_KEY,
) -> list[dict[str, Any]]:
    """One row per configuration: rows with equal ``params`` at ``group_keys`` are merged.

    ``group_keys`` defaults to every param key except ``seed_key`` (in order of first
    appearance). Each output row::

        {"params": {k: v for k in group_keys}, "n": 3, "seeds": [0, 1, 2],
         "job_ids": [...], "rate": mean, "distortion": mean, "elbo": mean, "iwae": mean,
         "spread": {"rate": {"std", "min", "max"}, ...}}

    std is the sample standard deviation (ddof=1), None for a single run; missing or
    non-finite metrics are left out of that metric's statistics. Configurations keep the
    order of their first row.
    """
    if group_keys is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(k for k in (r.get("params") or {}) if k != seed_key))
        group_keys = list(seen)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        params = r.get("params") or {}
        groups.setdefault(canonical([params.get(k) for k in group_keys]), []).append(r)
    out = []
    for members in groups.values():
        params = members[0].get("params") or {}
        agg: dict[str, Any] = {
            "params": {k: params.get(k) for k in group_keys},
            "n": len(members),
            "seeds": [(m.get("params") or {}).get(seed_key) for m in members],
            "job_ids": [m.get("job_id") for m in members],
        }
        spread = {}
        bounds = {m.get("bound") for m in members}
        if bounds <= {True, False} and bounds:
            agg["bound"] = all(bounds)
        for metric in _present(members):
            vals = [v for m in members if (v := metric_value(m, metric)) is not None]
            agg[metric], spread[metric] = _stats(vals)
        agg["spread"] = spread
        out.append(agg)
    return out


# --------------------------------------------------------------------------- CSV


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    if isinstance(v, int | str):
        return str(v)
    return json.dumps(v, default=str)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """A CSV table (header + one line per row) for notebooks.

    Columns: job_id / job_ids / n / seeds when present, one per param (its dotted path),
    the metrics (METRICS, then each of OPTIONAL_METRICS some row has), ``bound`` and
    ``mi_saturated`` when present, ``<metric>_<std|min|max>`` for aggregated rows, and
    on_frontier. Empty cells are None; lists and dicts are JSON; floats use repr so they
    parse back exactly.
    """
    lead = [k for k in ("job_id", "job_ids", "n", "seeds") if any(k in r for r in rows)]
    params: dict[str, None] = {}
    for r in rows:
        params.update(dict.fromkeys(r.get("params") or {}))
    metrics = _present(rows)
    flags = [k for k in ("bound", "mi_saturated") if any(k in r for r in rows)]
    fixed = set(lead) | set(metrics) | set(flags) | {"on_frontier"}
    param_cols = {p: (f"param.{p}" if p in fixed else p) for p in params}
    spread = any("spread" in r for r in rows)
    spread_cols = [f"{m}_{s}" for m in metrics for s in SPREAD_STATS] if spread else []
    tail = ["on_frontier"] if any("on_frontier" in r for r in rows) else []
    header = (lead + list(param_cols.values()) + list(metrics) + flags + spread_cols + tail)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        p = r.get("params") or {}
        cells: list[Any] = [";".join(map(_cell, r[k])) if k == "job_ids" and r.get(k) else
                            r.get(k) for k in lead]
        cells += [p.get(k) for k in param_cols]
        cells += [r.get(m) for m in metrics]
        cells += [r.get(k) for k in flags]
        cells += [((r.get("spread") or {}).get(m) or {}).get(s)
                  for m in metrics for s in SPREAD_STATS] if spread else []
        cells += [r.get("on_frontier") for _ in tail]
        w.writerow([c if isinstance(c, str) else _cell(c) for c in cells])
    return buf.getvalue()


__all__ = ["METRICS", "OPTIONAL_METRICS", "SEED_KEY", "aggregate_seeds", "canonical",
           "frontier_table", "metric_value", "pareto_front", "rd_row", "seeds_vary", "to_csv"]
