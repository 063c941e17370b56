import json

import numpy as np
import pytest

from bertkit.data.build import BuildSettings, build_pretraining_data
from bertkit.data.shards import NpyAppender, PretrainingData, read_manifest
from bertkit.errors import BertkitError, InputFileError

# one word per document, each a single token of the MiniLM vocabulary: an instance's words tell
# exactly which documents it was cut from
WORDS = ["apple", "river", "candle", "horse", "garden", "window", "silver", "winter", "castle", "forest"]


def _word_corpus(folder, n_docs=10, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        paragraphs = []
        for _ in range(int(rng.integers(8, 20))):
            sents = [
                " ".join([WORDS[d]] * int(rng.integers(3, 15))).capitalize() + "."
                for _ in range(int(rng.integers(1, 5)))
            ]
            paragraphs.append(" ".join(sents))
        (folder / f"doc{d:02d}.txt").write_text("\n\n".join(paragraphs) + "\n")
    return folder


@pytest.fixture(scope="module")
def books(shared_data, tmp_path_factory):
    """Slices (~15k characters) of six real books, so the build runs in a second."""
    src = sorted(shared_data("corpus", "books").glob("*.txt"))[:6]
    folder = tmp_path_factory.mktemp("books")
    for path in src:
        text = path.read_text()[20_000:35_000]
        (folder / path.name).write_text(text[text.index("\n\n") + 2 :])
    return folder


def _build(inputs, tok, out, workers=1, **settings):
    return build_pretraining_data(
        [inputs], tok, out, BuildSettings(**settings), workers=workers, progress=False, log=lambda s: None
    )


def test_build_is_deterministic_for_any_worker_count(books, minilm_dir, tmp_path):
    m1 = _build(books, minilm_dir, tmp_path / "w1", workers=1, max_seq_len=64, dupe_factor=2, shard_tokens=20_000)
    m2 = _build(books, minilm_dir, tmp_path / "w2", workers=2, max_seq_len=64, dupe_factor=2, shard_tokens=20_000)
    assert m1 == m2
    shards = m1["splits"]["train"]["shards"]
    assert len(shards) >= 4  # several shards per dupe
    for s in shards:
        for kind in ("ids", "starts", "index"):
            a = (tmp_path / "w1" / "train" / f"{s['name']}.{kind}.npy").read_bytes()
            assert a == (tmp_path / "w2" / "train" / f"{s['name']}.{kind}.npy").read_bytes()
    other = _build(books, minilm_dir, tmp_path / "seed2", max_seq_len=64, dupe_factor=2, shard_tokens=20_000, seed=7)
    assert other["splits"] != m1["splits"]


def test_instances_read_back_memory_mapped(books, minilm_dir, tmp_path):
    manifest = _build(books, minilm_dir, tmp_path / "d", max_seq_len=64)
    assert manifest == read_manifest(tmp_path / "d")
    from bertkit.tokenizers import Tokenizer

    tok = Tokenizer.from_pretrained(tmp_path / "d" / "tokenizer")
    data = PretrainingData(tmp_path / "d")
    info = manifest["splits"]["train"]
    assert len(data) == info["instances"] > 100 and int(data.lengths.sum()) == info["tokens"]
    assert isinstance(data._shards[0]["ids"], np.memmap) and data._shards[0]["ids"].dtype == np.uint16
    assert data.labels_nsp.sum() == info["not_next"]
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    for i in range(0, len(data), 7):
        ids, starts, len_a, not_next, labels = data[i]
        assert len(ids) <= 64 and ids[0] == cls and ids[len_a - 1] == sep and ids[-1] == sep and labels is None
        assert starts[0] and starts[len_a] and starts.dtype == bool
    text = tok.decode(data[0][0].tolist())
    assert len(text.split()) > 10  # real words came back


def test_heldout_documents_never_leak_into_train(minilm_dir, tmp_path):
    corpus = _word_corpus(tmp_path / "c")
    manifest = _build(corpus, minilm_dir, tmp_path / "d", max_seq_len=48, heldout=3)
    from bertkit.tokenizers import Tokenizer

    tok = Tokenizer.from_pretrained(minilm_dir)
    word_ids = {tok.token_to_id(w): d for d, w in enumerate(WORDS)}
    held = set(manifest["heldout_documents"])
    assert len(held) == 3 and manifest["splits"]["eval"]["documents"] == 3
    for split, allowed in (("train", set(range(10)) - held), ("eval", held)):
        data = PretrainingData(tmp_path / "d", split)
        for i in range(len(data)):
            docs = {word_ids[t] for t in data[i][0].tolist() if t in word_ids}
            assert docs <= allowed, (split, i, docs)
            if data[i][3] == 0:  # isNext: A and B from one document
                assert len(docs) == 1


def test_static_masking_stores_labels(books, minilm_dir, tmp_path):
    _build(books, minilm_dir, tmp_path / "d", max_seq_len=64, static_masking=True, whole_word_mask=True)
    data = PretrainingData(tmp_path / "d")
    chosen = candidates = 0
    for i in range(len(data)):
        ids, starts, len_a, nn, labels = data[i]
        picked = labels != -100
        chosen += picked.sum()
        candidates += len(ids) - 3
        assert picked[0] == picked[len_a - 1] == picked[-1] == False  # noqa: E712
    assert 0.12 < chosen / candidates <= 0.16


def test_bad_corpora_give_clear_errors(minilm_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("\n\n   \n")
    with pytest.raises(BertkitError, match="corpus is empty"):
        _build(empty, minilm_dir, tmp_path / "o1")
    single = tmp_path / "single"
    single.mkdir()
    for i in range(3):
        (single / f"{i}.txt").write_text("Only one sentence here.\n")
    with pytest.raises(BertkitError, match="two or more sentences"):
        _build(single, minilm_dir, tmp_path / "o2")
    corpus = _word_corpus(tmp_path / "c", n_docs=4)
    with pytest.raises(BertkitError, match="--heldout 3"):
        _build(corpus, minilm_dir, tmp_path / "o3", heldout=3)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BertkitError, match="not empty"):
        _build(corpus, minilm_dir, tmp_path / "full")
    with pytest.raises(BertkitError, match="max-seq-len"):
        _build(corpus, minilm_dir, tmp_path / "o4", max_seq_len=4)


def test_a_tokenizer_without_mask_is_refused(tmp_path):
    vocab = tmp_path / "tok" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + WORDS + ["."]) + "\n")
    with pytest.raises(BertkitError, match=r"lacks \[MASK\]"):
        _build(_word_corpus(tmp_path / "c"), vocab.parent, tmp_path / "o")


