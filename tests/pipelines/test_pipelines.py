"""bertkit's own pipeline names on tiny models whose answers are known by construction.

The rigged QA model answers "zebra" and the rigged NER model tags "paris", wherever they sit in a
text far longer than 512 tokens: that checks windows, span/entity decoding and character
offsets exactly; a random classifier checks batching, order, top_k and the option rules.
"""

import pytest
import torch
from tiny_models import random_head, rigged, save

from bertkit.errors import BertkitError
from bertkit.hardware import cpu_has_native
from bertkit.pipelines import TASKS, pipeline

LONG = "The river flows past the old town and its quiet streets . " * 90  # ~1,100 tokens
NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


@pytest.fixture(scope="module")
def nli_folder(tmp_path_factory, minilm_dir):
    folder = tmp_path_factory.mktemp("nli")
    return random_head("BertForSequenceClassification", folder, minilm_dir, num_labels=3, id2label=NLI_LABELS)


def test_qa_finds_answer_in_a_late_window_with_exact_offsets(tmp_path, minilm_dir):
    net = rigged("BertForQuestionAnswering", minilm_dir, "zebra")
    with torch.no_grad():
        net.qa_outputs.weight.zero_()
        net.qa_outputs.weight[:, 0] = 5.0  # S and E both read coordinate 0
    folder = save(net, tmp_path / "qa", minilm_dir)
    context = LONG + "At the end of the road stood a Zebra, calm and striped. " + LONG[:300]
    qa = pipeline("qa", model=folder)
    assert len(qa.tokenizer.encode(context).ids) > 1000
    r = qa(question="Which animal stood there?", context=context)
    assert r["answer"] == "Zebra" and context[r["start"] : r["end"]] == "Zebra"
    assert r["start"] == context.index("Zebra") and 0 < r["score"] <= 1
    # lists come back in order; a zebra in the question alone is not an answer
    both = qa([{"question": "zebra?", "context": "A zebra ran."}, {"question": "q", "context": context}])
    assert both[0]["answer"] == "zebra" and both[0]["start"] == 2 and both[1]["answer"] == "Zebra"
    assert qa(question=["zebra?", "q"], context=["A zebra ran.", context]) == both  # HF's list form
    top = qa(question="Which?", context="A zebra ran.", top_k=3)
    assert len(top) == 3 and top[0]["answer"] == "zebra" and top[0]["score"] >= top[1]["score"]
    assert pipeline("question-answering", model=folder)(question="Which?", context="A zebra ran.") == top[0]


def test_ner_entities_with_offsets_in_long_text(tmp_path, minilm_dir):
    labels = {0: "O", 1: "B-LOC", 2: "I-LOC"}
    net = rigged("BertForTokenClassification", minilm_dir, "paris", id2label=labels)
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.bias.copy_(torch.tensor([10.0, 0.0, 0.0]))
        net.classifier.weight[1, 0] = 5.0  # B-LOC reads coordinate 0
    folder = save(net, tmp_path / "ner", minilm_dir)
    ner = pipeline("ner", model=folder)
    text = LONG + "She moved to Paris last year." + LONG[:200]
    ents = ner(text)
    assert [(e["type"], e["text"], e["start"]) for e in ents] == [("LOC", "Paris", text.index("Paris"))]
    assert ents[0]["end"] == ents[0]["start"] + 5 and 0.5 < ents[0]["score"] <= 1
    assert ner(["no entity here", "paris, Paris"]) == [[], ner("paris, Paris")]
    assert [e["text"] for e in ner("paris, Paris")] == ["paris", "Paris"]
    # Hugging Face's shapes for the same text, through the same windows
    hf = pipeline("token-classification", model=folder, aggregation_strategy="simple")(text)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in hf] == [
        ("LOC", "paris", text.index("Paris"), text.index("Paris") + 5)
    ]
    pieces = pipeline("token-classification", model=folder)(text)  # strategy "none": per piece, with index
    assert len(pieces) == 1 and pieces[0]["entity"] == "B-LOC" and pieces[0]["word"] == "paris"
    assert pieces[0]["index"] == ner.tokenizer(text, truncation=False)["input_ids"].index(
        ner.tokenizer.token_to_id("paris")
    )
    assert pieces[0]["index"] > 1000  # counted over the whole text, past the first window


