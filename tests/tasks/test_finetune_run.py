"""A whole (tiny) fine-tuning run: what lands in --out, the kept checkpoint is the best one,
evaluate and the CLI agree with it."""

import json

import pytest
from test_finetune_parity import slice_file, tiny_checkpoint

from bertkit.cli import main
from bertkit.tasks.finetune import FinetuneSettings, evaluate, finetune, get_task


def test_best_checkpoint_is_kept_and_evaluate_reproduces_it(tmp_path, shared_data, minilm_dir, capsys):
    train = slice_file(shared_data, tmp_path, "classify")
    folder = tiny_checkpoint(tmp_path, minilm_dir, "classify", ["0", "1"])
    out = tmp_path / "out"
    settings = FinetuneSettings(epochs=2, lr=3e-3, batch_size=8, max_seq_len=32, eval_every=2, seed=0, progress=False)
    result = finetune("classify", folder, train, train, out, settings)
    saved = json.loads((out / "finetune.json").read_text())
    accs = [h["accuracy"] for h in saved["history"]]
    assert len(accs) >= 5 and saved["best"]["accuracy"] == max(accs) == result["best"]["accuracy"]
    assert saved["labels"] == ["0", "1"] and saved["max_seq_len"] == 32
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "log.jsonl", "curves.png"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "best").exists() and (out / "checkpoints").is_dir()  # kept for --resume
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "0", "1": "1"}

    metrics = evaluate("classify", out, train, output=tmp_path / "m.json")
    assert metrics["accuracy"] == pytest.approx(saved["best"]["accuracy"])
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == metrics["accuracy"]

    assert main(["evaluate", "classify", "--model", str(out), "--data", str(train)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == pytest.approx(metrics)
    assert (out / f"eval_{train.stem}.json").is_file()


def test_evaluate_refuses_wrong_task_and_unknown_labels(tmp_path, shared_data, minilm_dir, capsys):
    train = slice_file(shared_data, tmp_path, "classify")
    folder = tiny_checkpoint(tmp_path, minilm_dir, "classify", ["0", "1"])
    out = tmp_path / "out"
    finetune(
        "classify", folder, train, train, out, FinetuneSettings(epochs=1, batch_size=8, max_seq_len=32, progress=False)
    )
    assert main(["evaluate", "ner", "--model", str(out), "--data", str(train)]) == 2
    assert "fine-tuned for classify, not ner" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\nodd\tpositive\n")
    assert main(["evaluate", "classify", "--model", str(out), "--data", str(bad)]) == 2
    assert f"{bad}:3: label 'positive' is not one the model was trained with" in capsys.readouterr().err


def test_runs_are_reproducible_with_dropout(tmp_path, shared_data, minilm_dir):
    train = slice_file(shared_data, tmp_path, "ner")
    adapter = get_task("ner")
    labels = adapter.labels(adapter.read(train), train)
    folder = tiny_checkpoint(tmp_path, minilm_dir, "ner", labels, dropout=0.1)
    logs = []
    for run in ("a", "b", "c"):
        settings = FinetuneSettings(
            epochs=1,
            lr=1e-3,
            batch_size=8,
            max_seq_len=48,
            max_steps=4,
            log_every=1,
            seed=1 if run == "c" else 0,
            progress=False,
        )
        finetune("ner", folder, train, train, tmp_path / run, settings)
        logs.append(
            [r["loss"] for r in map(json.loads, (tmp_path / run / "log.jsonl").read_text().splitlines()) if "loss" in r]
        )
    assert logs[0] == logs[1] and len(logs[0]) == 4  # same seed: the same dropout masks and batches
    assert logs[2] != logs[0]