def test_reading_a_broken_folder(books, minilm_dir, tmp_path):
    with pytest.raises(InputFileError, match="no manifest.json"):
        PretrainingData(tmp_path)
    _build(books, minilm_dir, tmp_path / "d", max_seq_len=64)
    with pytest.raises(BertkitError, match="no 'eval' instances.*--heldout"):
        PretrainingData(tmp_path / "d", "eval")
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["instances"] += 1
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputFileError, match="differs from manifest"):
        PretrainingData(tmp_path / "d")
    (tmp_path / "d" / "manifest.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        PretrainingData(tmp_path / "d")


def test_a_mangled_manifest_number_or_npy_header_is_refused(books, minilm_dir, tmp_path):
    """Inputs bench/fuzz.py found raising ValueError, tokenize.TokenError and OverflowError from deep inside."""
    _build(books, minilm_dir, tmp_path / "d", max_seq_len=64)
    path = tmp_path / "d" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "tokenizer": {**manifest["tokenizer"], "id_bound": "../x"}}))
    with pytest.raises(InputFileError, match="vocab_size or id_bound is not a positive whole number"):
        PretrainingData(tmp_path / "d")
    path.write_text(json.dumps(manifest))
    index = next((tmp_path / "d" / "train").glob("*.index.npy"))
    data = index.read_bytes()
    end = data.index(b"}")  # the header is a Python dict literal; an unclosed one is not Python
    index.write_bytes(data[:end] + b" " + data[end + 1 :])
    with pytest.raises(InputFileError, match="missing or unreadable"):
        PretrainingData(tmp_path / "d")
    shape = data.index(b"'shape': (") + len(b"'shape': (")  # a row count beyond C's integers
    index.write_bytes(data[:shape] + b"99999999999999999999" + data[data.index(b",", shape) :])
    with pytest.raises(InputFileError, match="missing or unreadable"):
        PretrainingData(tmp_path / "d")


