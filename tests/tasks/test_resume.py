"""Runs you can manage: a killed or interrupted fine-tuning run resumed with --resume ends bitwise
identical to an uninterrupted one; Ctrl-C says so truthfully; early stopping; TensorBoard; the model card."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import one_thread, sentiment_tsv, tiny_bert  # noqa: F401  (one_thread: autouse)

from bertkit.cli import main
from bertkit.tasks.finetune import FinetuneSettings, finetune

RECIPE = dict(epochs=2, lr=2e-3, batch_size=4, max_seq_len=16, eval_every=4, save_every=3, log_every=1, progress=False)

KILLER = """
import os, signal, sys
import torch
from bertkit.tasks.finetune import FinetuneSettings, finetune

torch.set_num_threads(int(sys.argv[6]))  # the parent's count: the same float reductions

class Kill:
    def on_step_end(self, state, record):
        if state.step == int(sys.argv[5]):
            os.kill(os.getpid(), signal.SIGKILL)

finetune("classify", sys.argv[1], sys.argv[2], sys.argv[2], sys.argv[3],
         FinetuneSettings(**__import__("json").loads(sys.argv[4])), callbacks=(Kill(),))
"""


def outcome(out: Path) -> tuple:
    record = json.loads((out / "finetune.json").read_text())
    losses = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    return (out / "model.safetensors").read_bytes(), record["history"], record["best"], losses


@pytest.fixture
def run_files(tmp_path, minilm_dir):
    model = tiny_bert(tmp_path, minilm_dir, dropout=0.1)
    data = sentiment_tsv(tmp_path)
    reference = tmp_path / "uninterrupted"
    finetune("classify", model, data, data, reference, FinetuneSettings(**RECIPE))
    return model, data, outcome(reference)


def test_a_killed_run_resumed_ends_bitwise_identical(tmp_path, run_files):
    model, data, expected = run_files
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    threads = torch.get_num_threads()
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(model), str(data), str(out), json.dumps(RECIPE), "7", str(threads)],
        env=env,
        timeout=900,
    )
    assert proc.returncode == -signal.SIGKILL  # killed after the checkpoint of step 6, before step 9's
    assert json.loads((out / "finetune.json").read_text())["status"] == "running"
    finetune("classify", model, data, data, out, FinetuneSettings(**RECIPE), resume=True)
    assert outcome(out) == expected
    assert json.loads((out / "finetune.json").read_text())["status"] == "done"


class _CtrlC:
    def on_step_end(self, state, record):
        if state.step == 5:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_message_is_true_and_resume_continues(tmp_path, run_files, caplog):
    model, data, expected = run_files
    out = tmp_path / "interrupted"
    result = finetune("classify", model, data, data, out, FinetuneSettings(**RECIPE), callbacks=(_CtrlC(),))
    # the loop finishes the step in which the signal arrives (5, or 6 when it reads its flag before the
    # callbacks): either way the run stops well before its end
    assert result["interrupted"] and result["steps"] in (5, 6) and len(expected[3]) > 6
    assert "run the same command with --resume to continue" in caplog.text
    assert (out / "model.safetensors").is_file()  # the best model evaluated so far (step 4)
    assert json.loads((out / "finetune.json").read_text())["status"] == "interrupted"
    finetune("classify", model, data, data, out, FinetuneSettings(**RECIPE), resume=True)
    assert outcome(out) == expected


def test_resume_refuses_a_changed_recipe(tmp_path, run_files):
    from bertkit.errors import BertkitError

    model, data, _ = run_files
    out = tmp_path / "uninterrupted"
    with pytest.raises(BertkitError, match=r"changed: lr 0.001 \(was 0.002\)"):
        finetune("classify", model, data, data, out, FinetuneSettings(**{**RECIPE, "lr": 1e-3}), resume=True)


def test_early_stopping_stops_after_patience_evaluations(tmp_path, minilm_dir):
    data = sentiment_tsv(tmp_path)
    settings = FinetuneSettings(epochs=3, lr=1e-12, batch_size=4, max_seq_len=16, eval_every=1, early_stopping=2)
    result = finetune("classify", tiny_bert(tmp_path, minilm_dir), data, data, tmp_path / "o", settings)
    assert result["steps"] == 3  # step 1 sets the best; steps 2 and 3 do not beat it
    assert len(result["history"]) == 3


def test_tensorboard_model_card_and_cli_exit_codes(tmp_path, minilm_dir, capsys):
    peer_ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    data = sentiment_tsv(tmp_path)
    out = tmp_path / "o"
    argv = ["finetune", "classify", "--model", tiny_bert(tmp_path, minilm_dir), "--train", data, "--dev", data]
    argv += ["--out", out, "--epochs", "2", "--batch-size", "8", "--max-seq-len", "16", "--report-to", "tensorboard"]
    assert main([str(a) for a in argv]) == 0
    events = peer_ea.EventAccumulator(str(out / "runs"))
    events.Reload()
    assert {"eval/accuracy", "eval/mcc", "train/loss"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("eval/accuracy")) == 2
    card = (out / "README.md").read_text()
    assert "tiny-bert" in card and "| step | epoch | accuracy |" in card and "--report-to tensorboard" in card
    assert card.count("\n| 4 | 1.0000 |") == 1 and card.count("\n| 8 | 2.0000 |") == 1
    assert "(32 examples)" in card
    assert main([str(a) for a in argv]) == 2  # the folder is not new now
    assert "not empty" in capsys.readouterr().err
