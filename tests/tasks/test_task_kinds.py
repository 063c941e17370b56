"""Regression and multi-label fine-tuning, the frozen-encoder workflow, the linear probe,
evaluate's progress bar, and precision refused where the CPU would emulate it."""

import json

import numpy as np
import pytest
import torch
from tiny import one_thread, sentiment_tsv, tiny_bert  # noqa: F401  (one_thread: autouse)

from bertkit.cli import main
from bertkit.model import BertForSequenceClassification
from bertkit.tasks.finetune import FinetuneSettings, evaluate, finetune

SMALL = dict(epochs=2, lr=2e-3, batch_size=8, max_seq_len=16, progress=False)


def test_regression_trains_and_scores_pearson_spearman(tmp_path, minilm_dir):
    rows = [
        ("a man plays", "a man is playing", 4.8),
        ("a dog runs", "a cat sleeps", 1.5),
        ("kids swim", "kids are in water", 4.1),
    ]
    rows += [("a woman cooks", "a car is red", 1.1), ("two men talk", "men are talking", 4.5), ("it rains", "sun", 2.0)]
    data = tmp_path / "sick.tsv"
    data.write_text("sentence_a\tsentence_b\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows * 4))
    out = tmp_path / "reg"
    result = finetune("regress", tiny_bert(tmp_path, minilm_dir), data, data, out, FinetuneSettings(**SMALL))
    assert {"pearson", "spearman", "mse"} <= set(result["best"])
    config = json.loads((out / "config.json").read_text())
    assert config["num_labels"] == 1 and config["problem_type"] == "regression"
    again = evaluate("regress", out, data)  # batched inference kernels: the same scores to float rounding
    assert again["mse"] == pytest.approx(result["best"]["mse"], rel=1e-4)
    # the tiny model's predictions differ by ~1e-4 of their size (~3, the mean score), so
    # rounding moves the correlation more than the error
    assert again["pearson"] == pytest.approx(result["best"]["pearson"], abs=2e-3)


def test_new_regression_head_starts_at_the_mean_score_and_a_trained_one_is_kept(tmp_path, minilm_dir):
    from bertkit.tasks.prepare import prepare

    data = tmp_path / "scores.tsv"
    data.write_text("sentence_a\tsentence_b\tscore\n" + "a\tb\t1.0\nc\td\t4.0\ne\tf\t4.5\n")
    settings = FinetuneSettings(**SMALL).for_task("regress")
    new = prepare("regress", tiny_bert(tmp_path, minilm_dir), data, data, settings).model
    assert new.classifier.bias.item() == pytest.approx(3.166666, abs=1e-5)

    new.classifier.bias.data.fill_(-7.0)  # a trained head: its bias is the checkpoint's, not the data's
    new.save_pretrained(tmp_path / "trained")
    for name in ("vocab.txt", "tokenizer_config.json"):
        (tmp_path / "trained" / name).write_bytes((minilm_dir / name).read_bytes())
    kept = prepare("regress", tmp_path / "trained", data, data, settings).model
    assert kept.classifier.bias.item() == -7.0


def test_multilabel_trains_with_micro_and_macro_f1(tmp_path, minilm_dir):
    data = tmp_path / "topics.jsonl"
    rows = [
        ("goal in the final match", ["sport"]),
        ("the vote on taxes", ["politics"]),
        ("the minister played golf", ["politics", "sport"]),
    ]
    rows += [("a quiet sunday", [])]
    data.write_text("".join(json.dumps({"sentence": s, "labels": labels}) + "\n" for s, labels in rows * 6))
    out = tmp_path / "ml"
    result = finetune("multilabel", tiny_bert(tmp_path, minilm_dir), data, data, out, FinetuneSettings(**SMALL))
    assert {"micro_f1", "macro_f1", "exact_match"} <= set(result["best"])
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "politics", "1": "sport"}
    assert config["problem_type"] == "multi_label_classification"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"sentence": "x", "labels": ["weather"]}) + "\n")
    from bertkit.errors import InputFileError

    with pytest.raises(InputFileError, match=r"bad.jsonl:1: label 'weather' is not one the model was trained with"):
        evaluate("multilabel", out, bad)


def test_freeze_encoder_trains_only_the_head(tmp_path, minilm_dir):
    """The real MiniLM: a random tiny encoder's pooled [CLS] barely varies between sentences."""
    data = sentiment_tsv(tmp_path)
    out = tmp_path / "frozen"
    settings = FinetuneSettings(**{**SMALL, "epochs": 10, "log_every": 1}, freeze_encoder=True)  # lr: 1e-3
    result = finetune("classify", minilm_dir, data, data, out, settings)
    losses = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 40 and np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4])  # the head learns
    before = BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=2).state_dict()
    after = BertForSequenceClassification.from_pretrained(out).state_dict()
    encoder = [k for k in after if k.startswith("bert.")]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert result["best"]["accuracy"] >= 0.75  # 8 sentences, cleanly positive or negative
    assert evaluate("classify", out, data)["accuracy"] == pytest.approx(result["best"]["accuracy"])


