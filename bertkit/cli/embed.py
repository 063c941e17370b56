"""`bertkit embed` and `bertkit fill-mask`: pretrained BERT from the command line.

    bertkit embed --model DIR --input texts.txt --output vectors.npy [--pooling mean --layers -1,-2,-3,-4]
    cat texts.txt | bertkit embed --model DIR --input - --output vectors.npy
    bertkit fill-mask --model DIR "Paris is a beautiful [MASK]."

Thin wrappers over bertkit.inference.embed / fill_mask. `embed` streams: it reads, embeds and
writes a chunk of lines at a time (an input larger than memory works), appending rows to the
.npy file whose header is fixed up at the end; the file appears, complete, only when the last
row is written.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import time
from pathlib import Path
from typing import IO, Any

from bertkit.cli.common import add_device, add_precision, add_progress, add_renamed
from bertkit.cli.textio import STDIN, check_readable, chunks, count_lines, iter_lines, progress_bar, show_progress
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_path
from bertkit.sentence_folder import POOLINGS


def register(subparsers: argparse._SubParsersAction) -> None:
    e = subparsers.add_parser(
        "embed",
        help="sentence vectors for every line of a text file, saved as .npy",
        description="One vector per input line (row i = line i), from a model folder or hub name. A "
        "sentence-transformers folder's own pooling, normalisation and token limit apply unless the flags "
        "say otherwise. --layers takes several hidden states (0 = embeddings, -1 = last) and concatenates "
        "their pooled vectors. The input is read, embedded and written in chunks.",
    )
    e.add_argument("--model", required=True, help="model folder (config.json, model.safetensors, vocab.txt)")
    e.add_argument("--input", required=True, help="UTF-8 text file, one text per line, or - for stdin")
    e.add_argument("--output", required=True, help="output .npy file: float32 [lines, dim]")
    e.add_argument("--pooling", choices=POOLINGS, help="how tokens become one vector (default: the folder's, or mean)")
    e.add_argument("--layers", default="-1", help="comma-separated hidden states to pool, e.g. -1,-2,-3,-4")
    e.add_argument("--combine", default="concat", choices=["concat", "mean"], help="how several layers combine")
    norm = e.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_const", const=True, help="unit-length vectors")
    norm.add_argument("--no-normalize", dest="normalize", action="store_const", const=False, help="raw vectors")
    e.add_argument("--prompt-name", help="a named prompt of the folder (config_sentence_transformers.json)")
    e.add_argument("--prompt", help="text put before every input line")
    e.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    e.add_argument("--chunk-lines", type=int, default=4096, help="lines read, embedded and written at a time")
    e.add_argument("--max-seq-len", type=int, help="tokens per text (default: the folder's max_seq_length or 512)")
    add_renamed(e, "--max-length", "--max-seq-len", type=int)
    add_device(e)
    add_precision(e, inference=True)
    add_renamed(e, "--dtype", "--precision")
    add_progress(e)
    e.set_defaults(func=run_embed, normalize=None)
    # let "--layers -1,-2,-3,-4" through: argparse would read "-1,-2,..." as an option name
    e._negative_number_matcher = re.compile(r"^-\d+(,\s*-?\d+)*$|^-\d*\.\d+$")

    f = subparsers.add_parser(
        "fill-mask",
        help="the most likely words for each [MASK] in a sentence",
        description="Top-k words with probabilities for every [MASK]; the model folder needs masked-LM "
        "weights (cls.predictions.*), e.g. a converted Google checkpoint or bertkit pretrain output. "
        "Give - as the text to read sentences from stdin (one per line).",
    )
    f.add_argument("--model", required=True, help="model folder with an MLM head")
    f.add_argument("text", nargs="+", help="sentence(s) containing [MASK], or - for stdin")
    f.add_argument("--top-k", type=int, default=5, help="candidates per [MASK]")
    f.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_device(f)
    add_precision(f, inference=True)
    f.set_defaults(func=run_fill_mask)


def parse_layers(text: str) -> list[int]:
    try:
        layers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BertkitError(f"--layers {text!r}: give comma-separated integers such as -1,-2,-3,-4") from None
    if not layers:
        raise BertkitError("--layers: give at least one layer")
    return layers


class NpyRows:
    """float32 rows appended to an open .npy file; the header's row count is written at close.

    The header is padded to a fixed 128 bytes so the final count fits in place (the .npy format
    lets a header be padded with spaces; 128 keeps the data 64-byte aligned).
    """

    HEADER_BYTES = 128

    def __init__(self, f: IO[bytes], width: int) -> None:
        self.f, self.width, self.rows = f, width, 0
        f.write(self.header(0))

    def header(self, rows: int) -> bytes:
        text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {self.width}), }}"
        body = text.ljust(self.HEADER_BYTES - 10 - 1) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin-1")

    def append(self, block: Any) -> None:
        array = block.numpy().astype("<f4", copy=False)
        if array.ndim != 2 or array.shape[1] != self.width:
            raise BertkitError(f"internal: rows of width {array.shape[-1]} for a file of width {self.width}")
        self.f.write(array.tobytes())
        self.rows += len(array)

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(self.header(self.rows))


def run_embed(args: argparse.Namespace) -> int:
    from bertkit.inference import embed  # lazy: keeps bertkit --help free of torch

    out = Path(args.output)
    if out.suffix != ".npy":
        raise BertkitError(f"--output {out}: use a .npy file name")
    if out.is_dir():
        raise BertkitError(f"--output {out}: is a folder; give a .npy file name")
    if args.chunk_lines < 1 or args.batch_size < 1:
        raise BertkitError("--chunk-lines and --batch-size must be >= 1")
    check_readable(args.input)
    options = dict(
        model=args.model,
        pooling=args.pooling,
        layers=parse_layers(args.layers),
        normalize=args.normalize,
        batch_size=args.batch_size,
        dtype=args.precision,  # fp32|bf16|fp16|int8: spellings dtype= accepts
        max_seq_len=args.max_seq_len,
        combine=args.combine,
        device=args.device,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
    )
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    total = count_lines(args.input)
    with atomic_path(out) as tmp, open(tmp, "wb") as f, progress_bar(total, "embed", show_progress(args)) as bar:
        writer: NpyRows | None = None
        for chunk in chunks((text for _, text in iter_lines(args.input)), args.chunk_lines):
            vectors = embed(chunk, **options)
            writer = writer or NpyRows(f, vectors.shape[1])
            writer.append(vectors)
            bar.update(len(chunk))
        if writer is None:
            raise InputFileError("<stdin>" if args.input == STDIN else args.input, "empty; give one text per line")
        writer.close()
    seconds = time.perf_counter() - start
    print(
        f"embedded {writer.rows} lines -> {out} [{writer.rows}, {writer.width}] float32 "
        f"in {seconds:.1f} s ({writer.rows / max(seconds, 1e-9):.0f} texts/s)"
    )
    return 0


def run_fill_mask(args: argparse.Namespace) -> int:
    from bertkit.inference import fill_mask  # lazy: keeps bertkit --help free of torch

    texts = list(args.text)
    if texts == [STDIN]:
        texts = [text for _, text in iter_lines(STDIN) if text.strip()]
        if not texts:
            raise BertkitError("fill-mask: stdin held no sentences")
    results = fill_mask(
        texts,
        model=args.model,
        top_k=args.top_k,
        device=args.device,
        dtype=args.precision,  # fp32|bf16|fp16|int8: spellings dtype= accepts
    )
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return 0
    for text, result in zip(texts, results):
        print(text)
        per_mask = result if result and isinstance(result[0], list) else [result]
        for m, candidates in enumerate(per_mask, 1):
            if len(per_mask) > 1:
                print(f"  [MASK] #{m}")
            for rank, c in enumerate(candidates, 1):
                print(f"  {rank}. {c['token_str']:<16} {c['score']:.4f}  {c['sequence']}")
    return 0
