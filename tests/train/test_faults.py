"""The loop under faults: non-finite losses and gradients, damaged checkpoints, a full disk, a
second run on the same folder. Each test injects the fault into the toy task of toy.py."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from toy import ToyModel, accuracy_fn, toy_batches, toy_data

from bertkit.errors import BertkitError
from bertkit.train import checkpointing
from bertkit.train.checkpointing import checkpoints, latest_checkpoint, list_checkpoints, newest_readable
from bertkit.train.curves import JsonlLog, read_log
from bertkit.train.lock import LOCK_FILE, RunLock
from bertkit.train.loop import LOOP_FIELDS, Objective, TrainConfig, train
from bertkit.train.optim import build_optimizer, linear_schedule

ADAMW = dict(kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)


class Poisoned(Objective):
    """The default objective, with its loss made NaN (or its gradient infinite) on chosen steps."""

    def __init__(self, bad_steps, kind="nan"):
        self.bad_steps, self.kind, self.calls = set(bad_steps), kind, 0

    def loss(self, model, batch):
        self.calls += 1
        sums, metrics = super().loss(model, batch)
        if self.calls in self.bad_steps:
            sums = {k: _InfGrad.apply(v) if self.kind == "inf-grad" else v * float("nan") for k, v in sums.items()}
        return sums, metrics


class _InfGrad(torch.autograd.Function):
    """Identity forward; an infinite gradient backward (a finite loss with a poisoned gradient)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def _parts(seed=0, steps=30):
    x, y = toy_data()
    torch.manual_seed(seed)
    model = ToyModel()
    opt = build_optimizer(model, **ADAMW)
    return model, opt, linear_schedule(opt, 4, steps), toy_batches(x, y, 16), accuracy_fn(x, y)


def _save(model, folder):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "w.pt")


def _finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _run(out, steps=30, objective=None, callbacks=(), seed=0, **cfg):
    model, opt, sched, batches, eval_fn = _parts(seed, steps)
    config = TrainConfig(out_dir=out, max_steps=steps, progress=False, plot=False, log_every=1, **cfg)
    state = train(model, opt, sched, batches, config, objective, eval_fn, callbacks, save_fn=_save)
    return model, state


def test_a_nan_loss_skips_its_step_and_the_run_goes_on(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        model, state = _run(tmp_path, steps=12, objective=Poisoned({5}))
    assert state.step == 12 and state.skipped_steps == 1 and _finite(model)
    records = [r for r in read_log(tmp_path / "log.jsonl") if "loss" in r]
    assert [r["step"] for r in records if r.get("skipped")] == [5]
    assert "step 5: non-finite loss" in caplog.text
    assert (tmp_path / "w.pt").is_file()  # a completed run saves its model


def test_an_infinite_gradient_skips_its_step(tmp_path):
    clean, _ = _run(tmp_path / "clean", steps=6)
    model, state = _run(tmp_path / "inf", steps=6, objective=Poisoned({6}, kind="inf-grad"))
    assert state.skipped_steps == 1 and _finite(model)
    # step 6 changed nothing: the weights are those after 5 clean steps, not those after 6
    five, _ = _run(tmp_path / "five", steps=6, callbacks=[_StopAt(5)])
    for p, q, r in zip(model.parameters(), five.parameters(), clean.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r)


def test_nan_steps_in_a_row_stop_the_run_with_finite_checkpoints(tmp_path):
    with pytest.raises(BertkitError, match="more than 3 steps in a row had a non-finite loss") as info:
        _run(tmp_path, steps=30, objective=Poisoned(range(8, 100)), save_every=2, keep_checkpoints=2, max_bad_steps=3)
    assert "\n" not in str(info.value)
    saved = list_checkpoints(tmp_path / "checkpoints")
    assert saved and saved[-1].name == "checkpoint-00000011"  # steps 8..11 skipped, then the stop
    for ckpt in saved:
        weights = load_file(str(ckpt / "model.safetensors"))
        assert all(bool(torch.isfinite(t).all()) for t in weights.values()), ckpt
        assert json.loads((ckpt / "trainer_state.json").read_text())["finite"] is True
    assert not (tmp_path / "w.pt").exists()  # a failed run does not look finished


def test_the_best_model_recovers_from_a_nan_first_evaluation(tmp_path):
    values = iter([float("nan"), 0.5, 0.7, 0.6])
    model, opt, sched, batches, _ = _parts(steps=8)
    config = TrainConfig(
        out_dir=tmp_path, max_steps=8, eval_every=2, best_metric="accuracy", progress=False, plot=False
    )
    state = train(model, opt, sched, batches, config, eval_fn=lambda m: {"accuracy": next(values)}, save_fn=_save)
    assert state.best_value == 0.7 and state.best_step == 6
    assert (tmp_path / "best" / "w.pt").is_file()


class _StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state, record):
        if state.step >= self.step:
            state.should_stop = True


def _damage_model(ckpt):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
    return "model.safetensors"


def _damage_optimizer(ckpt):
    (ckpt / "optimizer.pt").write_bytes(b"")
    return "optimizer.pt"


def _damage_state(ckpt):
    state = json.loads((ckpt / "trainer_state.json").read_text())
    del state["rng"]
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    return "lacks rng"


def _damage_loop_field(ckpt):
    state = json.loads((ckpt / "trainer_state.json").read_text())
    del state["loop"]["batch_in_epoch"]
    (ckpt / "trainer_state.json").write_text(json.dumps(state))
    return "loop.batch_in_epoch"


