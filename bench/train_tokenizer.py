"""Vocabulary training speed and quality: bertkit's trainers vs Hugging Face `tokenizers`'.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/train_tokenizer.py [--mb 10] [--rounds 1] \
        [--models bpe,wordpiece,bytelevel] [--ratio-criterion]

Both sides train a 30,000-token vocabulary (min frequency 2, BERT's five special tokens) on the
first --mb MB of the corpus (books in name order, written to one file), with the same
normalizer and pre-tokenizer (BERT's uncased ones; GPT-2's byte-level split for bytelevel), 2
threads for `tokenizers` (RAYON_NUM_THREADS=2). Timed: the whole `train` call from the file
(reading and counting words included) -- bertkit's `Tokenizer.train`, tokenizers'
`Tokenizer.train(files, trainer)`.

Quality: tokens per word on a different 2 MB (the last 2 MB of the corpus, other books), with
words counted by BERT's pre-tokenizer, each side encoding with its own vocabulary.

Note: Hugging Face's WordPieceTrainer is BPE (frequency merges) with "##" prefixes; bertkit's
WordPiece merges by likelihood gain. --ratio-criterion also trains bertkit's WordPiece with the
bare ratio count(ab)/(count(a)count(b)), to show why the gain is the default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bertkit.constants import BERT_SPECIAL_TOKENS

os.environ.setdefault("RAYON_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

SPECIALS = list(BERT_SPECIAL_TOKENS)


def corpus_bytes() -> bytes:
    from bertkit.settings import data_path

    return b"".join(p.read_bytes() for p in sorted(data_path("corpus", "books").glob("*.txt")))


def hf_tokenizer(model: str, vocab_size: int):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if model == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS, show_progress=False
        )
    elif model == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS, show_progress=False
        )
    else:
        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=SPECIALS,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    if model == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.normalizer = normalizers.BertNormalizer()
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok, trainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--held-out-mb", type=float, default=2.0)
    parser.add_argument("--vocab-size", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--models", default="bpe,wordpiece,bytelevel")
    parser.add_argument("--ratio-criterion", action="store_true")
    args = parser.parse_args()

    import tokenizers

    from bertkit.hardware import describe
    from bertkit.tokenizers import Tokenizer
    from bertkit.tokenizers.normalizers import BertNormalizer
    from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer

    print(describe("cpu"), f"(load average {os.getloadavg()[0]:.1f}: other jobs share this machine)", flush=True)
    data = corpus_bytes()
    train = data[: int(args.mb * 1e6)].decode("utf-8", "ignore")
    held = data[-int(args.held_out_mb * 1e6) :].decode("utf-8", "ignore")
    held_paragraphs = [p for p in held.split("\n\n") if p.strip()]
    norm, pre = BertNormalizer(), BertPreTokenizer()
    n_words = sum(len(pre.words(norm.normalize_str(p))) for p in held_paragraphs)
    work = Path(tempfile.mkdtemp(prefix="bertkit-bench-"))
    train_file = work / "train.txt"
    train_file.write_text(train, encoding="utf-8")
    print(
        f"train: {len(train.encode()) / 1e6:.1f} MB; held out: {len(held.encode()) / 1e6:.1f} MB, {n_words} words; "
        f"vocab {args.vocab_size}; tokenizers {tokenizers.__version__}, "
        f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}",
        flush=True,
    )

    runs = [(m, "likelihood" if m == "wordpiece" else "frequency") for m in args.models.split(",")]
    if args.ratio_criterion and "wordpiece" in args.models:
        runs.append(("wordpiece", "ratio"))
    bars = {"bpe": 5.0, "wordpiece": 10.0, "bytelevel": None}
    rows = []
    for model, criterion in runs:
        best_ours = best_theirs = float("inf")
        for r in range(args.rounds):
            hf, trainer = hf_tokenizer(model, args.vocab_size)
            start = time.perf_counter()
            hf.train([str(train_file)], trainer)
            best_theirs = min(best_theirs, time.perf_counter() - start)
            options = {"criterion": criterion} if model == "wordpiece" else {}
            start = time.perf_counter()
            ours = Tokenizer.train(
                train_file, model=model, vocab_size=args.vocab_size, min_frequency=2, show_progress=False, **options
            )
            best_ours = min(best_ours, time.perf_counter() - start)
            print(
                f"  round {r + 1} {model:9s} {criterion:10s} tokenizers "
                f"{best_theirs:6.2f} s   bertkit {best_ours:6.2f} s",
                flush=True,
            )
        theirs_tokens = sum(len(e.ids) for e in hf.encode_batch(held_paragraphs, add_special_tokens=False))
        ours_tokens = sum(len(e.ids) for e in ours.encode_batch(held_paragraphs, add_special_tokens=False))
        rows.append(
            (
                model,
                criterion,
                best_ours,
                best_theirs,
                ours_tokens / n_words,
                theirs_tokens / n_words,
                ours.vocab_size,
                hf.get_vocab_size(),
            )
        )

    print(
        "\nmodel      criterion   bertkit s  tokenizers s  time "
        "ratio (bar)   tokens/word bertkit  tokenizers  diff (bar 2%)"
    )
    for model, criterion, ours_s, theirs_s, ours_tpw, theirs_tpw, ours_v, theirs_v in rows:
        bar = bars[model] if criterion != "ratio" else None
        bar_s = f"<= {bar:.0f}x" if bar else "  -  "
        diff = ours_tpw / theirs_tpw - 1
        print(
            f"{model:10s} {criterion:10s} {ours_s:9.2f} {theirs_s:13.2f} {ours_s / theirs_s:8.2f}x ({bar_s})   "
            f"{ours_tpw:19.4f} {theirs_tpw:11.4f}  {diff:+7.2%}    vocab {ours_v}/{theirs_v}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
