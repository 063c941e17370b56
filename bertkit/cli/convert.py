"""`bertkit convert --from google DIR --out DIR`: Google's TF release -> a Hugging Face folder.

    bertkit convert --from google uncased_L-12_H-768_A-12 --out bert-base-uncased-hf

TensorFlow is not needed: bertkit.checkpoint.tf_bundle reads the checkpoint files directly.
"""

from __future__ import annotations

import argparse

from bertkit.cli.common import add_overwrite


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a Google BERT checkpoint (bert_config.json + bert_model.ckpt) to Hugging Face layout",
        description="Read a google-research/bert release folder (bert_config.json, vocab.txt, "
        "bert_model.ckpt.index + .data-*) without TensorFlow, check every tensor's CRC-32C, and write "
        "config.json, model.safetensors, vocab.txt and tokenizer_config.json. Pretraining heads (cls/...) "
        "are kept when present. (from_pretrained also loads the release folder directly.)",
    )
    p.add_argument("--from", dest="source", required=True, choices=["google"], help="checkpoint format to read")
    p.add_argument("folder", help="the release folder")
    p.add_argument("--out", required=True, help="output folder (created; must be new or empty)")
    p.add_argument("--no-verify", action="store_true", help="skip CRC-32C checks of the checkpoint")
    add_overwrite(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bertkit.convert import convert_google_checkpoint  # lazy: keeps bertkit --help free of torch

    model, report = convert_google_checkpoint(
        args.folder, args.out, verify=not args.no_verify, overwrite=args.overwrite
    )
    c = model.config
    print(
        f"{type(model).__name__}: L={c.num_hidden_layers} H={c.hidden_size} A={c.num_attention_heads} "
        f"vocab={c.vocab_size}, {model.num_parameters():,} parameters -> {args.out}"
    )
    if report.newly_initialized or report.unexpected:
        print(report.summary(type(model).__name__))
    return 0
