"""tokenizer.json both ways, for WordPiece, BPE and byte-level BPE: what we save loads in
Hugging Face `tokenizers` and encodes identically; what they save loads in ours and encodes
identically (ids, tokens, type ids, offsets, word ids) and decodes identically."""

from __future__ import annotations

import json

import pytest
from peers import peer
from test_parity import EDGE_CASES

from bertkit.tokenizers import Tokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def texts_for(corpus):
    return corpus[:400] + EDGE_CASES + ["Paris is the [MASK] of France.", "  leading and trailing  "]


def assert_same_encodings(ours: Tokenizer, theirs, texts, pairs=None):
    pairs = pairs or [None] * len(texts)
    for text, pair in zip(texts, pairs):
        a, b = ours.encode(text, pair), theirs.encode(text, pair)
        assert a.ids == b.ids, text
        assert a.tokens == b.tokens, text
        assert a.type_ids == b.type_ids, text
        assert a.offsets == b.offsets, text
        assert a.word_ids == b.word_ids, text
        assert a.special_tokens_mask == b.special_tokens_mask, text
        assert ours.decode(a.ids) == theirs.decode(b.ids), text


def bert_template(tk, tokenizer):
    return tk.processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )


def hf_trained(kind: str, corpus: list[str]):
    """A tokenizer trained and configured by Hugging Face, as its docs show."""
    tk = peer("tokenizers")
    if kind == "wordpiece":
        tok = tk.Tokenizer(tk.models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = tk.normalizers.BertNormalizer()
        tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
        trainer = tk.trainers.WordPieceTrainer(vocab_size=2000, special_tokens=SPECIALS, show_progress=False)
        tok.decoder = tk.decoders.WordPiece()
    elif kind == "bpe":
        tok = tk.Tokenizer(tk.models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
        tok.normalizer = tk.normalizers.Sequence(
            [tk.normalizers.NFD(), tk.normalizers.Lowercase(), tk.normalizers.StripAccents()]
        )
        tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=2000, special_tokens=SPECIALS, end_of_word_suffix="</w>", show_progress=False
        )
        tok.decoder = tk.decoders.BPEDecoder(suffix="</w>")
    elif kind == "bpe-prefix":
        tok = tk.Tokenizer(tk.models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
        tok.normalizer = tk.normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=2000, special_tokens=SPECIALS, continuing_subword_prefix="##", show_progress=False
        )
        tok.decoder = tk.decoders.WordPiece(cleanup=False)
    else:  # byte-level, GPT-2 style
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=True)
        trainer = tk.trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=["<s>", "</s>", "<pad>"],
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.decoder = tk.decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainer)
    if kind == "bytelevel":
        tok.post_processor = tk.processors.ByteLevel(trim_offsets=True)
    else:
        tok.post_processor = bert_template(tk, tok)
    return tok


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "bpe-prefix", "bytelevel"])
def test_theirs_loads_in_ours(kind, small_corpus, tmp_path):
    theirs = hf_trained(kind, small_corpus)
    path = tmp_path / "tokenizer.json"
    theirs.save(str(path))
    ours = Tokenizer.from_file(path)
    texts = texts_for(small_corpus)
    assert_same_encodings(ours, theirs, texts)
    assert_same_encodings(ours, theirs, texts[:50], texts[50:100])


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "bytelevel"])
def test_ours_loads_in_theirs(model, small_corpus, tmp_path):
    tk = peer("tokenizers")
    ours = Tokenizer.train(small_corpus, model=model, vocab_size=2000, show_progress=False)
    ours.save(tmp_path)
    theirs = tk.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert theirs.get_vocab_size() == ours.vocab_size
    texts = texts_for(small_corpus)
    assert_same_encodings(ours, theirs, texts)
    assert_same_encodings(ours, theirs, texts[:50], texts[50:100])
    again = Tokenizer.from_file(tmp_path / "tokenizer.json")  # and back into ours
    assert again.get_vocab() == ours.get_vocab()
    assert_same_encodings(again, theirs, texts[:50])


def test_packaged_minilm_tokenizer_json(minilm_dir, bert_tok, corpus_paragraphs):
    """The checkpoint's own tokenizer.json gives what its vocab.txt gives; from_file keeps the
    file's truncation (128) and padding settings, as Hugging Face's Tokenizer.from_file does."""
    from_json = Tokenizer.from_pretrained(minilm_dir)
    for text in corpus_paragraphs[:200]:
        assert from_json.encode(text).ids == bert_tok.encode(text).ids
    with_settings = Tokenizer.from_file(minilm_dir / "tokenizer.json")
    rust = peer("tokenizers").Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    long_text = " ".join(corpus_paragraphs[:50])
    for text in (long_text, "short one"):
        a, b = with_settings.encode(text), rust.encode(text)
        assert len(a.ids) == 128
        assert (a.ids, a.attention_mask, a.offsets) == (b.ids, b.attention_mask, b.offsets)
        assert [o.ids for o in a.overflowing] == [o.ids for o in b.overflowing]


def test_saved_files(tmp_path, small_corpus):
    tok = Tokenizer.train(small_corpus, model="bpe", vocab_size=800, show_progress=False)
    tok.save(tmp_path)
    data = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["model"]["type"] == "BPE" and len(data["model"]["merges"]) > 0
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()[:5] == SPECIALS
    assert (tmp_path / "merges.txt").read_text(encoding="utf-8").startswith("#version")
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers
