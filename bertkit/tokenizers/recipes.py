"""Recipes: which normalizer, pre-tokenizer, model, post-processor and decoder go together.

As in Hugging Face's `implementations/bert_wordpiece.py`, a recipe assembles the pipeline and the
trainers (trainers.py) only learn a vocabulary. A recipe returns the keyword arguments of
`Tokenizer(...)`, so `Tokenizer.from_vocab` and `Tokenizer.train` call the recipes and nothing
here imports the Tokenizer: dependencies point one way (tokenizer -> recipes -> trainers).

* `bert_wordpiece`: BERT's own tokenizer around a WordPiece vocabulary (vocab.txt).
* `trained`: count a corpus's words with the model's normalizer and pre-tokenizer, learn a
  "wordpiece", "bpe", "bytelevel" or "wordlevel" vocabulary, and wrap it in its pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bertkit.constants import BERT_SPECIAL_TOKENS
from bertkit.errors import BertkitError
from bertkit.tokenizers.added_tokens import AddedToken
from bertkit.tokenizers.bpe import BPE
from bertkit.tokenizers.bytelevel import ALPHABET
from bertkit.tokenizers.corpus import count_words
from bertkit.tokenizers.decoders import BPEDecoder, ByteLevelDecoder, Decoder, WordPieceDecoder
from bertkit.tokenizers.models import Model
from bertkit.tokenizers.normalizers import BertNormalizer, Lowercase, Normalizer
from bertkit.tokenizers.post_processors import TemplateProcessing
from bertkit.tokenizers.pre_tokenizers import BertPreTokenizer, ByteLevel, PreTokenizer
from bertkit.tokenizers.trainers import train_bpe, train_wordlevel, train_wordpiece
from bertkit.tokenizers.wordlevel import WordLevel
from bertkit.tokenizers.wordpiece import WordPiece

MODELS = ("wordpiece", "bpe", "bytelevel", "wordlevel")
CRITERIA = ("likelihood", "ratio")


def bert_wordpiece(
    model: WordPiece,
    where: str = "the vocabulary",
    lowercase: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    sep_token: str = "[SEP]",
    pad_token: str = "[PAD]",
    cls_token: str = "[CLS]",
    mask_token: str = "[MASK]",
    model_max_length: int = 512,
) -> dict[str, Any]:
    """BERT's tokenizer: its normalizer and pre-tokenizer, [CLS] A [SEP] (B [SEP]), '##' decoding."""
    for role, token in (("sep_token", sep_token), ("cls_token", cls_token)):
        if token not in model.vocab:
            raise BertkitError(f"{where}: the vocabulary has no {token!r} ({role}); BERT's input format needs it")
    roles = (pad_token, model.unk_token, cls_token, sep_token, mask_token)
    specials = [t for t in roles if t is not None and t in model.vocab]
    return {
        "model": model,
        "normalizer": BertNormalizer(
            clean_text=True,
            handle_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents,
            lowercase=lowercase,
        ),
        "pre_tokenizer": BertPreTokenizer(),
        "post_processor": TemplateProcessing.bert(cls_token, model.vocab[cls_token], sep_token, model.vocab[sep_token]),
        "decoder": WordPieceDecoder(),
        "added_tokens": [AddedToken(t, model.vocab[t], special=True) for t in specials],
        "model_max_length": model_max_length,
        "pad_token": pad_token,
    }


def trained(
    source: Any,
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
) -> dict[str, Any]:
    """Count the corpus's words as the tokenizer will see them, learn the vocabulary, assemble."""
    if model not in MODELS:
        raise BertkitError(f"model={model!r} is not one of {', '.join(map(repr, MODELS))}")
    if criterion not in CRITERIA:
        raise BertkitError(f"criterion={criterion!r} is not one of {', '.join(map(repr, CRITERIA))}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise BertkitError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    specials = list(BERT_SPECIAL_TOKENS if special_tokens is None else special_tokens)
    if len(set(specials)) != len(specials):
        raise BertkitError(f"special_tokens has duplicates: {specials}")
    if lowercase is None:
        lowercase = model != "bytelevel"  # byte level keeps the text as it is: decode(encode(s)) == s
    normalizer, pre_tokenizer = _front(model, lowercase)
    counts = count_words(source, normalizer, pre_tokenizer, show_progress)
    if not counts:
        raise BertkitError("the training data holds no words (empty files or texts); pass a non-empty corpus")
    options = {
        "vocab_size": vocab_size,
        "min_frequency": max(1, int(min_frequency)),
        "special_tokens": specials,
        "limit_alphabet": limit_alphabet,
        "show_progress": show_progress,
    }
    learned, decoder = _learn(model, counts, options, continuing_subword_prefix, end_of_word_suffix, criterion)
    vocab = learned.vocab
    post = None
    if "[CLS]" in vocab and "[SEP]" in vocab:
        post = TemplateProcessing.bert("[CLS]", vocab["[CLS]"], "[SEP]", vocab["[SEP]"])
    return {
        "model": learned,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post,
        "decoder": decoder,
        "added_tokens": [AddedToken(t, vocab[t], special=True) for t in specials],
        "model_max_length": model_max_length,
    }


def _front(model: str, lowercase: bool) -> tuple[Normalizer | None, PreTokenizer]:
    """The normalizer and pre-tokenizer of each model: BERT's, or GPT-2's byte-level split."""
    if model == "bytelevel":
        return (Lowercase() if lowercase else None), ByteLevel(add_prefix_space=False)
    return BertNormalizer(lowercase=lowercase), BertPreTokenizer()


def _unk_token(specials: list[str]) -> str | None:
    for name in ("[UNK]", "<unk>", "<UNK>"):
        if name in specials:
            return name
    return specials[0] if specials else None


def _learn(
    model: str,
    counts: Any,
    options: dict[str, Any],
    prefix: str | None,
    suffix: str | None,
    criterion: str,
) -> tuple[Model, Decoder]:
    """The learned model (vocabulary + merges) and the decoder that undoes its piece marks."""
    specials = options["special_tokens"]
    if model in ("wordpiece", "wordlevel"):
        unk = _unk_token(specials)
        if unk is None:
            raise BertkitError(f"a {model} vocabulary needs an unknown token; include '[UNK]' in special_tokens")
        if model == "wordlevel":
            vocab = train_wordlevel(counts, options["vocab_size"], options["min_frequency"], specials)
            return WordLevel(vocab, unk_token=unk), Decoder()
        prefix = "##" if prefix is None else prefix
        vocab, _ = train_wordpiece(counts, prefix=prefix, criterion=criterion, **options)
        return WordPiece(vocab, unk_token=unk, continuing_subword_prefix=prefix), WordPieceDecoder(prefix)
    prefix, suffix = prefix or "", suffix or ""
    initial = ALPHABET if model == "bytelevel" else ()
    vocab, merges = train_bpe(
        counts, initial_alphabet=initial, continuing_subword_prefix=prefix, end_of_word_suffix=suffix, **options
    )
    unk = "[UNK]" if model == "bpe" and "[UNK]" in specials else None
    learned = BPE(
        vocab, merges, unk_token=unk, continuing_subword_prefix=prefix or None, end_of_word_suffix=suffix or None
    )
    if model == "bytelevel":
        return learned, ByteLevelDecoder()
    if suffix:
        return learned, BPEDecoder(suffix)
    return learned, (WordPieceDecoder(prefix, cleanup=False) if prefix else Decoder())
