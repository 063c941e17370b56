"""The demo's corpus: the shared books, or -- without $BERTKIT_DATA -- Python's own documentation."""

from __future__ import annotations

import pytest

from bertkit.data import python_docs
from bertkit.data.build import BuildSettings, build_pretraining_data
from bertkit.data.documents import read_documents
from bertkit.data.python_docs import default_corpus, python_doc_texts
from bertkit.errors import BertkitError
from bertkit.tokenizers import Tokenizer


def test_without_data_the_corpus_is_pythons_documentation(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "absent"))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "mine.txt").write_text("a user's own file\n")
    with pytest.raises(BertkitError, match="not written by bertkit"):
        default_corpus(folder)  # a folder bertkit did not write is never cleared
    assert (folder / "mine.txt").read_text() == "a user's own file\n"
    (folder / "mine.txt").unlink()
    default_corpus(folder, max_bytes=1000)
    (folder / "stale.txt").write_text("left by an earlier run\n")
    corpus = default_corpus(folder, every=3, max_bytes=1000)  # both apply to the books only
    assert not corpus.shared
    assert "BERTKIT_DATA" in corpus.description and str(tmp_path / "absent") in corpus.description
    assert sorted(folder.glob("*.txt")) == sorted(corpus.files)  # the stale file is gone
    assert len(corpus.files) > 100
    size = sum(f.stat().st_size for f in corpus.files)
    assert 500_000 < size < 3_000_000
    text = "\n".join(f.read_text(encoding="utf-8") for f in corpus.files)
    assert "\n>>> " not in text  # interactive examples are code, not prose
    assert default_corpus(tmp_path / "again").files[-1].read_text() == corpus.files[-1].read_text()  # deterministic


def test_the_fallback_text_is_prose_in_documents():
    docs = python_doc_texts()
    names = [name for name, _ in docs]
    assert len(set(names)) == len(names)
    if "topic-if" in names:  # pydoc_data is missing from some trimmed Pythons; docstrings remain
        assert "conditional execution" in dict(docs)["topic-if"]
    assert any(name.startswith("module-") for name in names)
    assert python_doc_texts(max_bytes=10_000) == docs[: len(python_doc_texts(max_bytes=10_000))]


def test_a_python_without_documentation_gets_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "absent"))
    monkeypatch.setattr(python_docs, "_documents", lambda: iter(()))
    with pytest.raises(BertkitError, match="set BERTKIT_DATA"):
        default_corpus(tmp_path / "docs")


def test_with_books_the_corpus_is_the_books(tmp_path, monkeypatch):
    books = tmp_path / "data" / "corpus" / "books"
    books.mkdir(parents=True)
    for name in "abcde":
        (books / f"{name}.txt").write_text(f"Book {name}. " * 100)  # 800 bytes each
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "data"))
    corpus = default_corpus(tmp_path / "unused")
    assert corpus.shared and [f.name for f in corpus.files] == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"]
    assert [f.name for f in default_corpus(tmp_path / "unused", every=2).files] == ["a.txt", "c.txt", "e.txt"]
    assert [f.name for f in default_corpus(tmp_path / "unused", max_bytes=1500).files] == ["a.txt", "b.txt"]
    assert not (tmp_path / "unused").exists()


def test_steps_1_and_2_run_on_the_fallback_text(tmp_path, monkeypatch):
    """A vocabulary trained on Python's documentation tokenizes it, and it makes MLM + NSP data."""
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "absent"))
    files = default_corpus(tmp_path / "docs").files[:40]
    tok = Tokenizer.train(files, model="wordpiece", vocab_size=1500, show_progress=False)
    assert tok.tokenize("the if statement")[:2] == ["the", "if"]
    assert tok.token_to_id("[MASK]") is not None
    sentences = [s for f in files for doc in read_documents(f) for s in doc]
    assert len(sentences) > 500
    manifest = build_pretraining_data(
        files,
        tok.save(tmp_path / "tok"),
        tmp_path / "data",
        BuildSettings(max_seq_len=64, heldout=2),
        progress=False,
        log=lambda _: None,
    )
    train = manifest["splits"]["train"]
    assert train["instances"] > 200
    assert 0.3 < train["not_next"] / train["instances"] < 0.7
