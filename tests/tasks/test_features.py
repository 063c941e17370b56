"""Padding and length grouping: every index once, similar lengths together, order restored."""

import torch

from bertkit.tasks import features


def test_pad_batch_pads_each_field_with_its_own_filler():
    feats = [
        {"input_ids": [101, 7, 102], "token_type_ids": [0, 0, 0], "labels": [-100, 3, -100], "x": 1},
        {"input_ids": [101, 102], "token_type_ids": [0, 0], "labels": [-100, -100], "x": 0},
    ]
    b = features.pad_batch(feats, pad_id=5)
    assert b["input_ids"].tolist() == [[101, 7, 102], [101, 102, 5]]
    assert b["labels"].tolist() == [[-100, 3, -100], [-100, -100, -100]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b["x"].tolist() == [1, 0] and b["x"].dtype == torch.long


class Echo(torch.nn.Module):
    """Logits = input ids as floats, so results show which row went where."""

    config = type("Config", (), {"pad_token_id": 0})

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return type("Out", (), {"logits": input_ids.float() * attention_mask})


def test_forward_batches_returns_input_order_without_padding():
    feats = [{"input_ids": list(range(1, n + 1)), "token_type_ids": [0] * n} for n in (5, 2, 9, 1)]
    out = features.forward_batches(Echo(), feats, batch_size=2, per_token=True)
    assert [len(o[0]) for o in out] == [5, 2, 9, 1]
    assert [o[0].tolist() for o in out] == [list(map(float, f["input_ids"])) for f in feats]
