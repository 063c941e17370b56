"""Tiny model folders for pipeline tests: MiniLM's tokenizer around a small BERT with a given head.

`rigged` makes an encoder that passes each token's own embedding through (attention and
feed-forward weights zero), so a head reading coordinate 0 fires only where the word embedding
put a large value: answers are known by construction, wherever the word sits in a long text.
`random_head` makes a small random model whose outputs transformers reproduces exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bertkit import model as models
from bertkit.model import BertConfig

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SMALL = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


def save(model: torch.nn.Module, folder: Path, minilm_dir: Path) -> Path:
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (minilm_dir / name).exists():
            shutil.copy(minilm_dir / name, folder / name)
    return folder


def rigged(head: str, minilm_dir: Path, word: str, **config) -> torch.nn.Module:
    vocab = (minilm_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    cfg = BertConfig(**SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **config)
    torch.manual_seed(0)
    net = getattr(models, head)(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "encoder" in name and "LayerNorm" not in name:
                p.zero_()  # layers pass x through: LN(x + 0)
        emb = net.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight[:, 0] = 0.0
        emb.word_embeddings.weight[vocab.index(word), 0] = 10.0  # only this word lights coordinate 0
    return net


def random_head(head: str, folder: Path, minilm_dir: Path, seed: int = 0, scale: float = 1.0, **config) -> Path:
    """A random small model with `head`, saved with MiniLM's tokenizer (scale sharpens its classifier)."""
    torch.manual_seed(seed)
    net = getattr(models, head)(BertConfig(**SMALL, **config))
    if scale != 1.0:
        with torch.no_grad():
            net.classifier.weight.mul_(scale)
    return save(net, folder, minilm_dir)


NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG", 7: "MISC"}
