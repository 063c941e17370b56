"""BERT pretraining (MLM + NSP) from a data folder, on the shared loop.

What is pretraining-specific lives here and nowhere else: the objective (MLM cross-entropy over
the masked positions only -- the 30,522-way decoder never sees the other 85% -- plus NSP
cross-entropy, each normalised by its global count), the held-out evaluation (fixed masks, the
same objective's sums), the checks that data, tokenizer, config and output folder belong
together, and the final `save_pretrained` + tokenizer, so `bertkit fill-mask --model OUT` works
on the result. The recipes (bertkit.train.recipes) give the numbers; PretrainSettings holds one
run's choices.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bertkit.constants import IGNORE_INDEX
from bertkit.data.batching import EVAL_STREAM, PretrainingCollator, length_grouped_plan, random_plan
from bertkit.data.build import id_bound, tokenizer_fingerprint
from bertkit.data.masking import Masker, default_max_predictions, warn_if_capped
from bertkit.data.shards import PretrainingData, read_manifest
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_write_json
from bertkit.hardware import resolve_precision
from bertkit.log import get_logger
from bertkit.model import BertConfig, BertForPreTraining
from bertkit.tokenizers import Tokenizer
from bertkit.train import distributed
from bertkit.train.init import sinusoidal_table, unigram_log_probs
from bertkit.train.lock import RunLock
from bertkit.train.loop import CHECKPOINT_DIR, IndexBatches, Objective, TrainConfig, TrainState, resume_point, train
from bertkit.train.optim import build_optimizer, linear_schedule
from bertkit.train.settings import PretrainSettings

__all__ = ["PretrainSettings", "PretrainingObjective", "evaluate_pretraining", "pretrain", "sinusoidal_table"]

logger = get_logger(__name__)

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
# run.json fields a --resume must find unchanged (else it would not continue the same run)
MUST_MATCH = frozenset(
    {
        "data_fingerprint",
        "model_config",
        "batch_size",
        "grad_accum",
        "max_steps",
        "budget_minutes",
        "optimizer",
        "lr",
        "adam_beta1",
        "adam_beta2",
        "adam_eps",
        "warmup_steps",
        "weight_decay",
        "max_grad_norm",
        "seed",
        "whole_word_mask",
        "mlm_probability",
        "max_predictions",
        "length_grouping",
        "precision",
    }
)


class PretrainingObjective(Objective):
    """MLM + NSP losses as sums, so the loop can normalise them over the whole global batch."""

    def counts(self, batch: dict[str, Any]) -> dict[str, float]:
        return {"mlm_loss": float(batch["labels"].ne(IGNORE_INDEX).sum()), "nsp_loss": float(len(batch["labels"]))}

    def loss(
        self, model: torch.nn.Module, batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[float, float]]]:
        labels = batch["labels"]
        chosen = labels.ne(IGNORE_INDEX)  # [B, T] -> the model keeps only these rows for the decoder
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            masked_positions=chosen,
        )
        target, nsp_target = labels[chosen], batch["next_sentence_label"]
        logits, nsp_logits = out.prediction_logits, out.seq_relationship_logits  # [N, V]: masked positions only
        mlm = F.cross_entropy(logits.float(), target, reduction="sum")
        nsp = F.cross_entropy(nsp_logits.float(), nsp_target, reduction="sum")
        with torch.no_grad():
            metrics = {
                "mlm_acc": (float((logits.argmax(-1) == target).sum()), float(len(target))),
                "nsp_acc": (float((nsp_logits.argmax(-1) == nsp_target).sum()), float(len(nsp_target))),
            }
        return {"mlm_loss": mlm, "nsp_loss": nsp}, metrics


def evaluate_pretraining(
    model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Masked-token accuracy / loss and NSP accuracy / loss over fixed batches (eval mode, no grad):
    the training objective's own sums, divided by their counts over all batches."""
    objective = PretrainingObjective()
    sums: dict[str, list[float]] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            losses, metrics = objective.loss(model, batch)
            pairs = {k: (float(v), objective.counts(batch)[k]) for k, v in losses.items()} | metrics
            for name, (value, count) in pairs.items():
                total = sums.setdefault(name, [0.0, 0.0])
                total[0], total[1] = total[0] + value, total[1] + count
    model.train(was_training)
    return {name: value / max(count, 1) for name, (value, count) in sums.items()}


