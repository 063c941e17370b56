"""Task data readers: TSV/CSV/JSONL tables, SQuAD v1.1 JSON and CoNLL-2003 text -> examples.

Every reader checks what the tasks rely on and reports a bad row as `file:line: problem (fix)`,
so a broken file stops a run before anything is written. Labels are kept as strings; the label
set of a run comes from its training data (`label_list`) and is saved with the model.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bertkit.errors import InputFileError


@dataclass
class TextExample:
    """One sentence (or sentence pair) to classify; `line` points back into the source file."""

    text: str
    text_pair: str | None = None
    label: str | None = None
    line: int | None = None


@dataclass
class QAExample:
    """A SQuAD question over its context; `answers` are (text, character start) references."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)
    title: str = ""
    line: int | None = None


@dataclass
class TokenExample:
    """A sentence as words with one IOB tag per word (None at prediction time)."""

    words: list[str]
    tags: list[str] | None = None
    line: int | None = None


# ----------------------------------------------------------------------------- tables

# Column names each task reads from a table file unless told otherwise.
DEFAULT_COLUMNS = {
    "classify": ("sentence", None, "label"),
    "nli": ("premise", "hypothesis", "label"),
}


def read_table(
    path: str | Path,
    text_column: str | int = "sentence",
    pair_column: str | int | None = None,
    label_column: str | int | None = "label",
    *,
    header: bool = True,
    delimiter: str | None = None,
    require_label: bool = True,
) -> list[TextExample]:
    """Read a TSV/CSV/JSONL file of sentences (or pairs) with labels.

    The format comes from the suffix (.tsv / .csv / .jsonl / .json lines); TSV is read without
    quote handling, as GLUE writes it (SST-2 phrases contain bare quote characters). Columns are
    names from the header (or JSON keys), or 0-based indexes when `header=False`.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (suffix == ".json" and _looks_like_jsonl(path)):
        rows = _jsonl_rows(path)
    else:
        sep = delimiter or ("," if suffix == ".csv" else "\t")
        rows = _delimited_rows(path, sep, quoted=(sep == "," or suffix == ".csv"))

    wanted = {"text": text_column, "pair": pair_column, "label": label_column}
    wanted = {role: col for role, col in wanted.items() if col is not None}
    optional = set() if require_label else {"label"}
    examples: list[TextExample] = []
    keys: dict[str, int] | None = None
    for line, row in rows:
        if keys is None and header and isinstance(row, list):
            keys = _header_index(path, line, row, wanted, optional)
            continue
        values = _pick(path, line, row, wanted, keys, optional)
        examples.append(TextExample(values["text"], values.get("pair"), values.get("label"), line))
    if not examples:
        raise InputFileError(path, "no examples found (the file is empty or has only a header)")
    return examples


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputFileError(path, "file not found (check the path)")


def _looks_like_jsonl(path: Path) -> bool:
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    return first.startswith("{") and first.endswith("}")


def _delimited_rows(path: Path, sep: str, quoted: bool) -> Iterable[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        if quoted:
            reader = csv.reader(f, delimiter=sep)
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, row
        else:
            for line, text in enumerate(f, 1):
                text = text.rstrip("\r\n")
                if text.strip():
                    yield line, text.split(sep)


def _jsonl_rows(path: Path) -> Iterable[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise InputFileError(
                    path, f"not valid JSON ({err.msg}); write one JSON object per line", line
                ) from None
            if not isinstance(row, dict):
                raise InputFileError(path, 'each line must be a JSON object like {"text": ..., "label": ...}', line)
            yield line, row


def _header_index(path: Path, line: int, header: list[str], wanted: dict, optional: set) -> dict[str, int]:
    names = [h.strip() for h in header]
    index: dict[str, int] = {}
    for role, col in wanted.items():
        if isinstance(col, int):
            index[role] = col
        elif col in names:
            index[role] = names.index(col)
        elif role not in optional:
            raise InputFileError(
                path,
                f"the header has no column {col!r} (columns: {', '.join(names)}); "
                f"name the right one with --{role}-column",
                line,
            )
    return index


def _pick(path: Path, line: int, row: list | dict, wanted: dict, keys: dict | None, optional: set) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, col in wanted.items():
        if isinstance(row, dict):
            if col not in row:
                if role in optional:
                    continue
                raise InputFileError(path, f"missing field {col!r} (fields: {', '.join(map(str, row))})", line)
            value = row[col]
        else:
            i = keys.get(role) if keys is not None else col
            if i is None and role in optional:
                continue
            if not isinstance(i, int):
                raise InputFileError(path, f"column {col!r} is given by name but the file has no header", line)
            if i >= len(row):
                if role in optional:
                    continue
                raise InputFileError(
                    path,
                    f"expected at least {i + 1} columns, found {len(row)} (is a column missing "
                    "or the delimiter wrong?)",
                    line,
                )
            value = row[i]
        if value is None or isinstance(value, (dict, list)):
            raise InputFileError(path, f"field {col!r} must be a string or number, got {value!r}", line)
        value = str(value)
        if role == "label":
            value = value.strip()
            if not value:
                raise InputFileError(path, f"empty label in column {col!r}", line)
        elif not value.strip():
            raise InputFileError(path, f"empty text in column {col!r}", line)
        out[role] = value
    return out


def read_text_lines(path: str | Path) -> list[TextExample]:
    """Plain text, one input per line (prediction input); a tab separates a sentence pair."""
    path = Path(path)
    _check_file(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            text = text.rstrip("\r\n")
            if text.strip():
                first, _, second = text.partition("\t")
                out.append(TextExample(first, second or None, None, line))
    if not out:
        raise InputFileError(path, "no input lines (the file is empty)")
    return out


# ----------------------------------------------------------------------------- labels


def label_list(labels: Iterable[str | None], path: str | Path = "training data") -> list[str]:
    """The sorted label set of the training data (IOB tags: "O" first, then by type, B before I)."""
    found = {label for label in labels if label is not None}
    if not found:
        raise InputFileError(path, "no labels found; training needs a label column")
    if any(_is_iob(tag) for tag in found) and all(_is_iob(tag) or tag == "O" for tag in found):
        return sorted(found, key=lambda t: ("" if t == "O" else t[2:], t[:1]))
    return sorted(found, key=lambda t: (0, int(t)) if _is_int(t) else (1, t))


def check_labels(examples: Sequence[TextExample | TokenExample], label2id: dict[str, int], path: str | Path) -> None:
    """Fail on a label the model was not trained with, naming file, line and the known labels."""
    for ex in examples:
        labels = ex.tags if isinstance(ex, TokenExample) else [ex.label]
        for label in labels or []:
            if label is not None and label not in label2id:
                raise InputFileError(
                    path,
                    f"label {label!r} is not one the model was trained with ({', '.join(label2id)}); "
                    "evaluate with data labelled like the training set",
                    ex.line,
                )


def _is_iob(tag: str) -> bool:
    return len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-"


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


# ----------------------------------------------------------------------------- SQuAD


def read_squad(path: str | Path, require_answers: bool = True) -> list[QAExample]:
    """Read SQuAD v1.1 JSON, checking that every `answer_start` points at its answer text."""
    path = Path(path)
    _check_file(path)
    raw = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg}, column {err.colno})", err.lineno) from None

    def fail(where: str, problem: str, needle: str | None = None) -> InputFileError:
        line = _line_of(raw, needle) if needle else None
        return InputFileError(path, f"{where}: {problem}", line)

    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise fail("top level", 'expected SQuAD v1.1 JSON {"version": ..., "data": [articles]}')
    examples: list[QAExample] = []
    for a, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise fail(f"data[{a}]", 'an article needs "paragraphs": [...]')
        for p, para in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                raise fail(where, 'a paragraph needs a non-empty "context" string')
            qas = para.get("qas")
            if not isinstance(qas, list) or not qas:
                raise fail(
                    where,
                    'a context with no question: give it "qas": [{"id", "question", "answers"}] '
                    "or remove the paragraph",
                    json.dumps(context[:40])[1:-1],
                )
            for q, qa in enumerate(qas):
                examples.append(_squad_question(qa, f"{where}.qas[{q}]", context, article, require_answers, fail))
    if not examples:
        raise InputFileError(path, "no questions found")
    return examples


def _squad_question(qa, where, context, article, require_answers, fail) -> QAExample:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
        raise fail(where, 'each entry of "qas" needs "id" and "question"')
    qid = str(qa.get("id", where))
    needle = f'"{qid}"'
    if not qa["question"].strip():
        raise fail(f"{where} (id {qid})", "empty question", needle)
    answers = []
    for ans in qa.get("answers") or []:
        text, start = ans.get("text"), ans.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            raise fail(f"{where} (id {qid})", 'each answer needs "text" and an integer "answer_start"', needle)
        if context[start : start + len(text)] != text:
            found = context[start : start + len(text)]
            raise fail(
                f"{where} (id {qid})",
                f"answer_start {start} does not match the answer: the context there reads {found!r}, "
                f"not {text!r} (fix answer_start to the character offset of the answer in the context)",
                needle,
            )
        answers.append((text, start))
    if require_answers and not answers:
        raise fail(f"{where} (id {qid})", "a question without answers; training and evaluation need one", needle)
    title = article.get("title", "") if isinstance(article, dict) else ""
    return QAExample(qid, qa["question"], context, answers, title, None)


def _line_of(raw: str, needle: str) -> int | None:
    pos = raw.find(needle)
    return None if pos < 0 else raw.count("\n", 0, pos) + 1


# ----------------------------------------------------------------------------- CoNLL


def read_conll(path: str | Path, require_tags: bool = True) -> list[TokenExample]:
    """Read CoNLL text: `word ... tag` per line, blank lines between sentences.

    The word is the first column and the tag the last; every line must have as many columns as
    the first one (CoNLL-2003 has 4: word, POS, chunk, NER). `-DOCSTART-` lines are skipped.
    """
    path = Path(path)
    _check_file(path)
    sentences: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    start = None
    ncols = None

    def flush() -> None:
        nonlocal words, tags, start
        if words:
            sentences.append(TokenExample(words, tags if ncols and ncols > 1 else None, start))
        words, tags, start = [], [], None

    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            cols = text.split()
            if not cols:
                flush()
                continue
            if cols[0] == "-DOCSTART-":
                flush()
                continue
            if ncols is None:
                ncols = len(cols)
                if require_tags and ncols < 2:
                    raise InputFileError(
                        path, "expected `word ... TAG` columns separated by spaces, found a single column", line
                    )
            if len(cols) != ncols:
                raise InputFileError(
                    path,
                    f"expected {ncols} space-separated columns like the first token line, found "
                    f"{len(cols)} (words cannot contain spaces; the NER tag is the last column)",
                    line,
                )
            tag = cols[-1]
            if ncols > 1 and not (tag == "O" or _is_iob(tag)):
                raise InputFileError(path, f"tag {tag!r} is not IOB (O, B-TYPE or I-TYPE)", line)
            if start is None:
                start = line
            words.append(cols[0])
            tags.append(tag)
    flush()
    if not sentences:
        raise InputFileError(path, "no sentences found (the file is empty)")
    return sentences


def read_token_jsonl(
    path: str | Path, words_field: str = "tokens", tags_field: str | None = "ner_tags"
) -> list[TokenExample]:
    """JSON lines with a list of words and a parallel list of string tags per sentence."""
    path = Path(path)
    _check_file(path)
    out = []
    for line, row in _jsonl_rows(path):
        words, tags = row.get(words_field), row.get(tags_field) if tags_field else None
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise InputFileError(path, f"field {words_field!r} must be a non-empty list of words", line)
        if tags is not None:
            if not isinstance(tags, list) or len(tags) != len(words):
                raise InputFileError(
                    path, f"field {tags_field!r} must list one tag per word ({len(words)} words)", line
                )
            tags = [str(t) for t in tags]
        out.append(TokenExample(words, tags, line))
    if not out:
        raise InputFileError(path, "no sentences found (the file is empty)")
    return out


# ----------------------------------------------------------------------------- by task

TASKS = ("classify", "nli", "qa", "ner")


def read_task_data(
    task: str,
    path: str | Path,
    *,
    text_column: str | int | None = None,
    pair_column: str | int | None = None,
    label_column: str | int | None = None,
    header: bool = True,
    require_labels: bool = True,
) -> list:
    """Examples of `task` from `path`, choosing the reader by task and file suffix."""
    path = Path(path)
    if task == "qa":
        return read_squad(path, require_answers=require_labels)
    if task == "ner":
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            return read_token_jsonl(
                path, text_column or "tokens", label_column or ("ner_tags" if require_labels else None)
            )
        return read_conll(path, require_tags=require_labels)
    if task not in DEFAULT_COLUMNS:
        raise InputFileError(path, f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    text_default, pair_default, label_default = DEFAULT_COLUMNS[task]
    return read_table(
        path,
        text_column if text_column is not None else text_default,
        pair_column if pair_column is not None else pair_default,
        label_column if label_column is not None else label_default,
        header=header,
        require_label=require_labels,
    )
