"""Two int8 versions of an exported graph, and the choice between them by cosine to float32.

- "onnxruntime": ONNX Runtime's own dynamic quantization (`quantize_dynamic`, int8 weights, one
  activation scale per tensor): the fastest graph, but BERT's outlier channels can push some
  sentences well below cosine 0.99.
- "bertkit": the recipe of bertkit.model.quantize (what `embed(dtype="int8")` runs), written in
  standard ONNX operators: SmoothQuant scales calibrated on real text, per-channel 7-bit weights,
  each token mapped onto its own 8-bit grid, the layers that lose most kept float.

`choose_int8` builds both, measures each against the float32 graph on calibration text, and keeps
the first of ("onnxruntime", "bertkit") whose worst cosine reaches the bar.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from bertkit.errors import BertkitError
from bertkit.export.graph import quiet_exporters
from bertkit.log import get_logger
from bertkit.model.quantize import PORTABLE_QMAX, Int8Linear, float_layers, quantize_int8

logger = get_logger(__name__)

COSINE_BAR = 0.99
RECIPES = ("onnxruntime", "bertkit")


@dataclass
class Int8Choice:
    recipe: str  # one of RECIPES
    path: Path
    worst_cosine: dict[str, float]  # per recipe tried
    float_layers: list[str]  # Linear layers the bertkit recipe kept float ([] for onnxruntime)
    fusions: dict[str, int]  # what ONNX Runtime's optimizer fused in this graph ({} unoptimized)


def ort_dynamic(src: Path, dst: Path) -> None:
    import onnx  # lazy: optional extra [onnx]
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: optional extra [onnx]

    with quiet_exporters(root=True):
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # types behind ORT's fused ops
        )


def bertkit_recipe(src: Path, dst: Path, model: nn.Module, calibration: list[dict], opset: int) -> list[str]:
    """Rewrite every quantized Linear's MatMul of the float graph `src` into the int8 recipe; returns
    the names of the Linear layers left float (too sensitive, or not found in the graph)."""
    import onnx  # lazy: optional extra [onnx]

    # 7-bit weights: the graph may run on a CPU without VNNI, where 8 x 8 bits saturate
    quantized = quantize_int8(copy.deepcopy(model).float().eval(), calibration=calibration, weight_qmax=PORTABLE_QMAX)
    layers = {f"model.{name}.bias": m for name, m in quantized.named_modules() if isinstance(m, Int8Linear)}
    graph = onnx.load(str(src))
    producers = {out: node for node in graph.graph.node for out in node.output}
    weights = {init.name for init in graph.graph.initializer}
    rewritten: set[str] = set()
    new_nodes, replaced = [], {}
    for node in graph.graph.node:
        bias = next((name for name in node.input if name in layers), None) if node.op_type == "Add" else None
        other = next((name for name in node.input if name != bias), "")
        matmul = producers.get(other)
        if bias is None or matmul is None or matmul.op_type != "MatMul" or matmul.input[1] not in weights:
            continue
        prefix = bias.removesuffix(".bias").removeprefix("model.")
        replaced[id(matmul)] = _int8_matmul(graph, matmul, layers[bias], prefix, opset)
        rewritten.add(bias)
    for node in graph.graph.node:
        new_nodes.extend(replaced.get(id(node), [node]))
    del graph.graph.node[:]
    graph.graph.node.extend(new_nodes)
    _drop_unused_initializers(graph)
    onnx.save(graph, str(dst))
    missing = [b.removeprefix("model.").removesuffix(".bias") for b in layers if b not in rewritten]
    return sorted(float_layers(quantized) + missing)


def _int8_matmul(graph: Any, matmul: Any, layer: Any, prefix: str, opset: int) -> list[Any]:
    """Nodes computing x W^T (no bias) as Int8Linear does: y = half * (s_x s_w) q(z) Wq^T + mid * W@1,
    z = (x / smooth - mid) / half, with mid and half the middle and half-range of each token's row."""
    from onnx import TensorProto, helper, numpy_helper  # lazy: optional extra [onnx]

    qweight, scale = layer.weight_int8()
    x, y = matmul.input[0], matmul.output[0]
    p = prefix.replace(".", "_") + "_int8"
    consts = {
        f"{p}_wq": qweight.t().contiguous().numpy(),  # [in, out] int8
        f"{p}_wscale": scale.float().numpy(),
        f"{p}_rowsum": layer.row_sums_and_bias[0].float().numpy(),
        f"{p}_half": np.array(0.5, dtype=np.float32),
        f"{p}_eps": np.array(1e-8, dtype=np.float32),
    }
    if layer.inv_smooth is not None:
        consts[f"{p}_inv_smooth"] = layer.inv_smooth.float().numpy()
    graph.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    nodes = []
    if layer.inv_smooth is not None:
        nodes.append(helper.make_node("Mul", [x, f"{p}_inv_smooth"], [f"{p}_xs"]))
        x = f"{p}_xs"
    nodes += _reduce("ReduceMin", x, f"{p}_lo", p, opset) + _reduce("ReduceMax", x, f"{p}_hi", p, opset)
    nodes += [
        helper.make_node("Add", [f"{p}_hi", f"{p}_lo"], [f"{p}_sum"]),
        helper.make_node("Mul", [f"{p}_sum", f"{p}_half"], [f"{p}_mid"]),
        helper.make_node("Sub", [f"{p}_hi", f"{p}_lo"], [f"{p}_span"]),
        helper.make_node("Mul", [f"{p}_span", f"{p}_half"], [f"{p}_range"]),
        helper.make_node("Max", [f"{p}_range", f"{p}_eps"], [f"{p}_halfrange"]),
        helper.make_node("Sub", [x, f"{p}_mid"], [f"{p}_centred"]),
        helper.make_node("Div", [f"{p}_centred", f"{p}_halfrange"], [f"{p}_z"]),
        helper.make_node("DynamicQuantizeLinear", [f"{p}_z"], [f"{p}_zq", f"{p}_zscale", f"{p}_zzero"]),
        helper.make_node("MatMulInteger", [f"{p}_zq", f"{p}_wq", f"{p}_zzero"], [f"{p}_acc"]),
        helper.make_node("Cast", [f"{p}_acc"], [f"{p}_accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}_zscale", f"{p}_wscale"], [f"{p}_scale"]),
        helper.make_node("Mul", [f"{p}_accf", f"{p}_scale"], [f"{p}_wz"]),
        helper.make_node("Mul", [f"{p}_wz", f"{p}_halfrange"], [f"{p}_scaled"]),
        helper.make_node("Mul", [f"{p}_mid", f"{p}_rowsum"], [f"{p}_shift"]),
        helper.make_node("Add", [f"{p}_scaled", f"{p}_shift"], [y]),
    ]
    return nodes


