"""Hostile input through embeddings, pipelines, predict, fill-mask and the viz commands.

Texts that are huge, empty or odd Unicode are accepted on purpose (a vector or an answer, fast);
a folder without the head a task needs, options a task does not take, devices and precisions
the machine lacks, and inputs that are folders or missing are one-line errors that write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from harness import Case

from bertkit.hardware import cpu_has_native

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"  # 32-wide, 40 positions
ODD = ["a \ud800 b", "\x00\x1b[31m red \u200d\u202e txt \ufeff", "👩\u200d👩\u200d👧 🇫🇷 ☃", "", "   ", "\u3000" * 50]


def _embed(texts):
    import bertkit

    return bertkit.embed(texts, model=FIXTURE)


def _vectors_check(count: int):
    def check(tmp, context, result) -> None:
        assert tuple(result.shape) == (count, 32) and bool(torch.isfinite(result).all())

    return check


def _lines(tmp: Path) -> Path:
    path = tmp / "in.txt"
    path.write_text("paris is a beautiful city\n", encoding="utf-8")
    return path


def _tiny(tmp: Path, head: str) -> Path:
    """A small random checkpoint with `head` and the fixture's vocabulary."""
    import shutil

    from bertkit import model as models
    from bertkit.model import BertConfig

    folder = tmp / head
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    getattr(models, head)(config).save_pretrained(folder)
    shutil.copy(FIXTURE / "vocab.txt", folder / "vocab.txt")
    return folder


def _dense_folder(tmp: Path) -> Path:
    """A sentence-transformers folder whose modules.json lists a Dense module bertkit does not run."""
    folder = tmp / "st"
    folder.mkdir()
    for f in FIXTURE.iterdir():
        (folder / f.name).symlink_to(f)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "in.txt").write_text("hello\n")
    return folder


