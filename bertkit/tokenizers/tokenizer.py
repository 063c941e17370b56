"""The tokenizer front: text -> normalizer -> pre-tokenizer -> model -> post-processor -> Encoding.

    tok = Tokenizer.from_vocab("vocab.txt")          # BERT's uncased WordPiece
    enc = tok.encode("Let us start pretraining the model")
    enc.tokens  # [CLS] let us start pre ##train ##ing the model [SEP]

Character offsets survive every stage: the normalizer reports where each of its characters came
from (only when a character changed length), the pre-tokenizer gives word spans, the model gives
piece spans inside a word. The work is split by stage: sequence.py turns one text into pieces
(the fast path), assembly.py adds truncation and special tokens, batch.py holds the
transformers-style `tok(...)` call and the multi-process `encode_batch`; recipes.py assembles
the pipelines this class is built from, hf_json.py reads and writes the files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError
from bertkit.hub import push_folder, resolve_folder
from bertkit.tokenizers import hf_json, recipes
from bertkit.tokenizers.added_tokens import AddedToken
from bertkit.tokenizers.assembly import Assembler
from bertkit.tokenizers.batch import BatchEncoding, CallOptions, call_tokenizer, encode_many
from bertkit.tokenizers.decoders import Decoder
from bertkit.tokenizers.encoding import Encoding
from bertkit.tokenizers.models import Model, check_density
from bertkit.tokenizers.normalizers import Normalizer
from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer, PreTokenizer
from bertkit.tokenizers.sequence import Raw, SequenceEncoder
from bertkit.tokenizers.wordpiece import WordPiece

SIDES = ("left", "right")


class Tokenizer:
    def __init__(
        self,
        model: Model,
        normalizer: Normalizer | None = None,
        pre_tokenizer: PreTokenizer | None = None,
        post_processor: Any = None,
        decoder: Decoder | None = None,
        added_tokens: Sequence[AddedToken] = (),
        model_max_length: int = 512,
        truncation: dict | None = None,
        padding: dict | None = None,
        pad_token: str = "[PAD]",
        padding_side: str = "right",
        truncation_side: str = "right",
    ) -> None:
        self._model = model
        self._normalizer = normalizer
        self._pre_tokenizer = pre_tokenizer if pre_tokenizer is not None else BertPreTokenizer()
        self._post_processor = post_processor
        self.decoder = decoder if decoder is not None else Decoder()
        self.added_tokens: list[AddedToken] = list(added_tokens)
        self.model_max_length = model_max_length
        self.truncation = truncation  # {"max_length", "strategy", "stride", "direction"}: applied by encode()
        self.padding = padding  # {"length": int | None, "pad_id", "pad_type_id", "pad_token", "direction"}
        self.pad_token = pad_token
        # transformers' names: which end `tok(...)` pads and truncates (encode() follows `padding` / `truncation`)
        self.padding_side = _side(padding_side, "padding_side")
        self.truncation_side = _side(truncation_side, "truncation_side")
        self._refresh()

    # set-up ----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild the id table and the encoders after the pipeline or the added tokens changed."""
        table = list(self._model.id_to_token_list)
        check_density(
            [t.id for t in self.added_tokens], len(self._model.vocab) + len(self.added_tokens), "added tokens"
        )
        for tok in self.added_tokens:
            if tok.id >= len(table):
                table.extend([""] * (tok.id + 1 - len(table)))
            table[tok.id] = tok.content
        self._table = table
        self._special_ids = {t.id for t in self.added_tokens if t.special}
        self._sequence = SequenceEncoder(self._model, self._normalizer, self._pre_tokenizer, self.added_tokens)
        self._assembler = Assembler(self._post_processor, table)

    # the pipeline's stages can be replaced, as in Hugging Face (tok.normalizer = ...)
    model = property(lambda self: self._model, lambda self, v: self._set("_model", v))
    normalizer = property(lambda self: self._normalizer, lambda self, v: self._set("_normalizer", v))
    pre_tokenizer = property(lambda self: self._pre_tokenizer, lambda self, v: self._set("_pre_tokenizer", v))
    post_processor = property(lambda self: self._post_processor, lambda self, v: self._set("_post_processor", v))

    def _set(self, name: str, value: Any) -> None:
        setattr(self, name, value)
        self._refresh()

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
        **options: Any,
    ) -> Tokenizer:
        """BERT's WordPiece tokenizer from a vocab.txt (uncased when `lowercase`)."""
        model = WordPiece.from_vocab_file(vocab_file, unk_token=unk_token)
        components = recipes.bert_wordpiece(
            model,
            str(vocab_file),
            lowercase=lowercase,
            strip_accents=strip_accents,
            tokenize_chinese_chars=tokenize_chinese_chars,
            sep_token=sep_token,
            pad_token=pad_token,
            cls_token=cls_token,
            mask_token=mask_token,
            model_max_length=model_max_length,
        )
        return cls(**components, **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Tokenizer:
        """A Hugging Face tokenizer.json (WordPiece, BPE, byte-level BPE or WordLevel), with its
        truncation and padding settings applied by `encode` as Hugging Face `tokenizers` does."""
        return cls(**hf_json.read_tokenizer_json(path))

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> Tokenizer:
        """A folder with tokenizer.json or vocab.txt (settings from tokenizer_config.json), or a
        Hugging Face hub name (fetched through bertkit.hub, the rule every loader follows).

        As in `transformers`, truncation and padding are chosen per call, not taken from the file;
        `kwargs` override tokenizer_config.json (model_max_length, padding_side, do_lower_case ...).
        """
        folder = resolve_folder(
            name_or_path,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            what="tokenizer folder",
        )
        options = hf_json.folder_options(folder, kwargs)
        if (folder / "tokenizer.json").is_file():
            tok = cls.from_file(folder / "tokenizer.json")
            tok.truncation = tok.padding = None
            for key in ("model_max_length", "padding_side", "truncation_side"):
                setattr(tok, key, options[key])
            return tok
        if (folder / "vocab.txt").is_file():
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
        **options: Any,
    ) -> Tokenizer:
        """Learn a vocabulary from text files (or an iterator of texts) and return its tokenizer.

        model: "wordpiece" (likelihood merges, "##" pieces; criterion="likelihood" or "ratio"),
        "bpe" (frequency merges), "bytelevel" (BPE over UTF-8 bytes) or "wordlevel" (whole
        words, the rest [UNK]). `lowercase` defaults to True, except for bytelevel, which keeps
        text as it is so that decode(encode(s)) == s. See recipes.trained for the other options.
        """
        return cls(
            **recipes.trained(
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
        )

    def save(self, folder: str | os.PathLike) -> Path:
        """Write tokenizer.json (Hugging Face format), vocab.txt and tokenizer_config.json
        (+ merges.txt for BPE) into `folder`, each file atomically; returns the folder."""
        hf_json.save_folder(self, folder)
        return Path(folder)

    def save_pretrained(self, save_directory: str | os.PathLike, **_: Any) -> tuple[str, ...]:
        """transformers' name for `save`: the same files; returns their paths, as transformers does."""
        return tuple(str(p) for p in hf_json.save_folder(self, save_directory))

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Save into a temporary folder and upload it to the hub repository `repo_id` (created if
        needed) through bertkit.hub.push_folder; kwargs: token, private, revision, commit_message."""
        with tempfile.TemporaryDirectory(prefix="bertkit-tokenizer-") as tmp:
            self.save(tmp)
            return push_folder(tmp, repo_id, **kwargs)

    def to_json(self) -> dict:
        return hf_json.tokenizer_json(self)

    # vocabulary --------------------------------------------------------------------------------
    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._model.vocab)
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
        return self._model.token_to_id(token)

    def id_to_token(self, idx: int) -> str | None:
        return self._table[idx] if 0 <= idx < len(self._table) and self._table[idx] != "" else None

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self._table[i] for i in ids]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int | None]:
        vocab = self.get_vocab()
        unk = self._model.unk_id
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
            if not isinstance(content, str) or not content:
                raise BertkitError(f"cannot add {content!r}: a token is a non-empty string")
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

    @property
    def id_table(self) -> list[str]:
        """id -> token string (added tokens included), shared by every Encoding this tokenizer makes."""
        return self._table

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._assembler.num_special_tokens_to_add(pair)

    # encoding -------------------------------------------------------------------------------------
    def encode(
        self,
        text: str | Sequence[str],
        pair: str | Sequence[str] | None = None,
        add_special_tokens: bool = True,
        is_split_into_words: bool = False,
    ) -> Encoding:
        """One text (and optionally its pair) -> Encoding, truncated/padded as configured.

        is_split_into_words=True: `text` (and `pair`) are lists of words, each tokenized on its
        own; word ids are the words' indices and offsets count inside each word (as transformers).
        """
        if is_split_into_words:
            first = self.encode_pieces(text, True, "text")
            second = None if pair is None else self.encode_pieces(pair, True, "pair")
        else:  # the common case, without the detour
            first = self._sequence.encode(_check_text(text, "text"))
            second = None if pair is None else self._sequence.encode(_check_text(pair, "pair"))
        enc = self._assembler.assemble(first, second, add_special_tokens, self.truncation)
        if self.padding is not None and self.padding.get("length"):
            self.pad_encodings([enc], self.padding["length"], self.padding.get("pad_to_multiple_of"))
        return enc

    def encode_batch(
        self,
        texts: Sequence[str] | Sequence[Sequence[str]],
        pairs: Sequence[str] | Sequence[Sequence[str]] | None = None,
        add_special_tokens: bool = True,
        num_workers: int | None = None,
        is_split_into_words: bool = False,
    ) -> list[Encoding]:
        """Many texts at once; large batches are spread over the CPU cores (`num_workers`)."""
        if isinstance(texts, str):
            raise BertkitError("encode_batch takes a list of texts; use encode() for a single text")
        if pairs is not None and len(pairs) != len(texts):
            raise BertkitError(f"encode_batch got {len(texts)} texts but {len(pairs)} pairs; pass one pair per text")

        def encode_one(text: Any, pair: Any) -> Encoding:
            return self.encode(text, pair, add_special_tokens, is_split_into_words)

        encs = encode_many(encode_one, texts, pairs, self._table, num_workers)
        if self.padding is not None:
            length = self.padding.get("length") or max((len(e) for e in encs), default=0)
            self.pad_encodings(encs, length, self.padding.get("pad_to_multiple_of"))
        return encs

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        return self.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    def __call__(
        self,
        text: Any,
        text_pair: Any = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """transformers-style call: padding, truncation strategies, stride windows, tensors."""
        # every keyword argument above, by name, into one options object
        options = CallOptions(**{k: v for k, v in locals().items() if k not in ("self", "text", "text_pair")})
        return call_tokenizer(self, text, text_pair, options)

    # the pipeline -----------------------------------------------------------------------------------
    def encode_pieces(self, text: str | Sequence[str], is_split_into_words: bool = False, what: str = "text") -> Raw:
        """One sequence as (ids, offsets, word ids), before truncation and special tokens."""
        if is_split_into_words:
            return self._sequence.encode_words(text, what)
        return self._sequence.encode(_check_text(text, what))

    def assemble(
        self, first: Raw, second: Raw | None, add_special_tokens: bool = True, truncation: dict | None = None
    ) -> Encoding:
        """Truncation (into windows) and special tokens around one or two sequences."""
        return self._assembler.assemble(first, second, add_special_tokens, truncation)

    def post_process(
        self, first: Raw, second: Raw | None, add_special_tokens: bool = True, truncation: dict | None = None
    ) -> Encoding:
        """The general path of `assemble` (Hugging Face's post-processing), never the fast one."""
        return self._assembler.general(first, second, add_special_tokens, truncation)

    def pad_encodings(
        self, encs: list[Encoding], length: int, multiple: int | None = None, direction: str | None = None
    ) -> None:
        """Pad each Encoding (and its overflowing windows) to `length`, rounded up to `multiple`."""
        if multiple and length % multiple:
            length += multiple - length % multiple
        pad_id = self.token_to_id(self.pad_token)
        if pad_id is None:
            raise BertkitError(f"padding needs the pad token {self.pad_token!r}, which is not in the vocabulary")
        pad = self.padding or {}
        side = direction or pad.get("direction", "right")
        for enc in encs:
            enc.pad(length, pad_id, pad.get("pad_type_id", 0), side)

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
        """`tokenizers`' name and default: special tokens are skipped."""
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def batch_decode(self, sequences: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> list[str]:
        """transformers' name and default: special tokens are kept unless skip_special_tokens=True."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(ids, skip_special_tokens) for ids in sequences]

    def __repr__(self) -> str:
        model, normalizer = type(self._model).__name__, type(self._normalizer).__name__
        return f"Tokenizer(model={model}, vocab_size={self.vocab_size}, normalizer={normalizer})"


def _side(value: object, name: str) -> str:
    if value not in SIDES:
        raise BertkitError(f"{name}={value!r} is not 'left' or 'right'")
    return str(value)


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise BertkitError(
            f"{what} must be a str, got {type(text).__name__}; pass the text itself (use encode_batch for lists, "
            "or is_split_into_words=True for a list of words)"
        )
    return text
