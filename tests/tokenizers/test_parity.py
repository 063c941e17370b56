"""Parity with transformers' BertTokenizerFast on the packaged all-MiniLM-L6-v2 vocabulary:
ids, type ids, attention masks, offsets and word ids identical on real text, pairs, edge cases,
and under every truncation / padding / stride setting."""

from __future__ import annotations

import shutil

import pytest
from peers import peer

from bertkit.tokenizers import Tokenizer

KEYS = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")

EDGE_CASES = [
    "",
    " ",
    "   \n\t  ",
    "\u3000\u00a0",
    "Let us start pretraining the model",
    "你好世界，我爱北京天安门。",
    "日本語のテキストとカタカナ",
    "한국어 문장입니다",
    "Café naïve résumé Ångström façade",
    "İstanbul ΟΔΟΣ Straße ﬁne",
    "e\u0301cole \u0301abc",
    "I love 🥰 and 😀! 👍🏽 family 👨‍👩‍👧",
    "a\x00b\x01c\x7fd\ufffde",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "a\u2028b\u2029c\x85d\x0be\x0cf",
    "x" * 200,
    "ab" * 100 + " ok " + "é" * 101,
    "Hello,world!! (really?) [yes]... 3.14159 $100 50% #tag @user",
    "don't can't U.S.A. e-mail o'clock",
    "Paris is the [MASK] of France. [SEP] [CLS][PAD]",
    "tabs\tand\nnewlines\r\nand   spaces",
    "«quotes» „German“ ‘single’ — dash – en ― bar",
    "math ∑∫√∞ ≤ ≥ ≠ → ⇒ arrows",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "\u0600\u0627\u0644\u0639\u0631\u0628\u064a\u0629 عربي",
    "Ελληνικά και кириллица",
    "a" * 99 + " " + "b" * 100 + " " + "c" * 101,
]


def compare(ours_tok: Tokenizer, hf, texts, pairs=None, **kwargs):
    ours = ours_tok(texts, pairs, return_offsets_mapping=True, **kwargs)
    theirs = hf(texts, pairs, return_offsets_mapping=True, **kwargs)
    for key in KEYS:
        a = ours[key]
        b = theirs[key]
        if key == "offset_mapping":
            b = [[tuple(o) for o in row] for row in b]
        if a != b:
            bad = next(i for i in range(len(a)) if a[i] != b[i])
            raise AssertionError(
                f"{key} differs for row {bad}: "
                f"text={texts[min(bad, len(texts) - 1)]!r}\nours  ={a[bad]}\ntheirs={b[bad]}"
            )
    for i in range(len(ours["input_ids"])):
        assert ours.word_ids(i) == theirs.word_ids(i), f"word ids differ for row {i}"
    return ours


def test_corpus_paragraphs_of_three_books(bert_tok, hf_fast, corpus_paragraphs):
    assert len(corpus_paragraphs) > 2000
    compare(bert_tok, hf_fast, corpus_paragraphs)


def test_every_sst2_sentence(bert_tok, hf_fast, sst2_sentences):
    assert len(sst2_sentences) == 67349
    compare(bert_tok, hf_fast, sst2_sentences)


def test_snli_pairs(bert_tok, hf_fast, snli_pairs):
    premises = [p for p, _ in snli_pairs]
    hypotheses = [h for _, h in snli_pairs]
    out = compare(bert_tok, hf_fast, premises, hypotheses)
    assert set(out["token_type_ids"][0]) == {0, 1}


def test_edge_cases(bert_tok, hf_fast):
    compare(bert_tok, hf_fast, EDGE_CASES)


def test_edge_cases_as_pairs(bert_tok, hf_fast):
    compare(bert_tok, hf_fast, EDGE_CASES, EDGE_CASES[::-1])


def test_encode_matches_rust_tokenizers_encoding(bert_tok, minilm_dir):
    """The lower-level API too: `tokenizers.Tokenizer.encode` (special tokens mask, sequence ids)."""
    rust = peer("tokenizers").Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    rust.no_truncation()
    rust.no_padding()
    for text, pair in [
        ("Hello there!", None),
        ("Paris is a beautiful city", "I love Paris"),
        ("", "x"),
        (EDGE_CASES[7], EDGE_CASES[8]),
    ]:
        ours, theirs = bert_tok.encode(text, pair), rust.encode(text, pair)
        assert ours.ids == theirs.ids
        assert ours.tokens == theirs.tokens
        assert ours.special_tokens_mask == theirs.special_tokens_mask
        assert ours.sequence_ids == theirs.sequence_ids
        assert ours.word_ids == theirs.word_ids


