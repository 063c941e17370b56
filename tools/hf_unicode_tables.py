"""Write bertkit/tokenizers/unicode_tables.py: the character classes of Hugging Face `tokenizers`.

    .venv/bin/python tools/hf_unicode_tables.py

BERT's normalizer and pre-tokenizer decide per character: delete it (control / format /
private-use), strip it (a nonspacing mark), lowercase it, split at it (punctuation). `tokenizers`
answers from the tables of its Rust crates, which follow different Unicode versions than Python's
`unicodedata` (an older one for marks and punctuation, a newer one for case). To tokenize exactly
as `tokenizers` does on every code point, bertkit carries those answers as data, read here from
the installed `tokenizers` by asking it about each of the 1,112,064 code points; the test
tests/tokenizers/test_unicode_tables.py asks again and compares. Rerun after upgrading the peer.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bertkit" / "tokenizers" / "unicode_tables.py"
SURROGATES = range(0xD800, 0xE000)  # not valid in the peer's strings: bertkit treats them as deleted


def code_points() -> list[int]:
    return [c for c in range(0x110000) if c not in SURROGATES]


def flat_ranges(points: list[int]) -> list[int]:
    """[start, stop, start, stop, ...] (stop exclusive) of a sorted list of code points."""
    out: list[int] = []
    for cp in points:
        if out and out[-1] == cp:
            out[-1] = cp + 1
        else:
            out += [cp, cp + 1]
    return out


def lower_runs(mapping: dict[int, int]) -> list[tuple[int, int, int, int]]:
    """(first, last, step, delta): every step-th code point from first to last lowercases by +delta."""
    runs: list[list[int]] = []
    for cp in sorted(mapping):
        delta = mapping[cp] - cp
        if runs and runs[-1][3] == delta and runs[-1][2] in (0, cp - runs[-1][1]):
            runs[-1][2] = cp - runs[-1][1]
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, 0, delta])
    return [(a, b, step or 1, d) for a, b, step, d in runs]


def ask_the_peer() -> dict:
    from tokenizers import normalizers as n
    from tokenizers import pre_tokenizers as p

    clean = n.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    bert_strip = n.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    strip, nfd, lower, split = n.StripAccents(), n.NFD(), n.Lowercase(), p.BertPreTokenizer()
    gpt2, words = p.ByteLevel(add_prefix_space=False, use_regex=True), p.Whitespace()
    deleted, marks, combining, punct, keep = [], [], [], [], []
    letters, numbers, others, word_chars = [], [], [], []
    lowers: dict[int, int] = {}
    special: dict[int, str] = {}
    for cp in code_points():
        ch = chr(cp)
        if clean.normalize_str(ch) == "":
            deleted.append(cp)
        decomposed = nfd.normalize_str(ch)
        if decomposed != unicodedata.normalize("NFD", ch):
            keep.append((cp, decomposed))
        if decomposed == ch and bert_strip.normalize_str(ch) == "":
            marks.append(cp)
        if strip.normalize_str(ch) == "":
            combining.append(cp)
        low = lower.normalize_str(ch)
        if low != ch:
            if len(low) == 1:
                lowers[cp] = ord(low)
            else:
                special[cp] = low
        if len(split.pre_tokenize_str(f"a{ch}a")) == 3:
            punct.append(cp)
        # GPT-2's split: a letter joins letters (\\p{L}), a digit digits (\\p{N}), anything else
        # but whitespace joins "!" ([^\\s\\p{L}\\p{N}]); what is none of these is whitespace
        if len(gpt2.pre_tokenize_str(f"a{ch}a")) == 1:
            letters.append(cp)
        elif len(gpt2.pre_tokenize_str(f"1{ch}1")) == 1:
            numbers.append(cp)
        elif len(gpt2.pre_tokenize_str(f"!{ch}!")) == 1:
            others.append(cp)
        if len(words.pre_tokenize_str(f"a{ch}a")) == 1:  # Whitespace's \\w
            word_chars.append(cp)
    return {
        "DELETED": flat_ranges(sorted(deleted + list(SURROGATES))),
        "NONSPACING_MARKS": flat_ranges(marks),
        "COMBINING_MARKS": flat_ranges(combining),
        "PUNCTUATION": flat_ranges(punct),
        "GPT2_LETTERS": flat_ranges(letters),
        "GPT2_NUMBERS": flat_ranges(numbers),
        "GPT2_SPACES": flat_ranges(sorted(set(code_points()) - set(letters) - set(numbers) - set(others))),
        "WORD_CHARS": flat_ranges(word_chars),
        "LOWER_RUNS": lower_runs(lowers),
        "LOWER_SPECIAL": special,
        "NFD_SPECIAL": dict(keep),
    }


def render(name: str, value: object) -> str:
    """`NAME = ...`: dicts as literals; number tables as hex text, read back by _ints on import."""
    if isinstance(value, dict):
        body = "".join(f"    {k:#x}: {json.dumps(v, ensure_ascii=False)},\n" for k, v in value.items())
        return f"{name} = {{\n{body}}}\n"
    numbers = [x for v in value for x in (v if isinstance(v, tuple) else (v,))]  # type: ignore[attr-defined]
    words = [f"{x:x}" if x >= 0 else f"-{-x:x}" for x in numbers]
    lines, line = [], ""
    for word in words:
        if len(line) + len(word) + 1 > 108:
            lines.append(line)
            line = ""
        line += word + " "
    lines.append(line)
    if len(lines) == 1 and len(name) + len(lines[0]) < 108:
        return f'{name} = _ints("{lines[0]}")\n'
    body = "".join(f'    "{text}"\n' for text in lines)
    if value and isinstance(value[0], tuple):  # type: ignore[index]
        body = body[:-1] + ",\n    4,\n"  # _ints(..., 4): read back in groups of four
    return f"{name} = _ints(\n{body})\n"


def main() -> int:
    import tokenizers

    tables = ask_the_peer()
    parts = [
        f'"""Character classes of Hugging Face `tokenizers` {tokenizers.__version__}, as its Rust tables answer.\n\n'
        "Generated by tools/hf_unicode_tables.py: do not edit, rerun the tool.\n\n"
        "Ranges are flat tuples (start, stop, start, stop, ...), stop exclusive.\n"
        "DELETED: what BERT's clean_text removes (controls, format characters, private use, U+FFFD, NUL,\n"
        "surrogates). NONSPACING_MARKS: what BERT's strip_accents drops after NFD. COMBINING_MARKS: what\n"
        "StripAccents drops. PUNCTUATION: what BERT's pre-tokenizer splits off. GPT2_LETTERS, GPT2_NUMBERS,\n"
        "GPT2_SPACES: \\\\p{L}, \\\\p{N} and \\\\s of GPT-2's byte-level split. WORD_CHARS: \\\\w of the Whitespace\n"
        "pre-tokenizer. LOWER_RUNS: (first, last, step, delta) -- every step-th code point from first to\n"
        "last lowercases to itself + delta; LOWER_SPECIAL: the lowercasings into several characters.\n"
        "NFD_SPECIAL: NFD where it differs from Python's unicodedata (another Unicode version).\n"
        '"""\n\n'
        "from __future__ import annotations\n\n\n"
        "def _ints(text: str, group: int = 1) -> tuple:\n"
        "    numbers = tuple(int(word, 16) for word in text.split())\n"
        "    return numbers if group == 1 else tuple(zip(*[iter(numbers)] * group))\n\n",
    ]
    parts += [render(name, value) for name, value in tables.items()]
    OUT.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {OUT} ({', '.join(f'{k} {len(v)}' for k, v in tables.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
