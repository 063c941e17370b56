"""The pipeline's parts one by one: normalizer, pre-tokenizers, WordPiece, BPE, byte-level BPE,
post-processor -- each against the lecture's worked examples and BERT's rules."""

from __future__ import annotations

import pytest

from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.bytelevel import BYTES_TO_UNICODE, bytes_to_text
from bertkit.tokenizers.normalizers import BertNormalizer
from bertkit.tokenizers.post_processors import TemplateProcessing
from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer, ByteLevel, is_punctuation, to_byte_chars
from bertkit.tokenizers.wordpiece import WordPiece

SEED_ALPHABET = list("abcelmnostu")


def pieces(model, word):
    return [model.id_to_token(i) for i, _, _ in model.tokenize_word(word)]


# normalizer -------------------------------------------------------------------------------------
def test_bert_normalizer_rules():
    norm = BertNormalizer()
    assert norm.normalize_str("Héllo\tWORLD\n") == "hello world "
    assert norm.normalize_str("a\x00b\x07c\ufffdd\u200be") == "abcde"  # control, NUL, U+FFFD, format chars dropped
    assert norm.normalize_str("你好") == " 你  好 "  # CJK ideographs padded with spaces
    assert norm.normalize_str("한") == "\u1112\u1161\u11ab"  # Hangul decomposes (NFD), not padded
    assert norm.normalize_str("ΟΔΟΣ") == "οδοσ"  # char by char: no final-sigma rule, as Hugging Face


def test_cased_and_accent_switches():
    assert BertNormalizer(lowercase=False).normalize_str("Héllo 你") == "Héllo  你 "
    assert BertNormalizer(lowercase=False, strip_accents=True).normalize_str("Héllo") == "Hello"
    assert BertNormalizer(lowercase=True, strip_accents=False).normalize_str("Héllo") == "héllo"


def test_alignment_maps_back_to_the_original():
    norm = BertNormalizer()
    text = "a\u200bb 你 e\u0301"
    out, align = norm.normalize(text)
    assert align is not None and len(align) == len(out)
    for i, char in enumerate(out):
        if char != " ":
            assert norm.normalize_str(text[align[i]]).strip() != ""  # came from a real char
    assert norm.normalize("plain ascii text") == ("plain ascii text", None)  # 1:1, no table needed


# pre-tokenizers ---------------------------------------------------------------------------------
def test_bert_pre_tokenizer_words_and_spans():
    words, starts, ends = BertPreTokenizer().split("hello, world!! (a_b)  c")
    assert words == ["hello", ",", "world", "!", "!", "(", "a", "_", "b", ")", "c"]
    text = "hello, world!! (a_b)  c"
    assert [text[s:e] for s, e in zip(starts, ends)] == words


