"""The thread count: affinity, cgroup v2/v1 quotas (fake cgroup trees), idle CPUs, overrides."""

from __future__ import annotations

import os

import pytest
import torch

from vae_engine import threads


def _cgroup(tmp_path, lines: str):
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(lines)
    return proc


def test_cgroup_v2_quota_of_the_own_group_and_its_parents(tmp_path):
    root = tmp_path / "cg"
    (root / "jobs" / "one").mkdir(parents=True)
    (root / "cpu.max").write_text("max 100000\n")
    (root / "jobs" / "cpu.max").write_text("300000 100000\n")  # 3 CPUs for all jobs
    (root / "jobs" / "one" / "cpu.max").write_text("150000 100000\n")  # 1.5 for this one
    proc = _cgroup(tmp_path, "0::/jobs/one\n")
    assert threads.cgroup_cpu_limit(root, proc) == pytest.approx(1.5)
    # 1.5 CPUs round up to 2 threads, below the 8 CPUs of the affinity set
    assert threads.usable_cpus(root, set(range(8)), proc) == 2
    (root / "jobs" / "one" / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cpus(root, set(range(8)), proc) == 3  # the parent's limit holds


def test_cgroup_v1_quota(tmp_path):
    root = tmp_path / "cg"
    group = root / "cpu,cpuacct" / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("50000\n")
    (group / "cpu.cfs_period_us").write_text("100000\n")
    proc = _cgroup(tmp_path, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n")
    assert threads.cgroup_cpu_limit(root, proc) == pytest.approx(0.5)
    assert threads.usable_cpus(root, {0, 1, 2, 3}, proc) == 1  # never below one
    (group / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert threads.cgroup_cpu_limit(root, proc) is None
    assert threads.usable_cpus(root, {0, 1, 2, 3}, proc) == 4


def test_no_cgroup_files_means_the_affinity_set(tmp_path):
    proc = _cgroup(tmp_path, "0::/\n")
    assert threads.cgroup_cpu_limit(tmp_path / "none", proc) is None
    assert threads.usable_cpus(tmp_path / "none", {0, 2, 5}, proc) == 3


def test_pick_takes_only_the_idle_cpus_and_honours_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    proc = _cgroup(tmp_path, "0::/\n")
    none = tmp_path / "none"
    cpus = {0, 1, 2, 3}
    assert threads.pick_threads(root=none, affinity=cpus, idle=None, proc_cgroup=proc) == 4
    # another process keeps 2.6 of the 4 CPUs busy: 1.4 idle -> 1 thread
    assert threads.pick_threads(root=none, affinity=cpus, idle=1.4, proc_cgroup=proc) == 1
    assert threads.pick_threads(root=none, affinity=cpus, idle=2.6, proc_cgroup=proc) == 3
    assert threads.pick_threads(root=none, affinity=cpus, idle=0.0, proc_cgroup=proc) == 1
    assert threads.pick_threads(3, root=none, affinity=cpus, idle=0.0, proc_cgroup=proc) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.pick_threads(root=none, affinity=cpus, idle=0.0, proc_cgroup=proc) == 2
    with pytest.raises(ValueError):
        threads.pick_threads(0)


def test_idle_cpus_reads_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    # cpu0 fully idle, cpu1 fully busy over the sample (jiffies: user nice system idle ...)
    snapshots = iter([
        "cpu  0 0 0 0 0 0 0 0\ncpu0 10 0 0 100 0 0 0 0\ncpu1 10 0 0 100 0 0 0 0\n",
        "cpu  0 0 0 0 0 0 0 0\ncpu0 10 0 0 200 0 0 0 0\ncpu1 110 0 0 100 0 0 0 0\n",
    ])
    stat.write_text(next(snapshots))
    # the sample's wait advances the fake stat (time.sleep itself is left alone: patching it
    # would reach every thread of the test process)
    idle = threads.idle_cpus({0, 1}, stat=stat, wait=lambda s: stat.write_text(next(snapshots)))
    assert idle == pytest.approx(1.0)


def test_the_real_machine_gives_a_sane_count():
    n = threads.pick_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_ensure_threads_applies_a_request():
    old = torch.get_num_threads()
    try:
        assert threads.ensure_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_the_work_size_rule_caps_a_picked_count_only(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    proc = _cgroup(tmp_path, "0::/\n")
    none = tmp_path / "none"
    cpus = set(range(8))
    per = threads.FLOPS_PER_THREAD

    def pick(requested=None, work=None, idle=None):
        return threads.pick_threads(requested, root=none, affinity=cpus, idle=idle,
                                    proc_cgroup=proc, work=work)

    assert pick() == 8  # no work given: the CPUs alone decide, as before
    assert pick(work=0.0) == 1  # never below one
    assert pick(work=per * 1.99) == 1  # a step of the digits spec is far below this
    assert pick(work=per * 2) == 2
    assert pick(work=per * 5.5) == 5
    assert pick(work=per * 100) == 8  # never more than the usable CPUs
    assert pick(work=per * 100, idle=2.6) == 3  # nor the idle ones
    assert pick(6, work=0.0) == 6  # an explicit count skips the rule
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert pick(work=0.0) == 4


def test_step_flops_counts_the_matmuls_and_touches_no_state():
    from vae_engine.models.mlp_nn import MlpVAE

    torch.manual_seed(0)
    model = MlpVAE((1, 8, 8), 1, 4, [32])
    model.train()
    x = torch.rand(16, 1, 8, 8)
    rng = torch.get_rng_state().clone()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    # forward matmuls (2 FLOPs per multiply-add): 64->32, 32->4 twice (mu, logvar), 4->32,
    # 32->64; training ~ 3x the forward
    forward = 2 * 16 * (64 * 32 + 2 * 32 * 4 + 4 * 32 + 32 * 64)
    assert threads.step_flops(model, x) == pytest.approx(3 * forward)
    assert torch.equal(rng, torch.get_rng_state())  # no draw from the global generator
    assert model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_ensure_threads_counts_the_work_only_when_it_picks(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    calls = []

    def work():
        calls.append(1)
        return 0.0  # a tiny step: one thread whatever the machine

    old = torch.get_num_threads()
    threads.set_default_threads(None)
    try:
        assert threads.ensure_threads(None, work) == 1 and torch.get_num_threads() == 1
        assert calls == [1]
        assert threads.ensure_threads(2, work) == 2 and calls == [1]  # explicit: not asked
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert threads.ensure_threads(None, work) == 1 and calls == [1]
    finally:
        threads.set_default_threads(1)  # the session fixture's setting
        torch.set_num_threads(old)


def test_step_flops_of_a_conv_model_matches_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    from vae_engine.models.conv_nn import ConvVAE

    torch.manual_seed(0)
    model = ConvVAE((3, 16, 16), 3, 6, [8, 16], 32)  # Conv2d, Linear and ConvTranspose2d
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert threads.step_flops(model, x) == pytest.approx(3 * counter.get_total_flops())
