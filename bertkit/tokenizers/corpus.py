"""Training input: files or an iterator of texts, read in bounded chunks, counted into words.

A trainer needs only how often each distinct word occurs, so the corpus is streamed once --
about a megabyte at a time, never whole -- through the tokenizer's own normalizer and
pre-tokenizer (training and encoding split words identically), into a Counter.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from bertkit.errors import BertkitError, InputFileError

CHUNK_CHARS = 1 << 20


def resolve_source(source) -> tuple[list[Path] | None, Iterable[str] | None]:
    """(files, None) or (None, texts). A path, a folder (its *.txt files) or a list of paths are
    files; any other iterable of str is texts."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not files:
                raise InputFileError(path, "folder holds no .txt files to train on")
            return files, None
        if not path.exists():
            raise InputFileError(path, "training file not found")
        return [path], None
    if isinstance(source, (list, tuple)):
        is_path = [isinstance(s, os.PathLike) or (isinstance(s, str) and _names_a_file(s)) for s in source]
        if source and all(is_path):
            for s in source:
                if not Path(s).is_file():
                    raise InputFileError(s, "training file not found")
            return [Path(s) for s in source], None
        if any(is_path):
            missing = next(s for s, ok in zip(source, is_path) if not ok)
            raise InputFileError(missing, "training file not found (the other items of the list are files)")
        if any(not isinstance(s, str) for s in source):
            raise BertkitError(
                "training input must be files or texts (str); found "
                + type(next(s for s in source if not isinstance(s, str))).__name__
            )
        return None, source
    if isinstance(source, Iterable):
        return None, source
    raise BertkitError(
        f"cannot train on a {type(source).__name__}; pass a file, a folder, a list of files or an iterator of texts"
    )


def _names_a_file(text: str) -> bool:
    """Whether a str in a training list is a file name (else it is a text to train on)."""
    if "\n" in text or "\x00" in text or len(text) >= 4096:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, or not one at all: a text
        return False


def read_chunks(files: list[Path], progress=None) -> Iterator[str]:
    """Text of `files` in chunks of about CHUNK_CHARS characters, cut at line ends."""
    for path in files:
        try:
            handle = open(path, encoding="utf-8", newline="")
        except OSError as err:
            raise InputFileError(path, f"cannot open ({err.strerror})") from None
        line_no = 0
        with handle:
            buf: list[str] = []
            size = 0
            try:
                for line in handle:
                    line_no += 1
                    buf.append(line)
                    size += len(line)
                    if size >= CHUNK_CHARS:
                        if progress is not None:
                            progress.update(len("".join(buf).encode("utf-8", "surrogatepass")))
                        yield "".join(buf)
                        buf, size = [], 0
            except UnicodeDecodeError:
                raise InputFileError(path, "not UTF-8 text; convert the file to UTF-8", _first_bad_line(path)) from None
            if buf:
                text = "".join(buf)
                if progress is not None:
                    progress.update(len(text.encode("utf-8", "surrogatepass")))
                yield text


def _first_bad_line(path: Path) -> int | None:
    """Line number of the first line that is not UTF-8 (the text reader decodes in blocks)."""
    with open(path, "rb") as f:
        for i, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return None


def text_chunks(texts: Iterable[str], progress=None) -> Iterator[str]:
    """Texts from an iterator, grouped into chunks (newline-joined, so words never merge)."""
    buf: list[str] = []
    size = 0
    for text in texts:
        if not isinstance(text, str):
            raise BertkitError(f"training texts must be str, got {type(text).__name__}")
        buf.append(text)
        size += len(text)
        if progress is not None:
            progress.update(1)
        if size >= CHUNK_CHARS:
            yield "\n".join(buf)
            buf, size = [], 0
    if buf:
        yield "\n".join(buf)


def count_words(source, normalizer, pre_tokenizer, show_progress: bool = True) -> Counter:
    """Distinct words of the corpus with their counts, as the tokenizer will see them."""
    files, texts = resolve_source(source)
    if files is not None:
        total = sum(p.stat().st_size for p in files)
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="counting words", disable=not show_progress)
        chunks = read_chunks(files, bar)
    else:
        bar = tqdm(unit=" texts", desc="counting words", disable=not show_progress)
        chunks = text_chunks(texts or (), bar)
    counts: Counter = Counter()
    # Pre-tokenizers that always split at whitespace let us count raw whitespace-separated
    # pieces first (str.split and Counter run in C) and normalize + split each distinct piece
    # once. Chunks holding characters Python splits at but BERT deletes take the long way.
    by_piece = getattr(pre_tokenizer, "splits_at_whitespace", False)
    pieces: Counter = Counter()
    with bar:
        for chunk in chunks:
            if by_piece and _SPLIT_UNSAFE.search(chunk) is None:
                pieces.update(chunk.split())
                continue
            if normalizer is not None:
                chunk = normalizer.normalize_str(chunk)
            counts.update(pre_tokenizer.words(chunk))
    for piece, n in pieces.items():
        if normalizer is not None:
            piece = normalizer.normalize_str(piece)
        for word in pre_tokenizer.words(piece):
            counts[word] += n
    if hasattr(pre_tokenizer, "word_key"):
        counts = Counter({pre_tokenizer.word_key(w): n for w, n in counts.items()})
    return counts


# whitespace to str.split() but deleted (control characters) or kept inside words by BERT
_SPLIT_UNSAFE = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