def eval_batches(
    data: PretrainingData, masker: Masker, seed: int, count: int, batch_size: int, pad_id: int
) -> list[dict]:
    """A fixed, seeded sample of `count` held-out instances with fixed masks, length-sorted."""
    rng = np.random.default_rng([seed, EVAL_STREAM])
    chosen = rng.permutation(len(data))[:count]
    chosen = chosen[np.argsort(data.lengths[chosen], kind="stable")]
    collate = PretrainingCollator(data, masker, seed, pad_id, stream=EVAL_STREAM)
    return [collate(chosen[i : i + batch_size].tolist()) for i in range(0, len(chosen), batch_size)]


# the run ------------------------------------------------------------------------------------------


def pretrain(s: PretrainSettings) -> TrainState:
    """Check everything, then run the loop; returns the loop's final state."""
    s.check()
    env = distributed.setup(s.device, s.threads)
    try:
        inputs = _Inputs.read(s, env)  # reads and checks; writes nothing
        _on_main(env, lambda: _check_out(Path(s.out), inputs.run, s.resume, s.overwrite))
        with RunLock(s.out) if env.is_main else nullcontext():
            parts = _build(s, env, inputs)
            started = time.time()
            state = train(
                parts.model,
                parts.optimizer,
                parts.scheduler,
                parts.batches,
                parts.loop,
                objective=PretrainingObjective(),
                eval_fn=parts.eval_fn,
                env=env,
                save_fn=parts.save_fn,
            )
            if env.is_main and state.interrupted:
                logger.info(f"continue with: bertkit pretrain ... --out {s.out} --resume")
            elif env.is_main:
                summary = {
                    "step": state.step,
                    "stop_reason": state.stop_reason or ("budget" if s.budget_minutes else "max_steps"),
                    "wall_seconds": round(time.time() - started, 1),
                    "train_seconds": round(state.train_seconds, 1),
                    "tokens": state.tokens,
                    "skipped_steps": state.skipped_steps,
                    "eval": state.last_eval,
                }
                atomic_write_json(Path(s.out) / SUMMARY_FILE, summary)
        return state
    finally:
        distributed.cleanup(env)


@dataclass
class _Inputs:
    """What the data folder, tokenizer and config say, checked against the settings."""

    manifest: dict[str, Any]
    tokenizer: Any
    config: Any
    masker: Masker
    run: dict[str, Any]  # run.json: asdict(settings) | the derived values

    @classmethod
    def read(cls, s: PretrainSettings, env: distributed.DistEnv) -> _Inputs:
        data_dir = Path(s.data)
        manifest = read_manifest(data_dir)
        built = manifest["settings"]
        seq_len = int(built["max_seq_len"])
        if s.max_seq_len is not None and s.max_seq_len != seq_len:
            raise BertkitError(
                f"--max-seq-len {s.max_seq_len} differs from the data's max_seq_len {seq_len}; rebuild the data with "
                f"`bertkit pretrain-data --max-seq-len {s.max_seq_len}` or pass --max-seq-len {seq_len}"
            )
        tok_dir = Path(s.tokenizer) if s.tokenizer else data_dir / "tokenizer"
        tokenizer = Tokenizer.from_pretrained(tok_dir)
        if tokenizer_fingerprint(tokenizer) != manifest["tokenizer"]["fingerprint"]:
            raise BertkitError(
                f"{data_dir} was built with a different tokenizer than {tok_dir} (fingerprints "
                f"{manifest['tokenizer']['fingerprint']} vs {tokenizer_fingerprint(tokenizer)}); rebuild the data "
                "with this tokenizer or pass the one it was built with"
            )
        config = load_config(s.config, id_bound(tokenizer), seq_len, s.dropout)
        precision = resolve_precision(s.precision, env.device)
        parts = s.grad_accum * env.world_size
        if s.batch_size % parts:
            raise BertkitError(
                f"--batch-size {s.batch_size} must divide into {env.world_size} process(es) x "
                f"{s.grad_accum} accumulation step(s); use a multiple of {parts}"
            )
        masker = _masker(s, built, tokenizer, id_bound(tokenizer), seq_len)
        derived = {
            "data_fingerprint": data_fingerprint(manifest),
            "model_config": config.to_dict(),
            "world_size": env.world_size,
            "precision": precision,
            "whole_word_mask": masker.whole_word,
            "mlm_probability": masker.mlm_probability,
            "max_predictions": masker.max_predictions,
            "weight_decay": s.effective_weight_decay(),
            "max_grad_norm": s.effective_max_grad_norm(),
        }
        return cls(manifest, tokenizer, config, masker, asdict(s) | derived)


