import numpy as np
import pytest

from bertkit.constants import IGNORE_INDEX
from bertkit.data.masking import Masker, sequence_rng, word_starts_from_word_ids
from bertkit.errors import BertkitError

V, MASK, CLS, SEP, PAD = 1000, 4, 2, 3, 0
SPECIAL = [0, 1, 2, 3, 4]


def _sequence(rng, n):
    ids = rng.integers(5, V, size=n)
    ids[0], ids[n // 2], ids[-1] = CLS, SEP, SEP
    return ids


def test_exactly_15_percent_of_non_special_tokens_capped():
    m = Masker(V, MASK, SPECIAL, mlm_probability=0.15, max_predictions=20)
    rng = np.random.default_rng(0)
    for n in (5, 20, 64, 100, 128):
        ids = _sequence(rng, n)
        _, pos, labels = m(ids, None, sequence_rng(1, n))
        candidates = n - 3
        assert len(pos) == min(20, max(1, int(candidates * 0.15 + 0.5)))
        assert not np.isin(ids[pos], SPECIAL).any()  # [CLS]/[SEP] are never chosen
        assert np.array_equal(labels, ids[pos])


def test_the_15_percent_rate_on_a_large_sample():
    # without the cap, the chosen fraction of non-special tokens is 15% up to rounding
    m = Masker(V, MASK, SPECIAL, mlm_probability=0.15, max_predictions=10_000)
    rng = np.random.default_rng(1)
    chosen = candidates = 0
    for i in range(2000):
        ids = _sequence(rng, int(rng.integers(20, 128)))
        _, pos, _ = m(ids, None, sequence_rng(2, i))
        chosen += len(pos)
        candidates += len(ids) - 3
    assert abs(chosen / candidates - 0.15) < 0.005


def test_80_10_10_on_a_large_sample():
    m = Masker(V, MASK, SPECIAL, mlm_probability=0.15, max_predictions=10_000)
    rng = np.random.default_rng(2)
    kinds = np.zeros(3)
    random_tokens = []
    for i in range(3000):
        ids = _sequence(rng, 128)
        corrupted, pos, labels = m(ids, None, sequence_rng(3, i))
        new = corrupted[pos]
        is_mask = new == MASK
        kept = new == labels
        kinds += [is_mask.sum(), (~is_mask & ~kept).sum(), kept.sum()]
        random_tokens.extend(new[~is_mask & ~kept])
        unchosen = np.setdiff1d(np.arange(len(ids)), pos)
        assert np.array_equal(corrupted[unchosen], ids[unchosen])  # nothing else changes
    n = kinds.sum()
    # "random" can draw the original token (p = 1/995); it then counts as kept
    expected = np.array([0.8, 0.1 * (1 - 1 / 995), 0.1 + 0.1 / 995])
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(kinds / n - expected) < 5 * sigma), (kinds / n, n)
    random_tokens = np.array(random_tokens)
    assert not np.isin(random_tokens, SPECIAL).any()  # random replacements are never special
    # and uniform over the 995 ordinary ids: each tenth of the range gets ~10%
    counts = np.histogram(random_tokens, bins=10, range=(5, V))[0]
    assert counts.min() > 0.08 * len(random_tokens) and counts.max() < 0.12 * len(random_tokens)


def test_whole_word_masking_masks_every_piece_of_a_word():
    m = Masker(V, MASK, SPECIAL, mlm_probability=0.15, whole_word=True, max_predictions=10_000)
    rng = np.random.default_rng(3)
    total = 0
    for i in range(500):
        ids = _sequence(rng, 100)
        starts = rng.random(100) < 0.6
        starts[[0, 50, 99]] = True
        _, pos, _ = m(ids, starts, sequence_rng(4, i))
        chosen = np.zeros(100, bool)
        chosen[pos] = True
        special = np.isin(ids, SPECIAL)
        after_special = np.concatenate([[False], special[:-1]])  # a special token ends the word before it
        word = np.cumsum(starts | special | after_special)
        for w in np.unique(word[chosen]):
            assert chosen[word == w].all(), "a word was masked only in part"
        total += len(pos)
    # words that would overshoot k = round(15% of 97) = 15 are skipped: never more, rarely fewer
    assert 0.95 * 500 * 15 < total <= 500 * 15


def test_word_starts_from_tokenizer_word_ids():
    assert word_starts_from_word_ids([None, 0, 0, 1, 2, 2, 2, None]).tolist() == [
        True,
        True,
        False,
        True,
        True,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "bytelevel"])
def test_whole_words_with_every_tokenizer_kind(model):
    from bertkit.tokenizers import Tokenizer

    text = ["the quick brown fox jumps over the lazy dog while a zebra quietly waxes jovial"] * 20
    tok = Tokenizer.train(
        iter(text),
        model=model,
        vocab_size=300,
        min_frequency=1,
        show_progress=False,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    enc = tok.encode("quizzical jumpsuit foxglove brownie", add_special_tokens=False)  # unseen words
    starts = word_starts_from_word_ids(enc.word_ids)
    assert starts.sum() == 4 and len(enc.ids) > 4  # four words, several pieces each
    m = Masker.from_tokenizer(tok, whole_word=True, mlm_probability=0.5, max_predictions=100)
    word = np.cumsum(starts)
    for i in range(20):
        _, pos, _ = m(np.asarray(enc.ids), starts, sequence_rng(5, i))
        for w in np.unique(word[pos]):
            assert set(np.flatnonzero(word == w)) <= set(pos.tolist())


def test_masking_is_a_pure_function_of_the_stream():
    m = Masker(V, MASK, SPECIAL, mlm_probability=0.15, max_predictions=20)
    ids = _sequence(np.random.default_rng(4), 128)
    a = m.mask_labels(ids, None, sequence_rng(7, 1, 2))
    b = m.mask_labels(ids, None, sequence_rng(7, 1, 2))
    c = m.mask_labels(ids, None, sequence_rng(7, 1, 3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert (a[1] != IGNORE_INDEX).sum() == 19


def test_bad_settings():
    with pytest.raises(BertkitError, match="mlm_probability"):
        Masker(V, MASK, SPECIAL, mlm_probability=1.5, max_predictions=20)
    with pytest.raises(BertkitError, match="mask id"):
        Masker(V, V + 3, SPECIAL, mlm_probability=0.15, max_predictions=20)
    with pytest.raises(BertkitError, match="word starts"):
        Masker(V, MASK, SPECIAL, mlm_probability=0.15, max_predictions=20, whole_word=True)(
            np.array([2, 10, 11, 3]), None, sequence_rng(0)
        )