def test_bert_punctuation_definition():
    assert all(is_punctuation(c) for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # all printable ASCII non-alnum
    assert is_punctuation("¿") and is_punctuation("“") and is_punctuation("、")
    assert not is_punctuation("a") and not is_punctuation("€") and not is_punctuation("😀")
    words, _, _ = BertPreTokenizer().split("price€5 ¿qué? “x”")
    assert words == ["price€5", "¿", "qué", "?", "“", "x", "”"]


def test_byte_level_pre_tokenizer():
    pre = ByteLevel()
    words, starts, ends = pre.split("Hello world's  end\n")
    assert words == ["Hello", "Ġworld", "'s", "Ġ", "Ġend", "Ċ"]
    assert [e - s for s, e in zip(starts, ends)] == [5, 6, 2, 1, 4, 1]
    assert to_byte_chars("你好") == "".join(
        BYTES_TO_UNICODE[b] for b in bytes.fromhex("e4bda0e5a5bd")
    )  # the lecture's bytes
    assert len(set(BYTES_TO_UNICODE.values())) == 256
    assert bytes_to_text(to_byte_chars("naïve 你好 🥰")) == "naïve 你好 🥰"


# WordPiece --------------------------------------------------------------------------------------
def test_wordpiece_lecture_example():
    """vocabulary {a, b, c, e, l, m, o, s, t, u, st}: "stem" -> st, ##e, ##m."""
    tokens = ["[UNK]"] + SEED_ALPHABET + ["st"] + ["##" + c for c in SEED_ALPHABET]
    model = WordPiece({t: i for i, t in enumerate(tokens)})
    assert pieces(model, "stem") == ["st", "##e", "##m"]
    assert [(s, e) for _, s, e in model.tokenize_word("stem")] == [(0, 2), (2, 3), (3, 4)]


def test_wordpiece_longest_match_first_and_unknowns():
    vocab = {t: i for i, t in enumerate(["[UNK]", "pre", "##train", "##ing", "p", "##r", "##e", "un", "##able"])}
    model = WordPiece(vocab)
    assert pieces(model, "pretraining") == ["pre", "##train", "##ing"]
    assert pieces(model, "prex") == ["[UNK]"]  # any unmatched part -> the whole word is [UNK]
    long_model = WordPiece(vocab, max_input_chars_per_word=5)
    assert pieces(long_model, "pretraining") == ["[UNK]"]
    assert pieces(model, "pre") == ["pre"] and pieces(model, "pr") == ["p", "##r"]


def test_wordpiece_long_words_become_unk(bert_tok):
    assert bert_tok.tokenize("a" * 100) != ["[UNK]"]
    assert bert_tok.tokenize("a" * 101) == ["[UNK]"]


# BPE ------------------------------------------------------------------------------------------
def seed_bpe(unk=None):
    vocab = {t: i for i, t in enumerate(SEED_ALPHABET + ["st", "me", "men"] + ([unk] if unk else []))}
    return BPE(vocab, [("s", "t"), ("m", "e"), ("me", "n")], unk_token=unk)


def test_bpe_lecture_tokenization():
    model = seed_bpe()
    assert pieces(model, "mean") == ["me", "a", "n"]
    assert pieces(model, "men") == ["men"]
    assert pieces(model, "cost") == ["c", "o", "st"]
    assert pieces(seed_bpe("<UNK>"), "bear") == ["b", "e", "a", "<UNK>"]  # r is not in the alphabet
    assert pieces(model, "bear") == ["b", "e", "a"]  # without an unknown token it is dropped, as Hugging Face


def test_bpe_prefix_and_suffix_options():
    vocab = {t: i for i, t in enumerate(["l", "##o", "##w", "lo", "low", "a", "b</w>", "ab</w>"])}
    model = BPE(vocab, [("l", "##o"), ("lo", "##w")], continuing_subword_prefix="##")
    assert pieces(model, "low") == ["low"]
    suffixed = BPE(vocab, [("a", "b</w>")], end_of_word_suffix="</w>")
    assert pieces(suffixed, "ab") == ["ab</w>"]


# post-processor -------------------------------------------------------------------------------
def test_bert_template_segments(bert_tok):
    """[CLS] A [SEP] B [SEP] with segment ids 0 ... 0 1 ... 1 (the lecture's segment embeddings)."""
    enc = bert_tok.encode("Paris is a beautiful city", "I love Paris")
    assert enc.tokens == ["[CLS]", "paris", "is", "a", "beautiful", "city", "[SEP]", "i", "love", "paris", "[SEP]"]
    assert enc.type_ids == [0] * 7 + [1] * 4
    assert enc.attention_mask == [1] * 11
    assert enc.special_tokens_mask == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert enc.sequence_ids == [None, 0, 0, 0, 0, 0, None, 1, 1, 1, None]
    template = TemplateProcessing.bert("[CLS]", 101, "[SEP]", 102)
    assert template.num_special_tokens_to_add(False) == 2 and template.num_special_tokens_to_add(True) == 3


def test_lecture_tokenization_example(bert_tok):
    assert bert_tok.tokenize("Let us start pretraining the model") == [
        "let",
        "us",
        "start",
        "pre",
        "##train",
        "##ing",
        "the",
        "model",
    ]


@pytest.mark.parametrize("text", ["Paris is the [MASK] of France.", "[CLS][SEP]x[PAD]"])
def test_special_tokens_in_text_stay_whole(bert_tok, text):
    enc = bert_tok.encode(text, add_special_tokens=False)
    for special in ("[MASK]", "[CLS]", "[SEP]", "[PAD]"):
        if special in text:
            i = enc.tokens.index(special)
            s, e = enc.offsets[i]
            assert text[s:e] == special
