"""The front API as its contract states it, and the `bertkit tokenizer` commands."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
from peers import peer

from bertkit.cli import main
from bertkit.tokenizers import BatchEncoding, Encoding, Tokenizer


def test_constructors_agree(minilm_dir, tmp_path, bert_tok):
    only_vocab = tmp_path / "vocab_only"
    only_vocab.mkdir()
    shutil.copy(minilm_dir / "vocab.txt", only_vocab / "vocab.txt")
    text = "Héllo, Wörld! Let us start pretraining the model."
    expected = bert_tok.encode(text).ids
    for tok in (
        Tokenizer.from_pretrained(minilm_dir),
        Tokenizer.from_pretrained(only_vocab),
        Tokenizer.from_file(minilm_dir / "tokenizer.json"),
    ):
        assert tok.encode(text).ids[: len(expected)] == expected
    (only_vocab / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}), encoding="utf-8")
    assert Tokenizer.from_pretrained(only_vocab).tokenize("Hello") == ["[UNK]"]  # cased, as configured


def test_encoding_fields(bert_tok):
    enc = bert_tok.encode("Let us start pretraining the model", pair="Paris is a city")
    assert isinstance(enc, Encoding)
    n = len(enc)
    for field in (
        enc.ids,
        enc.tokens,
        enc.type_ids,
        enc.offsets,
        enc.attention_mask,
        enc.special_tokens_mask,
        enc.word_ids,
    ):
        assert len(field) == n
    assert enc.tokens[:8] == ["[CLS]", "let", "us", "start", "pre", "##train", "##ing", "the"]
    assert enc.word_ids[4:7] == [3, 3, 3]  # pre ##train ##ing: one word
    assert enc.offsets[4:7] == [(13, 16), (16, 21), (21, 24)]
    assert enc.char_to_token(14) == 4 and enc.char_to_token(0, sequence_index=1) == enc.tokens.index("paris")
    bare = bert_tok.encode("Let us", add_special_tokens=False)
    assert bare.tokens == ["let", "us"] and bare.special_tokens_mask == [0, 0]


def test_encode_batch_serial_and_parallel_agree(bert_tok, corpus_paragraphs):
    texts = (corpus_paragraphs * 2)[:2500]
    serial = bert_tok.encode_batch(texts, num_workers=1)
    parallel = bert_tok.encode_batch(texts, num_workers=2)
    assert [e.ids for e in serial] == [e.ids for e in parallel]
    assert [e.offsets for e in serial] == [e.offsets for e in parallel]
    assert [e.word_ids for e in serial] == [e.word_ids for e in parallel]
    assert parallel[0].tokens == serial[0].tokens
    pairs = bert_tok.encode_batch(texts[:3], texts[3:6])
    assert pairs[0].ids == bert_tok.encode(texts[0], texts[3]).ids


def test_call_padding_truncation_and_tensors(bert_tok):
    torch = pytest.importorskip("torch")
    batch = bert_tok(
        ["short", "a somewhat longer sentence here"], padding="max_length", max_length=12, return_tensors="pt"
    )
    assert isinstance(batch, BatchEncoding)
    assert batch["input_ids"].shape == (2, 12) and batch.input_ids.dtype == torch.long
    assert batch["attention_mask"][0].tolist() == [1, 1, 1] + [0] * 9
    assert batch.to("cpu") is batch
    arrays = bert_tok(["a b", "c"], padding=True, return_tensors="np", return_offsets_mapping=True)
    assert arrays["offset_mapping"].shape == (2, 4, 2)
    lists = bert_tok("one two", return_special_tokens_mask=True, return_length=True)
    assert lists["special_tokens_mask"] == [1, 0, 0, 1] and lists["length"] == 4


def test_decode(bert_tok):
    ids = bert_tok.encode("Hello , world ! It's").ids
    assert bert_tok.decode(ids) == "hello, world! it ' s"  # Hugging Face's cleanup, exactly
    assert bert_tok.decode(ids, skip_special_tokens=False).startswith("[CLS] hello")
    assert bert_tok.decode(bert_tok.encode("pretraining").ids) == "pretraining"


def test_save_and_reload(tmp_path, small_corpus):
    tok = Tokenizer.train(small_corpus, model="wordpiece", vocab_size=1200, show_progress=False)
    tok.save(tmp_path / "tok")
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == [
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    for again in (Tokenizer.from_pretrained(tmp_path / "tok"), Tokenizer.from_vocab(tmp_path / "tok" / "vocab.txt")):
        for text in small_corpus[:50]:
            assert again.encode(text).ids == tok.encode(text).ids
    transformers = peer("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert hf(small_corpus[3])["input_ids"] == tok.encode(small_corpus[3]).ids


def test_added_tokens(bert_tok):
    tok = pickle.loads(pickle.dumps(bert_tok))  # a private copy (and tokenizers pickle)
    assert tok.add_special_tokens(["<ent>"]) == 1
    assert tok.add_tokens(["bertkit"]) == 1
    enc = tok.encode("I use BERTKIT with <ent>", add_special_tokens=False)
    assert enc.tokens == ["i", "use", "bertkit", "with", "<ent>"]
    assert enc.offsets[-1] == (19, 24)
    assert tok.decode(enc.ids) == "i use bertkit with"
    assert len(tok) == len(bert_tok) + 2


def test_cli_train_and_encode(tmp_path, small_corpus, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(small_corpus[:200]), encoding="utf-8")
    out = tmp_path / "tok"
    assert (
        main(["tokenizer", "train", "--model", "bpe", "--vocab-size", "900", "--out", str(out), "--quiet", str(corpus)])
        == 0
    )
    assert "900 tokens" in capsys.readouterr().out
    assert Tokenizer.from_pretrained(out).vocab_size == 900

    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--pair", "second part", "the first part"]) == 0
    printed = capsys.readouterr().out
    assert "[CLS]" in printed and "offsets" in printed and "0-3" in printed

    (tmp_path / "in.txt").write_text("first line\nsecond line here\n", encoding="utf-8")
    assert (
        main(
            [
                "tokenizer",
                "encode",
                "--tokenizer",
                str(out),
                "--input",
                str(tmp_path / "in.txt"),
                "--output",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and rows[0]["tokens"][0] == "[CLS]" and rows[1]["offsets"][1][0] == 0
