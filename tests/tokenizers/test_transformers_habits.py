"""Hugging Face habits, each compared with transformers' BERT tokenizer on the same vocabulary:
save_pretrained, batch_decode, is_split_into_words, return_attention_mask / return_token_type_ids,
padding_side / truncation_side; from_pretrained and push_to_hub through a stubbed hub."""

from __future__ import annotations

import json
import sys
import types

import pytest
from peers import peer
from test_parity import EDGE_CASES, compare

from bertkit.errors import BertkitError
from bertkit.tokenizers import Tokenizer

WORD_LISTS = [
    ["Hello", "world!!"],
    ["don't", "stop", "[MASK]x", ""],
    ["Paris", "is", "the", "capital", "of", "France", "."],
    ["unbelievably", "tiresome", "Mephistopheles"],
    ["  spaced  ", "你好", "Café"],
]


@pytest.fixture
def hf(hf_fast):
    """A private copy: these tests change padding_side / truncation_side."""
    return type(hf_fast).from_pretrained(hf_fast.name_or_path)


def test_save_pretrained_writes_what_transformers_loads(bert_tok, tmp_path, sst2_sentences):
    paths = bert_tok.save_pretrained(tmp_path / "tok")
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    hf = peer("transformers").AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    for text in sst2_sentences[:200]:
        assert hf(text)["input_ids"] == bert_tok(text)["input_ids"]
    assert Tokenizer.from_pretrained(tmp_path / "tok").get_vocab() == bert_tok.get_vocab()


def test_batch_decode_matches_transformers(bert_tok, hf, sst2_sentences):
    ids = [bert_tok.encode(t).ids for t in sst2_sentences[:300] + EDGE_CASES]
    assert bert_tok.batch_decode(ids) == hf.batch_decode(ids)  # special tokens kept, as in transformers
    assert bert_tok.batch_decode(ids, skip_special_tokens=True) == hf.batch_decode(ids, skip_special_tokens=True)
    torch = pytest.importorskip("torch")
    padded = bert_tok(["a b", "c"], padding=True, return_tensors="pt")["input_ids"]
    assert isinstance(padded, torch.Tensor)
    assert bert_tok.batch_decode(padded, skip_special_tokens=True) == ["a b", "c"]


def test_is_split_into_words_matches_transformers(bert_tok, hf):
    compare(bert_tok, hf, WORD_LISTS, is_split_into_words=True)  # a batch of word lists
    compare(bert_tok, hf, WORD_LISTS, WORD_LISTS[::-1], is_split_into_words=True, padding=True)
    for words in WORD_LISTS:  # one word list is one sequence, not a batch
        ours = bert_tok(words, is_split_into_words=True, return_offsets_mapping=True)
        theirs = hf(words, is_split_into_words=True, return_offsets_mapping=True)
        assert ours["input_ids"] == theirs["input_ids"]
        assert ours["offset_mapping"] == [tuple(o) for o in theirs["offset_mapping"]]
        assert ours.word_ids() == theirs.word_ids()
    enc = bert_tok.encode(["Hello", "pretraining"], is_split_into_words=True)
    assert enc.tokens == ["[CLS]", "hello", "pre", "##train", "##ing", "[SEP]"]
    assert enc.word_ids == [None, 0, 1, 1, 1, None]
    with pytest.raises(BertkitError, match="list of str"):
        bert_tok.encode("not a list", is_split_into_words=True)


def test_return_attention_mask_and_token_type_ids(bert_tok, hf):
    for flags in ({"return_attention_mask": False}, {"return_token_type_ids": False}, {"return_attention_mask": True}):
        ours, theirs = bert_tok(["a b", "c"], padding=True, **flags), hf(["a b", "c"], padding=True, **flags)
        assert sorted(ours) == sorted(theirs)
        assert {k: ours[k] for k in ours} == {k: theirs[k] for k in theirs}
    assert sorted(bert_tok("a", return_attention_mask=False, return_token_type_ids=False)) == ["input_ids"]


def test_padding_side_left_matches_transformers(bert_tok, hf, snli_pairs):
    texts = [p for p, _ in snli_pairs[:60]]
    compare(bert_tok, hf, texts, padding=True, padding_side="left")  # the call argument
    left = Tokenizer.from_vocab(f"{hf.name_or_path}/vocab.txt", padding_side="left")
    hf.padding_side = "left"  # the attribute
    compare(left, hf, texts, padding="max_length", max_length=40, truncation=True)
    left.padding_side = "right"
    assert left(["a", "b c"], padding=True)["attention_mask"] == [[1, 1, 1, 0], [1, 1, 1, 1]]
    with pytest.raises(BertkitError, match="padding_side"):
        bert_tok("a", padding=True, padding_side="middle")


def test_truncation_side_left_matches_transformers(bert_tok, hf, snli_pairs):
    firsts = [p for p, _ in snli_pairs[:40]] + ["a very long first sentence " * 8]
    seconds = [h for _, h in snli_pairs[:40]] + ["tiny"]
    left = Tokenizer.from_vocab(f"{hf.name_or_path}/vocab.txt", truncation_side="left")
    hf.truncation_side = "left"
    compare(left, hf, firsts, truncation=True, max_length=12)
    compare(left, hf, firsts, seconds, truncation="longest_first", max_length=16, padding=True)
    compare(left, hf, firsts, truncation=True, max_length=10, stride=3, return_overflowing_tokens=True, padding=True)
    assert left("a b c d e f g h", truncation=True, max_length=5)["input_ids"] == [101, 1042, 1043, 1044, 102]


def test_padding_and_truncation_sides_round_trip_through_the_folder(minilm_dir, tmp_path):
    tok = Tokenizer.from_vocab(minilm_dir / "vocab.txt", padding_side="left")
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["padding_side"] == "left"
    again = Tokenizer.from_pretrained(tmp_path)
    assert (again.padding_side, again.truncation_side) == ("left", "right")
    hf = peer("transformers").AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf.padding_side == "left"


def test_from_pretrained_fetches_a_hub_name_with_the_options(minilm_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(minilm_dir)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    tok = Tokenizer.from_pretrained("someone/minilm", revision="v1", token="t", cache_dir=str(tmp_path / "c"))
    assert tok.tokenize("pretraining") == ["pre", "##train", "##ing"]
    repo, options = calls[0]
    assert repo == "someone/minilm"
    assert (options["revision"], options["token"], options["cache_dir"]) == ("v1", "t", str(tmp_path / "c"))
    with pytest.raises(BertkitError, match="no such tokenizer folder"):
        Tokenizer.from_pretrained("./runs/missing")  # a path-like name is never fetched
    assert len(calls) == 1


def test_push_to_hub_uploads_the_saved_folder(bert_tok, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    uploaded = {}

    class HfApi:
        def __init__(self, token=None):
            uploaded["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            uploaded["created"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=None):
            from pathlib import Path

            files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            uploaded.update(repo=repo_id, files=files, message=commit_message)
            return types.SimpleNamespace(commit_url=f"https://hub/{repo_id}/commit/1")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=HfApi))
    url = bert_tok.push_to_hub("me/tok", token="secret", private=True, commit_message="tokenizer")
    assert url == "https://hub/me/tok/commit/1"
    assert uploaded["token"] == "secret" and uploaded["created"] == ("me/tok", True, True)
    assert sorted(uploaded["files"]) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    assert json.loads(uploaded["files"]["tokenizer.json"])["model"]["vocab"]["[CLS]"] == 101
