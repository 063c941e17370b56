"""The routes with real models: answers equal the library's own, in TEI's and OpenAI's shapes."""

from __future__ import annotations

import base64
import re
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bertkit
from bertkit.serve.runners import build_runner
from bertkit.serve.settings import ServeSettings

MATCH = 0.99999  # cosine between a served vector and in-process bertkit.embed


@pytest.fixture(scope="module")
def minilm_runner(minilm_dir):
    return build_runner(ServeSettings(model=str(minilm_dir)))


@pytest.fixture(scope="module")
def sst2_sentences(shared_data) -> list[str]:
    lines = shared_data("sst2", "validation.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:96]]


def _cosines(got, expected: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(torch.tensor(got, dtype=torch.float32), expected, dim=-1)


def test_concurrent_clients_are_batched_and_answered_as_bertkit_embed(
    minilm_dir, minilm_runner, sst2_sentences, client_for, monkeypatch, wait_until
):
    monkeypatch.setattr(minilm_runner, "workers", 1)  # one forward thread: the crowd waits for it
    client = client_for(minilm_runner, model=str(minilm_dir))
    batcher = client.app.state.service.batcher
    real_run, first = minilm_runner.run, threading.Event()

    def run(texts, key=()):  # the first forward waits for a crowd, so that batching surely happens
        if not first.is_set():
            first.set()
            wait_until(lambda: batcher.depth() >= 48, 30)
        return real_run(texts, key)

    monkeypatch.setattr(minilm_runner, "run", run)
    batcher.run_batch = run
    answers: dict[int, list] = {}

    def send(i: int) -> None:
        answers[i] = client.post("/embed", json={"inputs": sst2_sentences[i]}).json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(sst2_sentences))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = bertkit.embed(sst2_sentences, model=minilm_dir, normalize=True)
    got = [answers[i][0] for i in range(len(sst2_sentences))]
    assert _cosines(got, expected).min() >= MATCH
    metrics = client.get("/metrics").text
    batches = float(re.search(r"^bertkit_batch_size_count (\S+)", metrics, re.M).group(1))
    assert batches < len(sst2_sentences) / 2, batches  # the requests shared forwards


def test_a_request_spanning_batches_equals_bertkit_embed(minilm_dir, minilm_runner, sst2_sentences, client_for):
    client = client_for(minilm_runner, model=str(minilm_dir), max_batch_requests=8)
    texts = sst2_sentences[:40]
    got = client.post("/embed", json={"inputs": texts, "normalize": False}).json()
    assert len(got) == 40
    expected = bertkit.embed(texts, model=minilm_dir, normalize=False)  # MiniLM's folder would normalize
    assert _cosines(got, expected).min() >= MATCH
    norms = torch.tensor(got).norm(dim=-1)
    assert torch.allclose(norms, expected.norm(dim=-1), rtol=1e-4, atol=1e-5)  # not normalized: raw vectors
    sizes = re.search(r"^bertkit_batch_size_count (\S+)", client.get("/metrics").text, re.M).group(1)
    assert float(sizes) >= 5  # 40 inputs, 8 per forward


@pytest.mark.parametrize("dtype, worst", [("int8", 0.99), ("bf16", 0.999)])
def test_reduced_precision_serves_vectors_close_to_float32(minilm_dir, sst2_sentences, dtype, worst):
    from bertkit.hardware import cpu_has_native

    if dtype == "bf16" and not cpu_has_native("bf16"):
        pytest.skip("this CPU has no native bf16 (serve refuses it there; see test_hostile)")
    runner = build_runner(ServeSettings(model=str(minilm_dir), dtype=dtype))
    texts = sst2_sentences[:32]
    got = torch.stack(runner.run(texts))
    expected = bertkit.embed(texts, model=minilm_dir)
    assert _cosines(got.tolist(), expected).min() >= worst


def test_openai_shape_with_usage_and_base64(minilm_dir, minilm_runner, client_for):
    client = client_for(minilm_runner, model=str(minilm_dir))
    texts = ["hello world", "a gripping, funny film"]
    body = client.post("/v1/embeddings", json={"input": texts, "model": "anything"}).json()
    assert body["object"] == "list" and body["model"] == str(minilm_dir)
    assert [d["index"] for d in body["data"]] == [0, 1] and {d["object"] for d in body["data"]} == {"embedding"}
    tokens = sum(len(ids) for ids in minilm_runner.tokenizer(texts)["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    expected = bertkit.embed(texts, model=minilm_dir, normalize=True)
    assert _cosines([d["embedding"] for d in body["data"]], expected).min() >= MATCH
    packed = client.post("/v1/embeddings", json={"input": "hello world", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, body["data"][0]["embedding"], rtol=0, atol=1e-6)


def test_info_health_docs_and_predict_for_embed(minilm_dir, minilm_runner, client_for):
    client = client_for(minilm_runner, model=str(minilm_dir), max_batch_tokens=4096)
    info = client.get("/info").json()
    assert info["task"] == "embed" and info["dims"] == 384 and info["max_input_tokens"] == 512
    assert info["limits"]["max_batch_tokens"] == 4096
    assert client.get("/health").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/embed", "/v1/embeddings", "/predict", "/health", "/info", "/metrics"} <= set(paths)
    one = client.post("/predict", json={"inputs": "hello world"}).json()
    expected = bertkit.embed("hello world", model=minilm_dir)
    assert len(one) == 384 and _cosines([one], expected[None]).item() >= MATCH


def test_predict_classify_equals_the_pipeline(tiny_classifier_dir, client_for):
    settings = ServeSettings(model=str(tiny_classifier_dir), task="classify")
    client = client_for(build_runner(settings), model=str(tiny_classifier_dir), task="classify")
    texts = ["a gripping, funny film", "dull", "not bad at all, really"]
    got = client.post("/predict", json={"inputs": texts}).json()
    expected = bertkit.pipeline("classify", model=tiny_classifier_dir)(texts)
    assert [g["label"] for g in got] == [e["label"] for e in expected]
    assert np.allclose([g["score"] for g in got], [e["score"] for e in expected], rtol=1e-5, atol=1e-6)
    single = client.post("/predict", json={"inputs": "dull"}).json()
    assert isinstance(single, dict) and single["label"] in ("negative", "positive")
    pair = client.post("/predict", json={"inputs": {"text": "a film", "text_pair": "it was fine"}})
    assert pair.status_code == 200
    assert client.get("/info").json()["labels"] == ["negative", "positive"]
    assert client.post("/embed", json={"inputs": "x"}).status_code == 404  # only the task's routes exist
    top_k = client.post("/predict", json={"inputs": "x", "top_k": 2})
    assert top_k.status_code == 422 and "top_k" in top_k.json()["error"]


def test_predict_fill_mask_passes_top_k_through(tiny_mlm_dir, client_for):
    settings = ServeSettings(model=str(tiny_mlm_dir), task="fill-mask")
    client = client_for(build_runner(settings), model=str(tiny_mlm_dir), task="fill-mask")
    texts = ["Paris is a beautiful [MASK].", "The [MASK] sat on the mat."]
    got = client.post("/predict", json={"inputs": texts, "top_k": 3}).json()
    expected = bertkit.fill_mask(texts, model=tiny_mlm_dir, top_k=3)
    assert [[c["token"] for c in g] for g in got] == [[c["token"] for c in e] for e in expected]
    assert len(client.post("/predict", json={"inputs": texts[0]}).json()) == 5  # the pipeline's default


def test_predict_ner_equals_the_pipeline_on_long_inputs_too(tiny_ner_dir, client_for):
    settings = ServeSettings(model=str(tiny_ner_dir), task="ner")
    client = client_for(build_runner(settings), model=str(tiny_ner_dir), task="ner")
    texts = ["Jeremy lives in Paris.", " ".join(["Anna met Jeremy in Paris again."] * 40)]  # > 128 tokens: windows
    got = client.post("/predict", json={"inputs": texts}).json()
    expected = bertkit.pipeline("ner", model=tiny_ner_dir)(texts)
    strip = [[{k: v for k, v in e.items() if k != "score"} for e in row] for row in expected]
    assert [[{k: v for k, v in e.items() if k != "score"} for e in row] for row in got] == strip
    scores = [[e["score"] for e in row] for row in got], [[e["score"] for e in row] for row in expected]
    assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(*scores))  # batches differ: float noise


@pytest.mark.parametrize(
    "task, inputs, expected",
    [
        ("nli", ["A man plays.", "Someone plays."], 1),
        ("nli", {"premise": "A man plays.", "hypothesis": "Someone plays."}, 1),
        ("nli", [["p1", "h1"], {"premise": "p2", "hypothesis": "h2"}], 2),
        ("qa", {"question": "Who?", "context": "Jeremy."}, 1),
        ("qa", [{"question": "Who?", "context": "Jeremy."}] * 3, 3),
    ],
)
def test_predict_accepts_the_task_shapes(scripted, client_for, task, inputs, expected):
    client = client_for(scripted, task=task)
    response = client.post("/predict", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    got = response.json()
    assert (len(got) if expected > 1 else 1) == expected
    assert len(scripted.batches[-1]) == expected


@pytest.mark.parametrize(
    "task, inputs, expected",
    [
        ("nli", "just one text", "nli takes \\[premise, hypothesis\\]"),
        ("nli", [["only premise"]], "input 0: nli takes"),
        ("qa", {"question": "Who?"}, 'qa takes {"question"'),
        ("qa", ["Who?"], "input 0: qa takes"),
        ("ner", [{"text": "x"}], "ner takes a text, got an object"),
        ("classify", 42, "inputs must be a text, an object or a list, not a number"),
    ],
)
def test_predict_refuses_the_wrong_shapes_with_422(scripted, client_for, task, inputs, expected):
    client = client_for(scripted, task=task)
    response = client.post("/predict", json={"inputs": inputs})
    assert response.status_code == 422, response.text
    assert re.search(expected, response.json()["error"]), response.json()
    assert scripted.batches == []
