"""The exported graph computes what the torch model computes: every task head, batch 1..16,
lengths 1..512 with padding, plain and through ONNX Runtime's optimizer (max abs diff <= 1e-4)."""

from __future__ import annotations

import json

import pytest
import torch
from export_models import HEADS, tiny_folder

from bertkit import model as models
from bertkit.export import OnnxModel, export_onnx
from bertkit.export.graph import TASKS

TOL = 1e-4  # max abs difference, float32 graph vs float32 torch, on outputs of size ~1-10
SHAPES = [(1, 1), (1, 512), (2, 5), (16, 1), (16, 16), (5, 17), (16, 128), (3, 512), (16, 512)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, onnx_ready):
    """task -> (torch model, plain OnnxModel, optimized OnnxModel or None)."""
    root = tmp_path_factory.mktemp("export")
    found = {}
    for task in TASKS:
        source = tiny_folder(root / task, task)
        export_onnx(source, root / f"{task}-onnx", task=task)
        optimized = None
        if task in ("embed", "qa"):  # the optimizer fuses the same encoder for every head
            export_onnx(source, root / f"{task}-opt", task=task, optimize=True)
            optimized = OnnxModel(root / f"{task}-opt")
        net = getattr(models, HEADS[task]).from_pretrained(source).eval()
        found[task] = (net, OnnxModel(root / f"{task}-onnx"), optimized)
    return found


def padded_batch(batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids, a random real length per row (the first row full), segment B in the second half."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (batch, length), generator=g)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    types = ((torch.arange(length)[None, :] >= lengths[:, None] // 2) & mask.bool()).long()
    return ids * mask, mask, types


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("batch,length", SHAPES)
def test_graph_equals_torch(exported, task, batch, length):
    net, plain, optimized = exported[task]
    ids, mask, types = padded_batch(batch, length, seed=batch * 1000 + length)
    with torch.inference_mode():
        expected = net(input_ids=ids, attention_mask=mask, token_type_ids=types)
    for runner in (plain, optimized):
        if runner is None:
            continue
        got = runner(ids, mask, types)
        for name in TASKS[task].outputs:
            want, have = getattr(expected, name), getattr(got, name)
            if task == "classify" or name in ("pooler_output", "seq_relationship_logits"):
                assert have.shape == want.shape
            else:
                assert have.shape[:2] == (batch, length)
            real = mask.bool() if have.dim() >= 2 and have.shape[:2] == (batch, length) else slice(None)
            diff = (have[real] - want[real]).abs().max().item()
            assert diff <= TOL, f"{task} {name} {batch}x{length}: max abs diff {diff:.2e}"
            assert want[real].abs().max() > 0.1  # the outputs are not trivially near zero


def test_graph_has_dynamic_axes_and_hf_names(exported, tmp_path):
    import onnx

    runner = exported["qa"][1]
    graph = onnx.load(str(runner.folder / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["start_logits", "end_logits"]
    for tensor in graph.input:
        dims = tensor.type.tensor_type.shape.dim
        assert all(d.dim_param and not d.dim_value for d in dims), dims  # symbolic batch and sequence
    info = json.loads((runner.folder / "export.json").read_text())
    assert info["task"] == "qa" and info["opset"] == 17 and info["optimized"] is False


def test_padding_is_masked_inside_the_graph(exported):
    """The same rows alone and beside a longer, padded row give the same real-token outputs:
    the mask is part of the graph, not dropped by the trace."""
    runner = exported["embed"][1]
    ids, mask, types = padded_batch(4, 40, seed=7)
    together = runner(ids, mask, types).last_hidden_state
    for row in range(1, 4):
        n = int(mask[row].sum())
        alone = runner(ids[row : row + 1, :n], mask[row : row + 1, :n], types[row : row + 1, :n]).last_hidden_state
        assert (alone[0] - together[row, :n]).abs().max() <= TOL


def test_optimizer_fused_the_encoder(exported):
    info = json.loads((exported["embed"][2].folder / "export.json").read_text())
    assert info["optimized"] is True
    assert info["fusions"].get("SkipLayerNormalization", 0) >= 4  # 2 per layer
    assert info["fusions"].get("BiasGelu", 0) + info["fusions"].get("Gelu", 0) >= 2
