"""The CLI's last line of defence: errors from the OS and codecs end as one line naming the file."""

from __future__ import annotations

from pathlib import Path

from harness import Case

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"


def _latin1_lines(tmp: Path) -> Path:
    path = tmp / "lines.txt"
    path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    return path


ROWS = [
    Case(
        id="input-is-a-folder",
        surface="tokenizer encode --input",
        fault="--input names a folder",
        setup=lambda tmp: (tmp / "folder").mkdir(),
        argv=lambda tmp, _: ["tokenizer", "encode", "--tokenizer", FIXTURE, "--input", tmp / "folder"],
        match=r"folder",
    ),
    Case(
        id="input-not-utf8",
        surface="tokenizer encode --input",
        fault="a Latin-1 text file",
        setup=_latin1_lines,
        argv=lambda tmp, path: ["tokenizer", "encode", "--tokenizer", FIXTURE, "--input", path],
        match=r"UTF-8",
    ),
]
