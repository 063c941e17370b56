"""The fine-tuning recipe: every setting of a run, its help text, and each task's defaults, written once.

`FinetuneSettings` holds every knob of `bertkit.finetune` (the CLI's flags are generated from its
fields: name, type, default and help). Settings left at None take the task's recipe
(`RECIPES`): batch size, learning rate, epochs, sequence length and QA stride chosen so that the
defaults alone learn each task (the figures are in docs/finetuning.md). `from_file` reads a
settings file (`--config-file run.json`), refusing unknown names in one line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertkit.constants import DEFAULT_SEED
from bertkit.errors import BertkitError, InputFileError
from bertkit.settings import setting

# Each task's defaults for the settings left at None, chosen on the validation splits with the
# packaged all-MiniLM-L6-v2 (docs/finetuning.md has the runs). NLI, NER and QA take twice the usual
# 5e-5: with a few thousand examples each, every epoch scored better at 1e-4 (its vectors were
# trained for sentence similarity, not for these tasks' decisions); QA also takes a smaller batch
# (twice the steps). SST-2, with seven times the steps, reaches its bar at 5e-5.
RECIPES: dict[str, dict[str, Any]] = {
    "classify": {"batch_size": 32, "lr": 5e-5, "epochs": 3.0, "max_seq_len": 128, "doc_stride": 128},
    "nli": {"batch_size": 32, "lr": 1e-4, "epochs": 3.0, "max_seq_len": 128, "doc_stride": 128},
    "regress": {"batch_size": 32, "lr": 5e-5, "epochs": 3.0, "max_seq_len": 128, "doc_stride": 128},
    "multilabel": {"batch_size": 32, "lr": 5e-5, "epochs": 3.0, "max_seq_len": 128, "doc_stride": 128},
    "ner": {"batch_size": 32, "lr": 1e-4, "epochs": 3.0, "max_seq_len": 128, "doc_stride": 128},
    "qa": {"batch_size": 16, "lr": 1e-4, "epochs": 3.0, "max_seq_len": 384, "doc_stride": 128},
}
TASKS = tuple(RECIPES)
# AdamW's betas and epsilon for every task: BERT's fine-tuning code (Google's eps, not torch's 1e-8).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-6
# With a frozen encoder only a linear head trains, which takes a far larger rate than the whole network.
FROZEN_ENCODER_LR = 1e-3


def recipe_help(name: str) -> str:
    """'classify 32, ..., qa 16': a recipe field's per-task defaults, for --help."""
    values: dict[Any, list[str]] = {}
    for task, recipe in RECIPES.items():
        values.setdefault(recipe[name], []).append(task)
    if len(values) == 1:
        return str(next(iter(values)))
    common = max(values, key=lambda v: len(values[v]))
    rest = ", ".join(f"{'/'.join(tasks)} {v}" for v, tasks in values.items() if v != common)
    return f"{common}; {rest}"