def test_npy_appender_writes_standard_npy(tmp_path):
    with NpyAppender(tmp_path / "a.npy", np.int64, (4,)) as w:
        w.append(np.arange(8).reshape(2, 4))
        w.append(np.arange(4).reshape(1, 4))
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (3, 4) and a[2].tolist() == [0, 1, 2, 3]
    with NpyAppender(tmp_path / "e.npy", np.uint16):
        pass
    assert np.load(tmp_path / "e.npy", mmap_mode="r").shape == (0,)


def test_the_out_folder_must_be_new_unless_overwrite(books, minilm_dir, tmp_path, capsys):
    from bertkit.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["pretrain-data", str(books), "--tokenizer", str(minilm_dir), "--out", str(out), "--max-seq-len", "64"]
    assert main([*args, "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main([*args, "--no-progress", "--overwrite"]) == 0
    (out / "tokenizer" / "stale.json").write_text("{}")  # an earlier build's leftovers ...
    assert main([*args, "--no-progress", "--overwrite", "--seed", "7"]) == 0
    assert not (out / "tokenizer" / "stale.json").exists()  # ... never mix with the new one
    assert (out / "notes.txt").read_text() == "mine" and read_manifest(out)["settings"]["seed"] == 7


def test_build_flags_come_from_the_settings_and_old_names_still_work(books, minilm_dir, tmp_path, capsys, caplog):
    import logging

    from bertkit.cli import main

    base = ["pretrain-data", str(books), "--tokenizer", str(minilm_dir), "--no-progress", "--max-seq-len", "512"]
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        assert (
            main([*base, "--out", str(tmp_path / "a"), "--masked-lm-prob", "0.2", "--max-predictions-per-seq", "20"])
            == 0
        )
    assert "--masked-lm-prob is renamed --mlm-probability" in capsys.readouterr().err
    assert "--max-predictions 20 masks at most 3.9% of a 512-token sequence" in caplog.text
    settings = read_manifest(tmp_path / "a")["settings"]
    assert settings["mlm_probability"] == 0.2 and settings["max_predictions"] == 20
    assert settings["seed"] == BuildSettings().seed == 42  # one default seed everywhere
    assert BuildSettings(max_seq_len=128).resolved_max_predictions() == 20
    assert BuildSettings(max_seq_len=512).resolved_max_predictions() == 77


def test_shards_appear_only_when_complete(tmp_path):
    w = NpyAppender(tmp_path / "a.npy", np.int64)
    w.append(np.arange(5))
    assert not (tmp_path / "a.npy").exists()  # still under a temporary name
    w.close()
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError), NpyAppender(tmp_path / "b.npy", np.int64) as w:
        w.append(np.arange(3))
        raise RuntimeError("a build error")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]  # no partial b.npy, no temporary file


def test_ids_that_need_more_than_16_bits_are_stored_wider(books, minilm_dir, tmp_path):
    from bertkit.data.shards import id_dtype

    assert id_dtype(65536) == np.uint16 and id_dtype(65537) == np.int32  # the largest id + 1, not the count
    _build(books, minilm_dir, tmp_path / "d", max_seq_len=64)
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    manifest["tokenizer"]["id_bound"] = 70_001  # a sparse vocabulary whose largest id is 70,000
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputFileError, match="ids stored as uint16 cannot hold the tokenizer's ids .up to 70000"):
        PretrainingData(tmp_path / "d")
