"""`bertkit tokenizer train|encode` through bertkit.cli.main: the new-folder rule, the word-level
model, the WordPiece criterion, --max-seq-len (and its old spelling), one output line per input line."""

from __future__ import annotations

import json

import pytest

from bertkit.cli import main
from bertkit.tokenizers import Tokenizer


@pytest.fixture
def corpus(tmp_path, small_corpus):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(small_corpus[:120]), encoding="utf-8")
    return path


def train(out, corpus, *flags) -> int:
    return main(["tokenizer", "train", "--vocab-size", "600", "--out", str(out), "--quiet", *flags, str(corpus)])


def test_train_refuses_a_folder_that_is_not_empty(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "tokenizer.json").write_text("{}", encoding="utf-8")  # someone else's file
    assert train(out, corpus) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not empty" in err and "--overwrite" in err
    assert (out / "tokenizer.json").read_text(encoding="utf-8") == "{}"
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.json"]
    assert train(out, corpus, "--overwrite") == 0
    assert Tokenizer.from_pretrained(out).vocab_size == 600  # the new tokenizer.json replaced the stale one
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # atomic writes leave no temp files


def test_train_a_word_level_vocabulary(tmp_path, corpus):
    assert train(tmp_path / "words", corpus, "--model", "wordlevel", "--min-frequency", "1") == 0
    tok = Tokenizer.from_pretrained(tmp_path / "words")
    assert type(tok.model).__name__ == "WordLevel"
    assert tok.tokenize("the zzzqqq") == ["the", "[UNK]"]


def test_train_with_the_ratio_criterion(tmp_path, corpus):
    assert train(tmp_path / "likelihood", corpus) == 0
    assert train(tmp_path / "ratio", corpus, "--criterion", "ratio") == 0
    likelihood = Tokenizer.from_pretrained(tmp_path / "likelihood").get_vocab()
    ratio = Tokenizer.from_pretrained(tmp_path / "ratio").get_vocab()
    expected = Tokenizer.train([corpus], vocab_size=600, criterion="ratio", show_progress=False).get_vocab()
    assert ratio == expected and ratio != likelihood


def test_encode_max_seq_len_and_the_old_spelling(minilm_dir, capsys):
    text = "one two three four five six"
    assert main(["tokenizer", "encode", "--tokenizer", str(minilm_dir), "--max-seq-len", "4", text]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith("4 tokens") and "[CLS]" in out.out
    assert main(["tokenizer", "encode", "--tokenizer", str(minilm_dir), "--max-length", "4", text]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith("4 tokens")
    assert "--max-length is renamed --max-seq-len" in out.err
    assert main(["tokenizer", "encode", "--tokenizer", str(minilm_dir), "--max-seq-len", "0", text]) == 2


def test_encode_file_gives_one_line_per_input_line(minilm_dir, tmp_path, capsys):
    lines = ["first line", "", "a line\u2028with a line separator inside", "caf\u00e9\r"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["tokenizer", "encode", "--tokenizer", str(minilm_dir), "--input", str(tmp_path / "in.txt")]
    assert main(args + ["--output", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(r) for r in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    assert rows[1]["tokens"] == ["[CLS]", "[SEP]"]
    assert rows[2]["tokens"][1:4] == ["a", "line", "with"]
    capsys.readouterr()
    assert main(args) == 0  # to stdout
    assert len(capsys.readouterr().out.splitlines()) == 4