def test_freeze_encoder_is_refused_for_token_tasks(tmp_path, minilm_dir):
    from bertkit.errors import BertkitError

    conll = tmp_path / "t.txt"
    conll.write_text("EU B-ORG\nrejects O\n")
    with pytest.raises(BertkitError, match="--freeze-encoder works for sentence-level tasks"):
        finetune(
            "ner", tiny_bert(tmp_path, minilm_dir), conll, conll, tmp_path / "o", FinetuneSettings(freeze_encoder=True)
        )


def test_probe_matches_sklearn_logistic_regression(tmp_path, minilm_dir, capsys):
    from peers import peer

    linear_model = peer("sklearn.linear_model")
    from bertkit.loading import load_folder
    from bertkit.tasks.adapters import get_task
    from bertkit.tasks.probe import fit_logistic, probe, sentence_vectors

    base = tiny_bert(tmp_path, minilm_dir)
    data = sentiment_tsv(tmp_path, repeat=1)
    adapter = get_task("classify")
    examples = adapter.read(data)
    encoder, tokenizer, _ = load_folder(base, "BertModel")
    features, _ = adapter.encode(examples, tokenizer, 16, 0)
    x = sentence_vectors(encoder, features, "mean", layer=1)
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-6)
    y = torch.tensor([int(ex.label) for ex in examples])
    ours = fit_logistic(x, y, 2, c=0.5)
    ref = linear_model.LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(x.numpy().astype(np.float64), y.numpy())
    with torch.no_grad():
        probs = torch.softmax(ours(x.double()), -1)[:, 1].numpy()
    assert np.allclose(probs, ref.predict_proba(x.numpy().astype(np.float64))[:, 1], atol=1e-4, rtol=0)
    metrics = probe(base, data, data, features="cls", max_seq_len=16)
    assert metrics["train_examples"] == 8 and 0 <= metrics["accuracy"] <= 1
    assert (
        main(["probe", "--model", str(base), "--train", str(data), "--dev", str(data), "--layer", "0", "--no-progress"])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layer"] == 0


def test_evaluate_progress_bar_on_stderr_only(tmp_path, minilm_dir, capsys):
    data = sentiment_tsv(tmp_path)
    out = tmp_path / "o"
    finetune("classify", tiny_bert(tmp_path, minilm_dir), data, data, out, FinetuneSettings(**SMALL))
    capsys.readouterr()
    assert main(["evaluate", "classify", "--model", str(out), "--data", str(data), "--batch-size", "4"]) == 0
    captured = capsys.readouterr()
    assert "evaluate classify" in captured.err and "32/32" in captured.err
    assert len(captured.out.strip().splitlines()) == 1 and json.loads(captured.out)["accuracy"] >= 0
    assert main(["evaluate", "classify", "--model", str(out), "--data", str(data), "--no-progress"]) == 0
    assert "evaluate classify" not in capsys.readouterr().err


def test_precision_is_refused_where_emulated_and_runs_where_native(tmp_path, minilm_dir, monkeypatch, capsys):
    from bertkit import hardware

    data = sentiment_tsv(tmp_path)
    base = tiny_bert(tmp_path, minilm_dir)
    argv = ["finetune", "classify", "--model", str(base), "--train", str(data), "--dev", str(data)]
    if hardware.cpu_has_native("bf16"):
        fp32 = finetune(
            "classify", base, data, data, tmp_path / "a", FinetuneSettings(**SMALL, max_steps=3, log_every=1)
        )
        bf16 = finetune(
            "classify",
            base,
            data,
            data,
            tmp_path / "b",
            FinetuneSettings(**SMALL, max_steps=3, log_every=1, precision="bf16"),
        )
        losses = [
            [r["loss"] for r in map(json.loads, (tmp_path / d / "log.jsonl").read_text().splitlines()) if "loss" in r]
            for d in "ab"
        ]
        # bf16 matmuls keep 8 bits of mantissa: the losses agree to a few percent, not bit for bit
        assert np.allclose(losses[1], losses[0], rtol=5e-2, atol=1e-2) and bf16["steps"] == fp32["steps"] == 3
    monkeypatch.setattr(hardware, "cpu_has_native", lambda precision="bf16": False)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "c"), "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no native bfloat16" in err and not (tmp_path / "c").exists()