def _reduce(op: str, x: str, out: str, p: str, opset: int) -> list[Any]:
    """A keepdims reduction over the last axis (axes: an attribute before opset 18, an input since)."""
    from onnx import helper, numpy_helper  # lazy: optional extra [onnx]

    if opset < 18:
        return [helper.make_node(op, [x], [out], axes=[-1], keepdims=1)]
    axes = f"{p}_axes"
    return [
        helper.make_node("Constant", [], [axes], value=numpy_helper.from_array(np.array([-1], dtype=np.int64))),
        helper.make_node(op, [x, axes], [out], keepdims=1, name=f"{out}_{op}"),
    ]


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.graph.node for name in node.input} | {o.name for o in graph.graph.output}
    keep = [init for init in graph.graph.initializer if init.name in used]
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(keep)


def worst_cosine(reference: Path, candidate: Path, batches: Sequence[dict], task: str) -> float:
    """The lowest per-text cosine between the two graphs' first outputs (mean-pooled for embed)."""
    import onnxruntime as ort  # lazy: optional extra [onnx]

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (reference, candidate)]
    worst = 1.0
    for batch in batches:
        feed = {k: batch[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")}
        mask = feed["attention_mask"].astype(np.float32)
        a, b = (_per_text(s.run(None, feed)[0], mask, task) for s in sessions)
        cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
        worst = min(worst, float(cos.min()))
    return worst


def _per_text(out: np.ndarray, mask: np.ndarray, task: str) -> np.ndarray:
    """One vector per text: mean over real tokens for embed, the real tokens' outputs flattened else."""
    if task == "embed":
        return (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True).clip(min=1)
    if out.ndim == 2 and out.shape[1] != mask.shape[1]:  # [B, labels]
        return out
    real = mask[..., None] if out.ndim == 3 else mask
    return (out * real).reshape(out.shape[0], -1)


def choose_int8(
    float_graph: Path,
    work: Path,
    model: nn.Module,
    calibration: list[dict],
    task: str,
    opset: int,
    optimize: Callable[[Path, Path], dict[str, int]] | None = None,
) -> Int8Choice:
    """Build each recipe's graph under `work` (optimized by `optimize(src, dst)` when given), keep the
    first whose worst calibration cosine to `float_graph` reaches COSINE_BAR."""
    cosines: dict[str, float] = {}
    for recipe in RECIPES:
        path, float_layers, fusions = work / f"{recipe}.onnx", [], {}
        if recipe == "onnxruntime":  # ONNX Runtime's order: optimize the float graph, then quantize
            source = float_graph
            if optimize is not None:
                source = work / "float-optimized.onnx"
                fusions = optimize(float_graph, source)
            ort_dynamic(source, path)
        else:  # the rewrite finds each Linear by its bias, which the optimizer would fuse away: optimize after
            plain = work / "bertkit-plain.onnx"
            float_layers = bertkit_recipe(float_graph, plain, model, calibration, opset)
            if optimize is not None:
                fusions = optimize(plain, path)
            else:
                plain.rename(path)
        cosines[recipe] = round(worst_cosine(float_graph, path, calibration, task), 5)
        logger.info("int8 (%s): worst cosine to float32 on the calibration text %.4f", recipe, cosines[recipe])
        if cosines[recipe] >= COSINE_BAR:
            return Int8Choice(recipe, path, cosines, float_layers, fusions)
    raise BertkitError(
        f"--int8: no recipe keeps cosine >= {COSINE_BAR} to float32 on the calibration text "
        f"({', '.join(f'{k} {v:.4f}' for k, v in cosines.items())}); export without --int8"
    )
