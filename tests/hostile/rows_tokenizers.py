"""Tokenizers under hostile input: broken vocabularies and configs refused at load with one line
naming the file; pathological texts (long runs, odd Unicode) encoded quickly and exactly."""

from __future__ import annotations

import json
from pathlib import Path

from harness import Case

from bertkit.tokenizers import Tokenizer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"
BERT_VOCAB = FIXTURE / "vocab.txt"


def _bert() -> Tokenizer:
    return Tokenizer.from_vocab(BERT_VOCAB)


def _tokenizer_json(tmp: Path, **change) -> Path:
    """A valid WordPiece tokenizer.json with `change` applied to its model / top level."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "b": 5}
    data = {"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab}}
    for key, value in change.items():
        if key.startswith("model_"):
            data["model"][key[len("model_") :]] = value
        else:
            data[key] = value
    path = tmp / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _vocab_with(tmp: Path, token: str, idx: object) -> Path:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4}
    vocab[token] = idx  # type: ignore[assignment]
    return _tokenizer_json(tmp, model_vocab=vocab)


def _folder_with_config(tmp: Path, raw: bytes) -> Path:
    folder = tmp / "tok"
    folder.mkdir()
    (folder / "vocab.txt").write_bytes(BERT_VOCAB.read_bytes())
    (folder / "tokenizer_config.json").write_bytes(raw)
    return folder


def _encodes_exactly(expected_tokens: list[str]):
    def check(tmp, context, result) -> None:
        assert result == expected_tokens, result

    return check


ROWS = [
    # -- catalogue row 10: vocabulary ids in tokenizer.json --------------------------------------
    Case(
        id="vocab-id-2**61",
        surface="tokenizer.json",
        fault="a vocabulary id of 2**61 (a dense table would need exabytes)",
        setup=lambda tmp: _vocab_with(tmp, "b", 2**61),
        run=lambda tmp, path: Tokenizer.from_file(path),
        argv=lambda tmp, path: ["tokenizer", "encode", "--tokenizer", path, "a b"],
        match=r"tokenizer\.json: .*id",
    ),
    Case(
        id="vocab-id-3e9-float",
        surface="tokenizer.json",
        fault="a vocabulary id written as the float 3e9",
        setup=lambda tmp: _vocab_with(tmp, "b", 3e9),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: .*whole numbers",
    ),
    Case(
        id="vocab-id-negative",
        surface="tokenizer.json",
        fault="a vocabulary id of -1",
        setup=lambda tmp: _vocab_with(tmp, "b", -1),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: .*-1",
    ),
    Case(
        id="vocab-id-duplicate",
        surface="tokenizer.json",
        fault="two tokens with the same id",
        setup=lambda tmp: _vocab_with(tmp, "b", 4),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: .*share id 4",
    ),
    Case(
        id="vocab-id-sparse",
        surface="tokenizer.json",
        fault="6 tokens, one with id 10**7 (the id table would be 40 MB of nothing)",
        setup=lambda tmp: _vocab_with(tmp, "b", 10**7),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: .*renumber",
    ),
    Case(
        id="added-token-id-far-beyond",
        surface="tokenizer.json",
        fault="an added token with id 2**40",
        setup=lambda tmp: _tokenizer_json(tmp, added_tokens=[{"id": 2**40, "content": "<x>", "special": True}]),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: added_tokens",
    ),
    Case(
        id="added-token-id-not-a-number",
        surface="tokenizer.json",
        fault='an added token with id "5"',
        setup=lambda tmp: _tokenizer_json(tmp, added_tokens=[{"id": "5", "content": "<x>"}]),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: added token '<x>'",
    ),
    Case(
        id="tokenizer-json-not-utf8",
        surface="tokenizer.json",
        fault="Latin-1 bytes",
        setup=lambda tmp: (tmp / "tokenizer.json").write_bytes('{"model": "caf\xe9"}'.encode("latin-1")),
        run=lambda tmp, _: Tokenizer.from_file(tmp / "tokenizer.json"),
        argv=lambda tmp, _: ["tokenizer", "encode", "--tokenizer", tmp / "tokenizer.json", "x"],
        match=r"tokenizer\.json: not UTF-8",
    ),
    Case(
        id="tokenizer-json-nested-deep",
        surface="tokenizer.json",
        fault="JSON nested 100,000 deep",
        setup=lambda tmp: (tmp / "tokenizer.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8"),
        run=lambda tmp, _: Tokenizer.from_file(tmp / "tokenizer.json"),
        match=r"tokenizer\.json: .*nested",
    ),
    Case(
        id="tokenizer-json-wrong-types",
        surface="tokenizer.json",
        fault="truncation.max_length is a string; normalizer is a list",
        setup=lambda tmp: _tokenizer_json(tmp, truncation={"max_length": "128"}, normalizer=[1]),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: ",
    ),
    Case(
        id="bpe-merge-outside-vocab",
        surface="tokenizer.json",
        fault="a BPE merge whose result is not in the vocabulary",
        setup=lambda tmp: _tokenizer_json(tmp, model_type="BPE", model_merges=["a b"]),
        run=lambda tmp, path: Tokenizer.from_file(path),
        match=r"tokenizer\.json: merge #0",
    ),
    # -- catalogue row 11: tokenizer_config.json ------------------------------------------------
    Case(
        id="tokenizer-config-a-list",
        surface="tokenizer_config.json",
        fault="the file holds [1]",
        setup=lambda tmp: _folder_with_config(tmp, b"[1]"),
        run=lambda tmp, folder: Tokenizer.from_pretrained(folder),
        argv=lambda tmp, folder: ["tokenizer", "encode", "--tokenizer", folder, "x"],
        match=r"tokenizer_config\.json: .*object",
    ),
    Case(
        id="tokenizer-config-latin1",
        surface="tokenizer_config.json",
        fault="Latin-1 bytes",
        setup=lambda tmp: _folder_with_config(tmp, '{"x": "caf\xe9"}'.encode("latin-1")),
        run=lambda tmp, folder: Tokenizer.from_pretrained(folder),
        match=r"tokenizer_config\.json: not UTF-8",
    ),
    Case(
        id="tokenizer-config-wrong-type",
        surface="tokenizer_config.json",
        fault='do_lower_case: "yes"',
        setup=lambda tmp: _folder_with_config(tmp, b'{"do_lower_case": "yes"}'),
        run=lambda tmp, folder: Tokenizer.from_pretrained(folder),
        match=r"tokenizer_config\.json: do_lower_case",
    ),
    Case(
        id="vocab-txt-empty",
        surface="vocab.txt",
        fault="an empty vocabulary file",
        setup=lambda tmp: (tmp / "vocab.txt").write_bytes(b""),
        run=lambda tmp, _: Tokenizer.from_vocab(tmp / "vocab.txt"),
        argv=lambda tmp, _: ["tokenizer", "encode", "--tokenizer", tmp / "vocab.txt", "x"],
        match=r"vocab\.txt: the vocabulary is empty",
    ),
    Case(
        id="train-out-not-empty",
        surface="tokenizer train --out",
        fault="--out holds a user's file and a foreign tokenizer.json",
        setup=lambda tmp: [
            (tmp / "out").mkdir(),
            (tmp / "out" / "tokenizer.json").write_text("{}"),
            (tmp / "corpus.txt").write_text("some words to learn from\n" * 20),
        ],
        argv=lambda tmp, _: ["tokenizer", "train", "--vocab-size", "60", "--out", tmp / "out", tmp / "corpus.txt"],
        match=r"not empty.*--overwrite",
    ),
    # -- catalogue rows 18, 19: long input, accepted quickly ----------------------------------------
    Case(
        id="trailing-spaces-20k",
        surface="Tokenizer.encode / __call__",
        fault='"x" + 20,000 spaces, then 20,000 U+3000, with and without truncation',
        run=lambda tmp, _: [
            _bert().encode("paris" + " " * 20_000).tokens,
            _bert().encode("paris" + "\u3000" * 20_000).tokens,
            _bert().convert_ids_to_tokens(_bert()("paris" + " " * 20_000, truncation=True)["input_ids"]),
        ],
        outcome="ok",
        check=_encodes_exactly([["[CLS]", "paris", "[SEP]"]] * 3),
        cpu_seconds=0.5,
        expected="encoded in well under a second, linearly",
    ),
    Case(
        id="long-word-bytelevel",
        surface="byte-level BPE",
        fault="a 20,000-letter word and 20,000 spaces through a trained byte-level BPE",
        setup=lambda tmp: Tokenizer.train(
            ["aaaa bbbb abab  " * 50, "ab " * 50], model="bytelevel", vocab_size=300, show_progress=False
        ),
        run=lambda tmp, tok: [
            tok.decode(tok.encode("ab" * 10_000).ids) == "ab" * 10_000,
            tok.decode(tok.encode(" " * 20_000).ids) == " " * 20_000,
        ],
        outcome="ok",
        check=_encodes_exactly([True, True]),
        cpu_seconds=1.0,
        expected="encoded linearly and decoded back exactly",
    ),
    # -- odd Unicode --------------------------------------------------------------------------------
    Case(
        id="lone-surrogates",
        surface="Tokenizer.encode",
        fault="lone surrogates (\\ud800, \\udfff), which are not UTF-8 at all",
        run=lambda tmp, _: [_bert().tokenize("cat\ud800 \udfff paris"), _bert().encode("the\udfff").offsets],
        outcome="ok",
        check=_encodes_exactly([["cat", "paris"], [(0, 0), (0, 3), (0, 0)]]),
        expected="dropped like every control character (category Cs) by BERT's normalizer; offsets intact",
    ),
    Case(
        id="zero-width-and-rtl",
        surface="Tokenizer.encode",
        fault="zero-width space / joiner, BOM, RTL marks, combining marks on nothing",
        run=lambda tmp, _: _bert().tokenize("play\u200bed \u200d\ufeff \u202ecat\u202c \u0301\u0301the"),
        outcome="ok",
        check=_encodes_exactly(["play", "##ed", "cat", "the"]),
        expected="format characters dropped as BERT's normalizer does, marks stripped",
    ),
    Case(
        id="empty-and-whitespace-texts",
        surface="Tokenizer.__call__",
        fault="empty strings and whitespace only, padded as a batch",
        run=lambda tmp, _: _bert()(["", " \n\t", "\u3000"], padding=True)["input_ids"],
        outcome="ok",
        check=_encodes_exactly([[2, 3]] * 3),
    ),
]
