"""bench/report.py: the README's benchmark table from the benchmarks' JSON lines."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_table_is_rewritten_between_the_markers_from_the_newest_lines(tmp_path):
    report = _report()
    results = tmp_path / "results.jsonl"
    results.write_text("\n".join([
        json.dumps({"bench": "contention", "ratio": 3.0, "targets": {"ratio_max": 1.1},
                    "met": False}),
        "noise from a failed run",
        json.dumps({"bench": "contention", "ratio": 1.04, "cpus": 2,
                    "alone": {"default_s": 10.0, "threads_1_s": 10.2, "ratio": 1.0},
                    "targets": {"ratio_max": 1.1}, "met": True}),
        json.dumps({"bench": "metrics_store", "ingest_points_per_s": 51234,
                    "query_median_ms": 40.5, "targets": {"ingest_points_per_s_min": 50000},
                    "met": {"ingest_points_per_s": True, "query_median_ms": True}}),
    ]) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{report.BEGIN}\nold table\n{report.END}\n\nafter\n")
    assert report.main([str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and text.count(report.BEGIN) == 1
    table = text.split(report.BEGIN)[1].split(report.END)[0]
    assert "Generated " in table and " UTC on " in table
    row = next(line for line in table.splitlines() if line.startswith("| contention"))
    assert "ratio 1.04" in row and "| yes |" in row and "3.0" not in row  # the newest line
    assert "ingest_points_per_s 51,234" in table
    assert "| engine_vs_pythae | not run" in table
