"""Tiny random models saved as folders (weights, config, a vocabulary) for the export tests.

A plain module, not conftest.py: test folders each have a conftest and would shadow each other."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bertkit import model as models
from bertkit.model import BertConfig

FIXTURE_VOCAB = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny" / "vocab.txt"
HEADS = {
    "embed": "BertModel",
    "classify": "BertForSequenceClassification",
    "ner": "BertForTokenClassification",
    "qa": "BertForQuestionAnswering",
    "fill-mask": "BertForMaskedLM",
    "pretraining": "BertForPreTraining",
}


def tiny_folder(folder: Path, task: str, seed: int = 0) -> Path:
    """A random BERT for `task` (2 layers, H=32, 512 positions) whose weights are spread out enough
    that every layer changes the output: parity on it means something."""
    config = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels={"classify": 3, "ner": 5}.get(task, 2),
    )
    torch.manual_seed(seed)
    net = getattr(models, HEADS[task])(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    net.save_pretrained(folder)
    shutil.copy(FIXTURE_VOCAB, folder / "vocab.txt")
    return folder


def minilm_vocab_folder(folder, task, minilm_dir):
    """A tiny random model that reads MiniLM's vocabulary (real words for the pipelines)."""
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=2 if task == "qa" else 3,
    )
    if task == "ner":
        config = config.copy(id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    torch.manual_seed(1)
    net = getattr(models, HEADS[task])(config)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    net.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder
