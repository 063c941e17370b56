"""Normalizers: raw text -> normalized text + where each normalized char came from.

BERT's normalizer (Hugging Face's `BertNormalizer`, the rules of BERT's BasicTokenizer):
drop control chars, NUL and U+FFFD; map whitespace to a space; pad CJK ideographs with
spaces; when uncased, strip accents (NFD, drop the nonspacing marks) and lowercase.

Every rule works on one character at a time, so a normalizer is a table char -> replacement
string, filled lazily and applied with `str.translate` (C speed). When every character of a
text maps to exactly one character -- nearly always -- the normalized text lines up with the
original one to one and no alignment is needed; otherwise `normalize` returns `align`, the
original index of every normalized character, from which offsets are mapped back.

Which characters are controls, marks or have a lowercase is read from unicode_tables.py: the
answers of Hugging Face `tokenizers` itself, whose Unicode version differs from Python's (a
newly assigned mark or capital letter would otherwise tokenize differently).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

from bertkit.errors import BertkitError
from bertkit.tokenizers import unicode_tables as tables

# Rust's `char::is_whitespace` (the Unicode White_Space property), as Hugging Face uses it.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_SET = frozenset(WHITESPACE)
_MARKER = "\x00"  # stands for "this char does not map to exactly one char" (NUL itself is dropped)
_LOWER_FIRSTS = [run[0] for run in tables.LOWER_RUNS]


def in_ranges(ranges: tuple[int, ...], char: str) -> bool:
    """Whether `char` lies in a flat (start, stop, start, stop, ...) range table."""
    return bisect_right(ranges, ord(char)) % 2 == 1


def is_whitespace(char: str) -> bool:
    return char in _WHITESPACE_SET


def is_control(char: str) -> bool:
    """What BERT's clean_text deletes: controls (but tab and newlines, which are whitespace),
    format characters, private use, surrogates, NUL and U+FFFD."""
    return in_ranges(tables.DELETED, char)


def is_cjk(char: str) -> bool:
    """The CJK Unified Ideographs blocks, as in BERT (not Hangul, Hiragana or Katakana).

    Extension E starts at U+2B920 here, as in Hugging Face `tokenizers`; Google's BERT code says
    U+2B820 (the first 256 code points of the block are not padded with spaces).
    """
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B920 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def lowercase(char: str) -> str:
    """Rust's `char::to_lowercase`, as Hugging Face applies it (char by char: no final-sigma rule)."""
    cp = ord(char)
    special = tables.LOWER_SPECIAL.get(cp)
    if special is not None:
        return special
    i = bisect_right(_LOWER_FIRSTS, cp) - 1
    if i >= 0:
        first, last, step, delta = tables.LOWER_RUNS[i]
        if cp <= last and (cp - first) % step == 0:
            return chr(cp + delta)
    return char


def nfd(char: str) -> str:
    special = tables.NFD_SPECIAL.get(ord(char))
    return special if special is not None else unicodedata.normalize("NFD", char)


class _CharTable(dict):
    """char -> replacement, computed on first sight; usable directly by `str.translate`."""

    def __init__(self, rule, single_only: bool):
        super().__init__()
        self.rule = rule
        self.single_only = single_only

    def __missing__(self, code: int) -> str:
        out = self.rule(chr(code))
        if self.single_only and len(out) != 1:
            out = _MARKER
        self[code] = out
        return out


