"""Limits and failures over HTTP, each answered with its status and a one-line JSON message."""

from __future__ import annotations

import json
import threading

import pytest


def _error(response, status: int, error_type: str = "validation") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    assert "\n" not in body["error"]
    return body["error"]


def test_a_body_over_the_payload_limit_is_413(scripted, client_for):
    client = client_for(scripted, payload_limit=100)
    big = json.dumps({"inputs": "x" * 200})
    assert "100" in _error(client.post("/embed", content=big, headers={"content-type": "application/json"}), 413)

    def chunks():  # no Content-Length: counted while read
        yield b'{"inputs": "'
        yield b"y" * 150
        yield b'"}'

    message = _error(client.post("/embed", content=chunks(), headers={"content-type": "application/json"}), 413)
    assert "more than" in message
    assert scripted.batches == []  # nothing reached the model
    assert client.post("/embed", json={"inputs": "small"}).status_code == 200


def test_too_many_inputs_and_too_many_characters_are_413(scripted, client_for):
    client = client_for(scripted, max_inputs=3, max_input_chars=10)
    assert "at most 3" in _error(client.post("/embed", json={"inputs": ["a"] * 4}), 413)
    assert "input 1 has 11 characters" in _error(client.post("/embed", json={"inputs": ["ok", "x" * 11]}), 413)
    assert client.post("/embed", json={"inputs": ["a"] * 3}).status_code == 200


def test_the_queue_bounds_inputs_per_request_too(scripted, client_for):
    client = client_for(scripted, max_inputs=50, max_queue=5)
    assert "at most 5" in _error(client.post("/embed", json={"inputs": ["a"] * 6}), 413)
    assert client.get("/info").json()["limits"]["max_inputs"] == 5


def test_an_input_over_the_token_limit_is_413_unless_truncate(scripted, client_for):
    client = client_for(scripted)  # the scripted model takes 16 tokens: words + 2
    long = " ".join(["w"] * 20)
    assert "22 tokens" in _error(client.post("/embed", json={"inputs": long}), 413)
    assert "22 tokens" in _error(client.post("/v1/embeddings", json={"input": [long]}), 413)
    assert client.post("/embed", json={"inputs": long, "truncate": True}).status_code == 200


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"inputs": "unterminated', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"inputs": 3}', "inputs: .*string.* or .*array"),  # JSON's word for a list
        (b'{"inputs": ["a", 3]}', "inputs: .*string"),
        (b'{"inputs": "a", "normalize": "yes"}', "normalize: .*bool"),
        (b'{"inputs": "a", "prompt_name": "query"}', "prompt_name: Extra inputs are not permitted"),
        (b'{"normalize": true}', "inputs: Field required"),
        (b'{"inputs": []}', "empty list"),
    ],
)
def test_malformed_json_and_wrong_types_are_422(scripted, client_for, body, expected):
    import re

    client = client_for(scripted)
    message = _error(client.post("/embed", content=body, headers={"content-type": "application/json"}), 422)
    assert re.search(expected, message), message


def test_post_bodies_are_read_as_fastapi_reads_them(scripted, client_for):
    """The gate answers the POST routes itself (bertkit.serve.app.Gate): the same statuses as the
    routes FastAPI declares, for any declared content type, and an unexpected error is one 500."""
    client = client_for(scripted)
    body = b'{"inputs": "a b", "normalize": false}'
    for headers in ({}, {"content-type": "application/json; charset=utf-8"}, {"content-type": "application/x+json"}):
        assert client.post("/embed", content=body, headers=headers).json() == [[3.0, 1.0, 0.0, 0.0]]
    plain = client.post("/embed", content=body, headers={"content-type": "text/plain"})
    assert "must be a JSON object" in _error(plain, 422)
    assert client.get("/embed").status_code == 405  # other methods still go through FastAPI's routing

    def broken(inputs):
        raise RuntimeError("measure broke\non two lines")

    scripted.measure = broken
    assert _error(client.post("/embed", json={"inputs": "a"}), 500, "backend") == (
        "internal error (RuntimeError: measure broke)"
    )
    del scripted.measure
    assert client.post("/embed", json={"inputs": "a"}).status_code == 200


def test_a_full_queue_is_429_with_retry_after(scripted, client_for, wait_until):
    scripted.gate = threading.Event()
    client = client_for(scripted, max_queue=2)
    answers: list = []
    holder = threading.Thread(target=lambda: answers.append(client.post("/embed", json={"inputs": "hold"})))
    holder.start()
    assert scripted.started.wait(10)  # the forward thread holds "hold"
    waiting = threading.Thread(target=lambda: answers.append(client.post("/embed", json={"inputs": ["a", "b"]})))
    waiting.start()
    assert wait_until(lambda: client.app.state.service.batcher.depth() == 2)
    refused = client.post("/embed", json={"inputs": "c"})
    assert "overloaded" in _error(refused, 429, "overloaded")
    assert refused.headers["Retry-After"] == "1"
    scripted.gate.set()
    holder.join(10)
    waiting.join(10)
    assert sorted(a.status_code for a in answers) == [200, 200]


def test_missing_or_wrong_api_key_is_401_and_health_stays_open(scripted, client_for):
    client = client_for(scripted, api_key="s3cret-key")
    assert "missing API key" in _error(client.post("/embed", json={"inputs": "a"}), 401, "unauthorized")
    wrong = client.post("/embed", json={"inputs": "a"}, headers={"Authorization": "Bearer s3cret-kez"})
    assert "wrong API key" in _error(wrong, 401, "unauthorized")
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    for path in ("/info", "/metrics"):
        assert client.get(path).status_code == 401
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    good = client.post("/embed", json={"inputs": "a"}, headers={"Authorization": "Bearer s3cret-key"})
    assert good.status_code == 200
    assert scripted.batches == [["a"]]  # refused requests never reached the model


def test_the_api_key_is_compared_in_constant_time(scripted, client_for, monkeypatch):
    import hmac

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    client = client_for(scripted, api_key="k")
    client.get("/info", headers={"Authorization": "Bearer nope"})
    assert seen == [(b"nope", b"k")]


def test_a_request_waiting_past_its_timeout_is_503(scripted, client_for):
    scripted.gate = threading.Event()
    client = client_for(scripted, timeout=0.2)
    message = _error(client.post("/embed", json={"inputs": "slow"}), 503, "overloaded")
    assert "0.2 s" in message
    scripted.gate.set()


def test_a_model_error_is_500_for_its_batch_and_the_server_keeps_serving(scripted, client_for):
    scripted.fail_on = "boom"
    client = client_for(scripted)
    message = _error(client.post("/embed", json={"inputs": ["fine", "boom"]}), 500, "backend")
    assert "scripted failure" in message
    for _ in range(3):
        assert client.post("/embed", json={"inputs": "fine"}).status_code == 200
    assert client.get("/health").status_code == 200
    assert "bertkit_batch_errors_total 1" in client.get("/metrics").text


def test_an_unexpected_error_is_still_one_line_of_json(scripted, client_for, monkeypatch):
    client = client_for(scripted)
    monkeypatch.setattr(scripted, "measure", lambda inputs: 1 / 0)
    message = _error(client.post("/embed", json={"inputs": "x"}), 500, "backend")
    assert "ZeroDivisionError" in message
    monkeypatch.undo()
    assert client.post("/embed", json={"inputs": "x"}).status_code == 200
