"""Hugging Face's pipeline names answer as transformers' pipelines do, on the same folders.

Each folder is a small random model saved by bertkit with MiniLM's tokenizer; transformers loads
it as it is, so both libraries compute the same logits and every key, label, span and index must
agree, scores within float32 noise.
"""

from __future__ import annotations

import pytest
import torch
from peers import peer
from tiny_models import NER_LABELS, random_head

from bertkit.pipelines import HF_TASKS, pipeline

SCORE_ATOL, SCORE_RTOL = 1e-5, 1e-4  # |ours - theirs| <= atol + rtol * |theirs|
NER_TEXTS = [
    "Jeremy Smithsonian lives in Parisss with Angela Merkel.",
    "Emmanuel Macron met Xi Jinping in Beijing on Monday, Reuters reported ☃ x.",
    "nothing here",
]


def hf_pipeline(task: str, folder, **kwargs):
    return peer("transformers").pipeline(task, model=str(folder), device="cpu", **kwargs)


def same(ours, theirs) -> None:
    """Equal structures; floats (scores) within the stated tolerance."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), (ours, theirs)
        for k in theirs:
            same(ours[k], theirs[k])
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            same(a, b)
    elif isinstance(theirs, float) or hasattr(theirs, "dtype"):
        assert abs(float(ours) - float(theirs)) <= SCORE_ATOL + SCORE_RTOL * abs(float(theirs)), (ours, theirs)
    else:
        assert ours == theirs, (ours, theirs)


@pytest.fixture(scope="module")
def ner_folder(tmp_path_factory, minilm_dir):
    folder = tmp_path_factory.mktemp("ner")
    return random_head("BertForTokenClassification", folder, minilm_dir, seed=3, scale=40.0, id2label=NER_LABELS)


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_equals_transformers(ner_folder, strategy):
    ours = pipeline("token-classification", model=ner_folder, aggregation_strategy=strategy)(NER_TEXTS)
    theirs = hf_pipeline("token-classification", ner_folder, aggregation_strategy=strategy)(NER_TEXTS)
    assert sum(len(x) for x in theirs) > 10  # the random model finds entities of several types
    same(ours, theirs)
    keys = (
        {"entity", "score", "index", "word", "start", "end"}
        if strategy == "none"
        else {"entity_group", "score", "word", "start", "end"}
    )
    assert all(set(e) == keys for text in ours for e in text)
    # "ner" with an aggregation strategy is HF's too; bertkit's own "ner" keeps its keys
    assert pipeline("ner", model=ner_folder, aggregation_strategy=strategy)(NER_TEXTS[0]) == ours[0]


def test_bertkit_ner_keeps_its_keys(ner_folder):
    ents = pipeline("ner", model=ner_folder)(NER_TEXTS[1])
    assert ents and all(set(e) == {"type", "text", "start", "end", "score"} for e in ents)


def test_text_classification_shapes_equal_transformers(tmp_path, minilm_dir):
    folder = random_head(
        "BertForSequenceClassification",
        tmp_path / "clf",
        minilm_dir,
        num_labels=3,
        id2label={0: "neg", 1: "pos", 2: "mid"},
    )
    texts = ["a great film", "an awful, boring film that never ends"]
    ours, theirs = pipeline("text-classification", model=folder), hf_pipeline("text-classification", folder)
    for options in ({}, {"top_k": None}, {"top_k": 2}, {"top_k": 1}):
        same(ours(texts[0], **options), theirs(texts[0], **options))
        same(ours(texts, **options), theirs(texts, **options))
    pair = {"text": "a great film", "text_pair": "I liked it"}
    same(ours(pair), theirs(pair))
    assert isinstance(pipeline("sentiment-analysis", model=folder)("a great film"), list)


def test_fill_mask_and_feature_extraction_equal_transformers(tmp_path, minilm_dir):
    mlm = random_head("BertForMaskedLM", tmp_path / "mlm", minilm_dir)
    for text in ("paris is a [MASK] city.", "[MASK] love [MASK]."):
        same(pipeline("fill-mask", model=mlm)(text, top_k=3), hf_pipeline("fill-mask", mlm)(text, top_k=3))
    encoder = random_head("BertModel", tmp_path / "encoder", minilm_dir)
    ours = pipeline("feature-extraction", model=encoder)
    theirs = hf_pipeline("feature-extraction", encoder)
    for inputs in ("paris is a city.", ["paris is a city.", "a much longer sentence about rivers and towns"]):
        a, b = torch.tensor(ours(inputs)) if isinstance(inputs, str) else None, None
        if isinstance(inputs, str):
            b = torch.tensor(theirs(inputs))
            assert a.shape == b.shape and a.dim() == 3  # [1, tokens, hidden]
            torch.testing.assert_close(a, b, atol=SCORE_ATOL, rtol=SCORE_RTOL)
        else:
            for x, y in zip(ours(inputs), theirs(inputs)):
                torch.testing.assert_close(torch.tensor(x), torch.tensor(y), atol=SCORE_ATOL, rtol=SCORE_RTOL)
    assert ours("paris", return_tensors=True).shape == (1, 3, 32)


def test_question_answering_keys(tmp_path, minilm_dir):
    """transformers 5 dropped its question-answering pipeline; its documented answer keys (4.x) stay."""
    folder = random_head("BertForQuestionAnswering", tmp_path / "qa", minilm_dir)
    context = "He lives in Paris now."
    ours = pipeline("question-answering", model=folder)(question="Where?", context=context)
    assert set(ours) == {"score", "start", "end", "answer"}
    assert context[ours["start"] : ours["end"]] == ours["answer"]


def test_the_docs_table_names_every_hf_task():
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "docs" / "hf.md").read_text(encoding="utf-8")
    for hf_name, ours in HF_TASKS.items():
        assert f'`"{hf_name}"`' in table and f'`"{ours}"`' in table, hf_name


def test_every_task_name_the_cli_offers_has_a_pipeline():
    """The names live apart from the classes (so `predict --help` needs no torch): they must agree."""
    from bertkit.pipelines import ALL_TASKS, CLASSES, TASKS

    assert set(ALL_TASKS) == set(CLASSES) and len(ALL_TASKS) == len(set(ALL_TASKS))
    assert set(TASKS) | set(HF_TASKS) == set(ALL_TASKS)
