import json

import pytest
import torch
from toy import ToyModel, accuracy_fn, toy_batches, toy_data

from bertkit.errors import BertkitError
from bertkit.train.checkpointing import latest_checkpoint, list_checkpoints
from bertkit.train.curves import read_log
from bertkit.train.loop import TrainConfig, train
from bertkit.train.optim import build_optimizer, linear_schedule


def _run(tmp, steps=None, epochs=None, batch=16, accum=1, dropout=0.1, seed=0, fused=None, **cfg):
    x, y = toy_data()
    torch.manual_seed(seed)
    model = ToyModel(dropout)
    opt = build_optimizer(model, kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, fused=fused)
    total = steps or 64
    sched = linear_schedule(opt, 4, total)
    config = TrainConfig(out_dir=tmp, max_steps=steps, epochs=epochs, progress=False, **cfg)
    state = train(
        model,
        opt,
        sched,
        toy_batches(x, y, batch, accum),
        config,
        eval_fn=accuracy_fn(x, y),
        save_fn=lambda m, d: (d.mkdir(parents=True, exist_ok=True), torch.save(m.state_dict(), d / "w.pt")),
    )
    return model, state


def test_training_learns_logs_plots_and_keeps_best(tmp_path):
    model, state = _run(tmp_path, epochs=4, log_every=4, best_metric="accuracy")
    assert state.step == 4 * (256 // 16) and state.epoch == 4
    records = read_log(tmp_path / "log.jsonl")
    train_recs = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_accuracy" in r]
    assert [r["step"] for r in evals] == [16, 32, 48, 64]  # after each epoch
    assert train_recs[-1]["loss"] < train_recs[0]["loss"]
    assert evals[-1]["eval_accuracy"] > 0.8
    assert train_recs[-1]["lr"] == 0.0  # linear decay reached 0 at the last step
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "best" / "w.pt").is_file() and (tmp_path / "w.pt").is_file()
    assert state.best_value == max(r["eval_accuracy"] for r in evals)


def test_grad_accumulation_equals_the_big_batch(tmp_path):
    big, _ = _run(tmp_path / "a", steps=10, batch=16, accum=1, dropout=0.0, plot=False)
    acc, _ = _run(tmp_path / "b", steps=10, batch=16, accum=4, dropout=0.0, plot=False)
    for p, q in zip(big.parameters(), acc.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_fused_optimizer_clips_inside_its_step_as_clip_grad_norm_would(tmp_path):
    # the fused AdamW takes the clip factor as its grad_scale; the plain one runs clip_grad_norm_
    def run(name, fused, max_norm):
        model, _ = _run(tmp_path / name, steps=12, dropout=0.0, plot=False, fused=fused, max_grad_norm=max_norm)
        norms = [r["grad_norm"] for r in read_log(tmp_path / name / "log.jsonl") if "grad_norm" in r]
        return model, norms

    fused, fused_norms = run("fused", True, 0.05)
    plain, plain_norms = run("plain", False, 0.05)
    unclipped, _ = run("unclipped", True, None)
    assert min(plain_norms) > 0.05  # every step was clipped
    assert fused_norms == pytest.approx(plain_norms, rel=1e-4)
    for p, q in zip(fused.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    moved = [not torch.allclose(p, u, rtol=1e-3, atol=1e-4) for p, u in zip(fused.parameters(), unclipped.parameters())]
    assert any(moved)  # the clipping changed the run


def test_uneven_micro_batches_are_weighted_by_rows(tmp_path):
    # 15 rows in 2 micro-batches (8 + 7): the step must still be the mean over all 15
    big, _ = _run(tmp_path / "a", steps=6, batch=15, accum=1, dropout=0.0, plot=False)
    acc, _ = _run(tmp_path / "b", steps=6, batch=15, accum=2, dropout=0.0, plot=False)
    for p, q in zip(big.parameters(), acc.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


class _StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state, record):
        if state.step >= self.step:
            state.should_stop = True


def test_stop_and_resume_is_bitwise_identical(tmp_path):
    full, _ = _run(tmp_path / "full", steps=30, log_every=1, plot=False)
    x, y = toy_data()
    torch.manual_seed(0)
    model = ToyModel()
    opt = build_optimizer(model, kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    sched = linear_schedule(opt, 4, 30)
    out = tmp_path / "parts"
    state = train(
        model,
        opt,
        sched,
        toy_batches(x, y, 16),
        TrainConfig(out_dir=out, max_steps=30, progress=False, plot=False, log_every=1),
        callbacks=[_StopAt(13)],
    )
    assert state.step == 13 and latest_checkpoint(out / "checkpoints").name == "checkpoint-00000013"
    torch.manual_seed(123)  # a different fresh start: everything must come from the checkpoint
    resumed, _ = _run(out, steps=30, resume=True, log_every=1, plot=False)
    for p, q in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    steps = [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, 31))  # one record per step, no gap, no repeat


def test_checkpoints_keep_the_newest_and_ignore_partial_ones(tmp_path):
    _run(tmp_path, steps=20, save_every=4, keep_checkpoints=2, plot=False)
    names = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["checkpoint-00000016", "checkpoint-00000020"]
    (tmp_path / "checkpoints" / ".checkpoint-00000024.tmp-999").mkdir()  # a save cut by a kill
    (tmp_path / "checkpoints" / "checkpoint-00000028").mkdir()  # no trainer_state.json: incomplete
    assert latest_checkpoint(tmp_path / "checkpoints").name == "checkpoint-00000020"
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-00000020" / "trainer_state.json").read_text())
    assert state["loop"]["step"] == 20


def test_time_limit_stops_with_a_checkpoint(tmp_path):
    _, state = _run(tmp_path, steps=10_000, time_limit=0.5, plot=False)
    assert 0 < state.step < 10_000 and state.stop_reason == "time limit"
    assert latest_checkpoint(tmp_path / "checkpoints").name == f"checkpoint-{state.step:08d}"
    assert (tmp_path / "w.pt").is_file()  # the final model is still written


def test_needs_a_length_and_a_known_best_metric(tmp_path):
    with pytest.raises(BertkitError, match="max_steps or epochs"):
        _run(tmp_path / "a")  # neither max_steps nor epochs... (steps=None)
    with pytest.raises(BertkitError, match="best_metric"):
        _run(tmp_path / "b", steps=4, eval_every=2, best_metric="f1", plot=False)


def test_plotting_leaves_the_host_matplotlib_alone(tmp_path):
    """No matplotlib.use(), no pyplot: a notebook's backend and figures are untouched."""
    import subprocess
    import sys

    backend = "dict.__getitem__(matplotlib.rcParams, 'backend')"  # read without resolving it (that loads pyplot)
    points = "[{'step': 1, 'loss': 2.0}, {'step': 2, 'loss': 1.5, 'eval_loss': 1.7}]"
    code = (
        f"import sys, matplotlib; before = {backend}; from bertkit.train.curves import plot_log; "
        f"plot_log({points}, {str(tmp_path / 'c.png')!r}); "
        f"print('matplotlib.pyplot' in sys.modules, {backend} == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_loop_prints_nothing_and_logs_through_logging(tmp_path, capsys, caplog):
    import logging

    _run(tmp_path, steps=13, log_every=1, plot=False, save_every=7)
    with caplog.at_level(logging.INFO, logger="bertkit"):
        _run(tmp_path, steps=15, log_every=1, plot=False, resume=True)
    assert capsys.readouterr().out == ""
    assert "resumed from" in caplog.text and "checkpoint-00000013 (step 13)" in caplog.text
