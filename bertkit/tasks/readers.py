"""Task data readers: TSV/CSV/JSONL tables, SQuAD v1.1 JSON, CoNLL-2003 text and `datasets`
sources (.parquet, .arrow, saved folders, Dataset objects) -> examples.

Every reader checks what the tasks rely on and reports a bad row as `file:line: problem (fix)`,
so a broken file stops a run before anything is written. Labels are kept as strings; the label
set of a run comes from its training data (`label_list`) and is saved with the model.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bertkit.errors import InputFileError
from bertkit.tasks import hf_datasets
from bertkit.tasks.examples import DataSource, QAExample, TextExample, TokenExample, read_text, text_lines
from bertkit.tasks.formats import (
    check_answer,
    is_iob,
    jsonl_rows,
    read_conll,
    read_squad,
    read_token_jsonl,
    token_example,
)

__all__ = [
    "QAExample",
    "TextExample",
    "TokenExample",
    "check_labels",
    "label_list",
    "read_conll",
    "read_squad",
    "read_table",
    "read_task_data",
    "read_text_lines",
    "read_token_jsonl",
]

# Column names each table task reads unless told otherwise: (text, pair, label).
DEFAULT_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "classify": ("sentence", None, "label"),
    "nli": ("premise", "hypothesis", "label"),
    "regress": ("sentence_a", "sentence_b", "score"),
    "multilabel": ("sentence", None, "labels"),
}
# The largest CSV cell accepted (Python's csv module stops at 128 KiB by default).
MAX_CSV_FIELD = 16 * 1024 * 1024
Row = tuple[int, "list[str] | dict[str, Any]"]


# ----------------------------------------------------------------------------- tables


def read_table(
    path: DataSource,
    text_column: str | int = "sentence",
    pair_column: str | int | None = None,
    label_column: str | int | None = "label",
    *,
    header: bool = True,
    delimiter: str | None = None,
    require_label: bool = True,
    multi_label: bool = False,
) -> list[TextExample]:
    """Read a TSV/CSV/JSONL file (or a `datasets` source) of sentences (or pairs) with labels.

    The format comes from the suffix (.tsv / .csv / .jsonl / .json lines); TSV is read without
    quote handling, as GLUE writes it (SST-2 phrases contain bare quote characters). Columns are
    names from the header (or JSON keys), or 0-based indexes when `header=False`. With
    `multi_label`, a label cell holds comma-separated labels (JSON: a list), possibly none.
    """
    name = hf_datasets.source_name(path)
    rows: Iterable[Row] = (
        hf_datasets.dataset_rows(path) if hf_datasets.is_dataset(path) else _file_rows(Path(path), delimiter)
    )
    wanted = {"text": text_column, "pair": pair_column, "label": label_column}
    wanted = {role: col for role, col in wanted.items() if col is not None}
    optional = set() if require_label else {"label"}
    examples: list[TextExample] = []
    keys: dict[str, int] | None = None
    for line, row in rows:
        if keys is None and header and isinstance(row, list):
            keys = _header_index(name, line, row, wanted, optional)
            continue
        values = _pick(name, line, row, wanted, keys, optional, multi_label)
        examples.append(TextExample(values["text"], values.get("pair"), values.get("label"), line))
    if not examples:
        raise InputFileError(name, "no examples found (the file is empty or has only a header)")
    return examples


def _file_rows(path: Path, delimiter: str | None) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (suffix == ".json" and _looks_like_jsonl(path)):
        yield from jsonl_rows(path)
        return
    sep = delimiter or ("," if suffix == ".csv" else "\t")
    if sep == "," or suffix == ".csv":
        yield from _csv_rows(path, sep)
        return
    for line, text in text_lines(path):
        text = text.rstrip("\r")
        if text.strip():
            yield line, text.split(sep)


def _csv_rows(path: Path, sep: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=sep)
    with _csv_field_limit(MAX_CSV_FIELD):
        try:
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, row
        except csv.Error as err:
            raise InputFileError(path, f"not readable as CSV ({err}); check the quoting", reader.line_num) from None


@contextlib.contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _looks_like_jsonl(path: Path) -> bool:
    first = read_text(path).lstrip().split("\n", 1)[0].strip()
    return first.startswith("{") and first.endswith("}")


def _header_index(
    path: Path | str, line: int, header: list[str], wanted: dict[str, Any], optional: set[str]
) -> dict[str, int]:
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


def _cell(path: Path | str, line: int, row: list[str] | dict[str, Any], role: str, col: Any, keys: dict | None) -> Any:
    """The raw value of one column of one row; KeyError when it is absent."""
    if isinstance(row, dict):
        if col not in row:
            raise KeyError(f"missing field {col!r} (fields: {', '.join(map(str, row))})")
        return row[col]
    i = keys.get(role) if keys is not None else col
    if i is None:
        raise KeyError(f"no column {col!r}")
    if not isinstance(i, int):
        raise InputFileError(path, f"column {col!r} is given by name but the file has no header", line)
    if i >= len(row):
        raise KeyError(
            f"expected at least {i + 1} columns, found {len(row)} (is a column missing or the delimiter wrong?)"
        )
    return row[i]


def _pick(
    path: Path | str,
    line: int,
    row: list[str] | dict[str, Any],
    wanted: dict[str, Any],
    keys: dict | None,
    optional: set[str],
    multi_label: bool = False,
) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, col in wanted.items():
        try:
            value = _cell(path, line, row, role, col, keys)
        except KeyError as err:
            if role in optional:
                continue
            raise InputFileError(path, str(err.args[0]), line) from None
        if multi_label and role == "label" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if value is None or isinstance(value, (dict, list)):
            raise InputFileError(path, f"field {col!r} must be a string or number, got {value!r:.60}", line)
        value = str(value)
        if role == "label":
            value = value.strip()
            if not value and not multi_label:
                raise InputFileError(path, f"empty label in column {col!r}", line)
        elif not value.strip():
            raise InputFileError(path, f"empty text in column {col!r}", line)
        out[role] = value
    return out


def read_text_lines(path: str | Path) -> list[TextExample]:
    """Plain text, one input per line (prediction input); a tab separates a sentence pair."""
    path = Path(path)
    out = []
    for line, text in text_lines(path):
        text = text.rstrip("\r")
        if text.strip():
            first, _, second = text.partition("\t")
            out.append(TextExample(first, second or None, None, line))
    if not out:
        raise InputFileError(path, "no input lines (the file is empty)")
    return out


# ----------------------------------------------------------------------------- labels


def label_list(labels: Iterable[str | None], path: DataSource = "training data") -> list[str]:
    """The sorted label set of the training data (IOB tags: "O" first, then by type, B before I)."""
    found = {label for label in labels if label is not None}
    if not found:
        raise InputFileError(hf_datasets.source_name(path), "no labels found; training needs a label column")
    if any(is_iob(tag) for tag in found) and all(is_iob(tag) or tag == "O" for tag in found):
        return sorted(found, key=lambda t: ("" if t == "O" else t[2:], t[:1]))
    return sorted(found, key=lambda t: (0, int(t)) if _is_int(t) else (1, t))


def check_labels(examples: Sequence[TextExample | TokenExample], label2id: dict[str, int], path: DataSource) -> None:
    """Fail on a label the model was not trained with, naming file, line and the known labels."""
    for ex in examples:
        labels = ex.tags if isinstance(ex, TokenExample) else [ex.label]
        for label in labels or []:
            if label is not None and label not in label2id:
                raise InputFileError(
                    hf_datasets.source_name(path),
                    f"label {label!r} is not one the model was trained with ({', '.join(label2id)}); "
                    "evaluate with data labelled like the training set",
                    ex.line,
                )


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


# ----------------------------------------------------------------------------- by task


def _dataset_qa(source: DataSource, require_answers: bool) -> list[QAExample]:
    """SQuAD rows as `datasets` holds them: id, title, context, question, answers{text, answer_start}."""
    name = hf_datasets.source_name(source)
    out = []
    for line, row in hf_datasets.dataset_rows(source):
        context, question = row.get("context"), row.get("question")
        if not isinstance(context, str) or not isinstance(question, str) or not question.strip():
            raise InputFileError(name, 'a SQuAD row needs "context" and "question" strings', line)
        raw = row.get("answers") or {}
        if not isinstance(raw, dict) or not isinstance(raw.get("text", []), list):
            raise InputFileError(name, '"answers" must be {"text": [...], "answer_start": [...]}', line)
        pairs = zip(raw.get("text", []), raw.get("answer_start", []))

        def fail(where: str, problem: str, needle: str | None = None, line: int = line) -> InputFileError:
            return InputFileError(name, f"{where}: {problem}", line)

        answers = [check_answer({"text": t, "answer_start": s}, context, "answers", None, fail) for t, s in pairs]
        if require_answers and not answers:
            raise InputFileError(name, "a question without answers; training and evaluation need one", line)
        out.append(QAExample(str(row.get("id", line)), question, context, answers, str(row.get("title", "")), line))
    return out


def read_task_data(
    task: str,
    path: DataSource,
    *,
    text_column: str | int | None = None,
    pair_column: str | int | None = None,
    label_column: str | int | None = None,
    header: bool = True,
    require_labels: bool = True,
) -> list[Any]:
    """Examples of `task` from `path`, choosing the reader by task and source kind."""
    dataset = hf_datasets.is_dataset(path)
    if task == "qa":
        return _dataset_qa(path, require_labels) if dataset else read_squad(path, require_answers=require_labels)
    if task == "ner":
        words, tags = text_column or "tokens", label_column or ("ner_tags" if require_labels else None)
        if dataset:
            name = hf_datasets.source_name(path)
            return [
                token_example(Path(name), line, row, str(words), tags and str(tags))
                for line, row in hf_datasets.dataset_rows(path)
            ]
        if Path(path).suffix.lower() in (".jsonl", ".ndjson", ".json"):
            return read_token_jsonl(path, str(words), tags and str(tags))
        return read_conll(path, require_tags=require_labels)
    if task not in DEFAULT_COLUMNS:
        raise InputFileError(hf_datasets.source_name(path), f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    text_default, pair_default, label_default = DEFAULT_COLUMNS[task]
    return read_table(
        path,
        text_column if text_column is not None else text_default,
        pair_column if pair_column is not None else pair_default,
        label_column if label_column is not None else label_default,
        header=header,
        require_label=require_labels,
        multi_label=task == "multilabel",
    )


TASKS = (*DEFAULT_COLUMNS, "qa", "ner")
