"""Batches: the transformers-style `tokenizer(texts, ...)` call and multi-core `encode_batch`.

`call_tokenizer` resolves padding / truncation the way `transformers` does (True means
"longest" / "longest_first", `max_length` defaults to the model's 512, special tokens count
toward it), cuts long inputs into overlapping windows when `stride` and
`return_overflowing_tokens` ask for it, and returns a `BatchEncoding`: a dict of lists, or of
tensors with `return_tensors="pt"`. It uses only the tokenizer's public methods
(`encode_pieces`, `assemble`, `pad_encodings`).

`encode_many` splits a large batch over forked processes. It falls back to encoding in this
process -- same result, never a hang -- when forking is not safe (another thread is running,
or the platform cannot fork) and when a worker dies or does not answer in time.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bertkit.errors import BertkitError
from bertkit.log import get_logger
from bertkit.tokenizers.encoding import Encoding

logger = get_logger(__name__)

_PADDING: dict[Any, str | None] = {
    False: None,
    None: None,
    "do_not_pad": None,
    True: "longest",
    "longest": "longest",
    "max_length": "max_length",
}
_TRUNCATION: dict[Any, str | None] = {
    False: None,
    None: None,
    "do_not_truncate": None,
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}


class BatchEncoding(dict):
    """input_ids, token_type_ids, attention_mask (+ offset_mapping, ...) with the Encodings kept."""

    def __init__(self, data: dict, encodings: list[Encoding]) -> None:
        super().__init__(data)
        self.encodings = encodings

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self.encodings[batch_index].word_ids

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self.encodings[batch_index].sequence_ids

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self.encodings[batch_index].tokens

    def char_to_token(self, batch_index: int, char_index: int | None = None, sequence_index: int = 0) -> int | None:
        if char_index is None:
            batch_index, char_index = 0, batch_index
        return self.encodings[batch_index].char_to_token(char_index, sequence_index)

    def to(self, device: Any) -> BatchEncoding:
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


@dataclass
class CallOptions:
    """The keyword arguments of `Tokenizer.__call__` (transformers' names and defaults)."""

    add_special_tokens: bool = True
    padding: bool | str = False
    truncation: bool | str | None = None
    max_length: int | None = None
    stride: int = 0
    is_split_into_words: bool = False
    pad_to_multiple_of: int | None = None
    padding_side: str | None = None
    return_tensors: str | None = None
    return_token_type_ids: bool | None = None
    return_attention_mask: bool | None = None
    return_overflowing_tokens: bool = False
    return_special_tokens_mask: bool = False
    return_offsets_mapping: bool = False
    return_length: bool = False


def _resolve(padding: Any, truncation: Any, max_length: int | None, model_max_length: int):
    if padding not in _PADDING:
        raise BertkitError(f"padding={padding!r} is not one of True, False, 'longest', 'max_length', 'do_not_pad'")
    if truncation not in _TRUNCATION:
        raise BertkitError(
            f"truncation={truncation!r} is not one of True, False, 'longest_first', 'only_first', 'only_second'"
        )
    pad, trunc = _PADDING[padding], _TRUNCATION[truncation]
    if truncation is None and max_length is not None and pad is None:
        trunc = "longest_first"  # as transformers: a max_length alone means "truncate to it"
    if max_length is None and (trunc is not None or pad == "max_length"):
        max_length = model_max_length
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0):
        raise BertkitError(f"max_length must be a whole number >= 0, got {max_length!r}")
    return pad, trunc, max_length


def _inputs(value: Any, name: str, split: bool) -> tuple[list[Any], bool]:
    """(the sequences, whether the call was batched). A sequence is a str, or with `split`
    (is_split_into_words) a list of words."""
    if split:
        if isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value):
            return [list(value)], False  # one pre-split sequence
        if isinstance(value, (list, tuple)) and all(
            isinstance(s, (list, tuple)) and all(isinstance(w, str) for w in s) for s in value
        ):
            return [list(s) for s in value], True
        raise BertkitError(f"with is_split_into_words=True, {name} must be a list of words or a list of such lists")
    if isinstance(value, str):
        return [value], False
    try:
        texts = list(value)
    except TypeError:
        raise BertkitError(f"{name} must be a str or a list of str, got {type(value).__name__}") from None
    for t in texts:
        if not isinstance(t, str):
            raise BertkitError(
                f"{name} must hold only str, found {type(t).__name__}; for lists of words pass is_split_into_words=True"
            )
    return texts, True


