"""`bertkit demo`: the guided tour of the lecture, a thin script over the other commands.

Each step is a function taking the output folder; it prints what it shows and where its files went.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from bertkit.cli import finetune, pretrain, tokenizer, viz
from bertkit.settings import data_dir

DemoStep = Callable[[Path], None]


def _steps() -> list[tuple[str, DemoStep]]:
    return [
        # 1. subword tokenization: train a WordPiece vocabulary on the books (or Python's docs), tokenize with it
        (
            "Train a WordPiece vocabulary on the books (without data: Python's own docs) and tokenize with it",
            tokenizer.demo_step,
        ),
        # 2. pretraining: MLM + NSP data from the books, a BERT-tiny trained for ~2 minutes, fill-mask
        (
            "Pretrain a BERT-tiny from scratch on the same text (MLM + NSP) and ask it to fill in [MASK]",
            pretrain.demo_step,
        ),
        # 3. the lecture's three features seen in a real pretrained model (bertkit similarity / attention)
        ("Look inside a pretrained BERT (all-MiniLM-L6-v2): contextual vectors, pooling, attention", viz.demo_step),
        # 4. the lecture's "BERT model usage": fine-tuning, then the sentiment, NER and QA pipelines
        ("Fine-tune all-MiniLM-L6-v2 (sentiment, NER, QA) and use the models", finetune.demo_step),
    ]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="guided tour: tokenizer, pretraining, embeddings, fine-tuning")
    parser.add_argument("--out", default="demo-out", help="folder for everything the demo writes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"bertkit demo: data from {data_dir()} "
        f"($BERTKIT_DATA){'' if data_dir().is_dir() else ' -- not found: using fallbacks'}; "
        f"everything written goes to {out.resolve()}/",
        flush=True,
    )
    seconds = []
    for i, (title, step) in enumerate(_steps(), 1):
        print(f"\n=== {i}. {title} ===", flush=True)
        start = time.perf_counter()
        step(out)
        seconds.append(time.perf_counter() - start)
        print(f"--- step {i} done in {seconds[-1]:.1f} s", flush=True)
    print(
        f"\nDemo done in {sum(seconds) / 60:.1f} min (steps: {', '.join(f'{s:.0f} s' for s in seconds)}). "
        f"Everything it wrote is in {out.resolve()}/:"
    )
    for entry in sorted(out.iterdir()):
        print(f"  {entry.name}{'/' if entry.is_dir() else ''}")
    return 0