ROWS = [
    Case(
        id="embed-huge-text",
        surface="embed()",
        fault="one text of 200,000 words (1 MB) through a 40-position model",
        run=lambda tmp, _: _embed(["word " * 200_000]),
        outcome="ok",
        check=_vectors_check(1),
        cpu_seconds=6.0,
        expected="one vector of the first 40 tokens, in linear time",
    ),
    Case(
        id="embed-empty-and-odd-unicode",
        surface="embed()",
        fault="empty and blank texts, a lone surrogate, control and bidi characters, ZWJ emoji, ideographic spaces",
        run=lambda tmp, _: _embed(ODD),
        outcome="ok",
        check=_vectors_check(len(ODD)),
        cpu_seconds=6.0,
        expected="a finite vector per text, in input order",
    ),
    Case(
        id="pipeline-without-trained-head",
        surface="pipeline('ner')",
        fault="a pretrained folder whose checkpoint has no token-classification weights",
        run=lambda tmp, _: __import__("bertkit").pipeline("ner", model=FIXTURE),
        match=r"no trained weights for BertForTokenClassification",
        cpu_seconds=6.0,
    ),
    Case(
        id="nsp-without-nsp-head",
        surface="predict nsp",
        fault="a model folder without next-sentence weights",
        setup=lambda tmp: _tiny(tmp, "BertModel"),
        argv=lambda tmp, folder: ["predict", "nsp", "--model", folder, "a", "--pair", "b"],
        match=r"no trained weights for BertForNextSentencePrediction",
        cpu_seconds=6.0,
    ),
    Case(
        id="pipeline-nonsense-option",
        surface="pipeline('fill-mask')",
        fault="an option the task does not take (temperature=3)",
        run=lambda tmp, _: __import__("bertkit").pipeline("fill-mask", model=FIXTURE, temperature=3),
        match=r"unknown option\(s\) temperature; it takes batch_size, top_k",
        cpu_seconds=6.0,
    ),
    Case(
        id="predict-top-k-for-ner",
        surface="predict ner --top-k",
        fault="--top-k for a task where it means nothing",
        argv=lambda tmp, _: ["predict", "ner", "--model", FIXTURE, "Paris", "--top-k", "3"],
        match=r"ner: top_k does not apply",
    ),
    Case(
        id="predict-input-is-a-folder",
        surface="predict --input",
        fault="--input names a folder",
        setup=lambda tmp: (tmp / "folder").mkdir(),
        argv=lambda tmp, _: ["predict", "classify", "--model", FIXTURE, "--input", tmp / "folder"],
        match=r"folder: is a folder",
    ),
    Case(
        id="embed-missing-input",
        surface="embed --input",
        fault="--input names a file that does not exist",
        argv=lambda tmp, _: ["embed", "--model", FIXTURE, "--input", tmp / "nope.txt", "--output", tmp / "v.npy"],
        match=r"nope.txt: no such file",
    ),
    Case(
        id="embed-output-is-a-folder",
        surface="embed --output",
        fault="--output names an existing folder ending in .npy",
        setup=lambda tmp: (_lines(tmp), (tmp / "v.npy").mkdir()),
        argv=lambda tmp, _: ["embed", "--model", FIXTURE, "--input", tmp / "in.txt", "--output", tmp / "v.npy"],
        match=r"is a folder",
    ),
    Case(
        id="embed-unsupported-st-module",
        surface="embed (sentence-transformers folder)",
        fault="modules.json lists a Dense module",
        setup=_dense_folder,
        argv=lambda tmp, folder: ["embed", "--model", folder, "--input", folder / "in.txt", "--output", tmp / "v.npy"],
        match=r"modules.json: module sentence_transformers.models.Dense \(2_Dense\) is not one bertkit runs",
        cpu_seconds=6.0,
    ),
    Case(
        id="embed-emulated-or-absent-hardware",
        surface="embed --precision / --device",
        fault="fp16 arithmetic on a CPU without AMX-FP16, or a CUDA device index that does not exist",
        setup=_lines,
        argv=lambda tmp, path: (
            ["embed", "--model", FIXTURE, "--input", path, "--output", tmp / "v.npy"]
            + (["--device", "cuda:64"] if torch.cuda.is_available() else ["--precision", "fp16", "--device", "cpu"])
        ),
        match=r"CUDA device|fp16",
    ),
    Case(
        id="attention-emulated-or-absent-hardware",
        surface="attention --precision / --device",
        fault="fp16 arithmetic on a CPU that would emulate it, or a device the host lacks",
        argv=lambda tmp, _: (
            ["attention", "--model", FIXTURE, "Paris", "--out", tmp / "a.png"]
            + (["--precision", "fp16", "--device", "cpu"] if not cpu_has_native("fp16") else ["--device", "cuda:64"])
        ),
        match=r"CUDA|fp16",
    ),
    Case(
        id="embed-misspelt-loading-option",
        surface="embed()",
        fault="a misspelt hub option (revison='main')",
        run=lambda tmp, _: __import__("bertkit").embed(["x"], model=FIXTURE, revison="main"),
        match=r"unknown loading option\(s\) \['revison'\]; use revision",
    ),
    Case(
        id="onnx-backend-on-a-gpu",
        surface="embed(backend='onnx', device='cuda')",
        fault="a GPU asked for the onnx backend, which runs on the CPU",
        run=lambda tmp, _: __import__("bertkit").embed(["x"], model=tmp, backend="onnx", device="cuda"),
        match=r"no CUDA GPU|backend='onnx' runs on the CPU",
    ),
    Case(
        id="fill-mask-without-mask",
        surface="fill-mask",
        fault="a sentence with no [MASK]",
        argv=lambda tmp, _: ["fill-mask", "--model", FIXTURE, "no mask here"],
        match=r"has no \[MASK\]",
    ),
    Case(
        id="qa-blank-context",
        surface="pipeline('qa')",
        fault="a question with a context of spaces only",
        setup=lambda tmp: _tiny(tmp, "BertForQuestionAnswering"),
        run=lambda tmp, folder: __import__("bertkit").pipeline("qa", model=folder)(question="who?", context="   "),
        match=r"qa: input 0 needs a non-empty 'question' and 'context'",
        cpu_seconds=6.0,
    ),
    Case(
        id="qa-without-head",
        surface="predict qa",
        fault="a pretrained folder without question-answering weights",
        argv=lambda tmp, _: ["predict", "qa", "--model", FIXTURE, "who?", "--context", "Paris is a city."],
        match=r"no trained weights for BertForQuestionAnswering",
        cpu_seconds=6.0,
    ),
]
