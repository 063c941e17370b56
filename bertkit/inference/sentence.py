"""Token vectors -> sentence vectors, the way sentence-transformers pools them.

The pooling modes are sentence-transformers' (several are concatenated in the order given):
cls (first unmasked token), max, mean, mean_sqrt_len_tokens (sum / sqrt(tokens)), weightedmean
(token i weighted by its position i), lasttoken (last unmasked token). Which mode a folder asks
for is read by bertkit.sentence_folder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bertkit.errors import BertkitError
from bertkit.sentence_folder import POOLINGS


def pool(
    hidden: torch.Tensor, mask: torch.Tensor, modes: str | tuple[str, ...], prompt_length: int = 0
) -> torch.Tensor:
    """[B, T, H] token vectors -> [B, H * len(modes)] sentence vectors, padding (right) excluded.

    prompt_length > 0 leaves the first prompt_length tokens ([CLS] + the prompt's) out of the
    pooling, as sentence-transformers does when include_prompt is false.
    """
    hidden = hidden.float()
    mask = mask.clone()
    if prompt_length:
        mask[:, :prompt_length] = 0
    m = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    count = m.sum(1).clamp(min=1e-9)  # [B, 1]
    out = []
    for mode in (modes,) if isinstance(modes, str) else modes:
        if mode == "cls":
            out.append(hidden[torch.arange(len(hidden)), mask.int().argmax(1)])
        elif mode == "max":
            out.append(hidden.masked_fill(m == 0, float("-inf")).amax(1))
        elif mode == "mean":
            out.append((hidden * m).sum(1) / count)
        elif mode == "mean_sqrt_len_tokens":
            out.append((hidden * m).sum(1) / count.sqrt())
        elif mode == "weightedmean":
            weights = m * torch.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype, device=hidden.device)[:, None]
            out.append((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9))
        elif mode == "lasttoken":
            last = mask.shape[1] - 1 - mask.flip(1).int().argmax(1)
            out.append(hidden[torch.arange(len(hidden)), last] * mask.any(1, keepdim=True))
        else:
            raise BertkitError(f"pooling {mode!r} is not one of {', '.join(POOLINGS)}")
    return out[0] if len(out) == 1 else torch.cat(out, -1)


def check_pooling(pooling: str | Sequence[str]) -> tuple[str, ...]:
    modes = (pooling,) if isinstance(pooling, str) else tuple(pooling)
    for mode in modes:
        if mode not in POOLINGS:
            raise BertkitError(f"pooling {mode!r} is not one of {', '.join(POOLINGS)}")
    if not modes:
        raise BertkitError(f"pooling: name at least one of {', '.join(POOLINGS)}")
    return modes