def test_classification_batches_equal_single_calls(nli_folder):
    nli = pipeline("nli", model=nli_folder)
    pairs = [
        ("A man sleeps.", "A man is awake."),
        ("Two dogs run in a very large green field today.", "Dogs run."),
        ("Hi.", "Hello there, how are you doing on this fine day?"),
    ]
    batched = nli(pairs, batch_size=2)
    for pair, got in zip(pairs, batched):
        one = nli(pair)
        assert one["label"] == got["label"] and set(one["probabilities"]) == set(NLI_LABELS.values())
        assert one["score"] == pytest.approx(got["score"], abs=1e-6, rel=1e-5)
        assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert nli({"premise": pairs[0][0], "hypothesis": pairs[0][1]}) == batched[0]
    with pytest.raises(BertkitError, match="pairs"):
        nli("just one sentence")


def test_top_k_ranks_labels_and_is_refused_where_it_means_nothing(nli_folder, tmp_path, minilm_dir):
    nli = pipeline("nli", model=nli_folder)
    full = nli(("A man sleeps.", "A man is awake."))
    ranked = nli(("A man sleeps.", "A man is awake."), top_k=2)
    assert [r["label"] for r in ranked] == sorted(full["probabilities"], key=full["probabilities"].get, reverse=True)[
        :2
    ]
    assert ranked[0] == {"label": full["label"], "score": full["score"]}
    assert len(pipeline("classify", model=nli_folder, top_k=3)("a text")) == 3  # a default given at build time
    ner_folder = random_head("BertForTokenClassification", tmp_path / "ner", minilm_dir, num_labels=3)
    with pytest.raises(BertkitError, match=r"^ner: top_k does not apply: each word gets one tag; leave it out$"):
        pipeline("ner", model=ner_folder)("Paris", top_k=2)
    with pytest.raises(
        BertkitError, match=r"pipeline 'nli': unknown option\(s\) temperature; it takes batch_size, top_k"
    ):
        nli(("a", "b"), temperature=2)
    with pytest.raises(BertkitError, match="top_k must be an integer >= 1"):
        nli(("a", "b"), top_k=0)
    with pytest.raises(BertkitError, match="unknown task 'sentiments'"):
        pipeline("sentiments", model=nli_folder)


def test_a_folder_without_the_trained_head_is_refused(minilm_dir):
    with pytest.raises(BertkitError, match="no trained weights for BertForSequenceClassification"):
        pipeline("classify", model=minilm_dir)


def test_device_and_dtype(nli_folder):
    nli = pipeline("nli", model=nli_folder, device="cpu")
    assert nli.device == torch.device("cpu")
    exact = nli(("A man sleeps.", "A man is awake."))
    if cpu_has_native("bf16"):  # the bf16 path runs and stays close to float32
        half = pipeline("nli", model=nli_folder, dtype="bfloat16")(("A man sleeps.", "A man is awake."))
        assert half["label"] == exact["label"] and half["score"] == pytest.approx(exact["score"], abs=0.02)
    else:
        with pytest.raises(BertkitError, match="no native bfloat16"):
            pipeline("nli", model=nli_folder, dtype="bf16")
    int8 = pipeline("nli", model=nli_folder, dtype="int8")(("A man sleeps.", "A man is awake."))
    assert int8["score"] == pytest.approx(exact["score"], abs=0.05)
    if not torch.cuda.is_available():
        with pytest.raises(BertkitError, match="no CUDA GPU"):
            pipeline("nli", model=nli_folder, device="cuda")


def test_every_bertkit_task_name_builds(minilm_dir, tmp_path):
    assert set(TASKS) == {"sentiment", "classify", "nli", "nsp", "qa", "ner", "fill-mask", "embed"}
    vectors = pipeline("embed", model=minilm_dir)(["I love Paris", "Paris is a city"])
    assert len(vectors) == 2 and vectors[0].shape == (384,)
    assert float(vectors[0].norm()) == pytest.approx(1.0, abs=1e-5)  # the folder's Normalize module
