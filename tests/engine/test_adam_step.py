"""FusedAdamStep: bitwise the update and state of ``torch.optim.Adam(fused=True).step()``."""

from __future__ import annotations

import copy

import torch

from vae_engine.adam_step import FusedAdamStep


def _pair(weight_decay: float = 0.0):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    twin = copy.deepcopy(net)
    kw = {"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": weight_decay, "fused": True}
    return (net, torch.optim.Adam(net.parameters(), **kw),
            twin, torch.optim.Adam(twin.parameters(), **kw))


def _grads(nets, seed: int, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 12, generator=gen)
    for net in nets:
        net.zero_grad(set_to_none=True)
        (net(x).pow(2).sum() * scale).backward()


def _same(a: torch.nn.Module, b: torch.nn.Module, oa, ob) -> bool:
    if not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True)):
        return False
    sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k][n], sb[k][n]) for k in sa for n in ("step", "exp_avg", "exp_avg_sq"))


def test_the_fast_step_is_the_fused_step_bitwise():
    for wd in (0.0, 0.1):
        net, opt, twin, ref = _pair(wd)
        fast = FusedAdamStep(opt)
        for i in range(6):
            _grads((net, twin), i)
            fast()
            ref.step()
            assert _same(net, twin, opt, ref), (wd, i)
        assert fast._lists is not None  # the fast path ran (the first step builds the state)


def test_found_inf_skips_the_update_as_the_fused_step_does():
    net, opt, twin, ref = _pair()
    fast = FusedAdamStep(opt)
    for o in (opt, ref):
        o.found_inf = torch.zeros(())  # what DeviceLog sets
    for i in range(5):
        flag = 1.0 if i == 3 else 0.0  # step 3: a non-finite step, skipped
        opt.found_inf.fill_(flag)
        ref.found_inf.fill_(flag)
        _grads((net, twin), i)
        before = [p.clone() for p in net.parameters()]
        fast()
        ref.step()
        assert _same(net, twin, opt, ref), i
        if flag:
            assert all(torch.equal(p, q) for p, q in zip(before, net.parameters(), strict=True))
    assert float(opt.state_dict()["state"][0]["step"]) == 4.0  # the skipped step not counted


def test_a_restored_state_is_picked_up():
    net, opt, twin, ref = _pair()
    fast = FusedAdamStep(opt)
    for i in range(3):
        _grads((net, twin), i)
        fast()
        ref.step()
    saved = copy.deepcopy(ref.state_dict())
    for i in range(3, 5):  # the fast one runs ahead, then is put back to step 3
        _grads((net,), i)
        fast()
    opt.load_state_dict(saved)
    net.load_state_dict(twin.state_dict())
    for i in range(5, 8):
        _grads((net, twin), i)
        fast()
        ref.step()
        assert _same(net, twin, opt, ref), i


def test_what_it_does_not_cover_goes_through_step():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)  # not fused
    fast = FusedAdamStep(opt)
    net(torch.ones(1, 3)).sum().backward()
    fast()
    assert fast._lists is None and float(opt.state_dict()["state"][0]["step"]) == 1.0
    net2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2, fused=True)
    fast2 = FusedAdamStep(opt2)
    net2(torch.ones(1, 3)).sum().backward()
    fast2()
    net2.bias.grad = None  # a parameter without a gradient: Adam leaves it alone
    bias = net2.bias.detach().clone()
    fast2()
    assert torch.equal(bias, net2.bias) and float(opt2.state[net2.bias]["step"]) == 1.0


def test_parameters_without_a_gradient_are_left_out_as_adam_leaves_them():
    """A model's unused parameters (no gradient) keep the fast path; when one gets a
    gradient later, that step goes through optimizer.step(), bitwise as before."""
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"used": torch.nn.Linear(12, 3), "unused": torch.nn.Linear(2, 2)})
    twin = copy.deepcopy(net)
    kw = {"lr": 1e-2, "betas": (0.8, 0.95), "fused": True}
    opt, ref = torch.optim.Adam(net.parameters(), **kw), torch.optim.Adam(twin.parameters(), **kw)
    fast = FusedAdamStep(opt)
    for i in range(7):
        x = torch.randn(5, 12, generator=torch.Generator().manual_seed(i))
        for m in (net, twin):
            m.zero_grad(set_to_none=True)
            m["used"](x).pow(2).sum().backward()
            if i >= 4:  # from step 4 on, the unused layer is used
                m["unused"](torch.ones(1, 2)).sum().backward()
        fast()
        ref.step()
        assert _same(net, twin, opt, ref), i
        if i in (2, 3):
            assert fast._lists is not None and len(fast._lists[0]) == 2  # the fast path
    assert fast._lists is not None and len(fast._lists[0]) == 4  # rebuilt with the newcomers
