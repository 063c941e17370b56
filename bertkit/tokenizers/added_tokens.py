"""Added tokens: strings ([CLS], [MASK], user additions) recognised whole in the raw text.

"Paris is the [MASK] of France." must give the [MASK] id, not "[", "mask", "]". As in Hugging
Face, added tokens are cut out of the text before normalization (unless `normalized=True`), and
each becomes one token and one word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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
    def from_json(cls, data: dict) -> AddedToken:
        return cls(
            content=data["content"],
            id=int(data["id"]),
            special=bool(data.get("special", False)),
            single_word=bool(data.get("single_word", False)),
            lstrip=bool(data.get("lstrip", False)),
            rstrip=bool(data.get("rstrip", False)),
            normalized=bool(data.get("normalized", not data.get("special", False))),
        )


def build_pattern(tokens: list[AddedToken]) -> re.Pattern | None:
    """One regex matching any of `tokens`, longest first; group `t<i>` tells which one matched."""
    if not tokens:
        return None
    ordered = sorted(range(len(tokens)), key=lambda i: -len(tokens[i].content))
    parts = []
    for i in ordered:
        tok = tokens[i]
        body = re.escape(tok.content)
        if tok.single_word:
            body = rf"(?<!\w){body}(?!\w)"
        part = ("\\s*" if tok.lstrip else "") + f"(?P<t{i}>{body})" + ("\\s*" if tok.rstrip else "")
        parts.append(part)
    return re.compile("|".join(parts))


def split_on_added(
    text: str, pattern: re.Pattern, tokens: list[AddedToken]
) -> list[tuple[int, int, AddedToken | None]]:
    """Cut `text` into (start, end, token-or-None) pieces; None pieces are ordinary text."""
    pieces: list[tuple[int, int, AddedToken | None]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() == m.end():
            continue
        name = m.lastgroup
        tok = tokens[int(name[1:])]
        if m.start() > pos:
            pieces.append((pos, m.start(), None))
        pieces.append((m.start(), m.end(), tok))  # lstrip/rstrip: the token owns the spaces it ate
        pos = m.end()
    if pos < len(text):
        pieces.append((pos, len(text), None))
    return pieces
