"""Parameter counts per module, from the config, against models built by bertkit."""

from __future__ import annotations

import re

import pytest

import bertkit.model as bk
from bertkit.model.counts import parameter_counts, total

# distinct sizes, so that a row that multiplies the wrong two sizes cannot pass by accident
ODD = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=3,
)


def part_of(name: str) -> str:
    """A state-dict key of BertForPreTraining -> the counts row it belongs to."""
    rules = [
        (r"bert\.embeddings\.word_embeddings\.", "embeddings: token"),
        (r"bert\.embeddings\.token_type_embeddings\.", "embeddings: segment"),
        (r"bert\.embeddings\.position_embeddings\.", "embeddings: position"),
        (r"bert\.embeddings\.LayerNorm\.", "embeddings: LayerNorm"),
        (r"bert\.encoder\.layer\.(\d+)\.attention\.", "layer {}: attention"),
        (r"bert\.encoder\.layer\.(\d+)\.(intermediate|output)\.", "layer {}: FFN"),
        (r"bert\.pooler\.", "pooler"),
        (r"cls\.predictions\.", "MLM head"),
        (r"cls\.seq_relationship\.", "NSP head"),
    ]
    for pattern, row in rules:
        match = re.match(pattern, name)
        if match:
            return row.format(*match.groups()[:1])
    raise AssertionError(f"no row for {name}")


def test_every_row_equals_the_built_model():
    model = bk.BertForPreTraining(bk.BertConfig(**ODD))
    built: dict[str, int] = {}
    for name, p in model.named_parameters():  # named_parameters lists the tied decoder weight once
        built[part_of(name)] = built.get(part_of(name), 0) + p.numel()
    counted = {p.name: p.count for p in parameter_counts(model.config)}
    assert counted == built
    parts = parameter_counts(model.config)
    assert total(parts, heads=True) == model.num_parameters()
    assert total(parts) == model.bert.num_parameters()


def test_bert_base_is_110m_and_equals_the_built_model():
    config = bk.BertConfig.preset("base")
    parts = parameter_counts(config)
    assert total(parts) == bk.BertModel(config).num_parameters() == 109_482_240
    assert 108e6 < total(parts) < 112e6  # the paper's "110M"


def test_bert_large_is_340m_not_the_lectures_310m():
    parts = parameter_counts(bk.BertConfig.preset("large"))
    assert total(parts) == 335_141_888  # the paper's "340M"
    assert 330e6 < total(parts) < 345e6
    # the lecture's 310M would need a narrower feed-forward than 4H; with 4H each layer alone holds
    per_layer = sum(p.count for p in parts if p.name.startswith("layer 0:"))
    assert per_layer == 12_596_224 and total(parts) - 310e6 > 24e6


@pytest.mark.parametrize("name", ["tiny", "mini", "L4-H256", "medium"])
def test_presets_match_their_built_models(name):
    config = bk.BertConfig.preset(name)
    assert total(parameter_counts(config), heads=True) == bk.BertForPreTraining(config).num_parameters()
