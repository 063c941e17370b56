"""Hostile inputs to the ONNX export and the onnx backend: one-line errors, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import Case

FIXTURE_VOCAB = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny" / "vocab.txt"


def _tiny_config():
    from bertkit.model import BertConfig

    return BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def _model_folder(tmp: Path) -> Path:
    """A tiny model folder to export, and a non-empty folder beside it."""
    from bertkit import BertModel

    BertModel(_tiny_config()).save_pretrained(tmp / "model")
    shutil.copy(FIXTURE_VOCAB, tmp / "model" / "vocab.txt")
    (tmp / "full").mkdir()
    (tmp / "full" / "notes.txt").write_text("keep me\n")
    return tmp / "model"


def _exported_folder(graph: bytes, info: str | None = None):
    """An "exported" folder whose model.onnx (and export.json) hold the given bytes."""

    def setup(tmp: Path) -> Path:
        folder = tmp / "exported"
        _tiny_config().save_pretrained(folder)
        shutil.copy(FIXTURE_VOCAB, folder / "vocab.txt")
        if graph:
            (folder / "model.onnx").write_bytes(graph)
        if info is not None:
            (folder / "export.json").write_text(info)
        return folder

    return setup


def _embed_onnx(folder: Path, backend: str = "onnx"):
    import bertkit

    return bertkit.embed(["a sentence"], model=folder, backend=backend)


def _export_argv(*extra: str):
    return lambda tmp, model: ["export", "onnx", "--model", model, "--out", tmp / "out", *extra]


ROWS = [
    Case(
        id="export-out-not-empty",
        surface="export onnx --out",
        fault="--out is a folder holding a file",
        setup=_model_folder,
        argv=lambda tmp, model: ["export", "onnx", "--model", model, "--out", tmp / "full"],
        match=r"not empty.*--overwrite",
    ),
    Case(
        id="export-out-is-a-file",
        surface="export onnx --out",
        fault="--out names an existing file",
        setup=_model_folder,
        argv=lambda tmp, model: ["export", "onnx", "--model", model, "--out", tmp / "full" / "notes.txt"],
        match=r"is a file",
    ),
    Case(
        id="export-opset-unknown",
        surface="export onnx --opset",
        fault="--opset 9 (older than the exporter writes)",
        setup=_model_folder,
        argv=_export_argv("--opset", "9"),
        match=r"--opset 9: choose one of 17\.\.23",
    ),
    Case(
        id="export-calibration-missing",
        surface="export onnx --calibration",
        fault="--calibration names a file that does not exist",
        setup=_model_folder,
        argv=_export_argv("--int8", "--calibration", "/nonexistent/calibration.txt"),
        match=r"calibration file not found",
    ),
    Case(
        id="export-calibration-blank",
        surface="export onnx --calibration",
        fault="a calibration file of blank lines",
        setup=lambda tmp: (_model_folder(tmp), (tmp / "blank.txt").write_text("\n  \n\n"))[0],
        argv=lambda tmp, model: _export_argv("--int8", "--calibration", tmp / "blank.txt")(tmp, model),
        match=r"no texts found",
    ),
    Case(
        id="onnx-backend-no-graph",
        surface="embed(backend='onnx')",
        fault="a model folder without model.onnx (never exported)",
        setup=_exported_folder(b""),
        run=lambda tmp, folder: _embed_onnx(folder),
        match=r"no model\.onnx.*bertkit export onnx",
        cpu_seconds=3.0,
    ),
    Case(
        id="onnx-backend-garbage-graph",
        surface="embed(backend='onnx')",
        fault="model.onnx holds random bytes",
        setup=_exported_folder(b"\x08\x07garbage, not a protobuf graph" * 10),
        run=lambda tmp, folder: _embed_onnx(folder),
        match=r"model\.onnx: onnxruntime cannot load it",
        cpu_seconds=3.0,
    ),
    Case(
        id="onnx-backend-export-json-broken",
        surface="embed(backend='onnx')",
        fault="export.json is not JSON",
        setup=_exported_folder(b"x", info="{task: embed"),
        run=lambda tmp, folder: _embed_onnx(folder),
        match=r"export\.json: not valid JSON",
        cpu_seconds=3.0,
    ),
    Case(
        id="onnx-backend-unknown",
        surface="embed(backend=)",
        fault="backend='tensorrt'",
        setup=_exported_folder(b"x"),
        run=lambda tmp, folder: _embed_onnx(folder, backend="tensorrt"),
        match=r"backend 'tensorrt' is not one of torch, onnx",
        cpu_seconds=3.0,
    ),
]
