"""Pre-tokenizers: normalized text -> words, each with its character span.

`split(text)` returns three parallel lists: words, start offsets and end offsets. The splitting
is one `re.findall` per text; each match carries the whitespace before its word, so the end
offsets are a running sum of match lengths (`itertools.accumulate`, C speed) and no per-word
Python code runs.

The search stops at the last non-space character. A pattern "spaces, then a word" tried at each
of n trailing spaces would otherwise scan to the end every time and fail -- n^2 steps, minutes
for a megabyte of spaces -- while the stripped run costs one `str.rstrip`.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import accumulate, repeat
from operator import sub

from bertkit.errors import BertkitError
from bertkit.tokenizers import unicode_tables as tables
from bertkit.tokenizers.bytelevel import BYTES_TO_UNICODE
from bertkit.tokenizers.normalizers import WHITESPACE, in_ranges

_ASCII_PUNCT = "!-/:-@\\[-`{-~"  # BERT counts every non-alphanumeric printable ASCII char
_ASCII_WS = "\\t-\\r "
_ASCII_WS_CHARS = "\t\n\x0b\x0c\r "


def char_class(ranges: tuple[int, ...]) -> str:
    """The inside of a regex [...] class for a flat (start, stop, ...) range table."""
    pairs = zip(ranges[::2], ranges[1::2])  # [start, stop) ranges
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b - 1)) if b - 1 > a else "") for a, b in pairs)


def is_punctuation(char: str) -> bool:
    return in_ranges(tables.PUNCTUATION, char)


class PreTokenizer:
    def split(self, text: str) -> tuple[list[str], list[int], list[int]]:  # pragma: no cover
        raise NotImplementedError

    def words(self, text: str) -> list[str]:
        """Just the words (training counts them; spans are not needed)."""
        return self.split(text)[0]

    def to_json(self) -> dict | None:  # pragma: no cover
        raise NotImplementedError


_NOT_WHITESPACE_TO_RUST = re.compile("[\x1c-\x1f]")  # Python strips these as spaces, Rust does not


class _RegexSplit(PreTokenizer):
    """Words are the matches of `pattern`; whitespace between them is dropped."""

    splits_at_whitespace = True  # no word ever spans whitespace (trainers rely on it)

    ascii_pattern: re.Pattern | None = None
    unicode_pattern: re.Pattern

    def split(self, text: str) -> tuple[list[str], list[int], list[int]]:
        if self.ascii_pattern is not None and text.isascii():
            pattern, spaces = self.ascii_pattern, _ASCII_WS_CHARS
        else:
            pattern, spaces = self.unicode_pattern, WHITESPACE
        if text and text[-1] in spaces:  # stop the search at the last word (see the module docstring)
            pieces = pattern.findall(text, 0, len(text.rstrip(spaces)))
        else:
            pieces = pattern.findall(text)  # each piece: leading whitespace + word
        if _NOT_WHITESPACE_TO_RUST.search(text) is None:
            words = list(map(str.lstrip, pieces))
        else:
            words = list(map(str.lstrip, pieces, repeat(WHITESPACE)))
        ends = list(accumulate(map(len, pieces)))
        return words, list(map(sub, ends, map(len, words))), ends


class BertPreTokenizer(_RegexSplit):
    """Split on whitespace, then make every punctuation char its own word (BERT's definition)."""

    def __init__(self) -> None:
        ws = re.escape(WHITESPACE)
        punct = char_class(tables.PUNCTUATION)
        self.ascii_pattern = re.compile(f"[{_ASCII_WS}]*(?:[^{_ASCII_WS}{_ASCII_PUNCT}]+|[{_ASCII_PUNCT}])")
        # ASCII letters and digits are tried first: the big punctuation class is slow in `re`
        word = f"(?:[a-zA-Z0-9]+|[^{ws}{punct}])+"
        self.unicode_pattern = re.compile(f"[{ws}]*(?:{word}|[{punct}])")
        self._words_pattern = re.compile(f"{word}|[{punct}]")

    def words(self, text: str) -> list[str]:
        return self._words_pattern.findall(text)  # no leading-space part: linear as it is

    def to_json(self) -> dict:
        return {"type": "BertPreTokenizer"}


class WhitespaceSplit(_RegexSplit):
    def __init__(self) -> None:
        ws = re.escape(WHITESPACE)
        self.unicode_pattern = re.compile(f"[{ws}]*[^{ws}]+")

    def to_json(self) -> dict:
        return {"type": "WhitespaceSplit"}


class Whitespace(_RegexSplit):
    """Hugging Face's `Whitespace`: runs of word characters, or runs of other non-space characters.

    "Word character" is Rust's `\\w` (letters, marks, digits, connectors, zero-width joiners), as
    Hugging Face's tables answer it (unicode_tables.WORD_CHARS).
    """

    def __init__(self) -> None:
        w, ws = char_class(tables.WORD_CHARS), re.escape(WHITESPACE)
        self.unicode_pattern = re.compile(f"[{ws}]*(?:[{w}]+|[^{w}{ws}]+)")

    def to_json(self) -> dict:
        return {"type": "Whitespace"}


class NoSplit(PreTokenizer):
    """No pre-tokenization: the whole text is one word (a tokenizer.json with "pre_tokenizer": null)."""

    def split(self, text: str) -> tuple[list[str], list[int], list[int]]:
        return ([text], [0], [len(text)]) if text else ([], [], [])

    def to_json(self) -> dict | None:
        return None


def _below(ranges: tuple[int, ...], limit: int) -> tuple[int, ...]:
    """The part of a flat range table below `limit`."""
    out: list[int] = []
    for a, b in zip(ranges[::2], ranges[1::2]):
        if a < limit:
            out += [a, min(b, limit)]
    return tuple(out)


@cache
def gpt2_pattern(ascii_only: bool = False) -> re.Pattern:
    """GPT-2's split: contractions, letters, digits, other symbols (each optionally after one
    space), and runs of whitespace (keeping the last space for the next word) -- the pattern
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+ with the letters,
    digits and spaces of Hugging Face's tables (unicode_tables.GPT2_*). `ascii_only`: the same
    for texts of ASCII characters only, whose small classes `re` matches much faster."""
    limit = 128 if ascii_only else 0x110000
    letter, digit, space = (
        char_class(_below(t, limit)) for t in (tables.GPT2_LETTERS, tables.GPT2_NUMBERS, tables.GPT2_SPACES)
    )
    return re.compile(
        f"'s|'t|'re|'ve|'m|'ll|'d| ?[{letter}]+| ?[{digit}]+| ?[^{space}{letter}{digit}]+"
        f"|[{space}]+(?![^{space}])|[{space}]+"
    )


class ByteLevel(PreTokenizer):
    """GPT-2's pre-tokenizer: the regex split above, then every UTF-8 byte as one printable char.

    Words come back in the byte alphabet ("Ġworld" for " world"); the spans are in characters of
    the input text. `char_spans(word)` maps byte positions inside a word back to characters.
    """

    def __init__(self, add_prefix_space: bool = False, use_regex: bool = True, trim_offsets: bool = True) -> None:
        self.add_prefix_space = add_prefix_space
        self.use_regex = use_regex
        self.trim_offsets = trim_offsets
        self._pattern, self._ascii_pattern = gpt2_pattern(), gpt2_pattern(ascii_only=True)

    def _split(self, text: str) -> list[str]:
        return (self._ascii_pattern if text.isascii() else self._pattern).findall(text)

    def split(self, text: str) -> tuple[list[str], list[int], list[int]]:
        # add_prefix_space is applied by the tokenizer, which also shifts the offsets back
        if self.use_regex:
            raw = self._split(text)
        else:
            raw = [text] if text else []
        ends = list(accumulate(map(len, raw)))
        starts = list(map(sub, ends, map(len, raw)))
        words = [to_byte_chars(w) for w in raw]
        return words, starts, ends

    def words(self, text: str) -> list[str]:
        """Words as written (trainers count these, then map each distinct one with `word_key`)."""
        if self.add_prefix_space and text and not text.startswith(" "):
            text = " " + text
        return self._split(text) if self.use_regex else ([text] if text else [])

    @staticmethod
    def word_key(word: str) -> str:
        return to_byte_chars(word)

    def to_json(self) -> dict:
        return {
            "type": "ByteLevel",
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "use_regex": self.use_regex,
        }


_BYTE_TABLE = {i: BYTES_TO_UNICODE[i] for i in range(128)}


def to_byte_chars(word: str) -> str:
    """A word in GPT-2's byte alphabet: one printable char per UTF-8 byte."""
    if word.isascii():
        return word.translate(_BYTE_TABLE)
    return "".join(map(BYTES_TO_UNICODE.__getitem__, word.encode("utf-8", "surrogatepass")))


def from_json(p: object) -> PreTokenizer:
    """The "pre_tokenizer" object of a tokenizer.json (null: the whole text is one word)."""
    if p is None:
        return NoSplit()
    if not isinstance(p, dict):
        raise BertkitError(f"pre_tokenizer must be an object or null, got {type(p).__name__}")
    kind = p.get("type")
    simple: dict[object, type[PreTokenizer]] = {
        "BertPreTokenizer": BertPreTokenizer,
        "Whitespace": Whitespace,
        "WhitespaceSplit": WhitespaceSplit,
    }
    if kind in simple:
        return simple[kind]()
    if kind == "ByteLevel":
        flags = {k: p.get(k, True) for k in ("add_prefix_space", "use_regex", "trim_offsets")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise BertkitError(f"pre_tokenizer ByteLevel: flags must be true or false, got {flags}")
        return ByteLevel(**flags)
    raise BertkitError(
        f"pre_tokenizer type {kind!r} is not supported (supported: "
        "BertPreTokenizer, ByteLevel, Whitespace, WhitespaceSplit)"
    )
