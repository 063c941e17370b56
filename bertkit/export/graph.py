"""A bertkit model (with its task head) -> an ONNX graph with dynamic batch and sequence axes.

The graph takes `input_ids`, `attention_mask` and `token_type_ids` (int64, [batch, sequence]) and
returns the head's outputs under Hugging Face's names. It is recorded by torch.onnx's exporter
(torch.export underneath): every data-dependent shortcut of the eager model (the no-padding mask
skip, the short-input attention path, the input checks) is switched off while tracing, so one
graph serves every batch size and length up to max_position_embeddings.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertkit.errors import BertkitError
from bertkit.log import get_logger

logger = get_logger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSETS = range(17, 24)  # what torch.onnx writes and onnxruntime runs


@dataclass(frozen=True)
class Task:
    head: str  # the bertkit.model class that runs it
    outputs: tuple[str, ...]  # graph outputs, named as in Hugging Face
    output_class: str  # the bertkit.model.outputs dataclass the runner returns


TASKS: dict[str, Task] = {
    "embed": Task("BertModel", ("last_hidden_state", "pooler_output"), "BaseModelOutputWithPooling"),
    "classify": Task("BertForSequenceClassification", ("logits",), "SequenceClassifierOutput"),
    "ner": Task("BertForTokenClassification", ("logits",), "TokenClassifierOutput"),
    "qa": Task("BertForQuestionAnswering", ("start_logits", "end_logits"), "QuestionAnsweringModelOutput"),
    "fill-mask": Task("BertForMaskedLM", ("logits",), "MaskedLMOutput"),
    "pretraining": Task(
        "BertForPreTraining", ("prediction_logits", "seq_relationship_logits"), "BertForPreTrainingOutput"
    ),
}
# what `bertkit finetune` records in finetune.json -> the export task
FINETUNED = {"classify": "classify", "nli": "classify", "sentiment": "classify", "ner": "ner", "qa": "qa"}


def task_for(name: str | None, settings: dict[str, Any]) -> str:
    """The task asked for, else the one the folder was fine-tuned for, else embed."""
    if name is None:
        return FINETUNED.get(str(settings.get("task")), "embed")
    if name not in TASKS:
        raise BertkitError(f"--task {name!r} is not one of {', '.join(TASKS)}")
    return name


class TaskGraph(nn.Module):
    """The module torch.onnx records: three id tensors in, the task's named outputs out (a tuple)."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model = model
        self.outputs = TASKS[task].outputs

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return tuple(getattr(out, name) for name in self.outputs)


def example_inputs(config: Any) -> tuple[torch.Tensor, ...]:
    """A padded batch of 2 x 8 tokens: padding present, so the mask is recorded in the graph."""
    ids = torch.full((2, 8), min(5, config.vocab_size - 1), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask, torch.zeros_like(ids)


@contextlib.contextmanager
def quiet_exporters(root: bool = False) -> Iterator[None]:
    """Keep the exporters' and quantizers' chatter (warnings about their own internals, progress
    lines) off the user's console; with root=True also messages sent to the root logger."""
    names = ["torch.onnx", "torch.export", "onnxscript", "onnx_ir", "onnxruntime"] + ([""] if root else [])
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    guard = logging.NullHandler()  # a root handler stops logging.warning() from calling basicConfig()
    logging.getLogger().addHandler(guard)
    chatter = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        logging.getLogger().removeHandler(guard)
        if chatter.getvalue().strip():
            logger.debug("exporter output: %s", chatter.getvalue().strip())


def export_graph(model: nn.Module, task: str, path: Path, opset: int = 17) -> None:
    """Record `model` (eval mode, float32) as an ONNX file at `path`."""
    if opset not in OPSETS:
        raise BertkitError(f"--opset {opset}: choose one of {OPSETS.start}..{OPSETS.stop - 1}")
    graph = TaskGraph(model.float().eval(), task).eval()
    config: Any = getattr(model, "config")  # noqa: B009 (an nn.Module attribute mypy cannot see)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=config.max_position_embeddings)
    axes = {name: {0: batch, 1: sequence} for name in INPUTS}
    with quiet_exporters(), torch.no_grad():
        program = torch.onnx.export(
            graph,
            example_inputs(config),
            dynamo=True,
            opset_version=opset,
            input_names=list(INPUTS),
            output_names=list(TASKS[task].outputs),
            dynamic_shapes=axes,
            verbose=False,
        )
        if program is None:
            raise BertkitError("torch.onnx.export returned no program; update torch")
        program.save(str(path))
