"""`vaelab train` end to end in a subprocess: files written, one-line errors."""

import json
import subprocess
import sys

import yaml

from tests.engine.conftest import TINY


def vaelab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_train_writes_all_outputs(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    proc = vaelab("train", str(spec), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["step"] == 2 and {"loss", "rate", "distortion", "beta_effective"} <= set(first)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("elbo", "rate", "distortion", "bits_per_dim", "iwae", "active_units",
                "mutual_information", "marginal_kl", "kl_per_unit"):
        assert key in summary
    for folder in ("checkpoints", "samples", "recon"):
        assert list((out / folder).iterdir()), folder
    # --resume latest on a finished run re-evaluates the last checkpoint: the same numbers.
    proc = vaelab("train", str(spec), "--out", str(out), "--quiet", "--resume", "latest")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((out / "summary.json").read_text())
    assert again["elbo"] == summary["elbo"] and again["iwae"] == summary["iwae"]


def _one_line_error(proc, *needles):
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err
    return err


def test_bad_inputs_give_one_line_errors(tmp_path):
    out = str(tmp_path / "o")
    _one_line_error(vaelab("train", str(tmp_path / "nope.yaml"), "--out", out), "cannot read")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "optim": {"lr": -1}, "train": {"epochs": 0}}))
    _one_line_error(vaelab("train", str(bad), "--out", out), "optim.lr", "train.epochs")
    npz = tmp_path / "data.yaml"
    npz.write_text(yaml.safe_dump({**TINY, "dataset": {"name": "npz",
                                                       "path": str(tmp_path / "x.npz")}}))
    _one_line_error(vaelab("train", str(npz), "--out", out), "x.npz")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY))
    _one_line_error(vaelab("train", str(good), "--out", out, "--resume", "latest"), "--resume")
    _one_line_error(vaelab("train", str(good), "--out", out, "--max-steps", "0"), "--max-steps")


def test_help_lists_train():
    proc = vaelab("--help")
    assert proc.returncode == 0 and "train" in proc.stdout


def test_threads_flag_sets_the_run_and_rejects_zero(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    probe = tmp_path / "probe.py"  # the count the run trained with, from inside the process
    probe.write_text(
        "import sys, torch\n"
        "from service.cli import main\n"
        "import vae_engine.trainer as t\n"
        "step = t.train_step\n"  # the count is applied after setup (the work-size rule)
        "def spy(*a, **k):\n"
        "    print('THREADS', torch.get_num_threads(), flush=True)\n"
        "    return step(*a, **k)\n"
        "t.train_step = spy\n"
        "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, str(probe), "train", str(spec), "--out",
                           str(tmp_path / "run"), "--quiet", "--max-steps", "2", "--threads",
                           "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # 2, not 1: the work-size rule alone would give this tiny model one thread
    assert "THREADS 2" in proc.stdout
    _one_line_error(vaelab("train", str(spec), "--out", str(tmp_path / "o"), "--threads", "0"),
                    "--threads")
