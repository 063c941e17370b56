"""A corpus every machine has: the English text shipped inside Python's own installation.

The demo trains a vocabulary and pretrains a small BERT on the shared books. Where they are absent
(no `$BERTKIT_DATA`), it uses instead the standard library's documentation topics
(`pydoc_data.topics`, the text of `help("if")`, ~0.5 MB) and the docstrings of the standard
library's modules (~0.9 MB): real prose about one subject, a little over a megabyte in all.

Each topic and each module becomes one file (one document, blank lines between paragraphs), the
layout `Tokenizer.train` and `build_pretraining_data` read.
"""

from __future__ import annotations

import ast
import functools
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from bertkit.errors import BertkitError
from bertkit.files import atomic_write_text
from bertkit.settings import data_dir

_DOCTEST = re.compile(r"^\s*(>>>|\.\.\.)( |$)")  # interactive examples: code, not prose
_UNSAFE = re.compile(r"[^\w.-]+")


def python_doc_texts(max_bytes: int = 2_000_000) -> list[tuple[str, str]]:
    """(name, text) documents: pydoc topics first, then module docstrings, about `max_bytes` in all."""
    kept, size = [], 0
    for name, text in _documents():
        text = "\n".join(line for line in text.splitlines() if not _DOCTEST.match(line)).strip()
        if not text:
            continue
        kept.append((name, text))
        size += len(text.encode("utf-8"))
        if size >= max_bytes:
            break
    return kept


def _documents() -> Iterator[tuple[str, str]]:
    found: dict[str, str] = {}
    try:
        from pydoc_data.topics import topics  # lazy: pydoc_data is absent from some trimmed Python builds

        found = dict(topics)
    except ImportError:
        pass
    for name in sorted(found):
        yield f"topic-{name}", found[name]
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = _module_docstrings(path)
        if text:
            yield f"module-{path.stem}", text


@functools.cache  # parsing the standard library takes seconds; the demo reads it twice
def _module_docstrings(path: Path) -> str:
    """The module's, its classes' and its functions' docstrings, one paragraph group each."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return ""
    parts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and len(doc) > 40:  # skip one-line stubs like "Return self."
                parts.append(doc)
    return "\n\n".join(parts)


MARK = ".bertkit-python-docs"  # in a folder this module wrote: it may replace the .txt files there


def write_python_docs(folder: str | Path, max_bytes: int = 2_000_000) -> list[Path]:
    """Write `python_doc_texts` as one .txt file per document into `folder`; returns the files.

    `folder` must be new, empty, or written here before (it holds MARK): a folder of the user's own
    files is refused, never cleared.
    """
    folder = Path(folder)
    if folder.exists() and not (folder / MARK).is_file() and (not folder.is_dir() or any(folder.iterdir())):
        raise BertkitError(
            f"{folder}: exists and was not written by bertkit's Python-documentation corpus; move it away "
            "or choose another output folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("Python's documentation as text files, written by bertkit\n", encoding="utf-8")
    for old in folder.glob("*.txt"):  # a previous run's documents, possibly a different selection
        old.unlink()
    files = []
    for i, (name, text) in enumerate(python_doc_texts(max_bytes)):
        path = folder / f"{i:04d}-{_UNSAFE.sub('_', name)}.txt"
        atomic_write_text(path, text + "\n")
        files.append(path)
    return files


class Corpus(NamedTuple):
    files: list[Path]
    description: str
    shared: bool  # the shared books (True) or Python's documentation (False)


def default_corpus(fallback_folder: str | Path, every: int = 1, max_bytes: float | None = None) -> Corpus:
    """The corpus the demo learns from, and what it is. The shared books when `$BERTKIT_DATA` has
    them (every `every`-th book, stopping once `max_bytes` are reached); else all of Python's
    documentation, written into `fallback_folder`."""
    books_dir = data_dir() / "corpus" / "books"
    books = sorted(books_dir.glob("*.txt"))[::every] if books_dir.is_dir() else []
    if books:
        picked, size = [], 0
        for book in books:
            picked.append(book)
            size += book.stat().st_size
            if max_bytes is not None and size >= max_bytes:
                break
        return Corpus(picked, f"{len(picked)} books from {books_dir}, {size / 1e6:.1f} MB", True)
    files = write_python_docs(fallback_folder)
    if not files:  # a Python without pydoc_data and without .py sources (some embedded builds)
        raise BertkitError(
            f"no books in {books_dir} and no documentation text in this Python installation: "
            "set BERTKIT_DATA to the shared data folder (corpus/books/*.txt)"
        )
    size = sum(f.stat().st_size for f in files)
    return Corpus(
        files,
        f"Python's own documentation, {len(files)} documents (pydoc topics and standard-library "
        f"docstrings), {size / 1e6:.1f} MB, written to {fallback_folder} -- no books in {books_dir} "
        "(set BERTKIT_DATA to the shared data folder to use them)",
        False,
    )
