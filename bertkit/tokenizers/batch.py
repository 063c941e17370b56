"""Batches: the transformers-style `tokenizer(texts, ...)` call and multi-core `encode_batch`.

`call_tokenizer` resolves padding / truncation the way `transformers` does (True means
"longest" / "longest_first", `max_length` defaults to the model's 512, special tokens count
toward it), cuts long inputs into overlapping windows when `stride` and
`return_overflowing_tokens` ask for it, and returns a `BatchEncoding`: a dict of lists, or of
tensors with `return_tensors="pt"`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bertkit.errors import BertkitError
from bertkit.tokenizers.encoding import Encoding

_PADDING = {
    False: None,
    None: None,
    "do_not_pad": None,
    True: "longest",
    "longest": "longest",
    "max_length": "max_length",
}
_TRUNCATION = {
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

    def to(self, device) -> BatchEncoding:
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device)
        return self


def _resolve(padding, truncation, max_length: int | None, model_max_length: int):
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
    if max_length is not None and max_length < 0:
        raise BertkitError(f"max_length must be >= 0, got {max_length}")
    return pad, trunc, max_length


def _as_texts(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    try:
        texts = list(value)
    except TypeError:
        raise BertkitError(f"{name} must be a str or a list of str, got {type(value).__name__}") from None
    for t in texts:
        if not isinstance(t, str):
            raise BertkitError(
                f"{name} must hold only str, found {type(t).__name__}; pre-tokenized input is not supported"
            )
    return texts


def call_tokenizer(
    tok,
    text,
    text_pair=None,
    *,
    add_special_tokens=True,
    padding=False,
    truncation=None,
    max_length=None,
    stride=0,
    return_overflowing_tokens=False,
    return_offsets_mapping=False,
    return_special_tokens_mask=False,
    return_length=False,
    return_tensors=None,
    pad_to_multiple_of=None,
) -> BatchEncoding:
    batched = not isinstance(text, str)
    texts = _as_texts(text, "text")
    pairs = None if text_pair is None else _as_texts(text_pair, "text_pair")
    if pairs is not None and len(pairs) != len(texts):
        raise BertkitError(f"got {len(texts)} texts but {len(pairs)} text pairs; pass one pair per text")
    pad, trunc, max_length = _resolve(padding, truncation, max_length, tok.model_max_length)
    if stride and trunc is None:
        raise BertkitError("stride only applies with truncation; pass truncation=True (or a strategy) and max_length")
    params = (
        None if trunc is None else {"max_length": max_length, "strategy": trunc, "stride": stride, "direction": "right"}
    )
    n_special = tok.num_special_tokens_to_add(pairs is not None) if add_special_tokens else 0

    encs: list[Encoding] = []
    simple = tok._simple is not None
    for i, t in enumerate(texts):
        first = tok._encode_sequence(t)
        second = tok._encode_sequence(pairs[i]) if pairs is not None else None
        size = len(first[0]) + (len(second[0]) if second is not None else 0) + n_special
        if simple and (params is None or size <= max_length):
            encs.append(tok._assemble(first, second, add_special_tokens))
        else:
            encs.append(tok.post_process(first, second, add_special_tokens, params))

    if pad is not None:
        length = max_length if pad == "max_length" else max((len(e) for e in encs), default=0)
        tok._pad(encs, length, pad_to_multiple_of)

    rows: list[Encoding] = []
    sample_map: list[int] = []
    for i, enc in enumerate(encs):
        windows = [enc] + enc.overflowing if return_overflowing_tokens else [enc]
        rows.extend(windows)
        sample_map.extend([i] * len(windows))
    data: dict[str, list] = {
        "input_ids": [r.ids for r in rows],
        "token_type_ids": [r.type_ids for r in rows],
        "attention_mask": [r.attention_mask for r in rows],
    }
    if return_special_tokens_mask:
        data["special_tokens_mask"] = [r.special_tokens_mask for r in rows]
    if return_offsets_mapping:
        data["offset_mapping"] = [r.offsets for r in rows]
    if return_length:
        data["length"] = [len(r.ids) for r in rows]
    if return_overflowing_tokens:
        data["overflow_to_sample_mapping"] = sample_map
    if return_tensors is not None:
        data = _to_tensors(data, return_tensors)
    elif not batched and not return_overflowing_tokens:
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
        import numpy as np

        return {k: np.asarray(v, dtype=np.int64) for k, v in data.items()}
    import torch

    return {k: torch.tensor(v, dtype=torch.long) for k, v in data.items()}


# multi-core encode_batch ------------------------------------------------------------------------
MIN_PARALLEL_TEXTS = 2000  # below this, forking costs more than it saves
_JOB = None  # (tokenizer, texts, pairs, add_special_tokens, bounds), inherited by forked children


def default_workers() -> int:
    env = os.environ.get("BERTKIT_NUM_WORKERS")
    if env:
        return max(1, int(env))
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


def encode_many(
    tok, texts: Sequence[str], pairs: Sequence[str] | None, add_special_tokens: bool, num_workers: int | None
) -> list[Encoding]:
    """Encode serially, or split the batch over forked processes: the parent encodes a first
    part itself while each child encodes another and sends its encodings back pickled.

    A child also pickles what it encoded (~15% more work), so the parent keeps a slightly
    larger share and both finish together; the parent then unpickles the children's part
    (~35% of encoding it). With 2 processes: ~54% / 46%, about 1.4x the speed of one.
    """
    import multiprocessing as mp

    workers = idle_workers() if num_workers is None else max(1, num_workers)
    if workers == 1 or len(texts) < MIN_PARALLEL_TEXTS or "fork" not in mp.get_all_start_methods():
        return tok._encode_pairs_serial(texts, pairs, add_special_tokens)
    global _JOB
    ctx = mp.get_context("fork")
    parent_share = CHILD_COST  # relative to one child's share: both sides finish together
    child = len(texts) / (parent_share + workers - 1)
    cuts = [0, round(parent_share * child)] + [round(parent_share * child + k * child) for k in range(1, workers)]
    cuts[-1] = len(texts)
    bounds = list(zip(cuts, cuts[1:]))
    _JOB = (tok, texts, pairs, add_special_tokens, bounds)
    children = []
    try:
        for k in range(1, len(bounds)):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(k, send), daemon=True)
            proc.start()
            send.close()
            children.append((proc, receive))
        a, b = bounds[0]
        out = tok._encode_pairs_serial(texts[a:b], None if pairs is None else pairs[a:b], add_special_tokens)
        for proc, receive in children:
            try:
                payload = receive.recv_bytes()
            except EOFError:
                raise BertkitError("a worker process of encode_batch died; retry with num_workers=1") from None
            out.extend(_unpack(payload, tok._table))
            proc.join()
    finally:
        _JOB = None
        for proc, _ in children:
            if proc.is_alive():
                proc.kill()
    return out


CHILD_COST = 1.15  # encode + pickle, per text, relative to encode alone (measured)


def _child(k: int, send) -> None:
    tok, texts, pairs, add_special_tokens, bounds = _JOB
    a, b = bounds[k]
    encs = tok._encode_pairs_serial(texts[a:b], None if pairs is None else pairs[a:b], add_special_tokens)
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


def _build(f: tuple, table) -> Encoding:
    ids, types, offsets, words, special, attention, ranges, over = f
    return Encoding(ids, types, offsets, words, special, attention, table, [_build(o, table) for o in over], ranges)


def _pack(encs: list[Encoding]) -> bytes:
    import pickle

    return pickle.dumps([_fields(e) for e in encs], protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(payload: bytes, table) -> list[Encoding]:
    import pickle

    return [_build(f, table) for f in pickle.loads(payload)]
