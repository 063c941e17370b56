"""`bertkit export onnx`: a model folder -> a folder ONNX Runtime serves (graph, config, tokenizer).

    bertkit.export_onnx("out/sst2", "sst2-onnx")                           # task from finetune.json
    bertkit.export_onnx(MINILM, "minilm-onnx", task="embed", optimize=True, int8=True)

The output folder holds model.onnx, config.json, the tokenizer files, finetune.json when the
source has one (the pipelines read its settings), a sentence-transformers folder's description
(modules.json, pooling, normalization, prompts: `embed` pools the graph's output as the source
folder says), and export.json: the task, opset, the fusions
ONNX Runtime's transformer optimizer made, and which int8 recipe was kept with its cosine.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from bertkit.constants import FINETUNE_SETTINGS_FILE
from bertkit.data.python_docs import python_doc_texts
from bertkit.errors import BertkitError, InputFileError
from bertkit.export.graph import OPSETS, TASKS, export_graph, quiet_exporters, task_for
from bertkit.export.int8 import choose_int8
from bertkit.export.runner import GRAPH_FILE, INFO_FILE, require_onnx
from bertkit.files import atomic_path, atomic_write_json, require_new_folder
from bertkit.hub import resolve_folder
from bertkit.loading import load_folder, load_settings
from bertkit.log import get_logger
from bertkit.sentence_folder import read_modules, recipe_folder

logger = get_logger(__name__)

CALIBRATION_TEXTS = 256
CALIBRATION_MAX_SEQ_LEN = 128


def export_onnx(
    model: str | os.PathLike,
    out: str | os.PathLike,
    task: str | None = None,
    opset: int = 17,
    optimize: bool = False,
    int8: bool = False,
    calibration: Sequence[str] | str | os.PathLike | None = None,
    overwrite: bool = False,
    **hub: Any,
) -> dict[str, Any]:
    """Export a model folder (or hub name) for `task`; returns what export.json records.

    task: embed, classify, ner, qa, fill-mask or pretraining (default: the task the folder was
    fine-tuned for, else embed). optimize: ONNX Runtime's transformer optimizer (fused LayerNorm,
    bias + GELU, ...). int8: ONNX Runtime's dynamic quantization or bertkit's calibrated recipe,
    whichever keeps cosine >= 0.99 to float32 on `calibration` texts (a list, or a text file with
    one text per line; default: English prose from Python's own documentation).
    """
    require_onnx()
    if opset not in OPSETS:
        raise BertkitError(f"--opset {opset}: choose one of {OPSETS.start}..{OPSETS.stop - 1}")
    out = require_new_folder(out, "--out", overwrite)
    texts = calibration_texts(calibration) if int8 else []
    folder = resolve_folder(model, **hub)
    settings = load_settings(folder)
    task = task_for(task, settings)
    torch_model, tokenizer, _ = load_folder(folder, TASKS[task].head, require_head=task != "embed")
    config = torch_model.config
    info: dict[str, Any] = {"task": task, "outputs": list(TASKS[task].outputs), "opset": opset, "source": str(model)}
    with tempfile.TemporaryDirectory(prefix="bertkit-export-") as tmp:
        work = Path(tmp)
        graph = work / "float.onnx"
        logger.info("exporting %s for %s (opset %d)", folder, task, opset)
        export_graph(torch_model, task, graph, opset)

        def optimized(src: Path, dst: Path) -> dict[str, int]:
            return optimize_graph(src, dst, config.num_attention_heads, config.hidden_size)

        final, fusions = graph, {}
        if int8:
            batches = calibration_batches(tokenizer, texts)
            choice = choose_int8(graph, work, torch_model, batches, task, opset, optimized if optimize else None)
            final, fusions = choice.path, choice.fusions
            info.update(int8=choice.recipe, int8_worst_cosine=choice.worst_cosine, float_layers=choice.float_layers)
            kept = choice.worst_cosine[choice.recipe]
            logger.info("int8: kept the %s recipe (worst cosine %.4f)", choice.recipe, kept)
        elif optimize:
            final = work / "optimized.onnx"
            fusions = optimized(graph, final)
        info.update(optimized=optimize, fusions=fusions)
        write_folder(out, final, config, tokenizer, settings, info, TASKS[task].head)
        copy_sentence_recipe(folder, out)
    logger.info("wrote %s", out / GRAPH_FILE)
    return info


def optimize_graph(src: Path, dst: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """ONNX Runtime's transformer optimizer (model_type "bert"); returns the fused operator counts."""
    from onnxruntime.transformers import optimizer  # lazy: optional extra [onnx]

    with quiet_exporters(root=True):
        optimized = optimizer.optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
        optimized.save_model_to_file(str(dst))
    return {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}


def write_folder(out: Path, graph: Path, config: Any, tokenizer: Any, settings: dict, info: dict, head: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _copy(graph, out / GRAPH_FILE)
    config.save_pretrained(out, architectures=[head])
    tokenizer.save(out)
    if settings:
        atomic_write_json(out / FINETUNE_SETTINGS_FILE, settings)
    atomic_write_json(out / INFO_FILE, info)


SENTENCE_FILES = ("config_sentence_transformers.json",)  # beside modules.json; module folders are read from it


def copy_sentence_recipe(source: Path, out: Path) -> None:
    """The files that say how a sentence-transformers folder pools and normalizes, copied beside the
    graph. The Transformer module's own files (its sentence_bert_config.json) move to the top level,
    where the graph's config.json is, so modules.json there names the top level as its path."""
    recipe = recipe_folder(source)
    if recipe is None:
        return
    source, modules = recipe, read_modules(recipe)
    for module in modules:
        sub = str(module.get("path") or "")
        if str(module.get("type", "")).endswith("Transformer"):
            if (source / sub / "sentence_bert_config.json").is_file():
                _copy(source / sub / "sentence_bert_config.json", out / "sentence_bert_config.json")
            module["path"] = ""
        elif sub and (source / sub).is_dir():
            (out / sub).mkdir(parents=True, exist_ok=True)
            for item in (source / sub).glob("*.json"):
                _copy(item, out / sub / item.name)
    for name in SENTENCE_FILES:
        if (source / name).is_file():
            _copy(source / name, out / name)
    atomic_write_json(out / "modules.json", modules)


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def calibration_texts(source: Sequence[str] | str | os.PathLike | None) -> list[str]:
    """The texts int8 is calibrated and checked on: given, read from a file, or Python's own docs."""
    if source is None:
        return python_doc_sentences(CALIBRATION_TEXTS)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputFileError(path, "calibration file not found (give a UTF-8 text file, one text per line)")
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        texts = [t for t in source if isinstance(t, str) and t.strip()]
    if not texts:
        raise BertkitError("--calibration: no texts found; give real sentences, one per line")
    return texts[:CALIBRATION_TEXTS]


def python_doc_sentences(n: int) -> list[str]:
    """Prose paragraphs of the standard library's documentation (every Python install has them)."""
    prose = re.compile(r"^[A-Z][^=*|]{60,}\.$")
    found = []
    for _, text in python_doc_texts(1_000_000):
        found += [p for p in (" ".join(block.split()) for block in text.split("\n\n")) if prose.match(p)]
        if len(found) >= n:
            break
    return found[:n]


def calibration_batches(tokenizer: Any, texts: Sequence[str], batch_size: int = 32) -> list[dict]:
    """Padded batches (the three graph inputs) of the calibration texts."""
    encoded = tokenizer(list(texts), truncation=True, max_length=CALIBRATION_MAX_SEQ_LEN)
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    batches = []
    for b in range(0, len(ids), batch_size):
        rows = [torch.tensor(r, dtype=torch.long) for r in ids[b : b + batch_size]]
        batches.append(
            {
                "input_ids": pad_sequence(rows, batch_first=True),
                "attention_mask": pad_sequence([torch.ones_like(r) for r in rows], batch_first=True),
                "token_type_ids": pad_sequence(
                    [torch.tensor(t, dtype=torch.long) for t in types[b : b + batch_size]], batch_first=True
                ),
            }
        )
    return batches
