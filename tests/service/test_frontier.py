"""The rate-distortion plane: Pareto frontier, seed aggregation, CSV and the PNG/SVG plot."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from service.core.frontier import (
    aggregate_seeds,
    frontier_table,
    pareto_front,
    rd_row,
    seeds_vary,
    to_csv,
)
from service.core.frontier_plot import plot_rd

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def brute_force_front(points: list[tuple[float, float]]) -> list[bool]:
    """The O(n^2) definition: no other point is <= in both and < in one."""
    return [
        not any(r2 <= r and d2 <= d and (r2 < r or d2 < d) for r2, d2 in points)
        for r, d in points
    ]


# --------------------------------------------------------------------------- Pareto


@pytest.mark.parametrize(("points", "expected"), [
    ([], []),
    ([(3.0, 4.0)], [True]),
    ([(1, 5), (2, 3), (4, 1)], [True, True, True]),  # all on the front
    ([(1, 5), (2, 6), (3, 3), (4, 4)], [True, False, True, False]),  # dominated points
    ([(2, 3), (2, 3), (3, 4)], [True, True, False]),  # duplicates of a front point
    ([(3, 4), (3, 4), (2, 3)], [False, False, True]),  # duplicates of a dominated point
    ([(2, 5), (2, 3), (2, 4)], [False, True, False]),  # equal rate: lowest distortion only
    ([(5, 2), (3, 2), (4, 2)], [False, True, False]),  # equal distortion: lowest rate only
    ([(1, 1), (1, 1), (1, 1)], [True, True, True]),
    ([(0, 10), (10, 0), (5, 5), (6, 6)], [True, True, True, False]),
])
def test_pareto_hand_made(points, expected):
    assert pareto_front(points) == expected
    assert brute_force_front(points) == expected


def test_pareto_non_finite_points_are_off_the_front_and_dominate_nothing():
    pts = [(1.0, math.nan), (2.0, 2.0), (math.inf, 0.0), (0.5, 3.0)]
    assert pareto_front(pts) == [False, True, False, True]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 7, 200])
def test_pareto_matches_brute_force(seed, n):
    # Randomized: seed and size given; values rounded to a coarse grid so ties and
    # duplicates are frequent.
    rng = np.random.default_rng(seed)
    pts = [tuple(p) for p in np.round(rng.uniform(0, 5, size=(n, 2)) * 2) / 2]
    assert pareto_front(pts) == brute_force_front(pts)


def test_pareto_accepts_an_array():
    assert pareto_front(np.array([[1.0, 2.0], [2.0, 3.0]])) == [True, False]


# --------------------------------------------------------------------------- rows


def sweep_rows() -> list[dict]:
    rows, job = [], 0
    for beta, base_r, base_d in [(0.1, 30.0, 60.0), (1.0, 20.0, 70.0), (10.0, 25.0, 75.0)]:
        for seed, shift in zip((0, 1, 2), (-1.0, 0.0, 1.0), strict=True):
            r, d = base_r + shift, base_d + 2 * shift
            rows.append({"job_id": job, "params": {"kl.schedule.beta": beta, "train.seed": seed},
                         "rate": r, "distortion": d, "elbo": -(r + d), "iwae": -(r + d) + 1})
            job += 1
    return rows


def test_aggregate_seeds_means_and_spreads():
    agg = aggregate_seeds(sweep_rows())
    assert [a["params"] for a in agg] == [{"kl.schedule.beta": b} for b in (0.1, 1.0, 10.0)]
    first = agg[0]
    assert first["n"] == 3 and first["seeds"] == [0, 1, 2] and first["job_ids"] == [0, 1, 2]
    assert first["rate"] == pytest.approx(30.0) and first["distortion"] == pytest.approx(60.0)
    assert first["elbo"] == pytest.approx(-90.0) and first["iwae"] == pytest.approx(-89.0)
    # sample std (ddof=1) of (-1, 0, 1) is 1; of (-2, 0, 2) is 2; of ELBO (3, 0, -3) is 3
    assert first["spread"]["rate"] == pytest.approx({"std": 1.0, "min": 29.0, "max": 31.0})
    assert first["spread"]["distortion"]["std"] == pytest.approx(2.0)
    assert first["spread"]["elbo"]["std"] == pytest.approx(3.0)


def test_aggregate_single_run_and_missing_metrics():
    rows = [{"job_id": 1, "params": {"a": 1, "train.seed": 0}, "rate": 1.0, "distortion": 2.0,
             "elbo": -3.0, "iwae": None},
            {"job_id": 2, "params": {"a": 2, "train.seed": 0}, "rate": 1.5, "distortion": 1.0,
             "elbo": -2.5, "iwae": math.nan},
            {"job_id": 3, "params": {"a": 2, "train.seed": 1}, "rate": 2.5, "distortion": 1.0,
             "elbo": -3.5, "iwae": -3.0}]
    one, two = aggregate_seeds(rows)
    assert one["n"] == 1 and one["spread"]["rate"]["std"] is None
    assert one["iwae"] is None and one["spread"]["iwae"] == {"std": None, "min": None,
                                                             "max": None}
    assert two["n"] == 2 and two["rate"] == 2.0
    assert two["iwae"] == -3.0 and two["spread"]["iwae"]["std"] is None  # one finite value


def test_aggregate_with_explicit_group_keys_and_unhashable_values():
    rows = [{"job_id": i, "params": {"model.hidden": h, "x": i}, "rate": float(i),
             "distortion": 0.0, "elbo": 0.0, "iwae": 0.0}
            for i, h in enumerate([[32], [32], [64, 64]])]
    agg = aggregate_seeds(rows, group_keys=["model.hidden"])
    assert [(a["params"], a["n"]) for a in agg] == [({"model.hidden": [32]}, 2),
                                                   ({"model.hidden": [64, 64]}, 1)]


def test_seeds_vary():
    assert seeds_vary(sweep_rows())
    assert not seeds_vary([{"params": {"train.seed": 0}}, {"params": {"train.seed": 0}}])
    assert not seeds_vary([{"params": {}}])


def test_frontier_table_per_job_and_aggregated():
    table = frontier_table(sweep_rows())
    assert set(table[0]) == {"job_id", "params", "rate", "distortion", "elbo", "iwae",
                             "on_frontier"}
    expected = brute_force_front([(r["rate"], r["distortion"]) for r in sweep_rows()])
    assert [r["on_frontier"] for r in table] == expected
    agg = frontier_table(aggregate_seeds(sweep_rows()))
    # beta=10 (25, 75) is dominated by beta=1 (20, 70)
    assert [r["on_frontier"] for r in agg] == [True, True, False]
    assert "job_id" not in agg[0] and agg[0]["job_ids"] == [0, 1, 2]


def test_rows_without_rate_are_never_on_the_frontier():
    rows = [{"job_id": 1, "params": {}, "rate": None, "distortion": 1.0},
            {"job_id": 2, "params": {}, "rate": 5.0, "distortion": 5.0}]
    assert [r["on_frontier"] for r in frontier_table(rows)] == [False, True]


def test_rd_row_from_a_summary():
    summary = {"rate": 1.5, "distortion": 2.5, "elbo": -4.0, "iwae": -3.5, "active_units": 3}
    assert rd_row(7, {"a": 1}, summary) == {"job_id": 7, "params": {"a": 1}, "rate": 1.5,
                                            "distortion": 2.5, "elbo": -4.0, "iwae": -3.5}
    assert rd_row(7, {}, {"rate": 1.0, "distortion": 1.0, "elbo": -2.0})["iwae"] is None


# --------------------------------------------------------------------------- CSV


def test_csv_round_trips_per_job_rows():
    table = frontier_table(sweep_rows())
    parsed = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert list(parsed[0]) == ["job_id", "kl.schedule.beta", "train.seed", "rate",
                               "distortion", "elbo", "iwae", "on_frontier"]
    assert len(parsed) == len(table)
    for row, line in zip(table, parsed, strict=True):
        assert int(line["job_id"]) == row["job_id"]
        assert float(line["kl.schedule.beta"]) == row["params"]["kl.schedule.beta"]
        assert int(line["train.seed"]) == row["params"]["train.seed"]
        for m in ("rate", "distortion", "elbo", "iwae"):
            assert float(line[m]) == row[m]  # exact: floats written with repr
        assert line["on_frontier"] == ("true" if row["on_frontier"] else "false")


def test_csv_of_aggregated_rows():
    agg = frontier_table(aggregate_seeds(sweep_rows()))
    parsed = list(csv.DictReader(io.StringIO(to_csv(agg))))
    first = parsed[0]
    assert first["job_ids"] == "0;1;2" and first["n"] == "3" and first["seeds"] == "[0, 1, 2]"
    assert float(first["rate"]) == agg[0]["rate"]
    assert float(first["rate_std"]) == agg[0]["spread"]["rate"]["std"]
    assert float(first["distortion_max"]) == agg[0]["spread"]["distortion"]["max"]
    assert "train.seed" not in first


def test_csv_empty_cells_and_param_name_clash():
    rows = [{"job_id": 1, "params": {"rate": 3, "model.hidden": [8, 8]}, "rate": 1.0,
             "distortion": 2.0, "elbo": None, "iwae": None}]
    line = next(csv.DictReader(io.StringIO(to_csv(rows))))
    assert line["param.rate"] == "3" and line["rate"] == "1.0"
    assert line["model.hidden"] == "[8, 8]" and line["elbo"] == "" and line["iwae"] == ""


# --------------------------------------------------------------------------- plot


def test_png_plot_opens_with_pil():
    png = plot_rd(frontier_table(aggregate_seeds(sweep_rows())), fmt="png", title="beta sweep")
    assert png[:8] == PNG_MAGIC
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.width > 300 and img.height > 300


def test_svg_plot_parses_and_is_stable():
    rows = frontier_table(sweep_rows())
    svg = plot_rd(rows, fmt="svg", title="beta sweep")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = svg.decode()
    assert "beta sweep" in text and "rate (nats)" in text and "distortion (nats)" in text
    assert "beta=0.1, seed=0" in text  # labels name the varied params
    assert plot_rd(rows, fmt="svg", title="beta sweep") == svg  # no dates or random ids


def test_plot_of_nothing_and_of_one_point():
    assert plot_rd([], fmt="png")[:8] == PNG_MAGIC
    one = [{"job_id": 1, "params": {}, "rate": 1.0, "distortion": 2.0}]
    ET.fromstring(plot_rd(one, fmt="svg"))


def test_plot_rejects_other_formats():
    with pytest.raises(ValueError, match="png"):
        plot_rd([], fmt="jpg")


def test_matplotlib_is_not_imported_with_the_modules():
    code = ("import sys, service.core.frontier, service.core.frontier_plot;"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_new_metrics_reach_rows_aggregates_and_csv():
    """Disentanglement, fd_lenet, MI and the bound flag go into rows, seed means and CSV
    columns, only when some run has them."""
    from service.core.frontier import aggregate_seeds, rd_row, to_csv

    s1 = {"rate": 1.0, "distortion": 2.0, "elbo": -3.0, "mig": 0.2, "fd_lenet": 10.0,
          "bound": True, "mi_saturated": False, "mutual_information": 0.5}
    s2 = {**s1, "mig": 0.4, "fd_lenet": 12.0, "bound": False}
    rows = [rd_row(1, {"kl.schedule.beta": 4, "train.seed": 0}, s1),
            rd_row(2, {"kl.schedule.beta": 4, "train.seed": 1}, s2)]
    assert rows[0]["mig"] == 0.2 and rows[0]["bound"] is True
    agg = aggregate_seeds(rows)[0]
    assert agg["mig"] == pytest.approx(0.3) and agg["fd_lenet"] == pytest.approx(11.0)
    assert agg["bound"] is False  # one run is no bound: the mean is none either
    header = to_csv(rows).splitlines()[0].split(",")
    assert {"mig", "fd_lenet", "mutual_information", "bound", "mi_saturated"} <= set(header)
    assert "sap" not in header  # no run has it
    plain = to_csv([rd_row(3, {}, {"rate": 1.0, "distortion": 1.0})]).splitlines()[0]
    assert plain == "job_id,rate,distortion,elbo,iwae"
