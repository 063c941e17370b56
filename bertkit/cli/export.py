"""`bertkit export onnx --model DIR --out DIR2`: a model folder as an ONNX graph ONNX Runtime serves.

    bertkit export onnx --model out/sst2 --out sst2-onnx --optimize
    bertkit export onnx --model $MODEL --out minilm-int8 --task embed --optimize --int8 --calibration lines.txt

Thin wrapper over bertkit.export.export_onnx; run the result with `bertkit.embed(..., backend="onnx")`
or `bertkit.pipeline(task, model="sst2-onnx", backend="onnx")`.
"""

from __future__ import annotations

import argparse

from bertkit.cli.common import add_overwrite

TASK_NAMES = ("embed", "classify", "ner", "qa", "fill-mask", "pretraining")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("export", help="export a model folder for deployment (ONNX)")
    formats = group.add_subparsers(dest="format", metavar="FORMAT")
    p = formats.add_parser(
        "onnx",
        help="an ONNX graph with dynamic batch and sequence axes, tokenizer and config beside it",
        description="Write model.onnx (inputs input_ids, attention_mask, token_type_ids; the task's outputs "
        "named as in Hugging Face), config.json, the tokenizer and export.json into --out.",
    )
    p.add_argument("--model", required=True, help="model folder (or hub name) to export")
    p.add_argument("--out", required=True, help="output folder (new or empty unless --overwrite)")
    p.add_argument(
        "--task",
        choices=TASK_NAMES,
        default=None,
        help="which head's outputs the graph returns (default: the task of finetune.json, else embed)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX operator set version (17..23)")
    p.add_argument("--optimize", action="store_true", help="apply ONNX Runtime's transformer optimizer")
    p.add_argument(
        "--int8",
        action="store_true",
        help="int8 matmuls: ONNX Runtime's dynamic quantization or bertkit's calibrated recipe, "
        "whichever keeps cosine >= 0.99 to float32 on the calibration text",
    )
    p.add_argument(
        "--calibration",
        help="UTF-8 text file, one text per line, for --int8 (default: prose from Python's own documentation)",
    )
    add_overwrite(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bertkit.export import export_onnx  # lazy: keeps bertkit --help free of torch

    info = export_onnx(
        args.model,
        args.out,
        task=args.task,
        opset=args.opset,
        optimize=args.optimize,
        int8=args.int8,
        calibration=args.calibration,
        overwrite=args.overwrite,
    )
    details = [f"task {info['task']}", f"outputs {', '.join(info['outputs'])}", f"opset {info['opset']}"]
    if info["fusions"]:
        details.append("fused " + ", ".join(f"{op} x{n}" for op, n in info["fusions"].items()))
    if info.get("int8"):
        details.append(f"int8 recipe {info['int8']} (worst cosine {info['int8_worst_cosine'][info['int8']]:.4f})")
    print(f"{args.out}/model.onnx: " + "; ".join(details))
    return 0
