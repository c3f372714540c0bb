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


def test_the_gpu_table_has_a_row_per_run_from_the_gpu_script_lines(tmp_path):
    """--gpu alone rewrites only the GPU block, one row per engine_vs_pythae line in the
    order they ran, with each run's mode, and a line for the several-jobs benchmark."""
    report = _report()
    common = {"bench": "engine_vs_pythae", "gpu": "NVIDIA H200", "torch_version": "2.11",
              "epochs": 10, "repeats": 3, "steady_throughput_ratio": 1.5, "elbo_gap_nats": 0.18,
              "iwae_speedup": 25.0, "iwae_k": 200, "pythae_examples_per_s": 15000.0,
              "compile": False, "bf16": False}
    lines = [{**common, "batch": 64, "cuda_graph": False, "throughput_ratio": 1.22,
              "engine_examples_per_s": 18689.0},
             {**common, "batch": 64, "cuda_graph": True, "throughput_ratio": 9.58,
              "engine_examples_per_s": 151756.0, "bf16": True},
             {"bench": "gpu_jobs", "gpu": "NVIDIA H200", "torch_version": "2.11",
              "cuda_graph": True, "batch": 64, "epochs": 30,
              "rows": [{"jobs": 1, "examples_per_s": 1e5, "speedup_vs_one_job": 1.0},
                       {"jobs": 2, "examples_per_s": 1.2e5, "speedup_vs_one_job": 1.2}]}]
    gpu = tmp_path / "gpu_results.jsonl"
    gpu.write_text("\n".join(json.dumps(o) for o in lines) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.BEGIN}\ncpu\n{report.END}\n{report.GPU_BEGIN}\nold\n"
                      f"{report.GPU_END}\n")
    assert report.main(["--gpu", str(gpu), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert f"{report.BEGIN}\ncpu\n{report.END}" in text and "old" not in text
    rows = [r for r in text.split(report.GPU_BEGIN)[1].splitlines() if r.startswith("| 64 ")]
    assert rows == ["| 64 | 10 | 3 | eager | 1.22 (1.50) | 18,689 | 15,000 | +0.18 | 25.0 (200) |",
                    "| 64 | 10 | 3 | CUDA graph + bf16 | 9.58 (1.50) | 151,756 | 15,000 | +0.18 "
                    "| 25.0 (200) |"]
    assert "1 job(s) 100,000 ex/s (1.00x), 2 job(s) 120,000 ex/s (1.20x)" in text