def _masker(s: PretrainSettings, built: dict[str, Any], tokenizer: Any, bound: int, seq_len: int) -> Masker:
    """The training-time masking: the settings' rate and cap, else the data's, else the default cap."""
    probability = float(s.mlm_probability or built.get("mlm_probability", built.get("masked_lm_prob", 0)))
    if not 0 < probability < 1:
        raise InputFileError(Path(s.data) / "manifest.json", "settings.mlm_probability is missing or not a rate")
    cap: int | None = s.max_predictions
    if cap is None and s.mlm_probability is None:
        cap = built.get("max_predictions")  # an explicit cap the data was built with (older data: none)
    if cap is None:
        cap = default_max_predictions(probability, seq_len)
    else:
        warn_if_capped(probability, cap, seq_len)
    whole_word = bool(built.get("whole_word_mask", False) if s.whole_word_mask is None else s.whole_word_mask)
    masker = Masker.from_tokenizer(tokenizer, whole_word=whole_word, mlm_probability=probability, max_predictions=cap)
    if masker.vocab_size < bound:  # a sparse vocabulary: tables indexed by id need the largest id
        masker = Masker(bound, masker.mask_id, masker.special_ids, probability, cap, whole_word)
    return masker


@dataclass
class _Parts:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    batches: IndexBatches
    loop: TrainConfig
    eval_fn: Callable[[torch.nn.Module], dict[str, float]] | None
    save_fn: Callable[[torch.nn.Module, Path], None]


def _build(s: PretrainSettings, env: distributed.DistEnv, inputs: _Inputs) -> _Parts:
    """Model, optimizer, batches and evaluation; run.json written (rank 0, under the folder's lock)."""
    data_dir, out = Path(s.data), Path(s.out)
    if env.is_main and s.overwrite and not s.resume:  # another run's checkpoints must not mix with this one's
        shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    train_data = PretrainingData(data_dir, "train")
    _seed_everything(s.seed)
    model = BertForPreTraining(inputs.config).to(env.device)
    if resume_point(out, s.resume) is None:  # a resumed run takes these from its checkpoint
        _starting_points(s, model, train_data, inputs)
    optimizer = build_optimizer(
        model,
        kind=s.optimizer,
        lr=s.lr,
        betas=(s.adam_beta1, s.adam_beta2),
        eps=s.adam_eps,
        weight_decay=s.effective_weight_decay(),
    )
    scheduler = linear_schedule(optimizer, s.warmup_steps, s.max_steps)
    pad_id = inputs.tokenizer.token_to_id("[PAD]") or 0
    collate = PretrainingCollator(train_data, inputs.masker, s.seed, pad_id)

    def plan(epoch: int) -> list[Any]:
        if s.length_grouping:
            return length_grouped_plan(train_data.lengths, s.batch_size, s.seed, epoch)
        return random_plan(len(train_data), s.batch_size, s.seed, epoch)

    batches = IndexBatches(plan, collate, s.grad_accum, env.rank, env.world_size)
    if batches.steps_per_epoch() == 0:
        raise BertkitError(
            f"{data_dir}: {len(train_data)} training instances make no batch of {s.batch_size}; "
            "lower --batch-size or build more data"
        )
    eval_fn = _eval_fn(s, env, inputs, pad_id)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / RUN_FILE, inputs.run)
        logger.info(
            f"pretraining {s.config} ({model.num_parameters() / 1e6:.1f}M parameters) on {len(train_data):,} "
            f"instances; batch {s.batch_size} = {env.world_size} process(es) x {s.grad_accum} x "
            f"{s.batch_size // (s.grad_accum * env.world_size)}; "
            + (f"{s.budget_minutes:g} minutes" if s.budget_minutes else f"{s.max_steps:,} steps")
            + f", {s.optimizer} lr {s.lr:g} (warmup {s.warmup_steps:,}); device {env.device}"
        )

    def save(m: Any, folder: Path) -> None:  # a BertForPreTraining
        m.save_pretrained(folder)
        inputs.tokenizer.save(folder)

    return _Parts(model, optimizer, scheduler, batches, _loop_config(s, inputs), eval_fn, save)


def _loop_config(s: PretrainSettings, inputs: _Inputs) -> TrainConfig:
    return TrainConfig(
        out_dir=s.out,
        max_steps=s.max_steps,
        max_grad_norm=s.effective_max_grad_norm(),
        precision=inputs.run["precision"],
        max_bad_steps=s.max_bad_steps,
        budget_seconds=s.budget_minutes * 60 if s.budget_minutes else None,
        log_every=s.log_every,
        eval_every=s.eval_every,
        save_every=s.save_every,
        keep_checkpoints=s.keep_checkpoints,
        resume=s.resume,
        time_limit=s.max_minutes * 60 if s.max_minutes else None,
        progress=s.progress,
        desc=f"pretrain {s.config}",
        extra_state={"run": inputs.run["data_fingerprint"]},
    )


