import pytest
import torch
from torch import nn

from bertkit.errors import BertkitError
from bertkit.train.optim import build_optimizer, linear_schedule, param_groups, replan_schedule, warmup_from_ratio


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.dense = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied, as BERT's decoder
        self.bias = nn.Parameter(torch.zeros(10))


def test_no_decay_on_layernorm_and_biases_and_tied_weights_once():
    net = Net()
    decay, no_decay = param_groups(net, 0.01)
    names = {id(p): n for n, p in net.named_parameters()}
    assert sorted(names[id(p)] for p in decay["params"]) == ["dense.weight", "emb.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "LayerNorm.bias",
        "LayerNorm.weight",
        "bias",
        "dense.bias",
    ]
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0


ADAMW = dict(kind="adamw", lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)


def test_build_optimizer_takes_every_number_from_the_caller():
    opt = build_optimizer(Net(), **ADAMW)
    assert isinstance(opt, torch.optim.AdamW)
    group = opt.param_groups[0]
    assert group["lr"] == 1e-4 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-6
    assert group["weight_decay"] == 0.01 and group["fused"] is True
    with pytest.raises(TypeError):
        build_optimizer(Net(), lr=1e-4)  # no defaults: a recipe gives them all


def test_plain_adam_has_no_weight_decay():
    opt = build_optimizer(Net(), **dict(ADAMW, kind="adam"))
    assert type(opt) is torch.optim.Adam
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups)
    with pytest.raises(BertkitError, match="--optimizer 'sgd'"):
        build_optimizer(Net(), **dict(ADAMW, kind="sgd"))


def test_decay_does_not_touch_layernorm():
    net = Net()
    opt = build_optimizer(net, **dict(ADAMW, lr=0.1, weight_decay=0.5))
    before_w, before_ln = net.dense.weight.detach().clone(), net.LayerNorm.weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only weight decay can move a weight
    opt.step()
    torch.testing.assert_close(net.dense.weight, before_w * (1 - 0.1 * 0.5))
    assert torch.equal(net.LayerNorm.weight, before_ln)


@pytest.mark.parametrize("warmup,total", [(10, 100), (0, 50), (5, 6)])
def test_linear_warmup_then_linear_decay_to_zero(warmup, total):
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=2.0)
    sched = linear_schedule(opt, warmup, total)
    lrs = []
    for _ in range(total + 3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    if warmup:
        assert lrs[0] == 0.0 and lrs[warmup // 2] == pytest.approx(2.0 * (warmup // 2) / warmup)
    assert max(lrs) == pytest.approx(2.0)
    assert lrs[warmup] == pytest.approx(2.0)
    if total > warmup:
        mid = (warmup + total) // 2
        assert lrs[mid] == pytest.approx(2.0 * (total - mid) / (total - warmup))
    assert lrs[total] == 0.0 and lrs[-1] == 0.0


def test_warmup_ratio():
    assert warmup_from_ratio(1234, 0.1) == 123


def test_a_replanned_schedule_decays_to_zero_at_the_new_end_and_saves_it():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = linear_schedule(opt, 2, 1000)
    for _ in range(5):
        opt.step()
        sched.step()
    assert replan_schedule(sched, 10)
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([4 / 8, 3 / 8, 2 / 8, 1 / 8, 0.0])
    again = linear_schedule(torch.optim.AdamW([p], lr=1.0), 2, 1000)
    again.load_state_dict(sched.state_dict())  # the new end travels with the checkpoint
    assert again.lr_lambdas[0].total_steps == 10
    assert not replan_schedule(torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), 10)


def test_a_run_replanned_shorter_than_its_warmup_still_decays_to_zero():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_schedule(opt, 100, 1000)
    replan_schedule(sched, 14)  # a budget that fits 14 steps: warmup 7, then decay
    lrs = []
    for _ in range(14):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[6] == 1.0 and lrs[-1] == 0.0
    replan_schedule(sched, 3000)  # the requested warmup comes back when the run is long enough
    assert sched.lr_lambdas[0].warmup_steps == 100
