"""SQuAD v1.1 EM/F1 and conlleval entity P/R/F1 on hand-made cases; entity scores vs seqeval."""

import random
import warnings

import numpy as np
import pytest

from bertkit.tasks import ner, qa
from bertkit.tasks.readers import QAExample


def test_squad_normalisation_and_token_f1():
    assert qa.normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert qa.normalize_answer("an apple, a pear") == "apple pear"
    assert qa.exact_match("the Eiffel tower.", "Eiffel Tower") == 1.0
    assert qa.f1("in Paris France", "Paris") == pytest.approx(0.5)  # P 1/3, R 1
    assert qa.f1("Paris Paris", "Paris") == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts clip at 1
    assert qa.f1("the", "a") == 0.0  # both normalise to nothing


def test_squad_scores_take_max_over_references_and_count_missing():
    refs = [
        QAExample("1", "q", "c", [("Denver Broncos", 0), ("the Broncos", 0)]),
        QAExample("2", "q", "c", [("1963", 0)]),
        QAExample("3", "q", "c", [("blue whale", 0)]),
    ]
    preds = {"1": "Broncos", "2": "1963"}  # 3 missing -> 0
    scores = qa.squad_scores(preds, refs)
    # q1: EM max(0, 1)=1 ("the Broncos" -> "broncos"); F1 1. q2: 1/1. q3: 0.
    assert scores == pytest.approx({"exact_match": 200 / 3, "f1": 200 / 3})
    scores = qa.squad_scores({"1": "Denver", "2": "in 1963", "3": "whale"}, refs)
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 2 / 3) / 3)


def test_best_span_respects_validity_rules():
    s = np.array([0, 9, 1, 5, 0, 0, 0], dtype=float)  # start logits
    e = np.array([0, 0, 8, 0, 0, 0, 9], dtype=float)  # end logits
    ctx = np.array([0, 0, 1, 1, 1, 1, 1], dtype=bool)  # token 1 is question: its 9 must not count
    best = qa.best_spans(s, e, ctx, max_answer_tokens=30, n_best=3)
    assert best[0] == (14.0, 3, 6)  # 5 + 9
    assert (best[1][1], best[1][2]) in {(2, 6)} and best[1][0] == 10.0
    # end before start never wins, and the length cap (here 2 tokens) cuts (3, 6)
    best = qa.best_spans(s, e, ctx, max_answer_tokens=2)
    assert best[0] == (9.0, 2, 2) and all(0 <= j - i < 2 for _, i, j in best)


def test_decode_picks_best_window_and_maps_characters():
    ex = QAExample("x", "Who?", "Ada wrote code. Bob read it.")
    # two windows over the context; word char offsets per token, None outside the context
    w0 = qa.QAWindow(0, [0] * 6, [0] * 6, [None, None, (0, 3), (4, 9), (10, 14), None])
    w1 = qa.QAWindow(0, [0] * 6, [0] * 6, [None, None, (10, 14), (16, 19), (20, 24), None])
    starts = [np.array([0, 0, 2.0, 0, 0, 0]), np.array([0, 0, 0, 6.0, 0, 0])]
    ends = [np.array([0, 0, 2.0, 0, 0, 0]), np.array([0, 0, 0, 0, 5.0, 0])]
    (answers,) = qa.decode_answers([ex], [w0, w1], starts, ends)
    best = answers[0]
    assert (best["text"], best["start"], best["end"]) == ("Bob read", 16, 24)
    assert 0 < best["score"] < 1 and answers[1]["logit"] < best["logit"]


def test_entities_decoded_as_conlleval_does():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "I-MISC", "B-LOC", "B-LOC"]
    assert ner.get_entities(tags) == [
        ("PER", 0, 2),
        ("LOC", 3, 5),
        ("ORG", 5, 6),
        ("MISC", 6, 7),
        ("LOC", 7, 8),
        ("LOC", 8, 9),
    ]


def test_entity_scores_hand_made():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    s = ner.entity_scores(gold, pred)
    # gold: PER(0,2) LOC(3,4) ORG(0,1); pred: PER(0,1) LOC ORG MISC -> 2 right of 4 predicted, 3 gold
    assert (s.precision, s.recall) == (0.5, 2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert s.per_type["PER"]["f1"] == 0.0 and s.per_type["LOC"]["f1"] == 1.0


def test_entity_scores_equal_seqeval_on_random_tag_sequences():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG", "B-MISC"]
    for _ in range(300):
        gold = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(rng.randint(1, 5))]
        pred = [[rng.choice(tags) for _ in sent] for sent in gold]
        ours = ner.entity_scores(gold, pred)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = (precision_score(gold, pred), recall_score(gold, pred), f1_score(gold, pred))
        assert (ours.precision, ours.recall, ours.f1) == pytest.approx(ref, abs=1e-12)


def test_first_piece_alignment():
    text, spans = ner.join_words(["U.S.", "troops", "left"])
    assert text == "U.S. troops left" and spans == [(0, 4), (5, 11), (12, 16)]
    # pieces: [CLS] u . s . troop ##s left [SEP]
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (5, 10), (10, 11), (12, 16), (0, 0)]
    words = ner.first_piece_words(offsets, spans)
    assert words == [None, 0, None, None, None, 1, None, 2, None]
    assert ner.align_labels(words, [3, 0, 5]) == [-100, 3, -100, -100, -100, 0, -100, 5, -100]


def test_word_entities_offsets_and_scores():
    text, spans = ner.join_words(["Jeremy", "lives", "in", "New", "York"])
    ents = ner.word_entities(text, spans, ["B-PER", "O", "O", "B-LOC", "I-LOC"], [0.9, 1, 1, 0.8, 0.6])
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in ents] == [
        ("PER", "Jeremy", 0, 6),
        ("LOC", "New York", 16, 24),
    ]
    assert ents[1]["score"] == pytest.approx(0.7)
