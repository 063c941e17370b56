"""Trainers: count words once, then merge symbol pairs until the vocabulary is full.

The lecture's two criteria for which pair (a, b) to merge next:

* BPE (and byte-level BPE): the most frequent pair, count(ab).
* WordPiece: the pair that most raises the likelihood of the training data under a unigram
  model, count(ab) / (count(a) * count(b)) -- frequent together, rare apart. A merge changes
  count(a) and count(b), so the scores of every pair holding a or b are refreshed too.

Both pick the best pair from a heap with lazy deletion: an entry whose count or score is out of
date is re-queued when it reaches the top. Ties go to the pair with the newest symbol, so a merge
tends to grow the token just made (the lecture's st, me, men).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from math import log

from bertkit.errors import BertkitError
from bertkit.tokenizers.merges import PairStats, sym, sym_id

DEFAULT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _alphabet(word_counts: Counter, limit: int | None, initial: Sequence[str] = ()) -> list[str]:
    chars: Counter = Counter()
    for word, n in word_counts.items():
        for c in word:
            chars[c] += n
    keep = [c for c, _ in chars.most_common(limit)] if limit is not None else list(chars)
    return sorted(set(keep) | set(initial))


def _check_size(vocab_size: int, base: int, n_alpha: int, n_special: int) -> None:
    if vocab_size < base:
        raise BertkitError(
            f"vocab_size={vocab_size} is smaller than the alphabet ({n_alpha} symbols + {n_special} special tokens "
            f"= {base}); raise vocab_size or pass limit_alphabet"
        )


def _progress(total: int, show: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=max(total, 0), desc=desc, unit=" merges", disable=not show)


def train_bpe(
    word_counts: Counter,
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (),
    limit_alphabet: int | None = None,
    initial_alphabet: Sequence[str] = (),
    continuing_subword_prefix: str = "",
    end_of_word_suffix: str = "",
    show_progress: bool = True,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Frequency-merge BPE -> (vocab, merges in the order learned)."""
    alphabet = _alphabet(word_counts, limit_alphabet, initial_alphabet)
    vocab: dict[str, int] = {}
    for t in list(special_tokens) + alphabet:
        vocab.setdefault(t, len(vocab))
    _check_size(vocab_size, len(vocab), len(alphabet), len(special_tokens))
    prefix, suffix = continuing_subword_prefix, end_of_word_suffix

    def symbol(s: str) -> str:
        if s not in vocab:
            vocab[s] = len(vocab)
        return sym(vocab[s])

    allowed = set(alphabet)
    words, freqs = [], []
    for word, n in word_counts.items():
        if not word or not allowed.issuperset(word):
            continue  # a word with a dropped (rare) character cannot be built from the alphabet
        last = len(word) - 1
        words.append(
            "".join(
                symbol((prefix if i and prefix else "") + c + (suffix if i == last and suffix else ""))
                for i, c in enumerate(word)
            )
        )
        freqs.append(n)
    if not words:
        raise BertkitError("the training data holds no words; pass non-empty text")
    tokens = {i: t for t, i in vocab.items()}
    stats = PairStats(words, freqs)
    merges: list[tuple[str, str]] = []

    def entry(p: str, c: int):
        a, b = sym_id(p[0]), sym_id(p[1])
        return (-c, -max(a, b), -a, p)

    heap = [entry(p, c) for p, c in stats.count.items() if c >= min_frequency]
    heapq.heapify(heap)
    bar = _progress(vocab_size - len(vocab), show_progress, "BPE merges")
    cut = len(prefix)
    with bar:
        while len(vocab) < vocab_size and heap:
            negc, _, _, p = heapq.heappop(heap)
            c = stats.count.get(p, 0)
            if c != -negc:  # out of date: re-queue with the true count
                if c >= min_frequency:
                    heapq.heappush(heap, entry(p, c))
                continue
            a, b = tokens[sym_id(p[0])], tokens[sym_id(p[1])]
            merged = a + (b[cut:] if cut and b.startswith(prefix) else b)
            if merged not in vocab:
                vocab[merged] = len(vocab)
                tokens[vocab[merged]] = merged
                bar.update(1)
            merges.append((a, b))
            new = sym(vocab[merged])
            changed, _ = stats.merge(p, new)
            for q, d in changed.items():
                if d > 0 and new in q:
                    cq = stats.count[q]
                    if cq >= min_frequency:
                        heapq.heappush(heap, entry(q, cq))
    return vocab, merges


