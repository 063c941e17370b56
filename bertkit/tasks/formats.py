"""Structured task files: JSON lines, SQuAD v1.1 JSON and CoNLL-2003 text -> examples.

Every reader checks what the tasks rely on and reports a bad entry as `file:line: problem (fix)`,
so a broken file stops a run before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bertkit.errors import InputFileError
from bertkit.tasks.examples import QAExample, TokenExample, read_text, text_lines


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, object) for each non-blank line of a JSON-lines file."""
    for line, text in text_lines(path):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputFileError(path, f"not valid JSON ({err.msg}); write one JSON object per line", line) from None
        if not isinstance(row, dict):
            raise InputFileError(path, 'each line must be a JSON object like {"text": ..., "label": ...}', line)
        yield line, row


def is_iob(tag: str) -> bool:
    return len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-"


# ----------------------------------------------------------------------------- SQuAD

Fail = Callable[..., InputFileError]


def read_squad(path: str | Path, require_answers: bool = True) -> list[QAExample]:
    """Read SQuAD v1.1 JSON, checking that every `answer_start` points at its answer text."""
    path = Path(path)
    raw = read_text(path)
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
        title = article.get("title", "") if isinstance(article, dict) else ""
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
                examples.append(_squad_question(qa, f"{where}.qas[{q}]", context, str(title), require_answers, fail))
    if not examples:
        raise InputFileError(path, "no questions found")
    return examples


def _squad_question(qa: Any, where: str, context: str, title: str, require_answers: bool, fail: Fail) -> QAExample:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
        raise fail(where, 'each entry of "qas" needs "id" and "question"')
    qid = str(qa.get("id", where))
    needle = f'"{qid}"'
    if not qa["question"].strip():
        raise fail(f"{where} (id {qid})", "empty question", needle)
    raw_answers = qa.get("answers") or []
    if not isinstance(raw_answers, list):
        raise fail(f"{where} (id {qid})", '"answers" must be a list of {"text", "answer_start"} objects', needle)
    answers = [check_answer(ans, context, f"{where} (id {qid})", needle, fail) for ans in raw_answers]
    if require_answers and not answers:
        raise fail(f"{where} (id {qid})", "a question without answers; training and evaluation need one", needle)
    return QAExample(qid, qa["question"], context, answers, title, None)


def check_answer(ans: Any, context: str, where: str, needle: str | None, fail: Fail) -> tuple[str, int]:
    """One reference answer: an object with a string `text` found at the integer `answer_start`."""
    if not isinstance(ans, dict):
        raise fail(where, f'each answer must be an object {{"text", "answer_start"}}, not {ans!r:.40}', needle)
    text, start = ans.get("text"), ans.get("answer_start")
    if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
        raise fail(where, 'each answer needs "text" (a string) and an integer "answer_start"', needle)
    if context[start : start + len(text)] != text or start < 0:
        found = context[start : start + len(text)] if start >= 0 else ""
        raise fail(
            where,
            f"answer_start {start} does not match the answer: the context there reads {found!r}, "
            f"not {text!r} (fix answer_start to the character offset of the answer in the context)",
            needle,
        )
    return text, start


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
    sentences: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    start: int | None = None
    ncols: int | None = None
    for line, text in text_lines(path) + [(0, "")]:
        cols = text.split()
        if not cols or cols[0] == "-DOCSTART-":
            if words:
                sentences.append(TokenExample(words, tags if ncols and ncols > 1 else None, start))
            words, tags, start = [], [], None
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
        if ncols > 1 and not (tag == "O" or is_iob(tag)):
            raise InputFileError(path, f"tag {tag!r} is not IOB (O, B-TYPE or I-TYPE)", line)
        start = line if start is None else start
        words.append(cols[0])
        tags.append(tag)
    if not sentences:
        raise InputFileError(path, "no sentences found (the file is empty)")
    return sentences


def token_example(path: Path, line: int, row: dict[str, Any], words_field: str, tags_field: str | None) -> TokenExample:
    """One JSON-lines (or datasets) row holding a list of words and a parallel list of tags."""
    words, tags = row.get(words_field), row.get(tags_field) if tags_field else None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise InputFileError(path, f"field {words_field!r} must be a non-empty list of words", line)
    if tags is not None:
        if not isinstance(tags, list) or len(tags) != len(words):
            raise InputFileError(path, f"field {tags_field!r} must list one tag per word ({len(words)} words)", line)
        tags = [str(t) for t in tags]
    return TokenExample(words, tags, line)


def read_token_jsonl(
    path: str | Path, words_field: str = "tokens", tags_field: str | None = "ner_tags"
) -> list[TokenExample]:
    """JSON lines with a list of words and a parallel list of string tags per sentence."""
    path = Path(path)
    out = [token_example(path, line, row, words_field, tags_field) for line, row in jsonl_rows(path)]
    if not out:
        raise InputFileError(path, "no sentences found (the file is empty)")
    return out
