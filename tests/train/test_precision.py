"""One precision rule in the loop: fp32, bf16 where it is native, fp16 with a gradient scaler
(GPUs); the budget planner; the CUDA paths (skipped without a GPU)."""

from __future__ import annotations

import time

import pytest
import torch
from toy import ToyModel, accuracy_fn, toy_batches, toy_data

from bertkit.errors import BertkitError
from bertkit.hardware import cpu_has_native
from bertkit.train import budget as budget_module
from bertkit.train import steps as steps_module
from bertkit.train.budget import BudgetPlanner
from bertkit.train.checkpointing import list_checkpoints, read_checkpoint
from bertkit.train.curves import read_log
from bertkit.train.distributed import DistEnv
from bertkit.train.loop import Objective, TrainConfig, train
from bertkit.train.optim import build_optimizer, linear_schedule

ADAMW = dict(kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)


def _run(out, steps=20, device="cpu", callbacks=(), objective=None, seed=0, **cfg):
    x, y = toy_data()
    torch.manual_seed(seed)
    model = ToyModel(dropout=0.0).to(device)
    opt = build_optimizer(model, **ADAMW)
    sched = linear_schedule(opt, 2, steps)
    config = TrainConfig(out_dir=out, max_steps=steps, progress=False, plot=False, log_every=1, **cfg)
    batches = toy_batches(x.to(device), y.to(device), 16)
    state = train(
        model,
        opt,
        sched,
        batches,
        config,
        objective,
        accuracy_fn(x.to(device), y.to(device)),
        callbacks,
        env=DistEnv(device=torch.device(device)),
    )
    return model, state


def _losses(out):
    return [r["loss"] for r in read_log(out / "log.jsonl") if "loss" in r]


@pytest.mark.skipif(not cpu_has_native("bf16"), reason="this CPU has no native bf16 (AVX-512 BF16 / AMX)")
def test_bf16_runs_where_native_and_follows_fp32(tmp_path):
    fp32, _ = _run(tmp_path / "fp32")
    bf16, state = _run(tmp_path / "bf16", precision="bf16")
    assert state.step == 20 and state.skipped_steps == 0
    # bf16 matmuls carry 8 bits of mantissa: per step the loss differs by ~1e-2 relative; after 20
    # Adam steps the weights may drift apart by a few 1e-2 (atol 5e-2 + rtol 5e-2 x |w|)
    for a, b in zip(_losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")):
        assert abs(a - b) <= 2e-2 + 3e-2 * abs(a)
    for p, q in zip(fp32.parameters(), bf16.parameters()):
        assert ((p - q).abs() <= 5e-2 + 5e-2 * p.abs()).all()


@pytest.mark.skipif(cpu_has_native("bf16"), reason="this CPU has native bf16, so bf16 is not refused")
def test_bf16_is_refused_in_one_line_where_emulated(tmp_path):
    with pytest.raises(BertkitError, match="precision bf16: this CPU .* has no native bfloat16") as info:
        _run(tmp_path / "run", precision="bf16")
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_fp16_training_is_refused_on_the_cpu(tmp_path):
    with pytest.raises(BertkitError, match="fp16: float16 training needs a GPU"):
        _run(tmp_path, precision="fp16")


def test_the_fp16_path_scales_unscales_before_clipping_and_checkpoints_the_scaler(tmp_path, monkeypatch):
    """The GPU's fp16 code path, run on the CPU (autocast float16 works there, only slowly)."""
    monkeypatch.setattr(steps_module, "resolve_precision", lambda precision, device: precision)
    seen = []

    class Watch:
        def on_step_end(self, state, record):
            if record is not None:
                seen.append(record["grad_norm"])

    full, state = _run(tmp_path / "full", precision="fp16", callbacks=[Watch()], max_grad_norm=1.0)
    assert state.step == 20 and all(n < 1e3 for n in seen)  # unscaled: not multiplied by the 2**16 scale
    assert _losses(tmp_path / "full")[-1] < _losses(tmp_path / "full")[0]

    class StopAt:
        def on_step_end(self, state, record):
            if state.step >= 9:
                state.should_stop = True

    out = tmp_path / "cut"
    _run(out, precision="fp16", callbacks=[StopAt()], max_grad_norm=1.0)
    blob = read_checkpoint(list_checkpoints(out / "checkpoints")[-1]).blob
    assert blob["scaler"]["scale"] > 0 and "_growth_tracker" in blob["scaler"]
    resumed, _ = _run(out, precision="fp16", resume=True, seed=7, max_grad_norm=1.0)
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_training_in_every_precision(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cpu, _ = _run(tmp_path / "cpu")
    gpu, state = _run(tmp_path / precision, device="cuda", precision=precision)
    assert state.step == 20 and next(gpu.parameters()).device.type == "cuda"
    tolerance = 1e-4 if precision == "fp32" else 5e-2  # TF32 off by default; half types: 8-11 mantissa bits
    for p, q in zip(cpu.parameters(), gpu.parameters()):
        assert ((p - q.cpu()).abs() <= tolerance + tolerance * p.abs()).all()


# the time budget ------------------------------------------------------------------------------------


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_budget_planner_moves_the_end_to_where_the_time_runs_out(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(budget_module.time, "perf_counter", clock)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_schedule(opt, 10, 1_000_000)
    planner = BudgetPlanner(seconds=100.0, max_steps=1_000_000, env=DistEnv())
    plans = []
    for step in range(1, 30):
        clock.now += 5.0 if step == 1 else 0.5  # a slow first step (start-up), then 0.5 s per step
        plans.append(planner.plan(step, clock.now, sched))
    assert plans[:7] == [None] * 7  # not planned before enough steps are timed
    # at step 8: 8.5 s spent, 91.5 s left at 0.5 s/step -> 183 more steps
    assert plans[7] == 8 + 183 and sched.lr_lambdas[0].total_steps == 191
    assert plans[-1] == 191  # a steady rate keeps the plan
    planner.eval_took(10.0)  # the final evaluation's time is held back
    clock.now += 0.5
    assert planner.plan(30, clock.now, sched) == 30 + int((100 - 19.5 - 10) / 0.5)


def test_a_budget_run_ends_at_the_budget_with_the_schedule_complete(tmp_path):
    class Slow(Objective):  # a step of ~30 ms whatever the machine, so the plan is predictable
        def loss(self, model, batch):
            time.sleep(0.03)
            return super().loss(model, batch)

    start = time.perf_counter()
    _, state = _run(tmp_path, steps=100_000, objective=Slow(), budget_seconds=2.0, eval_each_epoch=False)
    wall = time.perf_counter() - start
    records = [r for r in read_log(tmp_path / "log.jsonl") if "loss" in r]
    assert 20 < state.step < 100 and records[-1]["step"] == state.step
    assert records[-1]["lr"] == 0.0  # the schedule reached its end, not a cut at a high lr
    assert 1.5 < state.elapsed_seconds < 3.0 and wall < 6.0


def test_bf16_refusal_where_emulated_simulated_here(tmp_path, monkeypatch):
    """The refusal path, also on a CPU that has bf16 (pretending it has not)."""
    monkeypatch.setattr("bertkit.hardware.cpu_has_native", lambda precision="bf16": False)
    with pytest.raises(BertkitError, match="precision bf16: this CPU .* has no native bfloat16") as info:
        _run(tmp_path / "run", precision="bf16")
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()
