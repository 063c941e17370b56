"""The optimised paths equal their readable references (bertkit/tokenizers/reference.py): the
trainers learn the same merges, the heap-based BPE word merge gives the same pieces, and the
fast encoder (word cache, translate table, list-arithmetic template, forked batches) gives the
same Encodings as the plain word-by-word one."""

from __future__ import annotations

from collections import Counter

import pytest
from test_parity import EDGE_CASES

from bertkit.tokenizers import Tokenizer
from bertkit.tokenizers.bpe import merge_word
from bertkit.tokenizers.normalizers import BertNormalizer
from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer
from bertkit.tokenizers.reference import (
    bpe_word_reference,
    encode_reference,
    train_bpe_reference,
    train_wordpiece_reference,
)
from bertkit.tokenizers.trainers import train_bpe, train_wordpiece

LECTURE_WORDS = Counter({"cost": 2, "best": 2, "menu": 1, "men": 1, "camel": 1})
FIELDS = ("ids", "type_ids", "offsets", "word_ids", "special_tokens_mask", "attention_mask", "sequence_ids")


@pytest.fixture(scope="module")
def word_counts(small_corpus) -> Counter:
    """The 400 most frequent words of ~150 paragraphs (the reference trainers are slow)."""
    norm, pre = BertNormalizer(), BertPreTokenizer()
    counts: Counter = Counter()
    for text in small_corpus[:150]:
        counts.update(pre.words(norm.normalize_str(text)))
    return Counter(dict(counts.most_common(400)))


def test_bpe_trainer_equals_the_reference(word_counts):
    alphabet = {c for w in word_counts for c in w}
    fast = train_bpe(word_counts, len(alphabet) + 300, 2, ["[UNK]"], show_progress=False)
    plain = train_bpe_reference(word_counts, len(alphabet) + 300, 2, ("[UNK]",))
    assert len(fast[1]) == 299
    assert fast == plain
    lecture = train_bpe_reference(LECTURE_WORDS, 14, 1)
    assert lecture[1] == [("s", "t"), ("m", "e"), ("me", "n")]
    assert train_bpe(LECTURE_WORDS, 14, 1, show_progress=False) == lecture


@pytest.mark.parametrize("criterion", ["likelihood", "ratio"])
def test_wordpiece_trainer_with_exact_settings_equals_the_reference(word_counts, criterion):
    alphabet = {c for w in word_counts for c in w}
    size = 2 * len(alphabet) + 1 + 150
    fast = train_wordpiece(
        word_counts, size, 1, ["[UNK]"], criterion=criterion, tolerance=0.0, park_pairs=False, show_progress=False
    )
    plain = train_wordpiece_reference(word_counts, size, 1, ("[UNK]",), criterion=criterion)
    assert len(fast[1]) == 150
    assert fast == plain  # same vocabulary, ids and merges, in the same order


def test_wordpiece_default_settings_stay_close_to_the_reference(word_counts):
    alphabet = {c for w in word_counts for c in w}
    size = 2 * len(alphabet) + 150
    fast_vocab, _ = train_wordpiece(word_counts, size, 1, show_progress=False)  # tolerance 1e-3, parking on
    plain_vocab, _ = train_wordpiece_reference(word_counts, size, 1)
    assert len(set(fast_vocab) & set(plain_vocab)) >= 0.98 * len(plain_vocab)


@pytest.fixture(scope="module")
def trained(small_corpus) -> dict[str, Tokenizer]:
    """One tokenizer per model, trained on the same paragraphs."""
    return {
        model: Tokenizer.train(small_corpus[:300], model=model, vocab_size=2000, show_progress=False)
        for model in ("wordpiece", "bpe", "bytelevel", "wordlevel")
    }


def texts_for(small_corpus) -> list[str]:
    return small_corpus[300:500] + EDGE_CASES + ["Paris is the [MASK] of France.", "[CLS][CLS] x [SEP]", "  a  "]


def test_heap_bpe_merge_equals_the_plain_loop(trained, small_corpus):
    for model in ("bpe", "bytelevel"):
        tok = trained[model]
        words = {w for text in texts_for(small_corpus) for w in tok.pre_tokenizer.split(text)[0]}
        words |= {"ab" * 300, "a" * 501, "the" * 200}
        for word in sorted(words):
            symbols, spans = tok.model.initial_symbols(word)
            got = merge_word(symbols, spans, tok.model.ranks, tok.model.merged_by_rank)
            pieces = bpe_word_reference(tok.model, word)
            assert [tok.model.vocab[s] for s in got[0]] == [p[0] for p in pieces], word
            assert got[1] == [(a, b) for _, a, b in pieces], word


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "bytelevel", "wordlevel", "bert", "bert+added"])
def test_fast_encode_equals_the_reference(model, trained, minilm_dir, small_corpus):
    if model.startswith("bert"):
        tok = Tokenizer.from_vocab(minilm_dir / "vocab.txt")
        if model == "bert+added":
            tok.add_tokens(["paris", "ing"])  # normalized added tokens, matched after lowercasing
            tok.add_special_tokens(["<ent>"])  # raw, matched before normalization
    else:
        tok = trained[model]
    texts = texts_for(small_corpus) + ["I saw <ent> in PARIS singing", "<ent><ent> ing"]
    for i, text in enumerate(texts):
        for pair in (None, texts[-1 - i]):
            fast, plain = tok.encode(text, pair), encode_reference(tok, text, pair)
            for field in FIELDS:
                assert getattr(fast, field) == getattr(plain, field), (field, text, pair)
    bare = tok.encode(texts[0], add_special_tokens=False)
    assert bare.ids == encode_reference(tok, texts[0], add_special_tokens=False).ids


def test_fast_template_equals_the_general_post_processor(bert_tok, snli_pairs):
    for premise, hypothesis in snli_pairs[:300]:
        first, second = bert_tok.encode_pieces(premise), bert_tok.encode_pieces(hypothesis)
        for pair in (None, second):
            for special in (True, False):
                fast = bert_tok.assemble(first, pair, special)
                general = bert_tok.post_process(first, pair, special)
                for field in FIELDS:
                    assert getattr(fast, field) == getattr(general, field), (field, premise)


def test_forked_batch_equals_one_encode_per_text(bert_tok, corpus_paragraphs, monkeypatch):
    from bertkit.tokenizers import batch

    monkeypatch.setattr(batch.threading, "active_count", lambda: 1)  # fork even if a test left a thread
    texts = (corpus_paragraphs * 2)[:2500]
    forked = bert_tok.encode_batch(texts, num_workers=2)
    one_by_one = [bert_tok.encode(t) for t in texts]
    for field in FIELDS:
        assert [getattr(e, field) for e in forked] == [getattr(e, field) for e in one_by_one], field
    assert forked[7].tokens == one_by_one[7].tokens