@dataclass
class FinetuneSettings:
    """The recipe of a run. None means the task's recipe (RECIPES), resolved by `for_task`."""

    epochs: float | None = setting(None, "passes over the training data", recipe=True)
    lr: float | None = setting(None, "peak learning rate of AdamW (--freeze-encoder: 1e-3)", recipe=True)
    batch_size: int | None = setting(None, "examples per optimizer step", recipe=True)
    max_seq_len: int | None = setting(None, "max tokens per input (longer ones are cut, qa/ner: windows)", recipe=True)
    doc_stride: int | None = setting(None, "qa/ner windows: tokens of overlap between windows", recipe=True)
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay (not on biases and LayerNorm weights)")
    warmup_ratio: float = setting(0.1, "share of the steps with a linear warm-up, then linear decay to 0")
    max_grad_norm: float = setting(1.0, "clip the gradient norm to this (0: no clipping)")
    grad_accum: int = setting(1, "batches per optimizer step (the batch size is split into this many)")
    eval_every: int | None = setting(
        None, "also evaluate every N optimizer steps (default: after each epoch only)", metavar="N"
    )
    save_every: int | None = setting(None, "resume checkpoint every N steps (default: after each epoch)", metavar="N")
    max_steps: int | None = setting(None, "stop after N optimizer steps", metavar="N")
    early_stopping: int | None = setting(
        None, "stop after PATIENCE evaluations without a better dev score", metavar="PATIENCE"
    )
    seed: int = setting(DEFAULT_SEED, "random seed (data order, dropout, the new head's weights)")
    device: str = setting("auto", "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps")
    precision: str = setting(
        "fp32", "fp32, or bf16 / fp16 autocast where the hardware has it", choices=("fp32", "bf16", "fp16")
    )
    freeze_encoder: bool = setting(
        False, "train the head only, on encoder features computed once (classify/nli/regress/multilabel)"
    )
    report_to: str = setting("none", "also log to: none or tensorboard (in OUT/runs)", choices=("none", "tensorboard"))
    eval_batch_size: int = setting(64, "examples per batch when evaluating")
    limit_train: int | None = setting(None, "use only the first N training examples", metavar="N")
    limit_dev: int | None = setting(None, "use only the first N dev examples", metavar="N")
    skip_eval: bool = setting(False, "no dev evaluation and no saved model (speed measurements)")
    progress: bool = setting(True, "progress bars on stderr")
    log_every: int = setting(10, "optimizer steps per record in log.jsonl")

    def for_task(self, task: str) -> FinetuneSettings:
        """A copy with every None recipe field set from the task's recipe, checked."""
        if task not in RECIPES:
            raise BertkitError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        recipe = {**RECIPES[task], **({"lr": FROZEN_ENCODER_LR} if self.freeze_encoder else {})}
        filled = {name: value for name, value in recipe.items() if getattr(self, name) is None}
        resolved = dataclasses.replace(self, **filled)
        resolved.check()
        return resolved

    def check(self) -> None:
        for name in ("epochs", "lr", "batch_size", "grad_accum", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise BertkitError(f"--{name.replace('_', '-')} must be positive, got {value}")
        for name in ("eval_every", "save_every", "max_steps", "early_stopping", "limit_train", "limit_dev"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BertkitError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise BertkitError(f"--warmup-ratio must lie in [0, 1), got {self.warmup_ratio}")
        if self.max_seq_len is not None and self.max_seq_len < 8:
            raise BertkitError(f"--max-seq-len {self.max_seq_len} is too short; use at least 8 tokens")
        if self.report_to not in ("none", "tensorboard"):
            raise BertkitError(f"--report-to {self.report_to!r}: use none or tensorboard")

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides: Any) -> FinetuneSettings:
        """Settings from a JSON object of field names (a `settings` object inside finetune.json works too)."""
        path = Path(path)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError(path, "settings file not found") from None
        except UnicodeDecodeError:
            raise InputFileError(path, "not UTF-8 text; save it as UTF-8") from None
        except json.JSONDecodeError as err:
            raise InputFileError(path, f"not valid JSON ({err.msg})", err.lineno) from None
        if isinstance(value, dict) and isinstance(value.get("settings"), dict):
            value = value["settings"]  # a finetune.json of an earlier run: rerun its recipe
        if not isinstance(value, dict):
            raise InputFileError(path, 'must hold a JSON object of settings, like {"lr": 3e-5, "epochs": 2}')
        if "bf16" in value:  # the old switch
            value["precision"] = "bf16" if value.pop("bf16") else value.get("precision", "fp32")
        value = {RENAMED.get(k, k): v for k, v in value.items()}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise InputFileError(path, f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
        for name, item in value.items():
            if not _fits(item, str(fields[name].type)):
                raise InputFileError(path, f"setting {name!r} must be {fields[name].type}, got {item!r}")
        settings = cls(**{**value, **overrides})
        settings.check()
        return settings


# Old spellings accepted in settings files and as hidden CLI aliases.
RENAMED = {"max_len": "max_seq_len"}
_TYPES: dict[str, tuple[type, ...]] = {"float": (int, float), "int": (int,), "str": (str,), "bool": (bool,)}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation ("float | None", "int", ...)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        return "None" in kinds
    if isinstance(value, bool) and "bool" not in kinds:
        return False
    return any(isinstance(value, _TYPES[k]) for k in kinds if k in _TYPES)
