"""`bertkit predict`: run a task pipeline on text arguments, a file or stdin.

    bertkit predict sentiment --model DIR "a gripping film" "a tedious mess"    (one JSON line per text)
    bertkit predict nli --model DIR "A man sleeps." --pair "A man is awake."
    bertkit predict nsp --model DIR "She cooked pasta." --pair "It was delicious."
    bertkit predict qa --model DIR "Who wrote it?" --context @article.txt
    bertkit predict ner --model DIR --input texts.txt --output entities.jsonl
    cat texts.txt | bertkit predict classify --model DIR --input -

Each TEXT argument and each input line is one input with one output line, in order: a blank
input line gives `null`, so output line i answers input line i. --output writes JSON lines
{"line", "input", "result"} instead. Files are read and answered in chunks (inputs larger than
memory work), with a progress bar on stderr (--no-progress turns it off).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bertkit.cli.common import add_device, add_precision, add_progress, add_renamed
from bertkit.cli.textio import check_readable, chunks, count_lines, iter_lines, progress_bar, show_progress
from bertkit.constants import ALL_PIPELINE_TASKS
from bertkit.errors import BertkitError, InputFileError
from bertkit.files import atomic_path

PAIR_TASKS = ("nli", "nsp")  # a second sentence is required
PAIRABLE = ("classify", "sentiment", "text-classification", "sentiment-analysis") + PAIR_TASKS
AGGREGATIONS = ("none", "simple", "first", "average", "max")
Row = tuple[int, str, Any]  # (line or argument number, the input as read, the pipeline input or None)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="run a task pipeline on text arguments, a file or stdin",
        description="Prints one JSON line per input, in order (a blank input line gives null). nli and nsp "
        "pair each TEXT with --pair (file lines: first<TAB>second); qa takes QUESTION(s) with --context "
        "(file: JSON lines with question and context, or SQuAD JSON). Hugging Face's task names answer "
        "with Hugging Face's keys.",
    )
    p.add_argument("task", choices=ALL_PIPELINE_TASKS)
    p.add_argument("--model", required=True, help="model folder or hub name")
    p.add_argument("text", nargs="*", help="inputs, one per argument (or use --input)")
    p.add_argument("--pair", help="nli: the hypothesis; nsp: sentence B; classify: a second sentence")
    p.add_argument("--input", help="file with one input per line, or - for stdin")
    p.add_argument("--output", help='write JSON lines {"line", "input", "result"} here instead of stdout')
    p.add_argument("--context", help="qa: the context text, or @FILE to read it from a file")
    p.add_argument(
        "--top-k", type=int, default=None, help="classify/sentiment/nli: best labels; qa: answers; fill-mask"
    )
    p.add_argument("--aggregation-strategy", choices=AGGREGATIONS, help="ner / token-classification: Hugging Face's")
    p.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass")
    p.add_argument("--max-seq-len", type=int, default=None, help="tokens per window (default: the model's setting)")
    add_renamed(p, "--max-len", "--max-seq-len", type=int)
    add_device(p)
    add_precision(p, inference=True)
    add_progress(p)
    p.set_defaults(func=run_predict)
    p.__class__ = IntermixedParser  # TEXT may follow --model DIR, as the contract writes it


class IntermixedParser(argparse.ArgumentParser):
    """Positionals may come after options (`predict TASK --model DIR TEXT`).

    Plain argparse gives the `TEXT*` positional its (empty) value as soon as it reads TASK and then
    rejects the text after --model; intermixed parsing reads options first, positionals after.
    """

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def run_predict(args: argparse.Namespace) -> int:
    from bertkit.pipelines import pipeline  # lazy: keeps bertkit --help free of torch

    rows, total = _rows(args)
    options: dict[str, Any] = {"batch_size": args.batch_size}
    if args.top_k is not None:
        options["top_k"] = args.top_k
    if args.aggregation_strategy is not None:
        options["aggregation_strategy"] = args.aggregation_strategy
    pipe = pipeline(
        args.task,
        model=args.model,
        device=args.device,
        dtype=args.precision,  # fp32|bf16|fp16|int8: spellings dtype= accepts
        max_seq_len=args.max_seq_len,
        **options,
    )
    size = max(args.batch_size * 8, 64)  # enough per chunk to fill length-sorted batches
    with (
        _sink(args.output) as out,
        progress_bar(total, f"predict {args.task}", show_progress(args) and bool(args.input)) as bar,
    ):
        written = 0
        for chunk in chunks(rows, size):
            given = [r for r in chunk if r[2] is not None]
            answers = iter(pipe([r[2] for r in given]) if given else [])
            for number, raw, value in chunk:
                result = None if value is None else next(answers)
                line = {"line": number, "input": raw, "result": result} if args.output else result
                out.write(json.dumps(jsonable(line), ensure_ascii=False) + "\n")
            out.flush()
            written += len(chunk)
            bar.update(len(chunk))
    if args.output:
        print(f"wrote {written} results to {args.output}")
    return 0


def _sink(output: str | None) -> Any:
    """stdout, or --output written to a temporary file that replaces it once complete."""

    @contextlib.contextmanager
    def file() -> Iterator[IO[str]]:
        path = Path(str(output))
        if path.is_dir():
            raise BertkitError(f"--output {path}: is a folder; give a file name (e.g. results.jsonl)")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            yield f

    return file() if output else contextlib.nullcontext(sys.stdout)


# ------------------------------------------------------------------------------------- the inputs
def _rows(args: argparse.Namespace) -> tuple[Iterator[Row] | list[Row], int | None]:
    """The inputs as (number, raw text, pipeline input or None for a blank line), and how many."""
    if bool(args.text) == bool(args.input):
        raise BertkitError("give the input as TEXT arguments or as --input FILE / --input - (exactly one of them)")
    if args.batch_size < 1:
        raise BertkitError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.task in ("qa", "question-answering"):
        return _qa_rows(args)
    if args.pair is not None and args.task not in PAIRABLE:
        raise BertkitError(f"--pair: {args.task} takes single texts; it is for nli, nsp and classify")
    if args.input:
        check_readable(args.input)
        rows = (_line_row(args, number, text) for number, text in iter_lines(args.input))
        return rows, count_lines(args.input)
    texts = list(args.text)
    if args.task == "nli" and args.pair is None and len(texts) == 2:
        return [(1, "\t".join(texts), (texts[0], texts[1]))], 1  # the documented PREMISE HYPOTHESIS form
    if args.task in PAIR_TASKS and args.pair is None:
        raise BertkitError(f"predict {args.task}: give the second sentence with --pair (e.g. {args.task} A --pair B)")
    return [(k, t, t if args.pair is None else (t, args.pair)) for k, t in enumerate(texts, 1)], len(texts)


def _line_row(args: argparse.Namespace, number: int, text: str) -> Row:
    if not text.strip():
        return number, text, None
    if args.task == "fill-mask" and "[MASK]" not in text:
        raise InputFileError(_name(args.input), "no [MASK] in this line (fill-mask fills [MASK] tokens)", number)
    if args.task not in PAIRABLE:
        return number, text, text
    first, tab, second = text.partition("\t")
    if args.pair is not None:
        return number, text, (text, args.pair)
    if args.task in PAIR_TASKS and not tab:
        raise InputFileError(_name(args.input), f"{args.task} input lines are first<TAB>second", number)
    return number, text, (first, second) if tab else text


def _qa_rows(args: argparse.Namespace) -> tuple[Iterator[Row] | list[Row], int | None]:
    if args.input:
        check_readable(args.input)
        if Path(args.input).suffix.lower() == ".json":
            from bertkit.tasks.readers import read_squad  # lazy: keeps bertkit --help fast

            found = read_squad(args.input, require_answers=False)
            rows = [(k, ex.question, {"question": ex.question, "context": ex.context}) for k, ex in enumerate(found, 1)]
            return rows, len(rows)
        return (_qa_line(args.input, number, text) for number, text in iter_lines(args.input)), count_lines(args.input)
    if not args.context:
        raise BertkitError("predict qa: give the context with --context TEXT (or --context @FILE)")
    context = args.context
    if context.startswith("@"):
        file = Path(context[1:])
        if not file.is_file():
            raise InputFileError(file, "context file not found")
        context = file.read_text(encoding="utf-8")
    return [(k, q, {"question": q, "context": context}) for k, q in enumerate(args.text, 1)], len(args.text)


def _qa_line(path: str, number: int, text: str) -> Row:
    if not text.strip():
        return number, text, None
    try:
        row = json.loads(text)
    except json.JSONDecodeError:
        row = None
    if not isinstance(row, dict) or "question" not in row or "context" not in row:
        raise InputFileError(_name(path), 'each line must be JSON {"question": ..., "context": ...}', number)
    return number, text, row


def _name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def jsonable(value: Any) -> Any:
    """Tensors and arrays (embeddings) and tuples -> lists, so every result prints as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
