"""`bertkit embed` and `bertkit fill-mask`: pretrained BERT from the command line.

    bertkit embed --model DIR --input texts.txt --output vectors.npy --pooling mean --layers -1,-2,-3,-4
    bertkit fill-mask --model DIR "Paris is a beautiful [MASK]."

Thin wrappers over bertkit.inference.embed / fill_mask.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from bertkit.errors import BertkitError, InputFileError


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser(
        "embed",
        help="sentence vectors for every line of a text file, saved as .npy",
        description="One vector per input line (row i = line i), from a model folder. Texts are run "
        "in length-sorted batches; --layers takes several hidden states (0 = embeddings, -1 = last) "
        "and concatenates their pooled vectors.",
    )
    e.add_argument("--model", required=True, help="model folder (config.json, model.safetensors, vocab.txt)")
    e.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    e.add_argument("--output", required=True, help="output .npy file: float32 [lines, dim]")
    e.add_argument("--pooling", default="mean", choices=["mean", "cls", "max"], help="how tokens become one vector")
    e.add_argument("--layers", default="-1", help="comma-separated hidden states to pool, e.g. -1,-2,-3,-4")
    e.add_argument("--combine", default="concat", choices=["concat", "mean"], help="how several layers combine")
    e.add_argument("--normalize", action="store_true", help="scale each vector to unit length")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--max-length", type=int, help="truncate texts to this many tokens (default: the model's limit)")
    e.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "int8"],
        help="arithmetic: float32 (exact), bfloat16 (only on CPUs with AVX-512 BF16/AMX), "
        "int8 (int8 matmuls, calibrated on the first 256 lines)",
    )
    e.set_defaults(func=run_embed)
    # let "--layers -1,-2,-3,-4" through: argparse would read "-1,-2,..." as an option name
    e._negative_number_matcher = re.compile(r"^-\d+(,\s*-?\d+)*$|^-\d*\.\d+$")

    f = subparsers.add_parser(
        "fill-mask",
        help="the most likely words for each [MASK] in a sentence",
        description="Top-k words with probabilities for every [MASK]; the model folder needs masked-LM "
        "weights (cls.predictions.*), e.g. a converted Google checkpoint or bertkit pretrain output.",
    )
    f.add_argument("--model", required=True, help="model folder with an MLM head")
    f.add_argument("text", nargs="+", help="sentence(s) containing [MASK]")
    f.add_argument("--top-k", type=int, default=5)
    f.add_argument("--json", action="store_true", help="print JSON instead of a table")
    f.set_defaults(func=run_fill_mask)


def parse_layers(text: str) -> list[int]:
    try:
        layers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BertkitError(f"--layers {text!r}: give comma-separated integers such as -1,-2,-3,-4") from None
    if not layers:
        raise BertkitError("--layers: give at least one layer")
    return layers


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise InputFileError(path, "no such file")
    texts = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                texts.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                raise InputFileError(
                    path, f"not UTF-8 ({err.reason} at byte {err.start}); re-save as UTF-8", number
                ) from None
    if not texts:
        raise InputFileError(path, "empty; give one text per line")
    return texts


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from bertkit.inference import embed

    out = Path(args.output)
    if out.suffix != ".npy":
        raise BertkitError(f"--output {out}: use a .npy file name")
    texts = read_lines(Path(args.input))
    start = time.perf_counter()
    vectors = embed(
        texts,
        model=args.model,
        pooling=args.pooling,
        layers=parse_layers(args.layers),
        normalize=args.normalize,
        batch_size=args.batch_size,
        dtype=args.dtype,
        max_length=args.max_length,
        combine=args.combine,
    )
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, vectors.numpy())
    os.replace(tmp, out)
    print(
        f"embedded {len(texts)} lines -> {out} {list(vectors.shape)} float32 "
        f"in {seconds:.1f} s ({len(texts) / max(seconds, 1e-9):.0f} texts/s)"
    )
    return 0


def run_fill_mask(args: argparse.Namespace) -> int:
    from bertkit.inference import fill_mask

    results = fill_mask(list(args.text), model=args.model, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return 0
    for text, result in zip(args.text, results):
        print(text)
        per_mask = result if result and isinstance(result[0], list) else [result]
        for m, candidates in enumerate(per_mask, 1):
            if len(per_mask) > 1:
                print(f"  [MASK] #{m}")
            for rank, c in enumerate(candidates, 1):
                print(f"  {rank}. {c['token_str']:<16} {c['score']:.4f}  {c['sequence']}")
    return 0
