"""Trainers: the lecture's BPE example, the WordPiece criteria checked against a brute-force
re-count after every merge, streaming input, progress bar, limits."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bertkit.tokenizers import Tokenizer
from bertkit.tokenizers.trainers import train_bpe, train_wordpiece

SEED_WORDS = Counter({"cost": 2, "best": 2, "menu": 1, "men": 1, "camel": 1})


def test_bpe_lecture_example():
    """cost x2, best x2, menu, men, camel; vocabulary size 14 -> alphabet + st, me, men."""
    vocab, merges = train_bpe(SEED_WORDS, vocab_size=14, min_frequency=1, show_progress=False)
    assert list(vocab)[:11] == list("abcelmnostu")
    assert merges == [("s", "t"), ("m", "e"), ("me", "n")]
    assert list(vocab)[11:] == ["st", "me", "men"]
    tok = Tokenizer.train(
        [" ".join([w] * n) for w, n in SEED_WORDS.items()],
        model="bpe",
        vocab_size=14,
        min_frequency=1,
        special_tokens=[],
        show_progress=False,
    )
    assert tok.tokenize("mean") == ["me", "a", "n"]
    assert tok.tokenize("men") == ["men"]


def _check_each_merge_is_best(word_counts, merges, score, prefix=""):
    """Replay `merges` from scratch; before each one, re-count every pair and symbol and check
    that the merged pair had the best score (ties allowed). Returns the scores."""
    words = {tuple(c if i == 0 else prefix + c for i, c in enumerate(w)): n for w, n in word_counts.items()}
    scores = []
    for a, b in merges:
        pairs, symbols = Counter(), Counter()
        for w, n in words.items():
            for s in w:
                symbols[s] += n
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        total = sum(symbols.values())
        best = max(score(c, symbols[p[0]], symbols[p[1]], total) for p, c in pairs.items())
        mine = score(pairs[(a, b)], symbols[a], symbols[b], total)
        assert math.isclose(mine, best, rel_tol=1e-12), f"merge {(a, b)} scored {mine}, best was {best}"
        scores.append(mine)
        merged = a + (b[len(prefix) :] if prefix and b.startswith(prefix) else b)
        new_words = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == (a, b):
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    return scores


@pytest.fixture(scope="module")
def word_counts(small_corpus):
    from bertkit.tokenizers.normalizers import BertNormalizer
    from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer

    norm, pre = BertNormalizer(), BertPreTokenizer()
    counts = Counter()
    for text in small_corpus[:150]:
        counts.update(pre.words(norm.normalize_str(text)))
    return counts


def test_bpe_merges_the_most_frequent_pair_every_time(word_counts):
    """Incremental pair statistics give the same choice as re-counting the corpus each time."""
    _, merges = train_bpe(word_counts, vocab_size=10_000, min_frequency=1, show_progress=False)
    assert len(merges) > 300
    counts = _check_each_merge_is_best(word_counts, merges[:120], lambda c, ca, cb, n: c)
    assert counts == sorted(counts, reverse=True)  # BPE counts never grow


@pytest.mark.parametrize("criterion", ["ratio", "likelihood"])
def test_wordpiece_merges_maximise_the_criterion(word_counts, criterion):
    """With tolerance=0 every merge is the exact argmax of the criterion over all pairs."""
    if criterion == "ratio":
        score = lambda c, ca, cb, n: c / (ca * cb)  # noqa: E731  (the lecture's p(ab) / (p(a) p(b)))
    else:
        score = lambda c, ca, cb, n: c * math.log(n * c / (ca * cb))  # noqa: E731
    small = Counter(dict(word_counts.most_common(400)))
    alphabet = sorted({ch for w in small for ch in w})
    _, merges = train_wordpiece(
        small,
        vocab_size=2 * len(alphabet) + 80,
        min_frequency=1,
        criterion=criterion,
        tolerance=0.0,
        show_progress=False,
    )
    assert len(merges) >= 80
    _check_each_merge_is_best(small, merges, score, prefix="##")


def test_wordpiece_tolerance_stays_close_to_exact(word_counts):
    exact, _ = train_wordpiece(word_counts, vocab_size=1500, tolerance=0.0, show_progress=False)
    fast, _ = train_wordpiece(word_counts, vocab_size=1500, show_progress=False)
    assert len(set(exact) & set(fast)) >= 0.98 * len(exact)


def test_likelihood_wordpiece_builds_frequent_words(small_corpus):
    tok = Tokenizer.train(small_corpus, model="wordpiece", vocab_size=2000, show_progress=False)
    assert tok.tokenize("the") == ["the"]
    assert all(t.startswith("##") for t in tok.tokenize("thereupon")[1:])
    ratio = Tokenizer.train(small_corpus, model="wordpiece", vocab_size=2000, show_progress=False, criterion="ratio")
    assert len(ratio.tokenize("the")) > 1  # the ratio alone prefers pairs of rare symbols


def test_vocab_size_reached_specials_first_and_min_frequency(small_corpus):
    tok = Tokenizer.train(small_corpus, model="wordpiece", vocab_size=1500, show_progress=False)
    vocab = tok.get_vocab()
    assert len(vocab) == 1500
    assert [vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]] == [0, 1, 2, 3, 4]
    capped = Tokenizer.train(small_corpus, model="bpe", vocab_size=50_000, min_frequency=50, show_progress=False)
    assert capped.vocab_size < 50_000  # stops when no pair occurs min_frequency times


def test_limit_alphabet(small_corpus):
    tok = Tokenizer.train(
        small_corpus, model="bpe", vocab_size=400, limit_alphabet=30, special_tokens=[], show_progress=False
    )
    single = [t for t in tok.get_vocab() if len(t) == 1]
    assert len(single) == 30


def test_streams_files_folders_and_iterators(tmp_path, small_corpus):
    (tmp_path / "a.txt").write_text("\n\n".join(small_corpus[:80]), encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n\n".join(small_corpus[80:160]), encoding="utf-8")
    from_files = Tokenizer.train(
        [tmp_path / "a.txt", str(tmp_path / "b.txt")], model="bpe", vocab_size=600, show_progress=False
    )
    from_folder = Tokenizer.train(tmp_path, model="bpe", vocab_size=600, show_progress=False)
    from_iter = Tokenizer.train(iter(small_corpus[:160]), model="bpe", vocab_size=600, show_progress=False)
    assert from_files.get_vocab() == from_folder.get_vocab()
    assert from_files.get_vocab() == from_iter.get_vocab()  # same words, however they arrive


def test_chunked_reading_of_a_large_file(tmp_path, monkeypatch):
    from bertkit.tokenizers import corpus

    monkeypatch.setattr(corpus, "CHUNK_CHARS", 64)  # many chunks
    lines = [f"line {i} with words alpha beta gamma" for i in range(300)]
    (tmp_path / "big.txt").write_text("\n".join(lines), encoding="utf-8")
    tok = Tokenizer.train(tmp_path / "big.txt", model="wordpiece", vocab_size=120, show_progress=False)
    whole = Tokenizer.train(["\n".join(lines)], model="wordpiece", vocab_size=120, show_progress=False)
    assert tok.get_vocab() == whole.get_vocab()


def test_progress_bar_is_shown(capsys, small_corpus):
    Tokenizer.train(small_corpus[:30], model="bpe", vocab_size=300, show_progress=True)
    err = capsys.readouterr().err
    assert "counting words" in err and "BPE merges" in err


def test_byte_level_training_covers_every_byte(small_corpus):
    tok = Tokenizer.train(small_corpus[:100], model="bytelevel", vocab_size=600, show_progress=False)
    assert tok.vocab_size == 600
    text = "unseen 字 ✓ \x00 text"
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.model.unk_id is None and tok.decode(enc.ids) == text
