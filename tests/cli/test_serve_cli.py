"""`bertkit serve`'s flags reach ServeSettings unchanged; the defaults are the settings' own."""

from __future__ import annotations

import pytest

from bertkit.cli import main
from bertkit.serve.settings import ServeSettings


@pytest.fixture
def captured(monkeypatch):
    seen: list[ServeSettings] = []
    monkeypatch.setattr("bertkit.serve.server.serve", lambda settings, on_listening=None: seen.append(settings))
    monkeypatch.delenv("BERTKIT_API_KEY", raising=False)
    return seen


def test_defaults_are_the_settings_defaults(captured):
    assert main(["serve", "--model", "some/folder"]) == 0
    assert captured == [ServeSettings(model="some/folder")]
    assert captured[0].host == "127.0.0.1"


def test_every_flag_reaches_the_settings(captured, capsys):
    argv = [
        "serve", "--model", "m", "--task", "classify", "--host", "0.0.0.0", "--port", "9000",
        "--precision", "int8", "--device", "cpu", "--pooling", "cls", "--max-batch-tokens", "2048",
        "--max-batch-requests", "16", "--batch-wait-ms", "2.5", "--max-queue", "64", "--max-inputs", "32",
        "--max-input-chars", "500",
        "--payload-limit", "4096", "--timeout", "5", "--workers", "3", "--api-key", "k",
    ]  # fmt: skip
    assert main(argv) == 0
    s = captured[0]
    assert (s.task, s.host, s.port, s.dtype, s.device, s.pooling) == ("classify", "0.0.0.0", 9000, "int8", "cpu", "cls")
    assert (s.max_batch_tokens, s.max_batch_requests, s.max_queue, s.max_inputs) == (2048, 16, 64, 32)
    assert s.batch_wait_ms == 2.5
    assert (s.max_input_chars, s.payload_limit, s.timeout, s.workers, s.api_key) == (500, 4096, 5.0, 3, "k")


def test_dtype_is_a_hidden_alias_of_precision(captured, capsys):
    assert main(["serve", "--model", "m", "--dtype", "bf16"]) == 0
    assert captured[0].dtype == "bf16"
    assert "--dtype is renamed --precision" in capsys.readouterr().err


def test_the_api_key_can_come_from_the_environment_and_never_shows_in_help(monkeypatch, capsys):
    monkeypatch.setenv("BERTKIT_API_KEY", "from-env-secret")
    seen: list[ServeSettings] = []
    monkeypatch.setattr("bertkit.serve.server.serve", lambda settings, on_listening=None: seen.append(settings))
    assert main(["serve", "--model", "m"]) == 0
    assert seen[0].api_key == "from-env-secret"
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "from-env-secret" not in out and "--max-batch-tokens" in out and "16384" in out


def test_without_the_serve_extra_it_says_which_extra_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "fastapi", None)  # as if FastAPI were not installed
    assert main(["serve", "--model", "m"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'bertkit[serve]'" in lines[0]
