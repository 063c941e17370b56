"""Fixtures for the server tests: tiny model folders, a scriptable runner, an app under TestClient.

The tiny folders carry MiniLM's real tokenizer and random weights with 128 positions: fast to run,
and an input of more than 128 tokens is "too long" without sending megabytes.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from peers import peer

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="session", autouse=True)
def serve_stack() -> None:
    """FastAPI, uvicorn and httpx come with the test extra; under CI their absence fails."""
    for module in ("fastapi", "uvicorn", "httpx"):
        peer(module)


def _tiny_folder(root: Path, minilm_dir: Path, head: str, **config: Any) -> Path:
    import bertkit.model as models
    from bertkit.model.config import BertConfig

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **config,
    )
    getattr(models, head)(cfg).eval().save_pretrained(root)
    for name in TOKENIZER_FILES:
        if (minilm_dir / name).exists():
            shutil.copy(minilm_dir / name, root / name)
    return root


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return _tiny_folder(tmp_path_factory.mktemp("tiny-bert"), minilm_dir, "BertModel")


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    labels = {0: "negative", 1: "positive"}
    return _tiny_folder(
        tmp_path_factory.mktemp("tiny-clf"), minilm_dir, "BertForSequenceClassification", id2label=labels
    )


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return _tiny_folder(tmp_path_factory.mktemp("tiny-mlm"), minilm_dir, "BertForMaskedLM")


@pytest.fixture(scope="session")
def tiny_ner_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    return _tiny_folder(tmp_path_factory.mktemp("tiny-ner"), minilm_dir, "BertForTokenClassification", id2label=labels)


class ScriptedRunner:
    """A runner double: vectors [len(text), 1.0, ...] of width 4, with hooks to block or fail.

    `gate` (a threading.Event) holds every forward until set; `fail_on` makes a forward raise when
    a text in the batch contains it. `batches` records what each forward got.
    """

    task = "embed"
    device = torch.device("cpu")
    workers = 1
    max_tokens = 16

    def __init__(self) -> None:
        self.gate: threading.Event | None = None
        self.fail_on: str | None = None
        self.batches: list[list[str]] = []
        self.started = threading.Event()

    def measure(self, inputs: list[Any]) -> list[int]:
        texts = [t if isinstance(t, str) else " ".join(t.values() if isinstance(t, dict) else t) for t in inputs]
        return [len(t.split()) + 2 for t in texts]

    def run(self, texts: list[str], key: tuple = ()) -> list[torch.Tensor]:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(list(texts))
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            raise RuntimeError("scripted failure\non two lines")
        return [torch.tensor([float(len(t)), 1.0, 0.0, 0.0]) for t in texts]

    def thread_start(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"dims": 4}


@pytest.fixture
def scripted() -> ScriptedRunner:
    return ScriptedRunner()


@pytest.fixture
def client_for() -> Callable[..., Any]:
    """client_for(runner, **settings) -> a started TestClient (closed at the test's end)."""
    from fastapi.testclient import TestClient

    from bertkit.serve.app import create_app
    from bertkit.serve.settings import ServeSettings

    opened: list[Any] = []

    def make(runner: Any, **settings: Any) -> Any:
        s = ServeSettings(model=settings.pop("model", "scripted"), **settings)
        s.check()
        client = TestClient(create_app(s, runner), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, runner))
        return client

    yield make
    for client, runner in opened:
        gate = getattr(runner, "gate", None)
        if gate is not None:
            gate.set()  # let blocked forwards end so the batcher can stop
        client.__exit__(None, None, None)


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """wait_until(condition, seconds=10) -> whether condition() came true in time (polled)."""

    def wait(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return False

    return wait
