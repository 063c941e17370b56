"""`bertkit probe`: how much a frozen model's features know about a task (logistic regression on them).

    bertkit probe --model M --train T --dev D [--task classify|nli] [--features cls|mean|pooler] [--layer N]

Prints the dev metrics as one JSON object on the last line (and writes them to --output if given).
"""

from __future__ import annotations

import argparse
import json

from bertkit.cli.common import add_device, add_progress, add_threads, apply_threads
from bertkit.files import atomic_write_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe",
        help="logistic regression on frozen BERT features (a linear probe)",
        description="Encode the training and dev data once with a frozen model, fit a logistic regression "
        "on one vector per input ([CLS], mean of tokens or the pooler; any layer) and score it on --dev.",
    )
    p.add_argument("--model", required=True, help="model folder or hub name (its encoder is used as it is)")
    p.add_argument("--train", required=True, help="labelled training data (as for finetune classify / nli)")
    p.add_argument("--dev", required=True, help="labelled dev data")
    p.add_argument("--task", default="classify", choices=["classify", "nli"], help="one sentence or a pair per input")
    p.add_argument("--features", default="cls", choices=["cls", "mean", "pooler"], help="the vector of each input")
    p.add_argument("--layer", type=int, default=-1, help="hidden state to read: 0 embeddings .. L, -1 the last")
    p.add_argument("--max-seq-len", type=int, default=128, help="max tokens per input")
    p.add_argument("--batch-size", type=int, default=64, help="examples per batch while encoding")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength, as scikit-learn's C")
    p.add_argument("--output", help="also write the metrics JSON here")
    p.add_argument("--text-column", help="column of the sentence or premise")
    p.add_argument("--pair-column", help="column of the second sentence (nli)")
    p.add_argument("--label-column", help="column of the label")
    add_device(p)
    add_progress(p)
    add_threads(p)
    p.set_defaults(func=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    from bertkit.tasks.probe import probe  # lazy: keeps bertkit --help free of torch

    apply_threads(args)
    columns = {
        k: getattr(args, k) for k in ("text_column", "pair_column", "label_column") if getattr(args, k) is not None
    }
    metrics = probe(
        args.model,
        args.train,
        args.dev,
        task=args.task,
        features=args.features,
        layer=args.layer,
        max_seq_len=args.max_seq_len,
        batch_size=args.batch_size,
        c=args.c,
        device=args.device,
        progress=args.progress and not args.quiet,
        **columns,
    )
    if args.output:
        atomic_write_json(args.output, metrics)
    print(json.dumps(metrics))
    return 0
