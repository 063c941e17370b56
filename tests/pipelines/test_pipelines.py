"""Pipelines on tiny models whose answers are known by construction.

A "rigged" encoder passes each token's own embedding through (attention and feed-forward weights
zero), so a head reading coordinate 0 fires only where the word embedding put a large value: the
QA model answers "zebra", the NER model tags "paris" as a location, wherever they sit in a text
far longer than 512 tokens. That checks windows, span/entity decoding and character offsets
exactly; a random classifier checks batching and order.
"""

import json
import shutil

import pytest
import torch

from bertkit import model as models
from bertkit.cli import main
from bertkit.model import BertConfig
from bertkit.pipelines import pipeline

LONG = "The river flows past the old town and its quiet streets . " * 90  # ~1,100 tokens


def save(model, folder, minilm_dir):
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def rigged(head: str, minilm_dir, folder, word: str, **config):
    vocab = (minilm_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    cfg = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **config,
    )
    torch.manual_seed(0)
    net = getattr(models, head)(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "encoder" in name and "LayerNorm" not in name:
                p.zero_()  # layers pass x through: LN(x + 0)
        emb = net.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight[:, 0] = 0.0
        emb.word_embeddings.weight[vocab.index(word), 0] = 10.0  # only this word lights coordinate 0
    return net, folder


def test_qa_finds_answer_in_a_late_window_with_exact_offsets(tmp_path, minilm_dir):
    net, folder = rigged("BertForQuestionAnswering", minilm_dir, tmp_path / "qa", "zebra")
    with torch.no_grad():
        net.qa_outputs.weight.zero_()
        net.qa_outputs.weight[:, 0] = 5.0  # S and E both read coordinate 0
    save(net, folder, minilm_dir)
    context = LONG + "At the end of the road stood a Zebra, calm and striped. " + LONG[:300]
    qa = pipeline("qa", model=folder)
    assert len(qa.tokenizer.encode(context).ids) > 1000
    r = qa(question="Which animal stood there?", context=context)
    assert r["answer"] == "Zebra" and context[r["start"] : r["end"]] == "Zebra"
    assert r["start"] == context.index("Zebra") and 0 < r["score"] <= 1
    # lists come back in order; a zebra in the question alone is not an answer
    both = qa([{"question": "zebra?", "context": "A zebra ran."}, {"question": "q", "context": context}])
    assert both[0]["answer"] == "zebra" and both[0]["start"] == 2 and both[1]["answer"] == "Zebra"
    top = qa(question="Which?", context="A zebra ran.", top_k=3)
    assert len(top) == 3 and top[0]["answer"] == "zebra" and top[0]["score"] >= top[1]["score"]


def test_ner_entities_with_offsets_in_long_text(tmp_path, minilm_dir, capsys):
    labels = {0: "O", 1: "B-LOC", 2: "I-LOC"}
    net, folder = rigged("BertForTokenClassification", minilm_dir, tmp_path / "ner", "paris", id2label=labels)
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.bias.copy_(torch.tensor([10.0, 0.0, 0.0]))
        net.classifier.weight[1, 0] = 5.0  # B-LOC reads coordinate 0
    save(net, folder, minilm_dir)
    ner = pipeline("ner", model=folder)
    text = LONG + "She moved to Paris last year." + LONG[:200]
    ents = ner(text)
    assert [(e["type"], e["text"], e["start"]) for e in ents] == [("LOC", "Paris", text.index("Paris"))]
    assert ents[0]["end"] == ents[0]["start"] + 5 and 0.5 < ents[0]["score"] <= 1
    assert ner(["no entity here", "paris, Paris"]) == [[], ner("paris, Paris")]
    assert [e["text"] for e in ner("paris, Paris")] == ["paris", "Paris"]

    assert main(["predict", "ner", "--model", str(folder), "We", "flew", "to", "Paris"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == [
        {"type": "LOC", "text": "Paris", "start": 11, "end": 16, "score": pytest.approx(ents[0]["score"], abs=0.05)}
    ]


def test_classification_batches_equal_single_calls(tmp_path, minilm_dir):
    cfg = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
    )
    torch.manual_seed(0)
    folder = save(models.BertForSequenceClassification(cfg), tmp_path / "nli", minilm_dir)
    nli = pipeline("nli", model=folder)
    pairs = [
        ("A man sleeps.", "A man is awake."),
        ("Two dogs run in a very large green field today.", "Dogs run."),
        ("Hi.", "Hello there, how are you doing on this fine day?"),
    ]
    batched = nli(pairs, batch_size=2)
    for pair, got in zip(pairs, batched):
        one = nli(pair)
        assert one["label"] == got["label"] and set(one["probabilities"]) == set(cfg.id2label.values())
        assert one["score"] == pytest.approx(got["score"], abs=1e-5)
        assert sum(got["probabilities"].values()) == pytest.approx(1.0)
    with pytest.raises(Exception, match="pairs"):
        nli("just one sentence")