def _eval_fn(
    s: PretrainSettings, env: distributed.DistEnv, inputs: _Inputs, pad_id: int
) -> Callable[[torch.nn.Module], dict[str, float]] | None:
    if not env.is_main or s.eval_instances == 0:
        return None
    if "eval" not in inputs.manifest["splits"]:
        logger.info(f"note: {s.data} has no held-out split (build it with --heldout N); no evaluation during training")
        return None
    held_out = PretrainingData(s.data, "eval")
    fixed = eval_batches(held_out, inputs.masker, s.seed, s.eval_instances, s.eval_batch_size, pad_id)
    return lambda m: evaluate_pretraining(m, fixed, env.device)


def _starting_points(s: PretrainSettings, model: Any, train_data: PretrainingData, inputs: _Inputs) -> None:
    """--unigram-bias and --sinusoidal-positions: start from what the data and geometry state."""
    with torch.no_grad():
        if s.unigram_bias:
            bias = unigram_log_probs(train_data, inputs.config.vocab_size, inputs.tokenizer)
            model.cls.predictions.bias.copy_(bias)
        if s.sinusoidal_positions:
            table = model.bert.embeddings.position_embeddings.weight
            positions, dim = table.shape
            table.copy_(sinusoidal_table(positions, dim, std=inputs.config.initializer_range))


# checks ---------------------------------------------------------------------------------------------


def load_config(spec: str, vocab_size: int, max_seq_len: int, dropout: float | None) -> Any:
    """A preset name (tiny, mini, ..., L4-H256) or a config.json; checked against the data."""
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise BertkitError(
                f"--config {spec}: no such file; give a preset "
                f"({', '.join(BertConfig.preset_names()[:6])}, ...) or a config.json"
            )
        config = BertConfig.from_json_file(path)
        if config.vocab_size < vocab_size:
            raise BertkitError(
                f"--config {spec}: vocab_size {config.vocab_size} is smaller than the data's vocabulary "
                f"({vocab_size} ids); set vocab_size to {vocab_size} or use the tokenizer the config belongs to"
            )
    else:
        config = BertConfig.preset(spec, vocab_size=vocab_size)
    if config.max_position_embeddings < max_seq_len:
        raise BertkitError(
            f"--config {spec}: max_position_embeddings {config.max_position_embeddings} is shorter "
            f"than the data's sequences ({max_seq_len}); raise it or rebuild the data with a shorter --max-seq-len"
        )
    if config.type_vocab_size < 2:
        raise BertkitError(f"--config {spec}: type_vocab_size must be at least 2 for sentence pairs")
    if dropout is not None:
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
        config.validate()
    return config


def data_fingerprint(manifest: dict[str, Any]) -> str:
    keep = {k: manifest[k] for k in ("tokenizer", "settings", "splits")}
    keep["tokenizer"] = {k: v for k, v in keep["tokenizer"].items() if k != "source"}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _check_out(out: Path, run: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """An out folder is new, empty, this very run (with --resume), or anything with --overwrite."""
    run_file = out / RUN_FILE
    if resume and run_file.is_file():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            raise InputFileError(run_file, "unreadable; delete the folder or choose a new --out") from None
        differ = sorted(k for k in MUST_MATCH if not isinstance(old, dict) or old.get(k) != run.get(k))
        if differ:
            raise BertkitError(
                f"{out}: --resume with different settings ({', '.join(differ)}) would not continue the same run; "
                "use the original settings or a new --out"
            )
        return
    if overwrite:
        return
    if run_file.is_file():
        raise BertkitError(
            f"{out}: the folder holds another run ({RUN_FILE}); pass --resume to continue it, --overwrite to "
            "replace it, or choose a new --out"
        )
    if out.is_dir() and any(out.iterdir()):
        raise BertkitError(
            f"{out}: the folder is not empty and holds no bertkit run; choose a new or empty --out (or --overwrite)"
        )


def _on_main(env: distributed.DistEnv, check: Callable[[], None]) -> None:
    """Run a check on rank 0 only; every rank raises if it fails (none waits at a barrier forever)."""
    error: BertkitError | None = None
    if env.is_main:
        try:
            check()
        except BertkitError as err:
            error = err
    if env.any(error is not None):
        raise error or BertkitError("rank 0 refused the run (its message says why)")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