_LOG_TABLE = 1 << 16


def _log_table() -> list[float]:
    """log(n) for small counts: a list lookup beats a call in the hottest loop."""
    return [0.0] + [log(n) for n in range(1, _LOG_TABLE)]


def train_wordpiece(
    word_counts: Counter,
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = (),
    limit_alphabet: int | None = None,
    initial_alphabet: Sequence[str] = (),
    prefix: str = "##",
    show_progress: bool = True,
    criterion: str = "likelihood",
    tolerance: float = 1e-3,
    park_pairs: bool = True,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Likelihood-merge WordPiece -> (vocab, merges in the order learned). Pieces inside a word
    carry `prefix`; tokenizing uses the vocabulary only (longest match first).

    criterion="likelihood" merges the pair whose merge most raises the log-likelihood of the
    training data under a unigram model of the symbols: count(ab) * log(N * count(ab) /
    (count(a) * count(b))), N the number of symbols -- the ratio p(ab) / (p(a) p(b)) of the
    lecture, weighed by how often the gain is collected. criterion="ratio" maximises the ratio
    count(ab) / (count(a) * count(b)) alone; it prefers pairs of rare symbols so strongly that
    "the" stays "th ##e" even in a 30,000-piece vocabulary (see bench/train_tokenizer.py).

    Merging (a, b) lowers count(a) and count(b), which raises the score of every other pair
    holding a or b. Re-scoring all of them after every merge is exact but slow (frequent pieces
    such as "##e" sit in thousands of pairs), so a symbol's pairs are re-scored once its count
    has fallen by more than `tolerance` (relative) since they were last scored: each merge
    picks a pair within a factor (1 + tolerance)^2 of the best ratio. tolerance=0 is exact.
    """
    if criterion not in ("likelihood", "ratio"):
        raise BertkitError(f"criterion={criterion!r} is not 'likelihood' or 'ratio'")
    alphabet = _alphabet(word_counts, limit_alphabet, initial_alphabet)
    vocab: dict[str, int] = {}
    # every character both word-initial and as a continuation, so no seen character is [UNK]
    for t in list(special_tokens) + alphabet + [prefix + c for c in alphabet]:
        vocab.setdefault(t, len(vocab))
    _check_size(vocab_size, len(vocab), 2 * len(alphabet), len(special_tokens))
    first = {c: sym(vocab[c]) for c in alphabet}
    inner = {c: sym(vocab[prefix + c]) for c in alphabet}
    allowed = set(alphabet)
    words, freqs = [], []
    for word, n in word_counts.items():
        if not word or not allowed.issuperset(word):
            continue
        words.append(first[word[0]] + "".join(map(inner.__getitem__, word[1:])))
        freqs.append(n)
    if not words:
        raise BertkitError("the training data holds no words; pass non-empty text")
    tokens = {i: t for t, i in vocab.items()}
    stats = PairStats(words, freqs)
    count = stats.count
    symbol_count = [0] * (vocab_size + 1)  # by symbol id
    for c, n in stats.symbol_counts().items():
        symbol_count[sym_id(c)] = n
    scored_at = list(symbol_count)  # each symbol's count when its pairs were last scored
    log_count = [log(n) if n > 0 else 0.0 for n in symbol_count]
    n_symbols = [sum(symbol_count)]  # N, the length of the training data in symbols
    info: dict[str, tuple[int, int, int]] = {}  # pair -> (id a, id b, tie-break key)
    pairs_of: dict[int, set[str]] = {}  # symbol id -> pairs it is part of
    ratio = criterion == "ratio"
    merges: list[tuple[str, str]] = []

    def register(p: str) -> None:
        """Note a pair that can be merged (count >= min_frequency) under both its symbols."""
        if p not in info:
            ia, ib = sym_id(p[0]), sym_id(p[1])
            info[p] = (ia, ib, -((max(ia, ib) << 21) | ia))
        ia, ib, _ = info[p]
        pairs_of.setdefault(ia, set()).add(p)
        pairs_of.setdefault(ib, set()).add(p)

    def entry(p: str, c: int):
        """Heap entry of a pair: best score first, then higher count, then newest symbol."""
        ia, ib, tb = info[p]
        if ratio:
            return (-c / (symbol_count[ia] * symbol_count[ib]), -c, tb, p)
        return (-c * (log(c) - log_count[ia] - log_count[ib] + log(n_symbols[0])), -c, tb, p)

    for p, c in count.items():
        if c >= min_frequency:
            register(p)
    heap = [entry(p, c) for p, c in count.items() if c >= min_frequency]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    park = not ratio and park_pairs
    parked: list[tuple[float, str]] = []  # (-bound on the gain, pair) of pairs set aside
    park_set: set[str] = set()
    log_n0 = log(n_symbols[0])
    last_score = 0.0
    logs = _log_table() if not ratio else []
    bar = _progress(vocab_size - len(vocab), show_progress, "WordPiece merges")
    cut = len(prefix)
    with bar:
        while len(vocab) < vocab_size and heap:
            top = pop(heap)
            p = top[3]
            c = count.get(p, 0)
            if c < min_frequency:
                continue
            fresh = entry(p, c)
            # A stored entry is out of date when its pair's count fell (score fell) or N fell
            # (the likelihood gain of every pair fell). Both only lower scores, so a fresh
            # entry that still beats the best stored one is the best pair.
            if fresh != top and heap and fresh > heap[0]:
                push(heap, fresh)
                continue
            if parked and -parked[0][0] >= -fresh[0]:  # a parked pair might beat it: unpark those
                while parked and -parked[0][0] >= -fresh[0]:
                    _, q = heapq.heappop(parked)
                    park_set.discard(q)
                    cq = count.get(q, 0)
                    if cq >= min_frequency:
                        register(q)
                        push(heap, entry(q, cq))
                push(heap, fresh)
                continue
            last_score = -fresh[0]
            ia, ib, _ = info[p]
            a, b = tokens[ia], tokens[ib]
            merged = a + (b[cut:] if b.startswith(prefix) else b)
            if merged not in vocab:
                vocab[merged] = len(vocab)
                tokens[vocab[merged]] = merged
                bar.update(1)
            merges.append((a, b))
            inew = vocab[merged]
            new = sym(inew)
            changed, n_merged = stats.merge(p, new)
            symbol_count[ia] -= n_merged
            symbol_count[ib] -= n_merged
            symbol_count[inew] += n_merged
            n_symbols[0] -= n_merged
            for s in (ia, ib, inew):
                log_count[s] = log(symbol_count[s]) if symbol_count[s] > 0 else 0.0
            for q, d in changed.items():
                if d > 0 and new in q and count[q] >= min_frequency:
                    register(q)
            if len(heap) > 4 * len(count) + 100_000:  # too many stale entries: rebuild
                heap = [entry(q, cq) for q, cq in count.items() if cq >= min_frequency and q not in park_set]
                heapq.heapify(heap)
                scored_at = list(symbol_count)
                continue
            # count(a) and count(b) fell, so every pair holding them scores higher now: re-score
            # those pairs once the fall is more than `tolerance` since they were last scored
            # Parking (likelihood only): a pair's gain can never exceed count * log(N0 / count)
            # (count(a), count(b) >= count(ab), N <= N0), so a pair whose bound is below half the
            # last merge's gain is set aside, unscored, until the best gain falls to its bound.
            log_n = log(n_symbols[0])
            park_below = last_score - 0.5 * abs(last_score) if park else None
            for s in (ia, ib, inew):
                n = symbol_count[s]
                if n and (s == inew or scored_at[s] > n * (1.0 + tolerance)):
                    scored_at[s] = n
                    dead = []
                    for q in pairs_of.get(s, ()):
                        cq = count.get(q, 0)
                        if cq < min_frequency:  # pair counts only fall: it cannot be merged any more
                            dead.append(q)
                            continue
                        qa, qb, tb = info[q]
                        if ratio:
                            key = -cq / (symbol_count[qa] * symbol_count[qb])
                        else:
                            log_c = logs[cq] if cq < _LOG_TABLE else log(cq)
                            bound = cq * (log_n0 - log_c)
                            if park and bound < park_below:
                                dead.append(q)
                                park_set.add(q)
                                heapq.heappush(parked, (-bound, q))
                                continue
                            key = -cq * (log_c - log_count[qa] - log_count[qb] + log_n)
                        push(heap, (key, -cq, tb, q))
                    for q in dead:
                        pairs_of[sym_id(q[0])].discard(q)
                        pairs_of[sym_id(q[1])].discard(q)
    return vocab, merges


def train_tokenizer(
    source,
    model: str = "wordpiece",
    vocab_size: int = 30000,
    min_frequency: int = 2,
    lowercase: bool | None = None,
    special_tokens: Sequence[str] | None = None,
    limit_alphabet: int | None = None,
    show_progress: bool = True,
    continuing_subword_prefix: str | None = None,
    end_of_word_suffix: str | None = None,
    model_max_length: int = 512,
    criterion: str = "likelihood",
):
    """Build the pipeline for `model`, count the corpus's words with it, learn the vocabulary."""
    from bertkit.tokenizers.added_tokens import AddedToken
    from bertkit.tokenizers.bpe import BPE
    from bertkit.tokenizers.bytelevel import ALPHABET
    from bertkit.tokenizers.corpus import count_words
    from bertkit.tokenizers.decoders import BPEDecoder, ByteLevelDecoder, Decoder, WordPieceDecoder
    from bertkit.tokenizers.normalizers import BertNormalizer, Lowercase
    from bertkit.tokenizers.post_processors import TemplateProcessing
    from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer, ByteLevel
    from bertkit.tokenizers.tokenizer import Tokenizer
    from bertkit.tokenizers.wordpiece import WordPiece

    if model not in ("wordpiece", "bpe", "bytelevel"):
        raise BertkitError(f"model={model!r} is not one of 'wordpiece', 'bpe', 'bytelevel'")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise BertkitError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    min_frequency = max(1, int(min_frequency))
    specials = list(DEFAULT_SPECIAL_TOKENS if special_tokens is None else special_tokens)
    if len(set(specials)) != len(specials):
        raise BertkitError(f"special_tokens has duplicates: {specials}")
    if lowercase is None:
        lowercase = model != "bytelevel"

    if model == "bytelevel":
        normalizer = Lowercase() if lowercase else None
        pre = ByteLevel(add_prefix_space=False)
    else:
        normalizer = BertNormalizer(lowercase=lowercase)
        pre = BertPreTokenizer()
    counts = count_words(source, normalizer, pre, show_progress)
    if not counts:
        raise BertkitError("the training data holds no words (empty files or texts); pass a non-empty corpus")

    if model == "wordpiece":
        prefix = "##" if continuing_subword_prefix is None else continuing_subword_prefix
        vocab, _ = train_wordpiece(
            counts,
            vocab_size,
            min_frequency,
            specials,
            limit_alphabet,
            prefix=prefix,
            show_progress=show_progress,
            criterion=criterion,
        )
        unk = "[UNK]" if "[UNK]" in specials else (specials[0] if specials else None)
        if unk is None:
            raise BertkitError("a WordPiece vocabulary needs an unknown token; include '[UNK]' in special_tokens")
        tok_model = WordPiece(vocab, unk_token=unk, continuing_subword_prefix=prefix)
        decoder = WordPieceDecoder(prefix)
    else:
        prefix = continuing_subword_prefix or ""
        suffix = end_of_word_suffix or ""
        initial = ALPHABET if model == "bytelevel" else ()
        vocab, merges = train_bpe(
            counts, vocab_size, min_frequency, specials, limit_alphabet, initial, prefix, suffix, show_progress
        )
        unk = "[UNK]" if model == "bpe" and "[UNK]" in specials else None
        tok_model = BPE(
            vocab, merges, unk_token=unk, continuing_subword_prefix=prefix or None, end_of_word_suffix=suffix or None
        )
        if model == "bytelevel":
            decoder = ByteLevelDecoder()
        elif suffix:
            decoder = BPEDecoder(suffix)
        elif prefix:
            decoder = WordPieceDecoder(prefix, cleanup=False)
        else:
            decoder = Decoder()

    post = None
    if "[CLS]" in vocab and "[SEP]" in vocab:
        post = TemplateProcessing.bert("[CLS]", vocab["[CLS]"], "[SEP]", vocab["[SEP]"])
    return Tokenizer(
        tok_model,
        normalizer=normalizer,
        pre_tokenizer=pre,
        post_processor=post,
        decoder=decoder,
        added_tokens=[AddedToken(t, vocab[t], special=True) for t in specials],
        model_max_length=model_max_length,
    )
