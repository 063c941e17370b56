"""`bertkit attention` and `bertkit similarity`: look inside a model from the command line.

    bertkit attention --model DIR "The cat sat on the mat." --layer 2 --head 5 --out head.png
    bertkit attention --model DIR "Paris is a beautiful city" --pair "I love Paris" --out view.html
    bertkit similarity --model DIR "He got bit by Python" "Python is my favorite programming language" --word python

Thin wrappers over bertkit.viz; the library does the work.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable

from bertkit.errors import BertkitError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attention", help="draw a model's attention for a sentence (PNG heatmaps or an HTML head view)",
        description="Draw attention for one sentence or a pair. --out x.png: --layer and --head give one "
        "head's heatmap, --layer alone a grid of the layer's heads, neither a layers x heads overview. "
        "--out x.html: an interactive, self-contained head view (--layer/--head choose the first view). "
        "Layers and heads count from 0; -1 is the last.",
    )
    p.add_argument("--model", required=True, help="model folder (config.json, model.safetensors, vocab.txt)")
    p.add_argument("sentence", help="the sentence (sentence A)")
    p.add_argument("--pair", help="a second sentence (sentence B)")
    p.add_argument("--layer", type=int, help="layer number (0-based; -1 = last)")
    p.add_argument("--head", type=int, help="head number (0-based; needs --layer for PNG)")
    p.add_argument("--out", required=True, help="output file: .png or .html")
    p.set_defaults(func=run_attention)

    s = subparsers.add_parser(
        "similarity", help="how much context changes a word's vector (contextual vs static embeddings)",
        description="Cosine similarity of WORD's vectors in the given sentences: after the last layer "
        "(contextual) and in the token-embedding table (static, identical for the same word). With "
        "--plot, a 2-D PCA map of the word's contextual vectors.",
    )
    s.add_argument("--model", required=True, help="model folder")
    s.add_argument("sentences", nargs="+", metavar="sentence", help="two or more sentences containing WORD")
    s.add_argument("--word", required=True, help="the word to compare (case-insensitive)")
    s.add_argument("--plot", help="write a PCA map of the word's vectors to this .png")
    s.set_defaults(func=run_similarity)


def load_model(folder: str) -> tuple[Any, Any]:
    """(BertModel, Tokenizer) from a model folder, in eval mode."""
    from bertkit import BertModel, Tokenizer

    path = Path(folder)
    if not path.is_dir():
        raise BertkitError(f"--model {folder}: no such folder (give a folder with config.json and model.safetensors)")
    model = BertModel.from_pretrained(path)
    model.eval()
    return model, Tokenizer.from_pretrained(path)


def run_attention(args: argparse.Namespace) -> int:
    from bertkit.viz import compute_attention
    from bertkit.viz.attention import check_index

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".html"):
        raise BertkitError(f"--out {args.out}: must end in .png or .html")
    if args.head is not None and args.layer is None and out.suffix.lower() == ".png":
        raise BertkitError("--head needs --layer for a PNG (e.g. --layer -1 --head 3)")
    model, tokenizer = load_model(args.model)
    for value, count, what in ((args.layer, model.config.num_hidden_layers, "layer"),
                               (args.head, model.config.num_attention_heads, "head")):
        if value is not None:
            check_index(value, count, what)  # fail before running the model
    attention = _warn_as_lines("attention", lambda: compute_attention(model, tokenizer, args.sentence, args.pair))
    if out.suffix.lower() == ".png":
        attention.to_png(out, layer=args.layer, head=args.head)
        if args.layer is None:
            what = f"layers x heads overview ({attention.num_layers} x {attention.num_heads})"
        elif args.head is None:
            what = f"all {attention.num_heads} heads of layer {args.layer}"
        else:
            what = f"layer {args.layer}, head {args.head}"
    else:
        title = args.sentence if args.pair is None else f"{args.sentence} | {args.pair}"
        attention.to_html(out, title=title, layer=args.layer if args.layer is not None else 0,
                          head=args.head if args.head is not None else 0)
        what = f"head view, {attention.num_layers} layers x {attention.num_heads} heads"
    print(f"{len(attention.tokens)} tokens: {' '.join(attention.tokens)}")
    print(f"wrote {out} ({what})")
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from bertkit.viz import WordSimilarity, embedding_map, word_vectors
    from bertkit.viz.contextual import cosine_matrix

    if len(args.sentences) < 2:
        raise BertkitError("similarity: give at least two sentences that contain --word")
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise BertkitError(f"--plot {args.plot}: must end in .png")
    model, tokenizer = load_model(args.model)
    vectors = _warn_as_lines("similarity", lambda: word_vectors(model, tokenizer, args.sentences, args.word))
    for k, (text, pieces) in enumerate(zip(vectors.sentences, vectors.pieces), 1):
        print(f"[{k}] {text}    ({args.word!r} -> {' '.join(pieces)})")
    if len(args.sentences) == 2:
        print(WordSimilarity.between(vectors).report())
    else:
        for name, matrix in (("contextual (last layer)", cosine_matrix(vectors.contextual)),
                             ("static input embedding", cosine_matrix(vectors.static))):
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
