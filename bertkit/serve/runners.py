"""What the forward threads run: a model folder behind bertkit's own public inference calls.

`EmbedRunner` answers with `bertkit.embed` (so the server returns exactly what the library does
in process, on either backend), `PipelineRunner` with `bertkit.pipeline(task)`. Both measure an
input in tokens before it is queued (the batch budget and the too-long check use it) and run a
warm-up batch at start, which is also where dtype="int8" calibrates its scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from bertkit.errors import BertkitError
from bertkit.hardware import resolve_device
from bertkit.inference import embed, pad, pool, prepare, tokenize
from bertkit.inference.batches import calibration_batches
from bertkit.inference.runtime import load
from bertkit.loading import load_folder
from bertkit.log import get_logger
from bertkit.model.fast_paths import fast_inference
from bertkit.pipelines import pipeline
from bertkit.serve.settings import ServeSettings

logger = get_logger(__name__)

# Varied English for the warm-up forward (and int8's calibration): short and long, with digits,
# punctuation and names, so that activation ranges are not measured on one kind of text.
WARMUP_TEXTS = (
    "The cat sat on the mat.",
    "A gripping, funny film with a terrible ending that nobody saw coming.",
    "Paris is the capital and most populous city of France, with 2,102,650 residents in January 2023.",
    "How do I reset my password if I no longer have access to the e-mail address on my account?",
    "not bad",
    "The mitochondria is the powerhouse of the cell; it produces ATP through oxidative phosphorylation.",
    "She sold 37 paintings in 1998, then moved to Lisbon and never painted again.",
    "Error 404: the page you requested could not be found on this server.",
    "Stocks fell 3.2% on Tuesday after the central bank raised interest rates by half a point.",
    "I loved it!!! Best concert ever :)",
    "Quantum computers use qubits, which can be in a superposition of states.",
    "Turn left at the second light, then keep going until you see the old church.",
    "The committee will meet again on March 14 to review the proposal and vote.",
    "what is the boiling point of water at high altitude",
    "Shakespeare wrote 39 plays, 154 sonnets and several longer poems.",
    "This product broke after two days. Do not buy.",
)


def _torch_threads_for(workers: int) -> None:
    """In a forward thread: with several forward threads, each uses one CPU thread of its own."""
    if workers > 1:
        torch.set_num_threads(1)


class EmbedRunner:
    """Sentence vectors as `bertkit.embed` computes them; rows come back as float32 tensors [H].

    On the torch backend the forward skips the padding (`skip_padding=True`: every Linear, GELU
    and LayerNorm runs on the real tokens only). `bertkit.embed` sorts a whole corpus by length,
    so its batches hardly pad; a server's batch is whatever arrived together, and padding it to
    its longest sentence would multiply the work on short ones. The vectors are the same.
    """

    task = "embed"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._embed = embed
        self._runner: torch.nn.Module | None = None  # the prepared (dtype-converted) model, made at warm-up
        # the served model never changes once prepared: one fast_inference scope for the server's
        # life checks its weights once, not at every forward of every thread
        self._scope = object()
        if settings.backend == "torch":
            model, self.tokenizer, _ = load_folder(settings.model, "BertModel")
            self.device = resolve_device(settings.device)
            self.model = model.to(self.device).eval()
            config = self.model.config
        else:
            self.model, self.tokenizer, config, self.device = _onnx_parts(settings)
        self.dims = config.hidden_size
        self.max_tokens = config.max_position_embeddings
        self.workers = settings.workers or _default_workers(self.device)

    def measure(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the model would see it untruncated (with [CLS] and [SEP])."""
        return [len(ids) for ids in self.tokenizer(list(texts), padding=False, truncation=False)["input_ids"]]

    def run(self, texts: list[str], key: tuple = ()) -> list[torch.Tensor]:
        if self._runner is None:  # the onnx backend: bertkit.embed does it all
            options: dict[str, Any] = {"backend": self.settings.backend, "dtype": self.settings.dtype}
            vectors = self._embed(
                texts,
                model=self.model,
                tokenizer=self.tokenizer,
                pooling=self.settings.pooling,
                batch_size=len(texts),
                max_length=self.max_tokens,
                **options,
            )
            return list(vectors)
        return list(self._forward(self._runner, texts))

    def _forward(self, model: torch.nn.Module, texts: list[str]) -> torch.Tensor:
        encoded = tokenize(self.tokenizer, texts, self.max_tokens)
        ids, types = encoded["input_ids"], encoded["token_type_ids"]
        input_ids = pad(ids, self.model.config.pad_token_id).to(self.device)  # [B, T]
        mask = pad([[1] * len(r) for r in ids], 0).to(self.device)  # [B, T]
        token_types = pad(types, 0).to(self.device) if any(any(t) for t in types) else None
        # fast_inference: the CPU fast paths bertkit.embed's batching loop takes (oneDNN projections,
        # int8's fused C passes, the C attention on one thread)
        with torch.inference_mode(), fast_inference(self._scope):
            hidden = model(input_ids, mask, token_types, skip_padding=True).last_hidden_state  # [B, T, H]
            return pool(hidden, mask, self.settings.pooling).cpu()  # [B, H] float32

    def thread_start(self) -> None:
        _torch_threads_for(self.workers)

    def warm_up(self) -> None:
        """Convert the model to the asked dtype (int8 calibrates on WARMUP_TEXTS) and run it once."""
        if self.settings.backend == "torch":
            calibration = None
            if self.settings.dtype == "int8":
                calibration = calibration_batches(tokenize(self.tokenizer, list(WARMUP_TEXTS), self.max_tokens))
            self._runner = prepare(self.model, self.settings.dtype, calibration)
        self.run(list(WARMUP_TEXTS))

    def info(self) -> dict[str, Any]:
        return {"dims": self.dims, "pooling": self.settings.pooling, "max_input_tokens": self.max_tokens}


