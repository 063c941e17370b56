"""Pretraining batches: a per-epoch plan of global batches and the MLM/NSP collate function.

Plan: each epoch is a fresh permutation of all instances (seeded by seed and epoch), cut into
mega-batches of `group` global batches; inside a mega-batch instances are sorted by length, so a
batch (and each of its micro-batches) holds similar lengths and pads little. The batch order is
then shuffled again so lengths do not trend within an epoch. Plans are pure functions of
(lengths, batch size, seed, epoch): resuming at step k of epoch e replays the same batches.

Collate: pad to the batch's longest row, and apply dynamic masking with a random stream per
(seed, epoch, instance), so each instance is masked differently each epoch but identically
whichever process, micro-batch or resume point handles it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bertkit.constants import IGNORE_INDEX
from bertkit.data.masking import Masker, sequence_rng
from bertkit.data.shards import PretrainingData
from bertkit.errors import BertkitError

EVAL_STREAM = 1 << 41  # masking stream of the evaluation instances, apart from every epoch's


def length_grouped_plan(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group: int = 64, drop_last: bool = True
) -> list[np.ndarray]:
    """Shuffled global batches of instance indices with similar lengths inside each batch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    span = batch_size * max(1, group)
    for m in range(0, len(order), span):
        block = order[m : m + span]
        block = block[np.argsort(lengths[block], kind="stable")]
        batches.extend(block[b : b + batch_size] for b in range(0, len(block), batch_size))
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return [batches[i] for i in rng.permutation(len(batches))]


def random_plan(n: int, batch_size: int, seed: int, epoch: int, drop_last: bool = True) -> list[np.ndarray]:
    """Plain shuffled batches (no length grouping)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    batches = [order[b : b + batch_size] for b in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


class PretrainingCollator:
    """Instance indices -> padded, masked tensors for BertForPreTraining.

    Output: input_ids, token_type_ids, attention_mask [B, T]; labels [B, T] (original id at the
    predicted positions, -100 elsewhere); next_sentence_label [B] (0 isNext, 1 notNext).
    """

    def __init__(
        self,
        data: PretrainingData,
        masker: Masker | None,
        seed: int,
        pad_id: int = 0,
        stream: int | None = None,
        pad_to_multiple_of: int = 1,
    ):
        self.data, self.masker, self.seed, self.pad_id = data, masker, seed, pad_id
        self.stream = stream  # a fixed masking stream (evaluation) instead of the epoch's
        self.multiple = max(1, pad_to_multiple_of)

    def __call__(self, indices: Sequence[int], epoch: int = 0) -> dict[str, torch.Tensor]:
        items = [self.data[int(i)] for i in indices]
        width = max(len(it[0]) for it in items)
        width = -(-width // self.multiple) * self.multiple
        B = len(items)
        ids = np.full((B, width), self.pad_id, dtype=np.int64)
        types = np.zeros((B, width), dtype=np.int64)
        mask = np.zeros((B, width), dtype=np.int64)
        labels = np.full((B, width), IGNORE_INDEX, dtype=np.int64)
        nsp = np.zeros(B, dtype=np.int64)
        for r, (i, (tokens, starts, len_a, not_next, static)) in enumerate(zip(indices, items)):
            n = len(tokens)
            if static is not None:
                corrupted, lab = tokens, static
            else:
                key = (self.stream, int(i)) if self.stream is not None else (epoch, int(i))
                if self.masker is None:
                    raise BertkitError("dynamic masking needs a Masker (the data has no static masks)")
                corrupted, lab = self.masker.mask_labels(tokens, starts, sequence_rng(self.seed, *key))
            ids[r, :n] = corrupted
            labels[r, :n] = lab
            types[r, len_a:n] = 1
            mask[r, :n] = 1
            nsp[r] = not_next
        return {
            "input_ids": torch.from_numpy(ids),
            "token_type_ids": torch.from_numpy(types),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(labels),
            "next_sentence_label": torch.from_numpy(nsp),
        }