def call_tokenizer(tok: Any, text: Any, text_pair: Any, options: CallOptions) -> BatchEncoding:
    """`tok(text, text_pair, **options)`, as transformers' fast tokenizers answer it."""
    o = options
    split = o.is_split_into_words
    texts, batched = _inputs(text, "text", split)
    pairs = None if text_pair is None else _inputs(text_pair, "text_pair", split)[0]
    if pairs is not None and len(pairs) != len(texts):
        raise BertkitError(f"got {len(texts)} texts but {len(pairs)} text pairs; pass one pair per text")
    pad, trunc, max_length = _resolve(o.padding, o.truncation, o.max_length, tok.model_max_length)
    if o.stride and trunc is None:
        raise BertkitError("stride only applies with truncation; pass truncation=True (or a strategy) and max_length")
    side = o.padding_side or tok.padding_side
    if side not in ("left", "right"):
        raise BertkitError(f"padding_side={side!r} is not 'left' or 'right'")
    params = None
    if trunc is not None:
        params = {"max_length": max_length, "strategy": trunc, "stride": o.stride, "direction": tok.truncation_side}
    encs = []
    for i, t in enumerate(texts):
        first = tok.encode_pieces(t, split)
        second = tok.encode_pieces(pairs[i], split, "text_pair") if pairs is not None else None
        encs.append(tok.assemble(first, second, o.add_special_tokens, params))
    if pad is not None:
        length = max_length if pad == "max_length" else max((len(e) for e in encs), default=0)
        tok.pad_encodings(encs, length, o.pad_to_multiple_of, side)
    return _batch_encoding(encs, batched, o)


def _batch_encoding(encs: list[Encoding], batched: bool, o: CallOptions) -> BatchEncoding:
    """The Encodings (and their overflowing windows) as transformers' dict of columns."""
    rows: list[Encoding] = []
    sample_map: list[int] = []
    for i, enc in enumerate(encs):
        windows = [enc] + enc.overflowing if o.return_overflowing_tokens else [enc]
        rows.extend(windows)
        sample_map.extend([i] * len(windows))
    data: dict[str, Any] = {"input_ids": [r.ids for r in rows]}
    if o.return_token_type_ids is not False:
        data["token_type_ids"] = [r.type_ids for r in rows]
    if o.return_attention_mask is not False:
        data["attention_mask"] = [r.attention_mask for r in rows]
    if o.return_special_tokens_mask:
        data["special_tokens_mask"] = [r.special_tokens_mask for r in rows]
    if o.return_offsets_mapping:
        data["offset_mapping"] = [r.offsets for r in rows]
    if o.return_length:
        data["length"] = [len(r.ids) for r in rows]
    if o.return_overflowing_tokens:
        data["overflow_to_sample_mapping"] = sample_map
    if o.return_tensors is not None:
        data = _to_tensors(data, o.return_tensors)
    elif not batched and not o.return_overflowing_tokens:
        data = {k: v[0] for k, v in data.items()}
    return BatchEncoding(data, rows)


def _to_tensors(data: dict[str, list], kind: str) -> dict:
    if kind not in ("pt", "np"):
        raise BertkitError(f"return_tensors={kind!r} is not supported; use 'pt' (torch) or 'np' (numpy)")
    lengths = {
        len(row) for key, rows in data.items() if key not in ("length", "overflow_to_sample_mapping") for row in rows
    }
    if len(lengths) > 1:
        raise BertkitError(
            "the sequences have different lengths, so they cannot form one tensor; pass padding=True (or 'max_length')"
        )
    if kind == "np":
        import numpy as np  # lazy: bertkit.tokenizers loads without numpy and torch; only return_tensors needs them

        return {k: np.asarray(v, dtype=np.int64) for k, v in data.items()}
    import torch  # lazy: bertkit.tokenizers loads without numpy and torch; only return_tensors needs them

    return {k: torch.tensor(v, dtype=torch.long) for k, v in data.items()}


# multi-core encode_batch ------------------------------------------------------------------------
MIN_PARALLEL_TEXTS = 2000  # below this, forking costs more than it saves
CHILD_COST = 1.15  # encode + pickle, per text, relative to encode alone (measured)
# A worker that has not answered this long after the parent finished its own (larger) share is
# taken for stuck: it is killed and its share encoded here.
WORKER_GRACE_SECONDS = 30.0
EncodeOne = Callable[[Any, Any], Encoding]


