"""The tokenizer front: text -> normalizer -> pre-tokenizer -> model -> post-processor -> Encoding.

    tok = Tokenizer.from_vocab("vocab.txt")          # BERT's uncased WordPiece
    enc = tok.encode("Let us start pretraining the model")
    enc.tokens  # [CLS] let us start pre ##train ##ing the model [SEP]

Character offsets survive every stage: the normalizer reports where each of its characters came
from (only when a character changed length), the pre-tokenizer gives word spans, the model gives
piece spans inside a word. The common path does no per-character and almost no per-word Python
work: one `str.translate`, one `re.findall`, one `map(dict.get, words)` over a cache of whole
words, and list arithmetic; only words split into several pieces are handled one by one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from itertools import compress, count, repeat
from operator import is_
from pathlib import Path

from bertkit.errors import BertkitError
from bertkit.tokenizers.added_tokens import AddedToken, build_pattern, split_on_added
from bertkit.tokenizers.batch import BatchEncoding, encode_many
from bertkit.tokenizers.bytelevel import byte_to_char_index
from bertkit.tokenizers.decoders import Decoder, WordPieceDecoder
from bertkit.tokenizers.encoding import Encoding, truncate_pair
from bertkit.tokenizers.models import Model
from bertkit.tokenizers.normalizers import BertNormalizer, Normalizer
from bertkit.tokenizers.post_processors import TemplateProcessing
from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer, ByteLevel, PreTokenizer
from bertkit.tokenizers.wordpiece import WordPiece

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
Raw = tuple[list[int], list[tuple[int, int]], list]  # one sequence before post-processing


class Tokenizer:
    def __init__(
        self,
        model: Model,
        normalizer: Normalizer | None = None,
        pre_tokenizer: PreTokenizer | None = None,
        post_processor=None,
        decoder: Decoder | None = None,
        added_tokens: Sequence[AddedToken] = (),
        model_max_length: int = 512,
        truncation: dict | None = None,
        padding: dict | None = None,
        pad_token: str = "[PAD]",
    ) -> None:
        self.model = model
        self.normalizer = normalizer
        self.pre_tokenizer = pre_tokenizer if pre_tokenizer is not None else BertPreTokenizer()
        self.post_processor = post_processor
        self.decoder = decoder if decoder is not None else Decoder()
        self.added_tokens: list[AddedToken] = list(added_tokens)
        self.model_max_length = model_max_length
        self.truncation = truncation  # {"max_length", "strategy", "stride", "direction"}: applied by encode()
        self.padding = padding  # {"length": int | None, "pad_id", "pad_type_id", "pad_token", "direction"}
        self.pad_token = pad_token
        self._refresh()

    # set-up ----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        table = list(self.model.id_to_token_list)
        for tok in self.added_tokens:
            if tok.id >= len(table):
                table.extend([""] * (tok.id + 1 - len(table)))
            table[tok.id] = tok.content
        self._table = table
        self._special_ids = {t.id for t in self.added_tokens if t.special}
        raw = [t for t in self.added_tokens if not t.normalized]
        norm = [t for t in self.added_tokens if t.normalized]
        self._raw_added, self._raw_pattern = raw, build_pattern(raw)
        self._norm_added, self._norm_pattern = norm, build_pattern(norm)
        firsts = {t.content[0] for t in raw if t.content}
        self._raw_first = firsts if len(firsts) <= 3 else None  # cheap "could there be one?" test
        self._byte_level = isinstance(self.pre_tokenizer, ByteLevel)
        self._prefix_space = self._byte_level and self.pre_tokenizer.add_prefix_space
        pp = self.post_processor
        simple = (
            getattr(pp, "simple", None)
            if pp is not None
            else {"single": ([[], []], [0]), "pair": ([[], [], []], [0, 1])}
        )
        self._simple = None if simple is None else {k: _layout(*v) for k, v in simple.items()}

    # construction ----------------------------------------------------------------------------
    @classmethod
    def from_vocab(
        cls,
        vocab_file: str | os.PathLike,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        model_max_length: int = 512,
    ) -> Tokenizer:
        """BERT's WordPiece tokenizer from a vocab.txt (uncased when `lowercase`)."""
        model = WordPiece.from_vocab_file(vocab_file, unk_token=unk_token)
        for role, token in (("sep_token", sep_token), ("cls_token", cls_token)):
            if token not in model.vocab:
                raise BertkitError(
                    f"{vocab_file}: the vocabulary has no {token!r} ({role}); BERT's input format needs it"
                )
        specials = [t for t in (pad_token, unk_token, cls_token, sep_token, mask_token) if t in model.vocab]
        return cls(
            model,
            normalizer=BertNormalizer(
                clean_text=True,
                handle_chinese_chars=tokenize_chinese_chars,
                strip_accents=strip_accents,
                lowercase=lowercase,
            ),
            pre_tokenizer=BertPreTokenizer(),
            post_processor=TemplateProcessing.bert(
                cls_token, model.vocab[cls_token], sep_token, model.vocab[sep_token]
            ),
            decoder=WordPieceDecoder(),
            added_tokens=[AddedToken(t, model.vocab[t], special=True) for t in specials],
            model_max_length=model_max_length,
            pad_token=pad_token,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Tokenizer:
        """A Hugging Face tokenizer.json (WordPiece, BPE or byte-level BPE), with its truncation
        and padding settings applied by `encode` as Hugging Face `tokenizers` does."""
        from bertkit.tokenizers.hf_json import load_tokenizer_json

        return load_tokenizer_json(path)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> Tokenizer:
        """A checkpoint folder with tokenizer.json or vocab.txt (settings from tokenizer_config.json).

        As in `transformers`, truncation and padding are chosen per call, not taken from the file.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise BertkitError(f"{folder}: not a folder; pass a checkpoint folder holding tokenizer.json or vocab.txt")
        config = {}
        if (folder / "tokenizer_config.json").is_file():
            try:
                config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                raise BertkitError(
                    f"{folder / 'tokenizer_config.json'}: not valid JSON ({err}); fix or delete the file"
                ) from None
        max_len = config.get("model_max_length", 512)
        max_len = int(max_len) if isinstance(max_len, (int, float)) and max_len < 1e9 else 512
        if (folder / "tokenizer.json").is_file():
            tok = cls.from_file(folder / "tokenizer.json")
            tok.truncation = tok.padding = None
            tok.model_max_length = kwargs.get("model_max_length", max_len)
            return tok
        if (folder / "vocab.txt").is_file():
            options = {
                "lowercase": config.get("do_lower_case", True),
                "strip_accents": config.get("strip_accents"),
                "tokenize_chinese_chars": config.get("tokenize_chinese_chars", True),
                "model_max_length": max_len,
            }
            options.update(kwargs)
            return cls.from_vocab(folder / "vocab.txt", **options)
        raise BertkitError(
            f"{folder}: no tokenizer.json or vocab.txt in this folder; pass a checkpoint or tokenizer folder"
        )

    @classmethod
    def train(
        cls,
        files_or_iterator: str | os.PathLike | Iterable,
        model: str = "wordpiece",
        vocab_size: int = 30000,
        min_frequency: int = 2,
        lowercase: bool | None = None,
        special_tokens: Sequence[str] | None = None,
        limit_alphabet: int | None = None,
        show_progress: bool = True,
        **options,
    ) -> Tokenizer:
        """Learn a vocabulary from text files (or an iterator of texts) and return its tokenizer.

        model: "wordpiece" (likelihood merges, "##" pieces), "bpe" (frequency merges) or
        "bytelevel" (BPE over UTF-8 bytes). `lowercase` defaults to True, except for
        bytelevel, which keeps text as it is so that decode(encode(s)) == s.
        """
        from bertkit.tokenizers.trainers import train_tokenizer

        return train_tokenizer(
            files_or_iterator,
            model=model,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            lowercase=lowercase,
            special_tokens=special_tokens,
            limit_alphabet=limit_alphabet,
            show_progress=show_progress,
            **options,
        )

    def save(self, folder: str | os.PathLike) -> Path:
        """Write tokenizer.json (Hugging Face format), vocab.txt and tokenizer_config.json."""
        from bertkit.tokenizers.hf_json import save_folder

        return save_folder(self, folder)

    def to_json(self) -> dict:
        from bertkit.tokenizers.hf_json import tokenizer_to_json

        return tokenizer_to_json(self)

    # vocabulary --------------------------------------------------------------------------------
    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self.model.vocab)
        vocab.update({t.content: t.id for t in self.added_tokens})
        return vocab

    @property
    def vocab_size(self) -> int:
        return len(self.get_vocab())

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        for t in self.added_tokens:
            if t.content == token:
                return t.id
        return self.model.token_to_id(token)

    def id_to_token(self, idx: int) -> str | None:
        return self._table[idx] if 0 <= idx < len(self._table) and self._table[idx] != "" else None

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self._table[i] for i in ids]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        vocab = self.get_vocab()
        unk = self.model.unk_id
        return [vocab.get(t, unk) for t in tokens]

    def add_special_tokens(self, tokens: Sequence[str]) -> int:
        return self._add(tokens, special=True)

    def add_tokens(self, tokens: Sequence[str]) -> int:
        return self._add(tokens, special=False)

    def _add(self, tokens: Sequence[str], special: bool) -> int:
        vocab = self.get_vocab()
        known = {t.content for t in self.added_tokens}
        added = 0
        for content in tokens:
            if not content:
                raise BertkitError("cannot add an empty token")
            if content in known:
                continue
            idx = vocab.get(content)
            if idx is None:
                idx = max(len(self._table), max(vocab.values(), default=-1) + 1)
                vocab[content] = idx
                added += 1
            self.added_tokens.append(AddedToken(content, idx, special=special, normalized=not special))
            known.add(content)
        self._refresh()
        return added

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._special_ids)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self.post_processor.num_special_tokens_to_add(pair) if self.post_processor is not None else 0

    # encoding -------------------------------------------------------------------------------------
    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True) -> Encoding:
        """One text (and optionally its pair) -> Encoding, truncated/padded as configured."""
        first = self._encode_sequence(_check_text(text, "text"))
        second = None if pair is None else self._encode_sequence(_check_text(pair, "pair"))
        if self.truncation is None and self._simple is not None:
            enc = self._assemble(first, second, add_special_tokens)
        else:
            enc = self.post_process(first, second, add_special_tokens, self.truncation)
        if self.padding is not None and self.padding.get("length"):
            self._pad([enc], self.padding["length"], self.padding.get("pad_to_multiple_of"))
        return enc

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        add_special_tokens: bool = True,
        num_workers: int | None = None,
    ) -> list[Encoding]:
        """Many texts at once; large batches are spread over the CPU cores (`num_workers`)."""
        if isinstance(texts, str):
            raise BertkitError("encode_batch takes a list of texts; use encode() for a single text")
        if pairs is not None and len(pairs) != len(texts):
            raise BertkitError(f"encode_batch got {len(texts)} texts but {len(pairs)} pairs; pass one pair per text")
        encs = encode_many(self, texts, pairs, add_special_tokens, num_workers)
        if self.padding is not None:
            length = self.padding.get("length") or max((len(e) for e in encs), default=0)
            self._pad(encs, length, self.padding.get("pad_to_multiple_of"))
        return encs

    def _encode_pairs_serial(self, texts, pairs, add_special_tokens) -> list[Encoding]:
        encode = self.encode
        if pairs is None:
            return [encode(t, None, add_special_tokens) for t in texts]
        return [encode(t, p, add_special_tokens) for t, p in zip(texts, pairs)]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        return self.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    def __call__(
        self,
        text,
        text_pair=None,
        *,
        add_special_tokens: bool = True,
        padding=False,
        truncation=None,
        max_length: int | None = None,
        stride: int = 0,
        return_overflowing_tokens: bool = False,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        return_length: bool = False,
        return_tensors: str | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> BatchEncoding:
        """transformers-style call: padding, truncation strategies, stride windows, tensors."""
        from bertkit.tokenizers.batch import call_tokenizer

        return call_tokenizer(
            self,
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=return_overflowing_tokens,
            return_offsets_mapping=return_offsets_mapping,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
            return_tensors=return_tensors,
            pad_to_multiple_of=pad_to_multiple_of,
        )

    # the pipeline -----------------------------------------------------------------------------------
    def _encode_sequence(self, text: str) -> Raw:
        """Text -> (ids, offsets, word ids) of one sequence, no special tokens."""
        if self._raw_pattern is not None and (self._raw_first is None or any(c in text for c in self._raw_first)):
            if self._raw_pattern.search(text):
                return self._encode_with_added(text)
        return self._encode_plain(text)

    def _encode_plain(self, text: str) -> Raw:
        if self.normalizer is not None:
            norm, align = self.normalizer.normalize(text)
        else:
            norm, align = text, None
        if self._norm_pattern is not None and self._norm_pattern.search(norm):
            return self._encode_with_normalized_added(text, norm, align)
        return self._encode_normalized(norm, align)

    def _encode_normalized(self, norm: str, align: list[int] | None) -> Raw:
        shift = 0
        if self._prefix_space and norm and norm[0] != " ":
            norm, shift = " " + norm, 1
        words, starts, ends = self.pre_tokenizer.split(norm)
        ids = list(map(self.model.single.get, words))
        offsets = list(zip(starts, ends))
        word_ids = list(range(len(words)))
        if None in ids:
            ids, offsets, word_ids = self._split_words(words, ids, offsets, word_ids, norm)
        if shift:
            offsets = [(s - 1 if s else 0, e - 1 if e else 0) for s, e in offsets]
        if align is not None:
            if shift:  # a piece made only of the added prefix space is empty: keep it empty
                last = len(align) - 1
                offsets = [(align[s], align[e - 1] + 1) if e > s else (align[min(s, last)],) * 2 for s, e in offsets]
            else:
                offsets = [(align[s], align[e - 1] + 1) for s, e in offsets]  # pieces are never empty
        return ids, offsets, word_ids

    def _split_words(self, words, ids, offsets, word_ids, norm) -> tuple[list, list, list]:
        """Replace each word that is not a single token by its pieces (one linear pass)."""
        tokenize = self.model.tokenize_cached
        new_ids: list[int] = []
        new_offsets: list[tuple[int, int]] = []
        new_words: list[int] = []
        prev = 0
        for i in compress(count(), map(is_, ids, repeat(None))):
            if i > prev:
                new_ids += ids[prev:i]
                new_offsets += offsets[prev:i]
                new_words += word_ids[prev:i]
            prev = i + 1
            pids, spans = tokenize(words[i])
            start, end = offsets[i]
            if self._byte_level and not norm[start:end].isascii():
                index = byte_to_char_index(norm[start:end])
                spans = [(index[a], index[b - 1] + 1) for a, b in spans]
            new_ids += pids
            new_offsets += [(start + a, start + b) for a, b in spans]
            new_words += [i] * len(pids)
        if prev < len(ids):
            new_ids += ids[prev:]
            new_offsets += offsets[prev:]
            new_words += word_ids[prev:]
        return new_ids, new_offsets, new_words

    def _encode_with_added(self, text: str) -> Raw:
        """Text containing added tokens: encode the text between them piece by piece."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list = []
        n_words = 0
        for start, end, tok in split_on_added(text, self._raw_pattern, self._raw_added):
            if tok is not None:
                ids.append(tok.id)
                offsets.append((start, end))
                word_ids.append(n_words)
                n_words += 1
                continue
            p_ids, p_offsets, p_words = self._encode_plain(text[start:end])
            ids.extend(p_ids)
            offsets.extend((s + start, e + start) for s, e in p_offsets)
            word_ids.extend(w + n_words for w in p_words)
            n_words += (max(p_words) + 1) if p_words else 0
        return ids, offsets, word_ids

    def _encode_with_normalized_added(self, text: str, norm: str, align: list[int] | None) -> Raw:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        word_ids: list = []
        n_words = 0
        to_orig = (lambda i: i) if align is None else (lambda i: align[i] if i < len(align) else len(text))
        for start, end, tok in split_on_added(norm, self._norm_pattern, self._norm_added):
            if tok is not None:
                ids.append(tok.id)
                offsets.append((to_orig(start), to_orig(end - 1) + 1))
                word_ids.append(n_words)
                n_words += 1
                continue
            p_ids, p_offsets, p_words = self._encode_normalized(norm[start:end], None)
            ids.extend(p_ids)
            offsets.extend((to_orig(s + start), to_orig(e + start - 1) + 1) for s, e in p_offsets)
            word_ids.extend(w + n_words for w in p_words)
            n_words += (max(p_words) + 1) if p_words else 0
        return ids, offsets, word_ids

    def _assemble(self, first: Raw, second: Raw | None, add_special_tokens: bool) -> Encoding:
        """Special tokens around one or two sequences, without the general merge machinery."""
        layout = self._simple["pair" if second is not None else "single"]
        if not add_special_tokens:
            layout = _bare_layout(layout)
        chunks, seq_types, uniform = layout
        seqs = (first,) if second is None else (first, second)
        (ids, type_ids, offsets, word_ids, special) = (
            list(chunks[0][0]),
            list(chunks[0][1]),
            list(chunks[0][2]),
            list(chunks[0][3]),
            list(chunks[0][4]),
        )
        ranges = {}
        for k, (s_ids, s_offsets, s_words) in enumerate(seqs):
            n = len(s_ids)
            ranges[k] = (len(ids), len(ids) + n)
            c_ids, c_types, c_offsets, c_words, c_special = chunks[k + 1]
            ids += s_ids
            ids += c_ids
            offsets += s_offsets
            offsets += c_offsets
            word_ids += s_words
            word_ids += c_words
            special += [0] * n
            special += c_special
            if uniform is None:
                type_ids += [seq_types[k]] * n
                type_ids += c_types
        if uniform is not None:
            type_ids = [uniform] * len(ids)
        return Encoding(ids, type_ids, offsets, word_ids, special, [1] * len(ids), self._table, None, ranges)

    def post_process(
        self, first: Raw, second: Raw | None, add_special_tokens: bool = True, truncation: dict | None = None
    ) -> Encoding:
        """Truncate (into windows), then add special tokens with the post-processor."""
        a = Encoding.from_pieces(*first, self._table)
        b = Encoding.from_pieces(*second, self._table) if second is not None else None
        if truncation is not None:
            room = truncation["max_length"] - (
                self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
            )
            if room < 0:
                raise BertkitError(
                    f"max_length={truncation['max_length']} leaves no room for the special tokens; raise max_length"
                )
            truncate_pair(
                a,
                b,
                room,
                truncation.get("strategy", "longest_first"),
                truncation.get("stride", 0),
                truncation.get("direction", "right"),
            )
        if self.post_processor is None:
            if b is None:
                a.sequence_ranges = {0: (0, len(a))}
                return a
            from bertkit.tokenizers.encoding import merge

            b.type_ids = [1] * len(b)
            out = merge([a, b])
            out._table = self._table
            return out
        return self.post_processor.process(a, b, add_special_tokens)

    def _pad(self, encs: list[Encoding], length: int, multiple: int | None = None) -> None:
        if multiple and length % multiple:
            length += multiple - length % multiple
        pad_id = self.token_to_id(self.pad_token)
        if pad_id is None:
            raise BertkitError(f"padding needs the pad token {self.pad_token!r}, which is not in the vocabulary")
        pad = self.padding or {}
        for enc in encs:
            enc.pad(length, pad_id, pad.get("pad_type_id", 0), pad.get("direction", "right"))

    # decoding -------------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        table, special = self._table, self._special_ids
        tokens = []
        for i in ids:
            i = int(i)
            if skip_special_tokens and i in special:
                continue
            if not 0 <= i < len(table):
                raise BertkitError(f"token id {i} is outside the vocabulary (size {len(table)})")
            tokens.append(table[i])
        return self.decoder.decode(tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def __repr__(self) -> str:
        model, normalizer = type(self.model).__name__, type(self.normalizer).__name__
        return f"Tokenizer(model={model}, vocab_size={self.vocab_size}, normalizer={normalizer})"


def _layout(chunks: list[list[tuple[int, int]]], seq_types: list[int]):
    """Precomputed pieces of a simple template: per chunk of special tokens, its ids, type ids,
    offsets, word ids and special mask; plus the one type id used everywhere, if there is one."""
    parts = [([i for i, _ in c], [t for _, t in c], [(0, 0)] * len(c), [None] * len(c), [1] * len(c)) for c in chunks]
    types = {t for c in chunks for _, t in c} | set(seq_types)
    return parts, seq_types, (types.pop() if len(types) == 1 else None)


def _bare_layout(layout):
    parts, seq_types, _ = layout
    empty = ([], [], [], [], [])
    types = set(seq_types)
    return [empty] * len(parts), seq_types, (types.pop() if len(types) == 1 else None)


def _check_text(text, what: str) -> str:
    if not isinstance(text, str):
        raise BertkitError(
            f"{what} must be a str, got {type(text).__name__}; pass the text itself (use encode_batch for lists)"
        )
    return text
