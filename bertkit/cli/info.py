"""`bertkit info --config base`: the parameters of each part of a BERT, and the total.

bertkit info --config large
bertkit info --config L4-H256
bertkit info --config runs/sst2/config.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="parameter counts per module of a BERT size (base, large, L4-H256, ...) or config.json",
        description="Print the parameters of every part of BERT (token / segment / position embeddings, each "
        "encoder layer's attention and feed-forward, pooler, MLM and NSP heads) and the totals, computed "
        "from the config without building the model.",
    )
    p.add_argument(
        "--config",
        required=True,
        help="a size (tiny, mini, small, medium, base, large, or L<layers>-H<hidden> such as L4-H256), "
        "a config.json or bert_config.json, or a model folder",
    )
    p.set_defaults(func=run)


def load_config(spec: str) -> Any:
    """A config file or model folder when `spec` names one (or a hub repository), else a preset size."""
    from bertkit.model.config import BertConfig  # lazy: keeps bertkit --help free of torch

    if Path(spec).exists() or "/" in spec:
        return BertConfig.from_pretrained(spec)
    return BertConfig.preset(spec)


def run(args: argparse.Namespace) -> int:
    from bertkit.model.counts import parameter_counts, total  # lazy: keeps bertkit --help free of torch

    config = load_config(args.config)
    parts = parameter_counts(config)
    c = config
    print(
        f"{args.config}: L={c.num_hidden_layers} H={c.hidden_size} A={c.num_attention_heads} "
        f"FFN={c.intermediate_size} vocab={c.vocab_size:,} positions={c.max_position_embeddings} "
        f"segments={c.type_vocab_size}"
    )
    encoder, with_heads = total(parts), total(parts, heads=True)
    rows = [(p.name, p.count, p.detail) for p in parts]
    rows += [("total (BertModel)", encoder, f"= {_short(encoder)}")]
    rows += [("total with the MLM and NSP heads", with_heads, f"= {_short(with_heads)} (BertForPreTraining)")]
    width = max(len(name) for name, _, _ in rows)
    for name, count, detail in rows:
        print(f"  {name:<{width}}  {count:>13,}  {detail}")
    return 0


def _short(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"