@pytest.mark.parametrize("damage", [_damage_model, _damage_optimizer, _damage_state, _damage_loop_field])
def test_resume_walks_back_past_a_damaged_checkpoint_and_ends_bitwise_identical(tmp_path, caplog, damage):
    full, _ = _run(tmp_path / "full", steps=20)
    out = tmp_path / "cut"
    _, state = _run(out, steps=20, callbacks=[_StopAt(12)], save_every=4)
    assert [p.name for p in list_checkpoints(out / "checkpoints")][-2:] == [
        "checkpoint-00000008",
        "checkpoint-00000012",
    ]
    what = damage(out / "checkpoints" / "checkpoint-00000012")
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        resumed, state = _run(out, steps=20, resume=True, seed=123, save_every=4)
    assert "skipping checkpoint checkpoint-00000012" in caplog.text and what in caplog.text
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    steps = [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, 21))


def test_resume_refuses_when_no_checkpoint_reads(tmp_path):
    _run(tmp_path, steps=6, save_every=3)
    for ckpt in list_checkpoints(tmp_path / "checkpoints"):
        _damage_optimizer(ckpt)
    with pytest.raises(BertkitError, match="none of the 2 checkpoint"):
        newest_readable(tmp_path / "checkpoints", LOOP_FIELDS)


def test_a_full_disk_while_saving_leaves_the_earlier_checkpoints(tmp_path, monkeypatch):
    _run(tmp_path, steps=6, save_every=3)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bertkit.train.checkpointing.save_file", full)
    with pytest.raises(BertkitError, match="cannot write the checkpoint .No space left on device.*--resume"):
        _run(tmp_path, steps=9, save_every=3, resume=True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before  # no temporary folder left
    assert newest_readable(tmp_path / "checkpoints", LOOP_FIELDS).path.name == "checkpoint-00000006"


def test_resaving_a_step_keeps_a_complete_checkpoint_at_every_instant(tmp_path, monkeypatch):
    model, opt, sched, *_ = _parts()
    folder = tmp_path / "checkpoints"
    rng = [checkpointing.capture_rng()]
    checkpointing.save_checkpoint(folder, 5, model, opt, sched, {"loop": {}}, rng, keep=1)
    real_replace = os.replace

    def killed_between_the_renames(src, dst):  # the old folder moved aside, then the process "dies"
        if ".tmp-" in str(src):
            raise OSError(5, "killed")
        real_replace(src, dst)

    monkeypatch.setattr(checkpointing.os, "replace", killed_between_the_renames)
    with pytest.raises(BertkitError):
        checkpointing.save_checkpoint(folder, 5, model, opt, sched, {"loop": {}}, rng, keep=1)
    monkeypatch.setattr(checkpointing.os, "replace", real_replace)
    (found,) = checkpoints(folder)  # the step moved aside still counts ...
    assert found.name.startswith(".checkpoint-00000005.old-") and checkpointing.read_checkpoint(found)
    assert latest_checkpoint(folder) == found
    checkpointing.save_checkpoint(folder, 6, model, opt, sched, {"loop": {}}, rng, keep=2)
    assert [p.name for p in list_checkpoints(folder)] == [
        "checkpoint-00000005",
        "checkpoint-00000006",
    ]  # ... and returns


def test_pruning_never_deletes_the_last_finite_checkpoint(tmp_path):
    model, opt, sched, *_ = _parts()
    folder = tmp_path / "checkpoints"
    rng = [checkpointing.capture_rng()]
    checkpointing.save_checkpoint(folder, 1, model, opt, sched, {"loop": {}}, rng, keep=2)
    with torch.no_grad():
        model.out.weight.fill_(float("nan"))
    for step in (2, 3, 4):
        checkpointing.save_checkpoint(folder, step, model, opt, sched, {"loop": {}}, rng, keep=2)
    names = [p.name for p in list_checkpoints(folder)]
    assert names == ["checkpoint-00000001", "checkpoint-00000003", "checkpoint-00000004"]


def test_the_log_rewrite_on_resume_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 9)))
    before = path.read_bytes()

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bertkit.files.os.replace", full)
    with pytest.raises(BertkitError, match="cannot write the training log .* it is unchanged"):
        JsonlLog(path, resume_step=4)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]
    monkeypatch.undo()
    JsonlLog(path, resume_step=4)
    assert [r["step"] for r in read_log(path)] == [1, 2, 3, 4]


HOLD = (
    "import sys, time; from bertkit.train.lock import RunLock; "
    "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.perf_counter()
        with pytest.raises(BertkitError, match=rf"another run is using this folder \(pid {holder.pid}") as info:
            _run(tmp_path, steps=4)
        assert time.perf_counter() - start < 5 and "\n" not in str(info.value)
        assert not (tmp_path / "log.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    _, state = _run(tmp_path, steps=4)  # the holder died: its lock is taken over
    assert state.step == 4 and not (tmp_path / LOCK_FILE).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    with caplog.at_level(logging.WARNING, logger="bertkit"), RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert f"taking over the lock of pid {pid}" in caplog.text
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_of_a_live_process_without_flock_is_respected(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    with pytest.raises(BertkitError, match=f"pid {os.getppid()}"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path / "other"), RunLock(tmp_path / "other"):  # one process may nest its own lock
        pass
