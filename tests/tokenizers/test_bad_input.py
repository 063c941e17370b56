"""Bad input gives one clear line naming the file or argument, the problem and the fix."""

from __future__ import annotations

import json

import pytest

from bertkit.cli import main
from bertkit.errors import BertkitError, InputFileError
from bertkit.tokenizers import Tokenizer


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def write_vocab(path, tokens):
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


def test_missing_vocab(tmp_path):
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_vocab(tmp_path / "nope.txt")
    assert "nope.txt" in one_line(err) and "not found" in str(err.value)


def test_empty_vocab(tmp_path):
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_vocab(write_vocab(tmp_path / "vocab.txt", []))
    assert "empty" in one_line(err)


def test_vocab_without_unk(tmp_path):
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_vocab(write_vocab(tmp_path / "vocab.txt", ["[CLS]", "[SEP]", "a"]))
    assert "[UNK]" in one_line(err) and "vocab.txt" in str(err.value)


def test_vocab_without_cls_sep(tmp_path):
    with pytest.raises(BertkitError) as err:
        Tokenizer.from_vocab(write_vocab(tmp_path / "vocab.txt", ["[UNK]", "a"]))
    assert "[SEP]" in one_line(err) or "[CLS]" in str(err.value)


def test_duplicate_vocab_entries(tmp_path):
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_vocab(write_vocab(tmp_path / "vocab.txt", ["[UNK]", "[CLS]", "[SEP]", "a", "b", "a"]))
    msg = one_line(err)
    assert "duplicate" in msg and "'a'" in msg and ":6" in msg  # file:line of the second one


def test_non_utf8_vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n")
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_vocab(path)
    assert "UTF-8" in one_line(err) and ":4" in str(err.value)


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "no 'model'"),
        (json.dumps({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}), "model"),
        (json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "[UNK]"}}), "[UNK]"),
        (json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}), "pair"),
        (
            json.dumps({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "normalizer": {"type": "Precompiled"}}),
            "Precompiled",
        ),
    ],
)
def test_malformed_tokenizer_json(tmp_path, content, problem):
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_file(path)
    msg = one_line(err)
    assert "tokenizer.json" in msg and problem in msg


def test_vocab_size_smaller_than_alphabet():
    with pytest.raises(BertkitError) as err:
        Tokenizer.train(["abcdefghij klmnop"], model="bpe", vocab_size=10, show_progress=False)
    assert "alphabet" in one_line(err) and "vocab_size=10" in str(err.value)


@pytest.mark.parametrize("source", [[], [""], ["   \n\t "], "empty"])
def test_empty_training_corpus(tmp_path, source):
    if source == "empty":
        (tmp_path / "empty.txt").write_text("", encoding="utf-8")
        source = tmp_path / "empty.txt"
    with pytest.raises(BertkitError) as err:
        Tokenizer.train(source, model="wordpiece", vocab_size=100, show_progress=False)
    assert "no words" in one_line(err)


def test_training_file_problems(tmp_path):
    with pytest.raises(InputFileError) as err:
        Tokenizer.train(tmp_path / "missing.txt", show_progress=False)
    assert "missing.txt" in one_line(err)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"fine line\ncaf\xe9\n")
    with pytest.raises(InputFileError) as err:
        Tokenizer.train(bad, show_progress=False)
    assert "UTF-8" in one_line(err) and "latin1.txt:2" in str(err.value)
    with pytest.raises(InputFileError):
        Tokenizer.train([bad, tmp_path / "missing.txt"], show_progress=False)


def test_bad_arguments(bert_tok):
    with pytest.raises(BertkitError):
        bert_tok.encode(["a list"])
    with pytest.raises(BertkitError):
        bert_tok.encode_batch("a single string")
    with pytest.raises(BertkitError):
        bert_tok(["a", "b"], ["only one pair"])
    with pytest.raises(BertkitError):
        bert_tok("x", padding="sideways")
    with pytest.raises(BertkitError):
        bert_tok("a b c d e f", truncation="only_second", max_length=4)  # no second sequence to cut
    with pytest.raises(BertkitError) as err:
        bert_tok(["a", "b c d"], return_tensors="pt")
    assert "padding=True" in one_line(err)
    with pytest.raises(BertkitError):
        bert_tok("a b c d e", truncation=True, max_length=4, stride=2, return_overflowing_tokens=True)
    with pytest.raises(BertkitError):
        bert_tok.decode([10**9])
    with pytest.raises(BertkitError):
        Tokenizer.train(["x"], model="unigram", show_progress=False)


def test_cli_reports_one_line_and_exit_2(tmp_path, capsys):
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path / "none"), "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err and "none" in err
    assert main(["tokenizer", "train", "--out", str(tmp_path / "o"), str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_a_lone_surrogate_in_the_vocabulary_is_refused_before_saving(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "\ud800": 1}}}), encoding="utf-8")
    tok = Tokenizer.from_file(path)  # JSON escapes can spell it; UTF-8 files cannot hold it
    with pytest.raises(BertkitError) as err:
        tok.save(tmp_path / "out")
    assert "surrogate" in one_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "model, problem",
    [
        ({"type": "WordPiece", "vocab": {"[UNK]": 0, "a": True}}, "whole numbers"),
        ({"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 0}}, "share id 0"),
        ({"type": "WordPiece", "vocab": {"[UNK]": 0, "a": -3}}, "-3"),
        ({"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 5000}}, "renumber"),
        ({"type": "WordPiece", "vocab": {"[UNK]": 0}, "max_input_chars_per_word": "100"}, "whole number"),
        ({"type": "BPE", "vocab": {"a": 0}, "merges": [["a", 1]]}, "pair of tokens"),
        ({"type": "WordLevel", "vocab": {"a": 0}}, "unknown token"),
    ],
)
def test_vocabulary_ids_and_fields_are_checked_at_load(tmp_path, model, problem):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": model}), encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        Tokenizer.from_file(path)
    msg = one_line(err)
    assert "tokenizer.json" in msg and problem in msg
