"""BuildSettings: how `bertkit pretrain-data` cuts a corpus into instances, one field per flag.

Plain data with no numpy or torch behind it, so `bertkit pretrain-data --help` can list the
flags from the dataclass without loading the builder (bertkit.data.build).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bertkit.constants import DEFAULT_SEED
from bertkit.errors import BertkitError
from bertkit.settings import setting


def default_max_predictions(mlm_probability: float, max_seq_len: int) -> int:
    """Predictions per sequence that never cut the rate at this length (Google: 20 at 128, 80 at 512)."""
    return max(1, math.ceil(mlm_probability * max_seq_len - 1e-9))


@dataclass
class BuildSettings:
    """How `pretrain-data` cuts a corpus into instances; each field is one flag (bertkit/cli/pretrain.py).

    The lecture uses 512 tokens per instance; Google's code and this default build 128 (the paper
    trains 90% of its steps at 128): `--max-seq-len 512` for the lecture's length.
    """

    max_seq_len: int = setting(128, "tokens per instance incl. [CLS] and 2 [SEP] (the lecture's: 512)")
    dupe_factor: int = setting(1, "passes over the corpus with different pairings (dynamic masking varies the masks)")
    short_seq_prob: float = setting(0.1, "probability of a shorter random target length")
    seed: int = setting(DEFAULT_SEED, "random seed (pairings, held-out documents, static masks)")
    doc_boundary: str = setting(
        "file",
        "file: one document per file, blank lines separate paragraphs; "
        "blank_line: documents separated by blank lines, each line a sentence or more",
    )
    heldout: int = setting(0, "whole documents held out into eval/")
    static_masking: bool = setting(False, "store the masks in the data (Google's way) instead of masking per batch")
    mlm_probability: float = setting(0.15, "share of the tokens to predict (the lecture's 15%)")
    max_predictions: int | None = setting(
        None, "predictions per sequence at most (default: ceil(mlm-probability x max-seq-len), never below the rate)"
    )
    whole_word_mask: bool = setting(False, "mask all pieces of a word together (static masking; `pretrain`'s default)")
    shard_tokens: int = setting(4_000_000, "about this many tokens per shard")
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.max_seq_len < 8:
            raise BertkitError(f"--max-seq-len must be at least 8, got {self.max_seq_len}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise BertkitError(f"--mlm-probability must lie in (0, 1), got {self.mlm_probability}")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise BertkitError(f"--max-predictions must be at least 1, got {self.max_predictions}")
        if self.shard_tokens < 1:
            raise BertkitError(f"--shard-tokens must be at least 1, got {self.shard_tokens}")
        if self.dupe_factor < 1:
            raise BertkitError(f"--dupe-factor must be at least 1, got {self.dupe_factor}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise BertkitError(f"--short-seq-prob must be in [0, 1], got {self.short_seq_prob}")
        if self.heldout < 0:
            raise BertkitError(f"--heldout must be >= 0 documents, got {self.heldout}")
        if self.doc_boundary not in ("file", "blank_line"):
            raise BertkitError(f"--doc-boundary must be 'file' or 'blank_line', got {self.doc_boundary!r}")

    def resolved_max_predictions(self) -> int:
        return self.max_predictions or default_max_predictions(self.mlm_probability, self.max_seq_len)