class PipelineRunner:
    """A task's pipeline output per input (classify, nli, ner, qa, fill-mask)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.task = settings.task
        options: dict[str, Any] = {}
        if settings.backend != "torch":
            options["backend"] = settings.backend
        if settings.dtype not in ("fp32", "float32"):
            options["dtype"] = settings.dtype
        try:
            self.pipe = pipeline(settings.task, model=settings.model, **options)
        except TypeError as err:
            if "unexpected keyword" not in str(err):
                raise
            given = ", ".join(f"--{k.replace('dtype', 'precision')} {v}" for k, v in options.items())
            raise BertkitError(
                f"{given}: bertkit.pipeline({settings.task!r}) runs torch float32 only in this version; "
                "leave the flag out (or serve an embedding model with --task embed)"
            ) from None
        self.device = resolve_device(settings.device)
        if settings.backend == "torch":
            self.pipe.model.to(self.device)
        self.tokenizer = self.pipe.tokenizer
        config = self.pipe.model.config
        self.max_tokens = config.max_position_embeddings
        self.labels = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else None
        self.workers = settings.workers or _default_workers(self.device)

    @property
    def windowed(self) -> bool:
        """qa and ner cut long inputs into overlapping windows: any length is answered whole."""
        return self.task in ("qa", "ner")

    def measure(self, inputs: Sequence[Any]) -> list[int]:
        firsts, seconds = zip(*(_parts(x) for x in inputs))
        pairs = None if all(s is None for s in seconds) else [s or "" for s in seconds]
        return [len(ids) for ids in self.tokenizer(list(firsts), pairs, padding=False, truncation=False)["input_ids"]]

    def run(self, inputs: list[Any], key: tuple = ()) -> list[Any]:
        options = dict(key) if key else {}
        return list(self.pipe(list(inputs), batch_size=len(inputs), **options))

    def thread_start(self) -> None:
        _torch_threads_for(self.workers)

    def warm_up(self) -> None:
        samples: dict[str, list[Any]] = {
            "classify": ["a gripping, funny film"],
            "nli": [("A man plays a guitar.", "A person makes music.")],
            "ner": ["Jeremy lives in Paris and works for the BBC."],
            "qa": [{"question": "Where does Jeremy live?", "context": "Jeremy lives in Paris."}],
            "fill-mask": ["Paris is a beautiful [MASK]."],
        }
        self.run(samples[self.task])

    def info(self) -> dict[str, Any]:
        return {"labels": self.labels, "max_input_tokens": self.max_tokens}


def _parts(x: Any) -> tuple[str, str | None]:
    """(first text, second text or None) of a validated /predict input."""
    if isinstance(x, str):
        return x, None
    if isinstance(x, dict):
        return x["question"], x["context"]
    return x[0], x[1]


def _default_workers(device: torch.device) -> int:
    # Small forwards scale poorly across CPU threads and independent ones almost perfectly (see
    # bertkit.inference.for_each_batch); an accelerator is kept busy by one stream of batches.
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


def _onnx_parts(settings: ServeSettings) -> tuple[Any, Any, Any, torch.device]:
    """(the exported graph's runner, tokenizer, config, device) for embed(..., backend="onnx"):
    loaded and checked (CPU only, a local export) as bertkit.embed loads it."""
    runner, tokenizer = load(settings.model, backend=settings.backend, device=settings.device)
    return runner, tokenizer, runner.config, torch.device("cpu")


def build_runner(settings: ServeSettings) -> EmbedRunner | PipelineRunner:
    """The runner for settings.task, loaded and warmed up."""
    runner: EmbedRunner | PipelineRunner
    runner = EmbedRunner(settings) if settings.task == "embed" else PipelineRunner(settings)
    runner.warm_up()
    logger.info(f"loaded {settings.model} for {settings.task} ({settings.backend}, {settings.dtype}, {runner.device})")
    return runner
