"""Masked-LM corruption: choose 15% of the tokens, then 80% -> [MASK], 10% -> random, 10% kept.

The lecture's rule, as in google-research/bert's create_pretraining_data:
  * candidates are the non-special tokens ([CLS], [SEP], [PAD], [MASK], [UNK] are never chosen);
  * k = round(15% of the candidates), at least 1 and at most `max_predictions` per sequence --
    by default ceil(mlm_probability x max_seq_len), so the cap never lowers the rate (a fixed 20,
    right for 128 tokens, would mask 4% of a 512-token sequence);
  * with `whole_word`, words (a word-start token plus its continuation pieces) are chosen in a
    random order and all their pieces are masked, skipping a word that would overshoot k; the word
    boundaries come from the tokenizer's word ids, so WordPiece, BPE and byte-level all work;
  * each chosen token becomes [MASK] with p=0.8, a random non-special token with p=0.1, or stays
    itself with p=0.1 -- and must be predicted in all three cases.

Masking is a pure function of (tokens, rng). Pretraining derives the rng of each sequence from
(seed, epoch, sequence index), which makes dynamic masking reproducible, independent of batch
size, process count and resume point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertkit.constants import IGNORE_INDEX
from bertkit.data.settings import default_max_predictions
from bertkit.errors import BertkitError
from bertkit.log import get_logger

logger = get_logger(__name__)


def warn_if_capped(mlm_probability: float, max_predictions: int, max_seq_len: int) -> bool:
    """One warning line when an explicit cap predicts fewer than mlm_probability of a full sequence."""
    full = max_seq_len - 3  # [CLS] A [SEP] B [SEP]: the rest are candidates
    wanted = int(full * mlm_probability + 0.5)
    if max_predictions >= wanted:
        return False
    logger.warning(
        f"--max-predictions {max_predictions} masks at most {max_predictions / full:.1%} of a {max_seq_len}-token "
        f"sequence, below --mlm-probability {mlm_probability:g}; drop it (default "
        f"{default_max_predictions(mlm_probability, max_seq_len)}) or raise it to {wanted}"
    )
    return True


def word_starts_from_word_ids(word_ids: Sequence[int | None]) -> np.ndarray:
    """Tokenizer word ids -> bool [T]: True where a token begins a new word (or has no word)."""
    starts = np.ones(len(word_ids), dtype=bool)
    for i in range(1, len(word_ids)):
        starts[i] = word_ids[i] is None or word_ids[i] != word_ids[i - 1]
    return starts


@dataclass
class Masker:
    """The MLM corruption rule for one vocabulary (see the module docstring)."""

    vocab_size: int
    mask_id: int
    special_ids: Sequence[int]
    mlm_probability: float
    max_predictions: int
    whole_word: bool = False
    mask_ratio: float = 0.8
    random_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.mlm_probability < 1.0:
            raise BertkitError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.max_predictions < 1:
            raise BertkitError(f"max_predictions must be at least 1, got {self.max_predictions}")
        if self.mask_ratio < 0 or self.random_ratio < 0 or self.mask_ratio + self.random_ratio > 1:
            raise BertkitError("mask_ratio and random_ratio must be >= 0 and sum to at most 1")
        if not 0 <= self.mask_id < self.vocab_size:
            raise BertkitError(f"mask id {self.mask_id} is outside the vocabulary (size {self.vocab_size})")
        self._special = np.zeros(self.vocab_size, dtype=bool)
        self._special[[i for i in self.special_ids if 0 <= i < self.vocab_size]] = True
        self._replacements = np.flatnonzero(~self._special)  # random tokens are never special
        if len(self._replacements) == 0:
            raise BertkitError("the vocabulary holds only special tokens; nothing to mask")

    @classmethod
    def from_tokenizer(cls, tokenizer, **options) -> Masker:
        mask_id = tokenizer.token_to_id("[MASK]")
        if mask_id is None:
            mask_id = tokenizer.token_to_id("<mask>")
        if mask_id is None:
            raise BertkitError(
                "the tokenizer has no [MASK] token; masked-LM pretraining needs one "
                "(train the tokenizer with the BERT special tokens)"
            )
        return cls(vocab_size=len(tokenizer), mask_id=mask_id, special_ids=list(tokenizer.all_special_ids), **options)

    def num_to_predict(self, num_candidates: int) -> int:
        if num_candidates == 0:
            return 0
        k = int(num_candidates * self.mlm_probability + 0.5)
        return min(self.max_predictions, max(1, k), num_candidates)

    def choose(self, ids: np.ndarray, word_starts: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Which positions to predict: sorted int positions [K]."""
        candidates = np.flatnonzero(~self._special[ids])
        k = self.num_to_predict(len(candidates))
        if k == 0:
            return candidates
        if not self.whole_word:
            return np.sort(rng.choice(candidates, size=k, replace=False))
        if word_starts is None:
            raise BertkitError("whole-word masking needs word starts (the tokenizer's word ids)")
        # group candidates into words: a new word at each word start or after a gap (a special token)
        new_word = word_starts[candidates].astype(bool)
        new_word[0] = True
        new_word[1:] |= np.diff(candidates) != 1
        bounds = np.flatnonzero(np.append(new_word, True))  # [W + 1] starts into `candidates`
        chosen: list[np.ndarray] = []
        count = 0
        for w in rng.permutation(len(bounds) - 1):
            if count >= k:
                break
            size = bounds[w + 1] - bounds[w]
            if count + size > k:
                continue
            chosen.append(candidates[bounds[w] : bounds[w + 1]])
            count += size
        return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)

    def __call__(
        self, ids: np.ndarray, word_starts: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids [T] -> (corrupted ids [T], positions [K], original ids at those positions [K])."""
        ids = np.asarray(ids)
        positions = self.choose(ids, word_starts, rng)
        labels = ids[positions]
        corrupted = ids.copy()
        roll = rng.random(len(positions))
        to_mask = roll < self.mask_ratio
        to_random = (roll >= self.mask_ratio) & (roll < self.mask_ratio + self.random_ratio)
        corrupted[positions[to_mask]] = self.mask_id
        corrupted[positions[to_random]] = rng.choice(self._replacements, size=int(to_random.sum()))
        return corrupted, positions, labels

    def mask_labels(
        self, ids: np.ndarray, word_starts: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """ids [T] -> (corrupted ids [T], labels [T] with -100 where nothing is predicted)."""
        corrupted, positions, originals = self(ids, word_starts, rng)
        labels = np.full(len(ids), IGNORE_INDEX, dtype=np.int64)
        labels[positions] = originals
        return corrupted, labels


def sequence_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent random stream for one (seed, epoch, index, ...) -- cheap and order-free."""
    return np.random.Generator(np.random.Philox(key=_mix(seed, *keys)))


def _mix(*values: int) -> int:
    # SplitMix64 over the values: a 64-bit key that differs for every tuple
    x = 0x9E3779B97F4A7C15
    mask = (1 << 64) - 1
    for v in values:
        x = (x ^ (int(v) & mask)) * 0xBF58476D1CE4E5B9 & mask
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & mask
        x ^= x >> 31
    return x
