"""The one batching loop behind embeddings, fill-mask and every pipeline.

Texts are tokenized once without padding, sorted by length so that each batch pads only to its
own longest row (most of a naive batch is padding on real text), run under
`torch.inference_mode`, and handed back with their input indices so callers restore input order.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from bertkit.errors import BertkitError
from bertkit.model.fast_paths import fast_inference

Consume = Callable[[list[int], Any, torch.Tensor], None]  # (input indices, model output, mask [B, T])


def tokenize(tokenizer: Any, texts: Sequence[str], max_seq_len: int, offsets: bool = False) -> Any:
    """Unpadded, truncated encodings: the lists the length sort works on."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise BertkitError("texts must be a list of strings")
    return tokenizer(
        list(texts), padding=False, truncation=True, max_length=max_seq_len, return_offsets_mapping=offsets
    )


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length (longest batch first, so memory peaks at once)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[b : b + batch_size] for b in range(0, len(order), batch_size)]


def pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Rows of ids -> [B, T] padded on the right with `value`, built in one call from padded lists
    (a tensor per row, copied into place, costs two torch calls a row: it showed in the profile)."""
    width = max(len(r) for r in rows)
    return torch.tensor([[*r, *[value] * (width - len(r))] for r in rows], dtype=torch.long)  # [B, T]


def calibration_batches(encoded: Any, n: int = 256, batch_size: int = 32) -> list[dict[str, torch.Tensor]]:
    """The first n texts as padded batches: real activations for int8 calibration."""
    ids = encoded["input_ids"][:n]
    return [
        {
            "input_ids": pad(ids[b : b + batch_size], 0),
            "attention_mask": pad([[1] * len(r) for r in ids[b : b + batch_size]], 0),
        }
        for b in range(0, len(ids), batch_size)
    ]


@contextlib.contextmanager
def progress_callback(
    progress: bool | Callable[[int], None], total: int, desc: str
) -> Iterator[Callable[[int], None] | None]:
    """progress=True: a tqdm bar on stderr (never stdout, which may carry results) counting texts;
    a callable is used as it is; False: nothing."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield None
        return

    bar = tqdm(total=total, desc=desc, unit=" texts", file=sys.stderr, dynamic_ncols=True)
    try:
        yield bar.update
    finally:
        bar.close()


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (a parameter-free test double runs on the CPU)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def for_each_batch(
    model: torch.nn.Module,
    encoded: Any,
    batch_size: int,
    consume: Consume,
    workers: int | None = None,
    mask_token_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    **forward: Any,
) -> None:
    """Run the model over length-sorted batches, calling consume(indices, output, mask [B, T]).

    With several CPU threads, batches go to that many worker threads with one intra-op thread
    each instead of one batch at a time on all threads: the small matmuls of short sentences
    scale poorly across threads, independent batches scale almost perfectly. With
    mask_token_id, an MLM model scores only the [MASK] positions (rows in row-major order).
    progress(n) is called after each batch with the number of texts it held.
    """
    if batch_size < 1:
        raise BertkitError(f"batch_size must be >= 1, got {batch_size}")
    ids, types = encoded["input_ids"], encoded["token_type_ids"]
    pad_id = int(getattr(model.config, "pad_token_id", 0) or 0)
    batches = sorted_batches([len(r) for r in ids], batch_size)
    device = model_device(model)
    lock = threading.Lock()

    def run(idx: list[int]) -> None:
        input_ids = pad([ids[i] for i in idx], pad_id).to(device)
        mask = pad([[1] * len(ids[i]) for i in idx], 0).to(device)
        token_types = pad([types[i] for i in idx], 0).to(device) if any(any(types[i]) for i in idx) else None
        kwargs = dict(forward)
        if mask_token_id is not None:
            kwargs["masked_positions"] = input_ids == mask_token_id
        with fast_inference():  # oneDNN projections on CPUs where they are faster (bertkit.model.fast_paths)
            result = model(input_ids, mask, token_types, **kwargs)
        consume(idx, result, mask)  # rows of its own: no lock needed
        if progress is not None:
            with lock:  # a progress bar is not thread-safe
                progress(len(idx))

    threads = torch.get_num_threads() if workers is None else workers
    if device.type != "cpu":
        threads = 1  # one stream of batches keeps an accelerator busy
    was_training = model.training
    model.eval()
    try:
        if threads <= 1 or len(batches) < 2:
            with torch.inference_mode():
                for idx in batches:
                    run(idx)
        else:
            _run_in_workers(batches, run, min(threads, len(batches)))
    finally:
        model.train(was_training)


def _run_in_workers(batches: list[list[int]], run: Callable[[list[int]], None], workers: int) -> None:
    """Each worker thread takes the next batch from a shared queue (balances uneven batches)."""
    outer = torch.get_num_threads()
    lock = threading.Lock()
    position = [0]
    errors: list[BaseException] = []

    def work() -> None:
        torch.set_num_threads(1)  # this thread's OpenMP/MKL pool only
        try:
            with torch.inference_mode():
                while True:
                    with lock:
                        k = position[0]
                        if k >= len(batches) or errors:
                            return
                        position[0] = k + 1
                    run(batches[k])
        except BaseException as err:  # re-raised in the caller's thread
            errors.append(err)

    pool = [threading.Thread(target=work, name=f"bertkit-infer-{w}", daemon=True) for w in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    torch.set_num_threads(outer)  # new threads inherit the process-wide count: restore it
    if errors:
        raise errors[0]
