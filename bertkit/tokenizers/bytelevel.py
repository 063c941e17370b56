"""Byte-level BPE's alphabet: every byte 0-255 as one printable character (GPT-2's map).

BBPE runs BPE over UTF-8 bytes instead of characters, so its 256-symbol alphabet covers every
string and it never needs [UNK] (the lecture's "你好 -> e4 bd a0 e5 a5 bd"). Bytes that are
printable Latin-1 characters stand for themselves; the others (control bytes, space, ...) are
shifted to U+0100 and up, so a space shows as "Ġ" and a newline as "Ċ".
"""

from __future__ import annotations


def _bytes_to_unicode() -> dict[int, str]:
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


BYTES_TO_UNICODE: dict[int, str] = _bytes_to_unicode()
UNICODE_TO_BYTES: dict[str, int] = {c: b for b, c in BYTES_TO_UNICODE.items()}
ALPHABET: list[str] = sorted(BYTES_TO_UNICODE.values())


def bytes_to_text(byte_chars: str) -> str:
    """Byte-alphabet string -> text; incomplete UTF-8 sequences become U+FFFD, as in Hugging Face.

    Lone surrogates (which Python strings can hold) were encoded with "surrogatepass", so they
    come back too: decode(encode(s)) == s for every str.
    """
    data = bytes(UNICODE_TO_BYTES[c] for c in byte_chars if c in UNICODE_TO_BYTES)
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def byte_to_char_index(word: str) -> list[int]:
    """For each UTF-8 byte of `word`, the index of the character it belongs to (plus one end entry)."""
    index: list[int] = []
    for i, char in enumerate(word):
        index.extend([i] * len(char.encode("utf-8", "surrogatepass")))
    index.append(len(word))
    return index
