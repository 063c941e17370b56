"""Fixtures for the tokenizer tests: our BERT tokenizer, the peers, and the shared text sets.

The peers (transformers, tokenizers) are loaded once per session; under CI a missing peer fails.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from peers import peer

from bertkit.tokenizers import Tokenizer


@pytest.fixture(scope="session")
def bert_tok(minilm_dir: Path) -> Tokenizer:
    return Tokenizer.from_vocab(minilm_dir / "vocab.txt")


@pytest.fixture(scope="session")
def hf_fast(minilm_dir: Path):
    """transformers' BertTokenizerFast on the packaged vocabulary, checked to really tokenize."""
    transformers = peer("transformers")
    tok = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))
    assert tok.tokenize("pretraining") == ["pre", "##train", "##ing"], "peer does not tokenize with the vocabulary"
    return tok


@pytest.fixture(scope="session")
def corpus_paragraphs(shared_data) -> list[str]:
    """Every paragraph of the first three books of the corpus (blank-line separated)."""
    books = sorted(shared_data("corpus", "books").glob("*.txt"))[:3]
    assert len(books) == 3
    paragraphs = []
    for book in books:
        paragraphs += [p for p in book.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return paragraphs


@pytest.fixture(scope="session")
def sst2_sentences(shared_data) -> list[str]:
    with open(shared_data("sst2", "train.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[0] for r in rows[1:]]


@pytest.fixture(scope="session")
def snli_pairs(shared_data) -> list[tuple[str, str]]:
    with open(shared_data("nli", "snli_train.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r[0], r[1]) for r in rows[1:]]


@pytest.fixture(scope="session")
def small_corpus(corpus_paragraphs) -> list[str]:
    """About 300 kB of paragraphs: enough to train small vocabularies in a second or two."""
    out, size = [], 0
    for p in corpus_paragraphs:
        out.append(p)
        size += len(p)
        if size > 300_000:
            break
    return out
