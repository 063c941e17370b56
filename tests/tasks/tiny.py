"""Small fixtures for the task tests: a 2-layer BERT with MiniLM's vocabulary, and tiny data files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from bertkit.model import BertConfig, BertModel


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared CPU their many small ops
    lose a scheduler slice at every thread barrier; a module imports this fixture to run on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_bert(tmp_path: Path, minilm_dir: Path, dropout: float = 0.0, seed: int = 123) -> Path:
    """A randomly initialised 2-layer, 32-wide BERT (no head) that bertkit's tokenizer files go with."""
    folder = tmp_path / f"tiny-bert-{dropout}-{seed}"
    if folder.is_dir():
        return folder
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


SENTIMENT = [
    ("a wonderful , moving film", "1"),
    ("great acting and a fine story", "1"),
    ("i loved every minute", "1"),
    ("a joy to watch", "1"),
    ("dull and far too long", "0"),
    ("a tedious , empty mess", "0"),
    ("i hated the plot", "0"),
    ("boring from start to end", "0"),
]


def sentiment_tsv(tmp_path: Path, name: str = "train.tsv", repeat: int = 4) -> Path:
    path = tmp_path / name
    rows = [f"{text}\t{label}" for _ in range(repeat) for text, label in SENTIMENT]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
