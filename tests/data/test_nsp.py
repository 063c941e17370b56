import numpy as np
import pytest

from bertkit.data.nsp import Document, PairBuilder
from bertkit.errors import BertkitError

CLS, SEP = 1, 2


def _corpus(n_docs=60, seed=0, max_sents=40, max_len=30, fixed_len=None):
    """Each token encodes (document, sentence) as 10_000 * (d + 1) + 10 * s, so tests can tell
    where every piece of an instance came from."""
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        n_sents = int(rng.integers(2, max_sents))
        lengths = [fixed_len or int(rng.integers(1, max_len)) for _ in range(n_sents)]
        docs.append(Document.from_sentences([[10_000 * (d + 1) + 10 * s] * n for s, n in enumerate(lengths)]))
    return docs


def _origin(token):
    return token // 10_000 - 1, (token % 10_000) // 10  # (document, sentence)


def _all_instances(docs, builder, seed=0):
    out = []
    for d in range(len(docs)):
        out.extend((d, inst) for inst in builder.instances(docs, d, np.random.default_rng([seed, d])))
    return out


def test_layout_lengths_and_segments():
    docs = _corpus()
    b = PairBuilder(max_seq_len=64, cls_id=CLS, sep_id=SEP, short_seq_prob=0.1)
    for _d, inst in _all_instances(docs, b):
        ids = inst.ids
        assert len(ids) <= 64
        assert ids[0] == CLS and ids[inst.len_a - 1] == SEP and ids[-1] == SEP
        assert (ids == SEP).sum() == 2 and (ids == CLS).sum() == 1
        assert inst.len_a >= 3 and len(ids) - inst.len_a >= 2  # A and B both non-empty
        types = inst.token_type_ids
        assert types[: inst.len_a].sum() == 0 and types[inst.len_a :].all()


def test_is_next_b_continues_a_and_not_next_comes_from_another_document():
    docs = _corpus()
    b = PairBuilder(max_seq_len=64, cls_id=CLS, sep_id=SEP, short_seq_prob=0.1)
    for d, inst in _all_instances(docs, b):
        a = [_origin(t) for t in inst.ids[1 : inst.len_a - 1]]
        bb = [_origin(t) for t in inst.ids[inst.len_a : -1]]
        assert {doc for doc, _ in a} == {d}
        sa = [s for _, s in a]
        assert np.all(np.diff(sa) >= 0) and np.all(np.diff(sa) <= 1)  # consecutive sentences
        if inst.is_random_next:
            assert all(doc != d for doc, _ in bb)
        else:
            assert {doc for doc, _ in bb} == {d}
            sb = [s for _, s in bb]
            assert sb[0] > sa[-1] and np.all(np.diff(sb) >= 0) and np.all(np.diff(sb) <= 1)


def test_without_truncation_is_next_b_starts_right_after_a():
    docs = _corpus(n_docs=50, seed=4, fixed_len=5)  # 25 sentences of 5 fill 125 tokens exactly: no cut
    b = PairBuilder(max_seq_len=128, cls_id=CLS, sep_id=SEP, short_seq_prob=0.0)
    count = 0
    for _d, inst in _all_instances(docs, b):
        if not inst.is_random_next:
            a_last = _origin(inst.ids[inst.len_a - 2])[1]
            b_first = _origin(inst.ids[inst.len_a])[1]
            assert b_first == a_last + 1
            count += 1
    assert count > 50


def test_the_50_50_balance_holds_in_the_output():
    # long sentences make one-sentence chunks common: Google's rule (always notNext) skews here
    docs = _corpus(n_docs=800, seed=1, max_sents=12, max_len=90)
    b = PairBuilder(max_seq_len=64, cls_id=CLS, sep_id=SEP, short_seq_prob=0.1)
    labels = np.array([inst.is_random_next for _, inst in _all_instances(docs, b)])
    n = len(labels)
    assert n > 2000
    assert abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / n), (labels.mean(), n)


def test_short_seq_prob_makes_shorter_targets():
    docs = _corpus(n_docs=100, seed=2)
    full = PairBuilder(max_seq_len=128, cls_id=CLS, sep_id=SEP, short_seq_prob=0.0)
    short = PairBuilder(max_seq_len=128, cls_id=CLS, sep_id=SEP, short_seq_prob=1.0)
    full_lens = [len(i.ids) for _, i in _all_instances(docs, full)]
    short_lens = [len(i.ids) for _, i in _all_instances(docs, short)]
    assert np.median(short_lens) < 0.75 * np.median(full_lens)
    assert max(full_lens) == 128


def test_not_next_puts_unused_sentences_back():
    # every sentence of a document shows up in some instance of that document (as A or isNext B),
    # except possibly a lone last sentence; fixed 5-token sentences keep truncation out of it
    docs = _corpus(n_docs=40, seed=3, fixed_len=5)
    b = PairBuilder(max_seq_len=128, cls_id=CLS, sep_id=SEP, short_seq_prob=0.0)
    seen = {d: set() for d in range(len(docs))}
    for d, inst in _all_instances(docs, b):
        keep = inst.ids[1 : inst.len_a - 1].tolist() + (
            [] if inst.is_random_next else inst.ids[inst.len_a : -1].tolist()
        )
        seen[d].update(_origin(t)[1] for t in keep)
    for d, doc in enumerate(docs):
        missing = set(range(doc.num_sentences)) - seen[d]
        assert missing <= {doc.num_sentences - 1}, (d, missing)


def test_truncation_trims_the_longer_side_from_both_ends():
    sents = [[100 + i for i in range(200)], [1000 + i for i in range(200)]]
    docs = [Document.from_sentences(sents), Document.from_sentences([[5000] * 10, [5001] * 10])]
    b = PairBuilder(max_seq_len=64, cls_id=CLS, sep_id=SEP, short_seq_prob=0.0)
    fronts = 0
    for seed in range(200):
        for inst in b.instances(docs, 0, np.random.default_rng(seed)):
            if not inst.is_random_next:
                a = inst.ids[1 : inst.len_a - 1]
                assert len(inst.ids) == 64 and abs(len(a) - (61 - len(a))) <= 1  # both sides cut to ~equal
                fronts += a[0] > 100
    assert fronts > 20  # the front is cut sometimes, not only the back


def test_needs_two_documents_and_a_sane_length():
    with pytest.raises(BertkitError, match="at least 2 documents"):
        PairBuilder(32, CLS, SEP, 0.1).instances(
            [Document.from_sentences([[5, 6], [7, 8]])], 0, np.random.default_rng(0)
        )
    with pytest.raises(BertkitError, match="max_seq_len"):
        PairBuilder(4, CLS, SEP, 0.1)
