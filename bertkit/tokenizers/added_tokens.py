"""Added tokens: strings ([CLS], [MASK], user additions) recognised whole in the raw text.

"Paris is the [MASK] of France." must give the [MASK] id, not "[", "mask", "]". As in Hugging
Face, added tokens are cut out of the text before normalization (unless `normalized=True`), and
each becomes one token and one word; with `lstrip` / `rstrip` it also owns the spaces before /
after it. Those spaces are taken by scanning outward from a match rather than by a `\\s*` in the
pattern, which would rescan a long run of spaces from each of its positions (n^2 steps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bertkit.errors import BertkitError


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    special: bool = True
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }

    @classmethod
    def from_json(cls, data: object) -> AddedToken:
        """One entry of a tokenizer.json's "added_tokens" list."""
        if not isinstance(data, dict):
            raise BertkitError(f"added_tokens: {data!r} is not an object")
        content, idx = data.get("content"), data.get("id")
        if not isinstance(content, str) or not content:
            raise BertkitError(f"added_tokens: content {content!r} is not a non-empty string")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise BertkitError(f"added token {content!r}: id {idx!r} is not a whole number >= 0")
        return cls(
            content=content,
            id=idx,
            special=bool(data.get("special", False)),
            single_word=bool(data.get("single_word", False)),
            lstrip=bool(data.get("lstrip", False)),
            rstrip=bool(data.get("rstrip", False)),
            normalized=bool(data.get("normalized", not data.get("special", False))),
        )


def build_pattern(tokens: list[AddedToken]) -> re.Pattern | None:
    """One regex matching any of `tokens`, longest first; group `t<i>` tells which one matched."""
    ordered = sorted((i for i in range(len(tokens)) if tokens[i].content), key=lambda i: -len(tokens[i].content))
    if not ordered:
        return None
    parts = []
    for i in ordered:
        tok = tokens[i]
        body = re.escape(tok.content)
        if tok.single_word:
            body = rf"(?<!\w){body}(?!\w)"
        parts.append(f"(?P<t{i}>{body})")
    return re.compile("|".join(parts))


def split_on_added(
    text: str, pattern: re.Pattern, tokens: list[AddedToken]
) -> list[tuple[int, int, AddedToken | None]]:
    """Cut `text` into (start, end, token-or-None) pieces; None pieces are ordinary text."""
    pieces: list[tuple[int, int, AddedToken | None]] = []
    pos = 0
    m = pattern.search(text)
    while m is not None:
        tok = tokens[int((m.lastgroup or "t0")[1:])]
        start, end = m.start(), m.end()
        if tok.lstrip:  # the token owns the spaces before it (back to the previous piece)
            while start > pos and text[start - 1].isspace():
                start -= 1
        if tok.rstrip:
            while end < len(text) and text[end].isspace():
                end += 1
        if start > pos:
            pieces.append((pos, start, None))
        pieces.append((start, end, tok))
        pos = end
        m = pattern.search(text, pos)
    if pos < len(text):
        pieces.append((pos, len(text), None))
    return pieces