class Normalizer:
    """Base: a per-character rule; subclasses define `map_char`."""

    def __init__(self) -> None:
        self._single = _CharTable(self.map_char, single_only=True)
        self._full = _CharTable(self.map_char, single_only=False)

    def map_char(self, char: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def normalize(self, text: str) -> tuple[str, list[int] | None]:
        """(normalized text, align); align is None when char i of the result is char i of `text`."""
        out = text.translate(self._single)
        if _MARKER not in out:
            return out, None
        return self._normalize_aligned(text)

    def normalize_str(self, text: str) -> str:
        return self.normalize(text)[0]

    def _normalize_aligned(self, text: str) -> tuple[str, list[int]]:
        table = self._full
        pieces: list[str] = []
        align: list[int] = []
        for i, char in enumerate(text):
            rep = table[ord(char)]
            if rep:
                pieces.append(rep)
                align.extend([i] * len(rep))
        return "".join(pieces), align

    def to_json(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


class BertNormalizer(Normalizer):
    """Hugging Face's BertNormalizer: clean text, pad CJK, strip accents, lowercase (in that order)."""

    def __init__(
        self,
        clean_text: bool = True,
        handle_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        lowercase: bool = True,
    ) -> None:
        self.clean_text = clean_text
        self.handle_chinese_chars = handle_chinese_chars
        self.strip_accents = strip_accents
        self.lowercase = lowercase
        self._strip = lowercase if strip_accents is None else strip_accents
        super().__init__()

    def map_char(self, char: str) -> str:
        if self.clean_text:
            if char == "\x00" or char == "\ufffd" or is_control(char):
                return ""
            if char in _WHITESPACE_SET:
                return " "
        if self.handle_chinese_chars and is_cjk(char):
            char = f" {char} "  # then NFD too: compatibility ideographs (U+F900...) decompose
        if self._strip:
            char = "".join(c for part in char for c in nfd(part) if not in_ranges(tables.NONSPACING_MARKS, c))
        if self.lowercase:
            char = "".join(map(lowercase, char))
        return char

    def to_json(self) -> dict:
        return {
            "type": "BertNormalizer",
            "clean_text": self.clean_text,
            "handle_chinese_chars": self.handle_chinese_chars,
            "strip_accents": self.strip_accents,
            "lowercase": self.lowercase,
        }


class Lowercase(Normalizer):
    def map_char(self, char: str) -> str:
        return lowercase(char)

    def to_json(self) -> dict:
        return {"type": "Lowercase"}


class NFD(Normalizer):
    def map_char(self, char: str) -> str:
        return nfd(char)

    def to_json(self) -> dict:
        return {"type": "NFD"}


class StripAccents(Normalizer):
    """Drops combining marks (Mn, Mc, Me); meant to follow NFD, as in Hugging Face."""

    def map_char(self, char: str) -> str:
        return "" if in_ranges(tables.COMBINING_MARKS, char) else char

    def to_json(self) -> dict:
        return {"type": "StripAccents"}


class Sequence(Normalizer):
    """Several per-char normalizers in a row (each maps a char to a string, so they compose)."""

    def __init__(self, normalizers: list[Normalizer]) -> None:
        self.normalizers = list(normalizers)
        super().__init__()

    def map_char(self, char: str) -> str:
        out = char
        for norm in self.normalizers:
            out = "".join(norm.map_char(c) for c in out)
        return out

    def to_json(self) -> dict:
        return {"type": "Sequence", "normalizers": [n.to_json() for n in self.normalizers]}


def _flag(n: dict, key: str, default: bool | None) -> bool | None:
    value = n.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise BertkitError(f"normalizer.{key} must be true, false or null, got {value!r}")
    return value


def from_json(n: object) -> Normalizer | None:
    """The "normalizer" object of a tokenizer.json (null: no normalizer)."""
    if n is None:
        return None
    if not isinstance(n, dict):
        raise BertkitError(f"normalizer must be an object or null, got {type(n).__name__}")
    kind = n.get("type")
    if kind == "BertNormalizer":
        return BertNormalizer(
            clean_text=bool(_flag(n, "clean_text", True)),
            handle_chinese_chars=bool(_flag(n, "handle_chinese_chars", True)),
            strip_accents=_flag(n, "strip_accents", None),
            lowercase=bool(_flag(n, "lowercase", True)),
        )
    simple: dict[object, type[Normalizer]] = {"Lowercase": Lowercase, "NFD": NFD, "StripAccents": StripAccents}
    if kind in simple:
        return simple[kind]()
    if kind == "Sequence":
        parts = n.get("normalizers", [])
        if not isinstance(parts, list):
            raise BertkitError("normalizer Sequence: 'normalizers' must be a list")
        return Sequence([part for part in map(from_json, parts) if part is not None])
    raise BertkitError(
        f"normalizer type {kind!r} is not supported (supported: BertNormalizer, Lowercase, NFD, StripAccents, Sequence)"
    )