@pytest.mark.parametrize("truncation", [True, "longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("padding", [False, True, "max_length"])
def test_truncation_and_padding_of_pairs(bert_tok, hf_fast, snli_pairs, truncation, padding):
    firsts = [p for p, _ in snli_pairs[:40]] + ["a very long first sentence " * 8, "short"]
    seconds = [h for _, h in snli_pairs[:40]] + ["tiny", "a very long second sentence indeed " * 8]
    if truncation in ("only_first", "only_second"):
        keep = [
            i
            for i in range(len(firsts))
            if len(bert_tok.encode(firsts[i] if truncation == "only_second" else seconds[i]).ids) < 16
        ]
        firsts = [firsts[i] for i in keep]
        seconds = [seconds[i] for i in keep]
    compare(bert_tok, hf_fast, firsts, seconds, truncation=truncation, padding=padding, max_length=20)


@pytest.mark.parametrize("stride", [0, 1, 5])
def test_overflowing_windows_with_stride(bert_tok, hf_fast, corpus_paragraphs, stride):
    """Question answering windows: every window, its offsets, and the sample mapping."""
    questions = ["Who went to the house?", "What happened next, and why did it matter?"] * 5
    contexts = [p for p in corpus_paragraphs if len(p) > 600][:10]
    out = compare(
        bert_tok,
        hf_fast,
        questions,
        contexts,
        truncation="only_second",
        max_length=64,
        stride=stride,
        return_overflowing_tokens=True,
        padding=True,
    )
    theirs = hf_fast(
        questions,
        contexts,
        truncation="only_second",
        max_length=64,
        stride=stride,
        return_overflowing_tokens=True,
        padding=True,
    )
    assert out["overflow_to_sample_mapping"] == theirs["overflow_to_sample_mapping"]
    assert len(out["input_ids"]) > len(questions)
    for i in range(len(out["input_ids"])):
        assert out.sequence_ids(i) == theirs.sequence_ids(i)


def test_overflow_of_single_texts_and_longest_first_pairs(bert_tok, hf_fast):
    texts = ["a b c d e f g h i j", "one two three", "k l m n o p q r s t u v w x"]
    for kwargs in ({"max_length": 6, "stride": 1}, {"max_length": 5, "stride": 0}):
        out = compare(bert_tok, hf_fast, texts, truncation=True, return_overflowing_tokens=True, padding=True, **kwargs)
        assert (
            out["overflow_to_sample_mapping"]
            == hf_fast(texts, truncation=True, return_overflowing_tokens=True, padding=True, **kwargs)[
                "overflow_to_sample_mapping"
            ]
        )
    out = compare(
        bert_tok,
        hf_fast,
        texts[:1],
        texts[2:],
        truncation="longest_first",
        max_length=10,
        stride=2,
        return_overflowing_tokens=True,
    )
    assert len(out["input_ids"]) > 10  # every pairing of the two sequences' windows, as Hugging Face


def test_single_text_call_and_tensors(bert_tok, hf_fast):
    torch = pytest.importorskip("torch")
    text = "Let us start pretraining the model"
    assert bert_tok(text) == {k: v for k, v in hf_fast(text).items()}
    ours = bert_tok([text, "short"], padding=True, return_tensors="pt")
    theirs = hf_fast([text, "short"], padding=True, return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key].dtype == torch.long
        assert torch.equal(ours[key], theirs[key])


def test_max_length_alone_truncates_and_pad_to_multiple(bert_tok, hf_fast):
    texts = ["one two three four five six seven", "x"]
    compare(bert_tok, hf_fast, texts, max_length=5)
    compare(bert_tok, hf_fast, texts, padding=True, pad_to_multiple_of=8)


def test_decode_matches(bert_tok, hf_fast, corpus_paragraphs):
    rust = hf_fast.backend_tokenizer
    for text in corpus_paragraphs[:200] + EDGE_CASES:
        ids = bert_tok.encode(text).ids
        assert bert_tok.decode(ids) == rust.decode(ids, skip_special_tokens=True)
        assert bert_tok.decode(ids, skip_special_tokens=False) == rust.decode(ids, skip_special_tokens=False)
    assert peer("tokenizers")


def test_cased_mode(minilm_dir, hf_fast, corpus_paragraphs, tmp_path):
    """Cased: no lowercasing, no accent stripping. The uncased vocabulary still serves (capitals
    become [UNK]), and a cased vocabulary of our own gives real pieces."""
    transformers = peer("transformers")
    texts = corpus_paragraphs[:300] + EDGE_CASES
    ours = Tokenizer.from_vocab(minilm_dir / "vocab.txt", lowercase=False)
    theirs = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir), do_lower_case=False)
    assert theirs.tokenize("Hello") == ["[UNK]"]
    compare(ours, theirs, texts)

    trained = Tokenizer.train(
        corpus_paragraphs[:2000], model="wordpiece", vocab_size=3000, lowercase=False, show_progress=False
    )
    trained.save(tmp_path / "ours")
    (tmp_path / "vocab_only").mkdir()
    shutil.copy(tmp_path / "ours" / "vocab.txt", tmp_path / "vocab_only" / "vocab.txt")
    theirs_cased = transformers.BertTokenizerFast.from_pretrained(str(tmp_path / "vocab_only"), do_lower_case=False)
    ours_cased = Tokenizer.from_vocab(tmp_path / "vocab_only" / "vocab.txt", lowercase=False)
    assert ours_cased.tokenize("The End")[0].startswith("T")  # case kept
    compare(ours_cased, theirs_cased, texts)
