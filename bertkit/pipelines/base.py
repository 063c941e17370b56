"""What every pipeline shares: the loaded folder, where it runs, in which arithmetic, and its options.

A pipeline is built once (`bertkit.pipeline(task, model=...)`) and called many times. Options a
call takes can also be given when building it, as in Hugging Face (`pipeline("ner",
aggregation_strategy="simple")`); an option a task does not take is a one-line error naming the
ones it does, never a TypeError from deep inside.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from bertkit.errors import BertkitError
from bertkit.export.runner import onnx_backend
from bertkit.inference.batches import calibration_batches
from bertkit.inference.runtime import check_dtype, check_onnx_options, dtype_kind, prepare, target_device
from bertkit.loading import HUB_OPTIONS, load_folder, load_settings

UNSET: Any = object()  # "not given", where None is a meaningful value (HF's top_k=None: every label)


class Pipeline:
    """A model folder (or a loaded model plus its tokenizer) as a callable for one task."""

    head: ClassVar[str] = "BertModel"
    require_head: ClassVar[bool] = True  # refuse a checkpoint without trained weights for the head
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32}
    why_not: ClassVar[dict[str, str]] = {}  # option -> why this task refuses it

    def __init__(
        self,
        task: str,
        model: Any,
        tokenizer: Any = None,
        *,
        device: Any = None,
        dtype: Any = None,
        max_seq_len: int | None = None,
        max_length: int | None = None,
        backend: str = "torch",
        **options: Any,
    ) -> None:
        hub = {k: options.pop(k) for k in HUB_OPTIONS if k in options}
        self.model: Any  # a bertkit model (torch) or an OnnxModel (onnx): both called the same way
        self.task = task
        self.defaults = self.check_options(options)
        # every refusal before the (slow) load: options, then the device and arithmetic asked for
        onnx = backend != "torch"  # an exported folder run by onnxruntime, called like the torch model
        given = model if isinstance(model, torch.nn.Module) else None
        self.device = check_onnx_options(device, hub) if onnx else target_device(given, device)
        self.dtype = dtype_kind(dtype)
        check_dtype(self.dtype, self.device)
        if onnx:
            self.model, self.tokenizer = onnx_backend(model, tokenizer, self.head, backend, dtype)
            self.settings = load_settings(self.model.folder)
        else:
            with _quiet_checkpoint_log(self.require_head):
                self.model, self.tokenizer, self.settings = load_folder(
                    model, self.head, tokenizer, require_head=self.require_head, **hub
                )
            self.model.to(self.device).eval()  # a pipeline owns where its model runs, as in Hugging Face
        limit = int(self.model.config.max_position_embeddings)
        saved = self.settings.get("max_seq_len") or self.settings.get("max_len")
        self.asked_max_seq_len = max_seq_len or max_length  # None: the folder's own limit
        self.max_seq_len = min(self.asked_max_seq_len or saved or limit, limit)

    # ----------------------------------------------------------------------------------- options
    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """`options` if this task takes them all, else a one-line error."""
        for name in options:
            if name in self.why_not:
                raise BertkitError(f"{self.task}: {name} {self.why_not[name]}")
        unknown = sorted(set(options) - set(self.call_options))
        if unknown:
            takes = ", ".join(sorted(self.call_options)) or "no options"
            raise BertkitError(f"pipeline {self.task!r}: unknown option(s) {', '.join(unknown)}; it takes {takes}")
        if "batch_size" in options and (not isinstance(options["batch_size"], int) or options["batch_size"] < 1):
            raise BertkitError(f"{self.task}: batch_size must be an integer >= 1, got {options['batch_size']!r}")
        if options.get("top_k") not in (None, UNSET) and (
            not isinstance(options["top_k"], int) or options["top_k"] < 1
        ):
            raise BertkitError(f"{self.task}: top_k must be an integer >= 1, got {options['top_k']!r}")
        return dict(options)

    def runner(self, features: Sequence[dict]) -> torch.nn.Module:
        """The module to run: the model, or its converted copy for bf16/fp16/int8 (made once)."""
        calibration = None
        if self.dtype == "int8":
            calibration = calibration_batches({"input_ids": [f["input_ids"] for f in features]})
        return prepare(self.model, self.dtype, calibration, self.device)

    # ------------------------------------------------------------------------------------ calling
    def __call__(self, inputs: Any = None, **options: Any) -> Any:
        if inputs is None:
            raise BertkitError(f"{self.task}: give the input(s) to run on")
        settings = {**self.call_options, **self.defaults, **self.check_options(options)}
        if isinstance(inputs, list) and not inputs:
            return []
        single = not isinstance(inputs, list)
        results = self.run([inputs] if single else inputs, settings)
        return self.single(inputs, results[0], settings) if single else results

    def single(self, given: Any, result: Any, options: dict[str, Any]) -> Any:
        """The answer to one (non-list) input; Hugging Face's text-classification wraps it in a list."""
        return result

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        raise NotImplementedError


_LOADER_PACKAGES = ("checkpoint", "model")  # where the notes about missing / unused weights come from


class _LoaderNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not set(_LOADER_PACKAGES) & set(Path(record.pathname).parts)


@contextlib.contextmanager
def _quiet_checkpoint_log(quiet: bool) -> Iterator[None]:
    """While loading a head that is checked anyway, the loader's notes about missing or unused
    weights would only repeat the one-line refusal (or list weights the task never uses)."""
    if not quiet:
        yield
        return
    root, notes = logging.getLogger("bertkit"), _LoaderNotes()
    packages = [logging.getLogger(f"bertkit.{name}") for name in _LOADER_PACKAGES]
    levels = [p.level for p in packages]
    root.addFilter(notes)  # records logged on "bertkit" itself
    for package in packages:
        package.setLevel(logging.ERROR)  # records logged on "bertkit.model.*" / "bertkit.checkpoint.*"
    try:
        yield
    finally:
        root.removeFilter(notes)
        for package, level in zip(packages, levels):
            package.setLevel(level)


def text_pair(task: str, x: Any, pairs: bool | None) -> tuple[str, str | None]:
    """One input as (text, text_pair): a string, a (text, pair) tuple/list, or a dict with
    text/text_pair (premise/hypothesis for nli). pairs=True requires a pair, False forbids one."""
    if isinstance(x, str):
        if pairs:
            raise BertkitError(f"{task}: give (first, second) sentence pairs, not single strings")
        return x, None
    if isinstance(x, dict):
        keys = ("premise", "hypothesis") if "premise" in x else ("text", "text_pair")
        if keys[0] not in x:
            raise BertkitError(f"{task}: a dict input needs 'text' (and 'text_pair') or 'premise' and 'hypothesis'")
        first, second = x[keys[0]], x.get(keys[1])
    elif isinstance(x, (tuple, list)) and len(x) == 2:
        first, second = x
    else:
        raise BertkitError(f"{task}: cannot read input {x!r}; give a string or a (text, text_pair) pair")
    if not isinstance(first, str) or not (second is None or isinstance(second, str)):
        raise BertkitError(f"{task}: the sentences must be strings, got {x!r}")
    if pairs and second is None:
        raise BertkitError(f"{task}: give (first, second) sentence pairs, not single strings")
    return first, second
