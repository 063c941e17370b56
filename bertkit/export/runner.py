"""An exported folder run by ONNX Runtime, called like the bertkit model it came from.

    model = OnnxModel("minilm-onnx")                   # model.onnx + config.json + tokenizer + export.json
    out = model(input_ids, attention_mask)             # out.last_hidden_state, out.pooler_output (torch tensors)
    bertkit.embed(texts, model="minilm-onnx", backend="onnx")

`OnnxModel` has the torch model's call shape (ids, mask, token types in; the task's output
dataclass out), its `config`, `name_or_path`, `eval()` / `train()`, so bertkit's batching loop,
the pipelines and the task decoders use it unchanged.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.errors import BertkitError, InputFileError
from bertkit.export.graph import TASKS
from bertkit.model import outputs as output_classes
from bertkit.model.config import BertConfig
from bertkit.tokenizers import Tokenizer

GRAPH_FILE = "model.onnx"
INFO_FILE = "export.json"  # what `bertkit export onnx` did: task, opset, optimisation, int8 recipe


def require_onnx(what: str = "ONNX export") -> Any:
    """onnxruntime, or a one-line error naming the extra to install."""
    try:
        import onnxruntime  # lazy: optional extra [onnx]
    except ImportError:
        raise BertkitError(f"{what} needs onnx and onnxruntime: pip install 'bertkit[onnx]'") from None
    return onnxruntime


def read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputFileError(path, "not valid JSON; it is written by bertkit export onnx: export again") from None
    if not isinstance(info, dict):
        raise InputFileError(path, "must hold a JSON object; export again")
    return info


class OnnxModel:
    """model.onnx of an exported folder in an onnxruntime session; returns torch tensors.

    threads: onnxruntime's intra-op threads per call (default 1: bertkit's batching loop runs
    batches on several worker threads at once, which keeps short sentences' small matmuls busy).
    """

    training = False

    def __init__(self, folder: str | os.PathLike, threads: int | None = 1, device: str = "cpu"):
        ort = require_onnx("the onnx backend")
        self.folder = Path(folder)
        graph = self.folder / GRAPH_FILE
        if not graph.is_file():
            raise InputFileError(self.folder, f"no {GRAPH_FILE}; make the folder with `bertkit export onnx`")
        self.info = read_info(self.folder)
        self.config = BertConfig.from_pretrained(self.folder)
        self.name_or_path = str(self.folder)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BertkitError("device cuda: this onnxruntime has no CUDA provider; pip install onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputFileError(graph, f"onnxruntime cannot load it ({problem}); export again") from None
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.task = self.info.get("task") or _task_of(self.output_names)

    # the few nn.Module manners the batching loop relies on
    def eval(self) -> OnnxModel:
        return self

    def train(self, mode: bool = True) -> OnnxModel:
        if mode:
            raise BertkitError("an ONNX graph runs inference only; train the torch model, then export it")
        return self

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return iter(())

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32  # what the graph returns, whatever it computes inside

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        **unused: Any,
    ) -> Any:
        if output_hidden_states or output_attentions:
            raise BertkitError(
                "the onnx backend returns the last layer only; use backend='torch' for other layers or attentions"
            )
        ids = _numpy(input_ids)
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids) if attention_mask is None else _numpy(attention_mask),
            "token_type_ids": np.zeros_like(ids) if token_type_ids is None else _numpy(token_type_ids),
        }
        values = self.session.run(self.output_names, {k: v for k, v in feed.items() if k in self.input_names})
        found = {name: torch.from_numpy(v) for name, v in zip(self.output_names, values)}
        if masked_positions is not None:  # the MLM rows at [MASK] positions only, as the torch head returns
            keep = masked_positions.bool()
            found = {k: (v[keep] if v.dim() == 3 else v) for k, v in found.items()}
        return getattr(output_classes, TASKS[self.task].output_class)(**found)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.long).numpy()


def _task_of(output_names: list[str]) -> str:
    for name, task in TASKS.items():
        if tuple(output_names) == task.outputs:
            return name
    raise BertkitError(f"cannot tell the task of a graph with outputs {output_names}; export it with bertkit")


def load_onnx(model: Any, head: str = "BertModel") -> OnnxModel:
    """An exported folder (or an OnnxModel) for backend='onnx', checked against the head it must serve."""
    if isinstance(model, OnnxModel):
        runner = model
    elif isinstance(model, (str, os.PathLike)):
        runner = _opened(str(Path(model).resolve()))
    else:
        raise BertkitError("backend='onnx' needs model= a folder made by `bertkit export onnx` (or an OnnxModel)")
    exported = TASKS[runner.task].head
    if exported != head and not (head == "BertForMaskedLM" and exported == "BertForPreTraining"):
        wanted = next(name for name, task in TASKS.items() if task.head == head)
        raise BertkitError(
            f"{runner.folder}: exported for task {runner.task!r}; this needs {wanted!r}: "
            f"bertkit export onnx --task {wanted}"
        )
    return runner


@functools.lru_cache(maxsize=4)
def _opened(folder: str) -> OnnxModel:
    """A session per folder, kept for the next call (opening one reads and plans the whole graph)."""
    return OnnxModel(folder)


BACKENDS = ("torch", "onnx")


def onnx_backend(model: Any, tokenizer: Any, head: str, backend: str, dtype: Any = None) -> tuple[OnnxModel, Any]:
    """backend= of embed and the pipelines: (runner, tokenizer) for an exported folder."""
    if backend not in BACKENDS:
        raise BertkitError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if dtype not in (None, "float32", "fp32", torch.float32):
        raise BertkitError(
            f"backend='onnx' with dtype={dtype!r}: the graph's arithmetic is fixed when it is exported; "
            "drop dtype= (for int8, export with `bertkit export onnx --int8`)"
        )
    runner = load_onnx(model, head)
    if tokenizer is None:
        tokenizer = runner.folder
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = Tokenizer.from_pretrained(tokenizer)
    return runner, tokenizer
