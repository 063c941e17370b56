"""Plain-text corpus -> documents -> sentences, the raw material of NSP pairs.

Document boundaries (choose with `doc_boundary`):
  "file"        one document per file (the shared corpus: one book per file). Blank lines separate
                paragraphs; the lines of a paragraph are joined (books keep their line wrapping)
                and split into sentences. Paragraph ends are always sentence ends.
  "blank_line"  Google's create_pretraining_data format: documents separated by blank lines, each
                line of a document holds one or more sentences (a line end is a sentence end).

Sentence splitting is a small rule set that is good enough for books and needs no model: a
sentence ends at . ! ? or an ellipsis (plus closing quotes/brackets) followed by whitespace and an
upper-case letter, digit or opening quote -- unless the word before the period is a known
abbreviation ("Mr.", "Dr.", "St.", "i.e.") or a single initial ("J. K. Rowling", "U. P.").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

from bertkit.errors import BertkitError, InputFileError

# Words that end in a period without ending the sentence (compared lower-cased, without the dot).
ABBREVIATIONS = frozenset(
    """
    mr mrs ms messrs mme mlle dr prof rev hon gen col maj capt cpt lt sgt cmdr adm gov pres sen rep
    st ste mt ft jr sr esq sir bros co corp inc ltd no nos vol vols ch chap pp fig figs ed eds
    vs etc cf al viz i.e e.g a.m p.m u.s u.k jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue wed thu fri sat sun ave blvd rd
    """.split()
)

# A candidate end is a word (text between single spaces) ending in a terminator and closing
# quotes/brackets. Looking at words, not at every character of the text, keeps the splitter
# linear: a pattern scanning the text for "any non-spaces, then a terminator" retried at every
# start and was quadratic on a long token without one.
_WORD_END = regex.compile(r"""(\.{3}|…|[.!?]+)(["'”’»)\]]*)$""")
_END_CHARS = frozenset(".!?…\"'”’»)]")
_STARTS_SENTENCE = regex.compile(r"""[\p{Lu}\p{Nd}"'“‘«(\[]""")
_HAS_LETTER = regex.compile(r"[\p{L}\p{N}]")
_SPACES = regex.compile(r"\s+")


def split_sentences(text: str) -> list[str]:
    """One paragraph (or line) of text -> its sentences, whitespace normalised."""
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return []
    words = text.split(" ")
    sentences, start, pos = [], 0, 0
    for word, nxt in zip(words, words[1:]):
        end = pos + len(word)
        pos = end + 1
        if word[-1] not in _END_CHARS or not _STARTS_SENTENCE.match(nxt):
            continue  # no terminator, or  "Oh!" said he.  /  etc. and so on
        m = _WORD_END.search(word)
        if m is None or (m.group(1) == "." and _is_abbreviation(word[: m.start()])):
            continue
        sentences.append(text[start:end])
        start = pos
    sentences.append(text[start:])
    return [s for s in sentences if _HAS_LETTER.search(s)]


def _is_abbreviation(word: str) -> bool:
    word = word.lstrip("\"'“‘«([").lower()
    if word in ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha():  # an initial: "J. K. Rowling", "U. P."
        return True
    # dotted acronyms written out: "e.g", "u.s.a"
    return len(word) <= 6 and "." in word and all(len(p) <= 1 for p in word.split("."))


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Lines of a file -> paragraphs (blank-line separated, wrapped lines joined)."""
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.strip())
        elif block:
            yield " ".join(block)
            block = []
    if block:
        yield " ".join(block)


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders (searched recursively for *.txt) -> a sorted, de-duplicated file list."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.txt") if p.is_file())
            if not found:
                raise BertkitError(f"{path}: the folder holds no *.txt files; pass text files or a folder of them")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise BertkitError(f"{path}: no such file or folder; pass text files or folders of *.txt files")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    if not unique:
        raise BertkitError("no input files given; pass text files or folders of *.txt files")
    return unique


def read_lines(path: Path) -> Iterator[str]:
    """A file's lines, with a clear error (file and line) on bytes that are not UTF-8."""
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputFileError(path, "not UTF-8 text; convert it (e.g. iconv -t utf-8)", number) from None
    except OSError as err:
        raise InputFileError(path, f"cannot read it ({err.strerror})") from None


def read_documents(path: str | os.PathLike, doc_boundary: str = "file") -> Iterator[list[str]]:
    """One file -> its documents, each a list of sentences (empty documents are dropped)."""
    path = Path(path)
    if doc_boundary == "file":
        sentences = [s for p in paragraphs(read_lines(path)) for s in split_sentences(p)]
        if sentences:
            yield sentences
    elif doc_boundary == "blank_line":
        doc: list[str] = []
        for line in read_lines(path):
            if line.strip():
                doc.extend(split_sentences(line))
            elif doc:
                yield doc
                doc = []
        if doc:
            yield doc
    else:
        raise BertkitError(f"doc_boundary must be 'file' or 'blank_line', got {doc_boundary!r}")
