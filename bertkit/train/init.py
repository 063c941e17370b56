"""Starting points taken from the data instead of noise, for short pretraining budgets.

Both are off in the lecture recipe (which starts every weight at random) and on in the
short-budget one; docs/pretraining.md has their measured effect.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from bertkit.data.shards import PretrainingData


def unigram_log_probs(data: PretrainingData, vocab_size: int, tokenizer: Any) -> torch.Tensor:
    """log P(word) over the training tokens (add-one smoothed; special tokens, never targets, ~0).

    Why: a fresh decoder predicts every word alike (loss ln 30,522 = 10.3) and the first few
    hundred steps go to learning word frequencies -- which the data states exactly. Starting the
    bias there ("init well") gives short runs a lower loss throughout.
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
