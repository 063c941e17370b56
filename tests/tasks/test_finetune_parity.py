"""Five fine-tuning steps in bertkit equal five steps of the transformers recipe.

Same tiny random checkpoint (made by transformers, head included, dropout off), same features,
same length-grouped batches, same AdamW / warmup + linear decay / clipping: the per-step losses
and the loss of the trained model must agree to float tolerance. This checks the heads, the
label alignment and the shared loop together, not just that "the loss goes down".
"""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from peers import peer

transformers = peer("transformers")

from bertkit.data.batching import length_grouped_plan  # noqa: E402
from bertkit.tasks.features import pad_batch  # noqa: E402
from bertkit.tasks.finetune import FinetuneSettings, finetune, get_task, prepare  # noqa: E402

STEPS, BATCH, LR = 5, 8, 1e-3
HF_HEADS = {
    "classify": "BertForSequenceClassification",
    "regress": "BertForSequenceClassification",
    "ner": "BertForTokenClassification",
    "qa": "BertForQuestionAnswering",
}


def tiny_checkpoint(tmp_path, minilm_dir, task, labels, dropout=0.0):
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=512,
        num_labels=len(labels) if labels else (1 if task == "regress" else 2),
        id2label=dict(enumerate(labels)) if labels else None,
        problem_type="regression" if task == "regress" else None,
    )
    torch.manual_seed(123)
    model = getattr(transformers, HF_HEADS[task])(config)
    folder = tmp_path / f"tiny-{task}-{dropout}"
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def plan(features):
    """The batches of bertkit's first epoch: the same plan function, seed 0, epoch 0."""
    return length_grouped_plan(
        np.array([len(f["input_ids"]) for f in features]), BATCH, 0, 0, group=50, drop_last=False
    )


def reference_losses(folder, task, features, total_steps, warmup):
    """The transformers no-trainer loop over the batches bertkit's loop sees."""
    model = getattr(transformers, HF_HEADS[task]).from_pretrained(folder)
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, eps=1e-6)
    sched = transformers.get_linear_schedule_with_warmup(opt, warmup, total_steps)
    batches = plan(features)[:total_steps]
    losses = []
    for idx in batches:
        loss = model(**pad_batch([features[i] for i in idx])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        after = model(**pad_batch([features[i] for i in batches[0]])).loss.item()
    return losses, after


def slice_file(shared_data, tmp_path, task):
    if task == "classify":
        lines = shared_data("sst2", "train.tsv").read_text(encoding="utf-8").splitlines()[: 1 + STEPS * BATCH]
        path = tmp_path / "train.tsv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif task == "regress":
        lines = shared_data("sts", "sick_relatedness_train.tsv").read_text(encoding="utf-8").splitlines()
        path = tmp_path / "train.tsv"
        path.write_text("\n".join(lines[: 1 + STEPS * BATCH]) + "\n", encoding="utf-8")
    elif task == "ner":
        text = shared_data("conll2003", "train.txt").read_text(encoding="utf-8")
        path = tmp_path / "train.txt"
        path.write_text("\n\n".join(text.split("\n\n")[: STEPS * BATCH + 1]) + "\n", encoding="utf-8")
    else:
        doc = json.loads(shared_data("squad", "train-v1.1-from-dev.json").read_text(encoding="utf-8"))
        para = doc["data"][0]["paragraphs"][:6]
        path = tmp_path / "train.json"
        path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": para}]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("task", ["classify", "regress", "ner", "qa"])
def test_five_steps_match_transformers(tmp_path, shared_data, minilm_dir, task):
    train = slice_file(shared_data, tmp_path, task)
    settings = FinetuneSettings(
        epochs=1,
        lr=LR,
        batch_size=BATCH,
        max_seq_len=64 if task != "qa" else 128,
        doc_stride=48,
        max_steps=STEPS,
        seed=0,
        progress=False,
        log_every=1,
    )
    adapter = get_task(task)
    labels = adapter.labels(adapter.read(train), train)  # the tiny head gets the data's label count
    folder = tiny_checkpoint(tmp_path, minilm_dir, task, labels)
    prep = prepare(task, folder, train, train, settings.for_task(task))
    features = prep.train_features
    spe = math.ceil(len(features) / BATCH)
    assert spe >= STEPS

    out = tmp_path / "out"
    result = finetune(task, folder, train, train, out, settings)
    assert result["steps"] == STEPS
    ours = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    warmup = int(round(STEPS * settings.warmup_ratio))
    ref, ref_after = reference_losses(folder, task, features, STEPS, warmup)
    assert ours == pytest.approx(ref, rel=1e-4, abs=1e-5)
    assert ref[-1] != pytest.approx(ref[0], rel=1e-3)  # the steps really changed the weights

    trained = type(prep.model).from_pretrained(out)
    idx = plan(features)[0]
    with torch.no_grad():
        after = trained(**pad_batch([features[i] for i in idx])).loss.item()
    assert after == pytest.approx(ref_after, rel=1e-4, abs=1e-5)
