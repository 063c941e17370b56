"""BERT pretraining (MLM + NSP) from a data folder, on the shared loop.

What is pretraining-specific lives here and nowhere else: the loss (MLM cross-entropy over the
masked positions only -- the 30,522-way decoder never sees the other 85% -- plus NSP
cross-entropy, each normalised by its global count), the held-out evaluation (fixed masks),
the checks that data, tokenizer, config and output folder belong together, and the final
`save_pretrained` + tokenizer, so `bertkit fill-mask --model OUT` works on the result.

The defaults are the seed's recipe (AdamW lr 1e-4, beta 0.9/0.999, weight decay 0.01, 10k warmup
steps then linear decay, dropout 0.1, GELU, batch 256). For a budget of minutes on a CPU see
`SHORT_BUDGET` (docs/pretraining.md): a higher peak lr with a short warmup, small batches of
short sequences, more masking, and starting points taken from the data (unigram bias, sinusoids).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bertkit.data.batching import EVAL_STREAM, PretrainingCollator, length_grouped_plan, random_plan
from bertkit.data.masking import Masker
from bertkit.data.shards import PretrainingData, read_manifest
from bertkit.errors import BertkitError, InputFileError
from bertkit.hardware import resolve_device, resolve_precision
from bertkit.train.loop import IndexBatches, Objective, TrainConfig, TrainState, resume_point, train

RUN_FILE = "run.json"

# What we found to learn fastest in ~20 minutes on 2 CPU cores (BERT-mini); see docs/pretraining.md.
# PretrainSettings fields; seq_len is the data's (`pretrain-data --max-seq-len 64`).
SHORT_BUDGET = {
    "seq_len": 64,
    "lr": 1e-3,
    "warmup_steps": 100,
    "batch_size": 16,
    "dropout": 0.0,
    "unigram_bias": True,
    "sinusoidal_positions": True,
    "mlm_probability": 0.25,
    "max_predictions": 32,
}


@dataclass
class PretrainSettings:
    data: str
    out: str
    config: str = "base"
    tokenizer: str | None = None  # default: the data folder's tokenizer/
    batch_size: int = 256  # global batch per optimizer step (all processes, all micro-batches)
    grad_accum: int = 1
    max_steps: int = 1_000_000
    lr: float = 1e-4
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    adam_eps: float = 1e-6
    max_grad_norm: float = 1.0
    seq_len: int | None = None  # must equal the data's max_seq_len when given
    precision: str = "fp32"
    seed: int = 42
    eval_every: int = 1000
    eval_instances: int = 1000
    eval_batch_size: int = 64
    save_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    resume: bool = False
    whole_word_mask: bool | None = None  # default: as the data was built
    mlm_probability: float | None = None
    max_predictions: int | None = None
    dropout: float | None = None  # override hidden and attention dropout
    unigram_bias: bool = False  # start the word decoder's bias at log unigram frequencies
    sinusoidal_positions: bool = False  # start the (learned) position embeddings at scaled sinusoids
    length_grouping: bool = True
    max_minutes: float | None = None
    device: str = "auto"
    threads: int | None = None
    progress: bool = True


class PretrainingObjective(Objective):
    """MLM + NSP losses as sums, so the loop can normalise them over the whole global batch."""

    def counts(self, batch):
        return {"mlm_loss": float(batch["labels"].ne(-100).sum()), "nsp_loss": float(len(batch["labels"]))}

    def loss(self, model, batch):
        out, target, nsp_target = _forward(model, batch)
        logits = out.prediction_logits  # [N, V]: only the masked positions
        mlm = F.cross_entropy(logits.float(), target, reduction="sum")
        nsp = F.cross_entropy(out.seq_relationship_logits.float(), nsp_target, reduction="sum")
        with torch.no_grad():
            metrics = {
                "mlm_acc": (float((logits.argmax(-1) == target).sum()), float(len(target))),
                "nsp_acc": (
                    float((out.seq_relationship_logits.argmax(-1) == nsp_target).sum()),
                    float(len(nsp_target)),
                ),
            }
        return {"mlm_loss": mlm, "nsp_loss": nsp}, metrics


def _forward(model, batch):
    labels = batch["labels"]
    chosen = labels.ne(-100)  # [B, T] -> the model keeps only these rows for the decoder
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
        masked_positions=chosen,
    )
    return out, labels[chosen], batch["next_sentence_label"]


def evaluate_pretraining(
    model, batches: list[dict[str, torch.Tensor]], device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Masked-token accuracy / loss and NSP accuracy / loss over fixed batches (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    sums = np.zeros(6)  # mlm loss, mlm correct, mlm count, nsp loss, nsp correct, nsp count
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            out, target, nsp_target = _forward(model, batch)
            logits, nsp_logits = out.prediction_logits.float(), out.seq_relationship_logits.float()
            sums += [
                float(F.cross_entropy(logits, target, reduction="sum")),
                float((logits.argmax(-1) == target).sum()),
                len(target),
                float(F.cross_entropy(nsp_logits, nsp_target, reduction="sum")),
                float((nsp_logits.argmax(-1) == nsp_target).sum()),
                len(nsp_target),
            ]
    model.train(was_training)
    return {
        "mlm_loss": sums[0] / max(sums[2], 1),
        "mlm_acc": sums[1] / max(sums[2], 1),
        "nsp_loss": sums[3] / max(sums[5], 1),
        "nsp_acc": sums[4] / max(sums[5], 1),
    }


def eval_batches(
    data: PretrainingData, masker: Masker, seed: int, count: int, batch_size: int, pad_id: int
) -> list[dict]:
    """A fixed, seeded sample of `count` held-out instances with fixed masks, length-sorted."""
    rng = np.random.default_rng([seed, EVAL_STREAM])
    chosen = rng.permutation(len(data))[:count]
    chosen = chosen[np.argsort(data.lengths[chosen], kind="stable")]
    collate = PretrainingCollator(data, masker, seed, pad_id, stream=EVAL_STREAM)
    return [collate(chosen[i : i + batch_size]) for i in range(0, len(chosen), batch_size)]


# set-up and checks ------------------------------------------------------------------------------------


def load_config(spec: str, vocab_size: int, seq_len: int, dropout: float | None):
    """A preset name (tiny, mini, ..., L4-H256) or a config.json; checked against the data."""
    from bertkit.model import BertConfig

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
    if config.max_position_embeddings < seq_len:
        raise BertkitError(
            f"--config {spec}: max_position_embeddings {config.max_position_embeddings} is shorter "
            f"than the data's sequences ({seq_len}); raise it or rebuild the data with a shorter --max-seq-len"
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


def _check_out(out: Path, run: dict[str, Any], resume: bool) -> None:
    """An out folder is new, empty, or this very run (with --resume)."""
    run_file = out / RUN_FILE
    if run_file.is_file():
        if not resume:
            raise BertkitError(
                f"{out}: the folder holds another run ({RUN_FILE}); pass --resume to continue it or choose a new --out"
            )
        try:
            old = json.loads(run_file.read_text())
        except json.JSONDecodeError:
            raise InputFileError(run_file, "unreadable; delete the folder or choose a new --out") from None
        differ = [k for k in run if k in _MUST_MATCH and old.get(k) != run[k]]
        if differ:
            raise BertkitError(
                f"{out}: --resume with different settings ({', '.join(differ)}) would not continue the same run; "
                "use the original settings or a new --out"
            )
    elif out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise BertkitError(f"{out}: the folder is not empty and holds no bertkit run; choose a new or empty --out")


_MUST_MATCH = (
    "data",
    "config",
    "batch_size",
    "grad_accum",
    "max_steps",
    "lr",
    "warmup_steps",
    "weight_decay",
    "seed",
    "whole_word_mask",
    "mlm_probability",
    "max_predictions",
    "length_grouping",
    "precision",
)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pretrain(s: PretrainSettings) -> TrainState:
    """Check everything, then run the loop; returns the loop's final state."""
    from bertkit.data.build import tokenizer_fingerprint
    from bertkit.model import BertForPreTraining
    from bertkit.tokenizers import Tokenizer
    from bertkit.train import distributed
    from bertkit.train.optim import build_optimizer, linear_schedule

    for name in ("batch_size", "grad_accum", "max_steps", "log_every"):
        if getattr(s, name) < 1:
            raise BertkitError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(s, name)}")
    if s.lr <= 0:
        raise BertkitError(f"--lr must be positive, got {s.lr}")
    data_dir, out = Path(s.data), Path(s.out)
    manifest = read_manifest(data_dir)
    built = manifest["settings"]
    seq_len = int(built["max_seq_len"])
    if s.seq_len is not None and s.seq_len != seq_len:
        raise BertkitError(
            f"--seq-len {s.seq_len} differs from the data's max_seq_len {seq_len}; rebuild the data with "
            f"`bertkit pretrain-data --max-seq-len {s.seq_len}` or drop --seq-len"
        )
    tok_dir = Path(s.tokenizer) if s.tokenizer else data_dir / "tokenizer"
    tokenizer = Tokenizer.from_pretrained(tok_dir)
    if tokenizer_fingerprint(tokenizer) != manifest["tokenizer"]["fingerprint"]:
        raise BertkitError(
            f"{data_dir} was built with a different tokenizer than {tok_dir} (fingerprints "
            f"{manifest['tokenizer']['fingerprint']} vs {tokenizer_fingerprint(tokenizer)}); rebuild the data "
            "with this tokenizer or pass the one it was built with"
        )
    config = load_config(s.config, len(tokenizer), seq_len, s.dropout)
    resolve_precision(s.precision, resolve_device(s.device))

    env = distributed.setup(s.device, s.threads)
    try:
        parts = s.grad_accum * env.world_size
        if s.batch_size % parts:
            raise BertkitError(
                f"--batch-size {s.batch_size} must divide into {env.world_size} process(es) x "
                f"{s.grad_accum} accumulation step(s); use a multiple of {parts}"
            )
        whole_word = built["whole_word_mask"] if s.whole_word_mask is None else s.whole_word_mask
        masker = Masker.from_tokenizer(
            tokenizer,
            whole_word=whole_word,
            mlm_probability=s.mlm_probability or built["masked_lm_prob"],
            max_predictions=s.max_predictions or built["max_predictions_per_seq"],
        )
        run = {
            "data": data_fingerprint(manifest),
            "config": config.to_dict(),
            "batch_size": s.batch_size,
            "grad_accum": s.grad_accum,
            "max_steps": s.max_steps,
            "lr": s.lr,
            "warmup_steps": s.warmup_steps,
            "weight_decay": s.weight_decay,
            "seed": s.seed,
            "whole_word_mask": whole_word,
            "mlm_probability": masker.mlm_probability,
            "max_predictions": masker.max_predictions,
            "length_grouping": s.length_grouping,
            "precision": s.precision,
            "settings": asdict(s),
            "world_size": env.world_size,
        }
        if env.is_main:
            _check_out(out, run, s.resume)
        env.barrier()
        train_data = PretrainingData(data_dir, "train")
        _seed_everything(s.seed)
        model = BertForPreTraining(config).to(env.device)
        resuming = resume_point(out, s.resume) is not None
        if s.unigram_bias and not resuming:  # a resumed run gets the bias from its checkpoint
            with torch.no_grad():
                model.cls.predictions.bias.copy_(unigram_log_probs(train_data, config.vocab_size, tokenizer))
        if s.sinusoidal_positions and not resuming:
            with torch.no_grad():
                table = model.bert.embeddings.position_embeddings.weight
                table.copy_(sinusoidal_table(*table.shape, std=config.initializer_range))
        optimizer = build_optimizer(
            model, kind="adamw", lr=s.lr, betas=(0.9, 0.999), eps=s.adam_eps, weight_decay=s.weight_decay
        )
        scheduler = linear_schedule(optimizer, s.warmup_steps, s.max_steps)
        pad_id = tokenizer.token_to_id("[PAD]") or 0
        collate = PretrainingCollator(train_data, masker, s.seed, pad_id)
        if s.length_grouping:
            plan = lambda epoch: length_grouped_plan(train_data.lengths, s.batch_size, s.seed, epoch)  # noqa: E731
        else:
            plan = lambda epoch: random_plan(len(train_data), s.batch_size, s.seed, epoch)  # noqa: E731
        batches = IndexBatches(plan, collate, s.grad_accum, env.rank, env.world_size)
        if batches.steps_per_epoch() == 0:
            raise BertkitError(
                f"{data_dir}: {len(train_data)} training instances make no batch of {s.batch_size}; "
                "lower --batch-size or build more data"
            )
        eval_fn = None
        if "eval" in manifest["splits"] and s.eval_instances > 0 and env.is_main:
            held = eval_batches(
                PretrainingData(data_dir, "eval"), masker, s.seed, s.eval_instances, s.eval_batch_size, pad_id
            )
            eval_fn = lambda m: evaluate_pretraining(m, held, env.device)  # noqa: E731
        elif env.is_main:
            print(f"note: {data_dir} has no held-out split (build it with --heldout N); no evaluation during training")
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / f".{RUN_FILE}.tmp"
            tmp.write_text(json.dumps(run, indent=2, default=str) + "\n")
            os.replace(tmp, out / RUN_FILE)
            n_params = model.num_parameters()
            print(
                f"pretraining {s.config} ({n_params / 1e6:.1f}M parameters) on {len(train_data):,} instances; "
                f"batch {s.batch_size} = {env.world_size} process(es) x {s.grad_accum} x {s.batch_size // parts}; "
                f"{s.max_steps:,} steps, lr {s.lr:g} (warmup {s.warmup_steps:,}); device {env.device}",
                flush=True,
            )

        def save(m, folder: Path) -> None:
            m.save_pretrained(folder)
            tokenizer.save(folder)

        loop = TrainConfig(
            out_dir=out,
            max_steps=s.max_steps,
            max_grad_norm=s.max_grad_norm,
            precision=s.precision,
            log_every=s.log_every,
            eval_every=s.eval_every,
            save_every=s.save_every,
            keep_checkpoints=s.keep_checkpoints,
            resume=s.resume,
            time_limit=s.max_minutes * 60 if s.max_minutes else None,
            progress=s.progress,
            desc=f"pretrain {s.config}",
            extra_state={"run": run["data"]},
        )
        started = time.time()
        state = train(
            model,
            optimizer,
            scheduler,
            batches,
            loop,
            objective=PretrainingObjective(),
            eval_fn=eval_fn,
            env=env,
            save_fn=save,
        )
        if env.is_main and not state.interrupted:
            summary = {
                "step": state.step,
                "stop_reason": state.stop_reason or "max_steps",
                "wall_seconds": round(time.time() - started, 1),
                "train_seconds": round(state.train_seconds, 1),
                "tokens": state.tokens,
                "eval": state.last_eval,
            }
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return state
    finally:
        distributed.cleanup(env)


def unigram_log_probs(data: PretrainingData, vocab_size: int, tokenizer) -> torch.Tensor:
    """log P(word) over the training tokens (add-one smoothed; special tokens, never targets, ~0).

    Why: a fresh decoder predicts every word alike (loss ln 30,522 = 10.3) and the first few
    hundred steps go to learning word frequencies -- which the data states exactly. Starting the
    bias there ("init well") gives short runs a lower loss throughout (docs/pretraining.md has
    the measured effect). Off by default: the seed's recipe starts from zero.
    """
    counts = data.token_counts(vocab_size).astype(np.float64)
    counts[[i for i in tokenizer.all_special_ids if i < vocab_size]] = 0.0
    counts += 1.0
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def sinusoidal_table(positions: int, dim: int, std: float = 0.02) -> torch.Tensor:
    """The Transformer's sin/cos position table, scaled to the word embeddings' spread (std).

    Why: random position vectors are unrelated to each other, so "look at the previous word" must
    be learned for each position separately; with sinusoids it is one linear map for all of them,
    which a short run can find. Still a learned embedding: only its starting point changes.
    """
    pos = torch.arange(positions, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10_000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return (table * (std * math.sqrt(2.0))).float()  # sin/cos have RMS 1/sqrt(2)
