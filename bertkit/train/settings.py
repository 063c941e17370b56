"""PretrainSettings: every choice of a pretraining run, one field each, with its help line.

The field defaults ARE the lecture recipe (`recipes.LECTURE = PretrainSettings()`): each number
of it is written here and nowhere else. Every field carries its `--help` line and, for the
recipe's numbers, where it comes from: `LECTURE` (the lecture states it) or `GOOGLE` (the lecture
does not; google-research/bert's code does). `bertkit pretrain` makes one flag per field
(bertkit/cli/pretrain.py) and `run.json` records `asdict(settings)` with the derived values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bertkit.constants import DEFAULT_SEED
from bertkit.errors import BertkitError
from bertkit.precision import normalize_precision
from bertkit.settings import setting

LECTURE = "lecture"
GOOGLE = "google"
# how --help and the docs name each origin
ORIGINS = {LECTURE: "from the lecture", GOOGLE: "added from google-research/bert's code (not in the lecture)"}
OPTIMIZERS = ("adamw", "adam")  # bertkit.train.optim builds them
MAX_BAD_STEPS = 10  # non-finite steps in a row that end a run


def _f(default: Any, help: str, origin: str | None = None) -> Any:
    return setting(default, help, origin=origin)  # origin: where a recipe number comes from


@dataclass
class PretrainSettings:
    data: str = _f("", "folder made by `bertkit pretrain-data` (required)")
    out: str = _f("", "output folder: new, empty, or this run with --resume (required)")
    config: str = _f("base", "model: tiny, mini, small, medium, base, large, L<layers>-H<hidden>, or a config.json")
    tokenizer: str | None = _f(None, "tokenizer folder (default: the data folder's tokenizer/)")
    batch_size: int = _f(256, "global batch per optimizer step (all processes, all micro-batches)", LECTURE)
    grad_accum: int = _f(1, "micro-batches per optimizer step on each process")
    max_steps: int = _f(1_000_000, "optimizer steps; the lr decays to 0 here (with --budget-minutes: at most this)")
    budget_minutes: float | None = _f(
        None, "wall-time budget: the lr schedule is re-planned from the measured step time to end (at 0) here"
    )
    max_minutes: float | None = _f(None, "stop (with a checkpoint and the model) after this much wall time")
    optimizer: str = _f(
        "adamw",
        "adamw: Adam with decoupled weight decay and clipping; adam: the lecture's plain Adam "
        "(--weight-decay and --max-grad-norm are not used)",
    )
    lr: float = _f(1e-4, "peak learning rate", LECTURE)
    adam_beta1: float = _f(0.9, "Adam's beta1", LECTURE)
    adam_beta2: float = _f(0.999, "Adam's beta2", LECTURE)
    warmup_steps: int = _f(10_000, "linear warmup steps, then linear decay to 0", LECTURE)
    weight_decay: float = _f(0.01, "decoupled weight decay (not on LayerNorm and biases)", GOOGLE)
    adam_eps: float = _f(1e-6, "Adam's epsilon", GOOGLE)
    max_grad_norm: float = _f(1.0, "clip the gradients' global norm to this (0: no clipping)", GOOGLE)
    dropout: float = _f(0.1, "hidden and attention dropout (overrides the --config's)", LECTURE)
    max_seq_len: int | None = _f(None, "check: must equal the data's --max-seq-len")
    mlm_probability: float | None = _f(None, "share of the tokens to predict (default: as the data was built)")
    max_predictions: int | None = _f(
        None, "predictions per sequence at most (default: ceil(mlm-probability x the data's max-seq-len))"
    )
    whole_word_mask: bool | None = _f(None, "mask all pieces of a word together (default: as the data was built)")
    unigram_bias: bool = _f(False, "start the MLM decoder's bias at the data's log word frequencies")
    sinusoidal_positions: bool = _f(False, "start the learned position embeddings at scaled sin/cos waves")
    length_grouping: bool = _f(True, "batches of similar lengths (less padding); off: plain shuffled batches")
    precision: str = _f("fp32", "autocast precision: bf16 on GPUs and CPUs with AVX-512 BF16 / AMX, fp16 on GPUs")
    seed: int = _f(DEFAULT_SEED, "random seed (data order, masks, new weights)")
    eval_every: int = _f(1000, "evaluate on the held-out split every N steps (0: at the end only)")
    eval_instances: int = _f(1000, "held-out instances per evaluation")
    eval_batch_size: int = _f(64, "batch size of the evaluation")
    save_every: int = _f(1000, "checkpoint every N steps (0: at the end and on Ctrl-C only)")
    keep_checkpoints: int = _f(3, "newest checkpoints kept (and always the newest finite one)")
    log_every: int = _f(10, "steps per record in log.jsonl")
    max_bad_steps: int = _f(MAX_BAD_STEPS, "stop after more than N steps in a row with a non-finite loss")
    resume: bool = _f(False, "continue the run in --out from its newest readable checkpoint")
    overwrite: bool = _f(False, "write into a non-empty --out (another run's checkpoints there are deleted)")
    device: str = _f("auto", "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps")
    threads: int | None = _f(None, "torch CPU threads per process")
    progress: bool = _f(True, "a progress bar on stderr")

    def check(self) -> None:
        """One-line errors for values no run can use (before anything is read or written)."""
        for name in ("data", "out"):
            if not getattr(self, name):
                raise BertkitError(f"--{name} is required")
        for name in ("batch_size", "grad_accum", "max_steps", "log_every", "eval_batch_size"):
            _at_least(name, getattr(self, name), 1)
        for name in ("warmup_steps", "eval_every", "eval_instances", "save_every", "keep_checkpoints"):
            _at_least(name, getattr(self, name), 0)
        _at_least("max_bad_steps", self.max_bad_steps, 0)
        for name in ("lr", "adam_eps", "budget_minutes", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise BertkitError(f"{_flag(name)} must be positive, got {value}")
        for name in ("adam_beta1", "adam_beta2", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise BertkitError(f"{_flag(name)} must lie in [0, 1), got {getattr(self, name)}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise BertkitError("--weight-decay and --max-grad-norm must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise BertkitError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.mlm_probability is not None and not 0 < self.mlm_probability < 1:
            raise BertkitError(f"--mlm-probability must lie in (0, 1), got {self.mlm_probability}")
        if self.max_predictions is not None:
            _at_least("max_predictions", self.max_predictions, 1)
        self.precision = normalize_precision(self.precision)  # refuses an unknown name in one line

    @property
    def plain_adam(self) -> bool:
        return self.optimizer == "adam"

    def effective_weight_decay(self) -> float:
        return 0.0 if self.plain_adam else self.weight_decay

    def effective_max_grad_norm(self) -> float | None:
        return None if self.plain_adam or not self.max_grad_norm else self.max_grad_norm


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise BertkitError(f"{_flag(name)} must be at least {low}, got {value}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
