"""Properties on arbitrary Unicode (hypothesis): byte-level round trip, no crash, and offsets
that always slice the original text to the token's surface form."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bertkit.tokenizers import Tokenizer
from bertkit.tokenizers.pre_tokenizers import to_byte_chars

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# arbitrary Unicode, with whitespace, punctuation, marks, controls and CJK made frequent
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(
            list(" \t\n\u3000\u00a0.,!?'\"-_[]()")
            + ["\u0301", "\u200b", "\x00", "\ufffd", "你", "한", "é", "İ", "🥰", "ß"]
        ),
    ),
    max_size=60,
)


@pytest.fixture(scope="module")
def trained(small_corpus):
    return {
        model: Tokenizer.train(small_corpus[:200], model=model, vocab_size=700, show_progress=False)
        for model in ("wordpiece", "bpe", "bytelevel")
    }


@SETTINGS
@given(TEXT)
def test_byte_level_round_trip(trained, text):
    tok = trained["bytelevel"]
    assert tok.model.unk_id is None
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.decode(enc.ids, skip_special_tokens=False) == text  # "[CLS]" typed in the text stays
    if not any(s in text for s in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")):
        assert tok.decode(tok.encode(text).ids) == text


@SETTINGS
@given(TEXT, TEXT)
def test_never_crashes_and_shapes_agree(trained, bert_tok, text, pair):
    for tok in [bert_tok, *trained.values()]:
        enc = tok.encode(text, pair)
        n = len(enc.ids)
        assert (
            n
            == len(enc.type_ids)
            == len(enc.offsets)
            == len(enc.attention_mask)
            == len(enc.word_ids)
            == len(enc.special_tokens_mask)
        )
        tok.decode(enc.ids)


def _surface(tok, token: str) -> str:
    prefix = getattr(tok.model, "prefix", "")
    return token[len(prefix) :] if prefix and token.startswith(prefix) else token


@SETTINGS
@given(TEXT)
def test_offsets_slice_to_the_surface_form(trained, bert_tok, text):
    """For character models, normalizing text[start:end] gives the piece (without "##"); an
    [UNK] covers its whole word. For byte-level, the piece's bytes lie inside the slice's bytes."""
    for tok in (bert_tok, trained["wordpiece"], trained["bpe"]):
        enc = tok.encode(text, add_special_tokens=False)
        for token, idx, (s, e) in zip(enc.tokens, enc.ids, enc.offsets):
            assert 0 <= s < e <= len(text)
            if idx == tok.model.unk_id:
                continue
            surface, piece = tok.normalizer.normalize_str(text[s:e]).strip(), _surface(tok, token)
            # equal, unless the piece is part of a character that normalizes to several (한 -> ᄒ ᅡ ᆫ)
            assert surface == piece or (piece in surface and e - s == 1), (text, token, s, e)
    tok = trained["bytelevel"]
    enc = tok.encode(text, add_special_tokens=False)
    for token, (s, e) in zip(enc.tokens, enc.offsets):
        assert 0 <= s <= e <= len(text)
        assert token in to_byte_chars(text[s:e]), (text, token, s, e)


@SETTINGS
@given(
    st.lists(TEXT, min_size=1, max_size=6),
    st.integers(min_value=4, max_value=24),
    st.integers(min_value=0, max_value=3),
)
def test_windows_cover_every_token_in_order(bert_tok, texts, max_length, stride):
    """Overflowing windows, stripped of special tokens and the stride overlap, rebuild the input."""
    assume(stride < max_length - 2)
    full = [bert_tok.encode(t, add_special_tokens=False).ids for t in texts]
    out = bert_tok(texts, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
    room = max_length - 2
    rebuilt = [[] for _ in texts]
    for ids, sample in zip(out["input_ids"], out["overflow_to_sample_mapping"]):
        body = ids[1:-1]
        assert len(body) <= room
        if rebuilt[sample]:  # a later window starts with the last `stride` tokens of the one before
            assert body[:stride] == rebuilt[sample][len(rebuilt[sample]) - stride :]
            body = body[stride:]
        rebuilt[sample].extend(body)
    assert rebuilt == full