def default_workers() -> int:
    env = os.environ.get("BERTKIT_NUM_WORKERS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise BertkitError(f"BERTKIT_NUM_WORKERS={env!r} is not a whole number; unset it or give one") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return max(1, os.cpu_count() or 1)


def idle_workers() -> int:
    """How many processes are worth using now: the cores, minus those other programs keep busy
    (1-minute load average, our own process included). On a busy machine the extra pickling
    of a second process only slows the batch down, so one process is used."""
    cores = default_workers()
    if os.environ.get("BERTKIT_NUM_WORKERS"):
        return cores
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on Unix
        return cores
    return max(1, min(cores, int(cores - busy + 1.5)))


def _serial(encode_one: EncodeOne, texts: Sequence[Any], pairs: Sequence[Any] | None, a: int, b: int) -> list:
    if pairs is None:
        return [encode_one(t, None) for t in texts[a:b]]
    return [encode_one(t, p) for t, p in zip(texts[a:b], pairs[a:b])]


def encode_many(
    encode_one: EncodeOne,
    texts: Sequence[Any],
    pairs: Sequence[Any] | None,
    table: list[str],
    num_workers: int | None,
) -> list[Encoding]:
    """encode_one(text, pair) for every text, serially or split over forked processes: the parent
    encodes a first part itself while each child encodes another and sends its encodings back
    pickled (a child also pickles, so the parent keeps a slightly larger share)."""
    workers = idle_workers() if num_workers is None else max(1, num_workers)
    # Forking copies only the calling thread: a lock another thread holds stays locked in the
    # child forever. With other threads alive the batch is encoded here instead.
    if (
        workers == 1
        or len(texts) < MIN_PARALLEL_TEXTS
        or "fork" not in mp.get_all_start_methods()
        or threading.active_count() > 1
    ):
        return _without_gc(_serial, encode_one, texts, pairs, 0, len(texts))
    ctx = mp.get_context("fork")
    child = len(texts) / (CHILD_COST + workers - 1)
    cuts = [0] + [round(CHILD_COST * child + k * child) for k in range(workers - 1)] + [len(texts)]
    bounds = list(zip(cuts, cuts[1:]))
    children = []
    try:
        for a, b in bounds[1:]:
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(encode_one, texts, pairs, a, b, send), daemon=True)
            proc.start()
            send.close()
            children.append((proc, receive, a, b))
        start = time.monotonic()
        out = _without_gc(_serial, encode_one, texts, pairs, *bounds[0])
        deadline = time.monotonic() + WORKER_GRACE_SECONDS + (time.monotonic() - start)
        for proc, receive, a, b in children:
            out.extend(_collect(proc, receive, deadline, table) or _serial(encode_one, texts, pairs, a, b))
    finally:
        for proc, receive, _, _ in children:
            receive.close()
            if proc.is_alive():
                proc.kill()
            proc.join()
    return out


def _without_gc(fn: Callable[..., list], *args: Any) -> list:
    """Run fn with the cyclic garbage collector paused: a batch allocates millions of lists that
    stay alive, and each collection would walk all of them again (they hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if enabled:
            gc.enable()


def _collect(proc: Any, receive: Any, deadline: float, table: list[str]) -> list[Encoding] | None:
    """A child's encodings, or None (with a warning) when it died or did not answer in time."""
    try:
        if receive.poll(max(0.0, deadline - time.monotonic())):
            return _without_gc(_unpack, receive.recv_bytes(), table)
        problem = "did not answer in time"
    except (EOFError, OSError, pickle.UnpicklingError):
        problem = "died"
    logger.warning(f"a worker process of encode_batch {problem}; encoding its share in this process")
    proc.kill()
    return None


def _child(encode_one: EncodeOne, texts: Sequence[Any], pairs: Sequence[Any] | None, a: int, b: int, send: Any) -> None:
    encs = _without_gc(_serial, encode_one, texts, pairs, a, b)
    send.send_bytes(_pack(encs))
    send.close()


def _fields(e: Encoding) -> tuple:
    return (
        e.ids,
        e.type_ids,
        e.offsets,
        e.word_ids,
        e.special_tokens_mask,
        e.attention_mask,
        e.sequence_ranges,
        [_fields(o) for o in e.overflowing],
    )


def _build(f: tuple, table: list[str]) -> Encoding:
    ids, types, offsets, words, special, attention, ranges, over = f
    return Encoding(ids, types, offsets, words, special, attention, table, [_build(o, table) for o in over], ranges)


def _pack(encs: list[Encoding]) -> bytes:
    return pickle.dumps([_fields(e) for e in encs], protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(payload: bytes, table: list[str]) -> list[Encoding]:
    return [_build(f, table) for f in pickle.loads(payload)]
