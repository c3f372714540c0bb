"""The rate-distortion plane drawn: PNG or SVG bytes of a sweep's frontier table.

Points (hollow if dominated) with error bars of one std over seeds, the empirical frontier
as a staircase, iso-ELBO lines R + D = c (slope -1, Alemi et al. 2018 fig. 1) and labels
with the varied parameters. matplotlib is imported on the first plot, not with this module
(the API must start fast), and only its Agg canvas is used: no pyplot state shared between
request threads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.frontier import canonical, metric_value, pareto_front

MAX_LABELS = 60  # beyond this many points only the frontier is labelled


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last path component as the label name, unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def _label_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r.get("params") or {}))
    varied = [k for k in keys
              if len({canonical((r.get("params") or {}).get(k)) for r in rows}) > 1]
    return varied or list(keys)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys = _label_keys(rows)
    short = _short_names(keys)
    return [", ".join(f"{short[k]}={_fmt((r.get('params') or {}).get(k))}" for k in keys
                      if k in (r.get("params") or {})) for r in rows]


def _iso_levels(total: np.ndarray, n: int = 5) -> np.ndarray:
    """A few 'nice' values of R + D spanning the points."""
    lo, hi = float(total.min()), float(total.max())
    if hi - lo < 1e-9:
        return np.array([lo])
    return np.unique(np.round(np.linspace(lo, hi, n), 1))


def plot_rd(
    rows: Sequence[dict[str, Any]], fmt: str = "png", title: str = "rate-distortion plane",
    dpi: int = 120,
) -> bytes:
    """Draw the RD plane of ``rows`` (per job or aggregated) as PNG or SVG bytes.

    Points (hollow if dominated) with std error bars where rows carry a ``spread``, labels
    with the params that vary across rows, the empirical frontier as a staircase (the
    boundary of what the runs attain), and iso-ELBO lines R + D = c (slope -1) at a few
    levels spanning the points.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rows = [r for r in rows if metric_value(r, "rate") is not None and
            metric_value(r, "distortion") is not None]
    if rows:
        _draw(ax, rows)
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("rate (nats)")
    ax.set_ylabel("distortion (nats)")
    ax.set_title(title)
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "vaelab"}):  # stable SVG ids
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def _draw(ax: Any, rows: list[dict[str, Any]]) -> None:
    r = np.array([metric_value(x, "rate") for x in rows])  # (n,)
    d = np.array([metric_value(x, "distortion") for x in rows])  # (n,)
    on = np.array(pareto_front(zip(r, d, strict=True)))

    def err(metric: str) -> np.ndarray:
        return np.array([((x.get("spread") or {}).get(metric) or {}).get("std") or 0.0
                         for x in rows])

    xerr, yerr = err("rate"), err("distortion")
    if (xerr > 0).any() or (yerr > 0).any():
        ax.errorbar(r, d, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", elinewidth=0.8,
                    capsize=2, zorder=1, label="± 1 std over seeds")
    ax.scatter(r[~on], d[~on], facecolors="white", edgecolors="C0", zorder=3, label="run")
    ax.scatter(r[on], d[on], color="C3", zorder=4, label="Pareto frontier")
    order = np.argsort(r[on], kind="stable")
    ax.step(r[on][order], d[on][order], where="post", color="C3", lw=1.2, zorder=2)

    # limits from the points and their error bars, then iso-ELBO lines across them
    x0, x1 = float((r - xerr).min()), float((r + xerr).max())
    y0, y1 = float((d - yerr).min()), float((d + yerr).max())
    px, py = max(0.08 * (x1 - x0), 0.5), max(0.08 * (y1 - y0), 0.5)
    xlim, ylim = (x0 - px, x1 + px), (y0 - py, y1 + py)
    xs = np.array(xlim)
    for c in _iso_levels(r + d):
        ax.plot(xs, c - xs, ls="--", lw=0.7, color="0.7", zorder=0)
        width = xlim[1] - xlim[0]
        x_text = min(max(c - ylim[1] + 0.02 * width, xlim[0] + 0.01 * width), xlim[1])
        y_text = c - x_text
        if ylim[0] <= y_text <= ylim[1]:  # R + D = -ELBO along the line
            ax.annotate(f"-ELBO={c:g}", (x_text, y_text), fontsize=6, color="0.5",
                        ha="left", va="top")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)

    labels = _labels(rows)
    for i, text in enumerate(labels):
        if text and (len(rows) <= MAX_LABELS or on[i]):
            right_half = r[i] > xlim[0] + 0.75 * (xlim[1] - xlim[0])  # keep labels inside
            ax.annotate(text, (r[i], d[i]), xytext=(-4 if right_half else 4, 4),
                        textcoords="offset points", ha="right" if right_half else "left",
                        fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


__all__ = ["plot_rd"]
