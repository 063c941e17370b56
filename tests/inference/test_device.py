"""Where inference runs and in which arithmetic: bertkit.hardware's rules through embed, fill-mask, pipelines.

The CPU side runs everywhere; the CUDA side runs where a GPU is visible and says why it skips
otherwise (bench/gpu_check.sh covers the rest of the GPU check).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import bertkit
from bertkit.errors import BertkitError
from bertkit.hardware import cpu_has_native
from bertkit.inference.runtime import check_dtype, dtype_kind, prepare, target_device

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"
TEXTS = ["I love Paris", "Sam hated the movie because the ending was bad", "a"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch on this host")


def test_dtype_spellings_and_refusals():
    for spelling, kind in [
        (None, "float32"),
        ("fp32", "float32"),
        (torch.float32, "float32"),
        ("bf16", "bfloat16"),
        (torch.bfloat16, "bfloat16"),
        ("half", "float16"),
        (torch.float16, "float16"),
        ("int8", "int8"),
        (torch.qint8, "int8"),
    ]:
        assert dtype_kind(spelling) == kind, spelling
    with pytest.raises(BertkitError, match="dtype 'int4' is not supported"):
        dtype_kind("int4")
    with pytest.raises(BertkitError, match="dtype int8 runs on the CPU only"):
        check_dtype("int8", torch.device("cuda", 0))  # checked before any GPU is touched
    if not cpu_has_native("fp16"):
        with pytest.raises(BertkitError, match="dtype fp16: this CPU .* has no native float16"):
            check_dtype("float16", torch.device("cpu"))


def test_default_device_is_where_a_given_model_is(minilm_dir):
    model = bertkit.BertModel.from_pretrained(minilm_dir)
    assert target_device(model) == torch.device("cpu")
    assert prepare(model, None, device="cpu") is model  # nothing to convert or move
    if not torch.cuda.is_available():
        assert target_device("some/folder") == torch.device("cpu")  # "auto" on a CPU-only host
        with pytest.raises(BertkitError, match="no CUDA GPU"):
            bertkit.embed(TEXTS, model=model, device="cuda")
        with pytest.raises(BertkitError, match="no CUDA GPU"):
            bertkit.fill_mask("paris is a [MASK] .", model=FIXTURE, device="cuda:0")


@needs_cuda
def test_cuda_matches_the_cpu(minilm_dir):
    model = bertkit.BertModel.from_pretrained(minilm_dir)
    cpu = bertkit.embed(TEXTS, model=model, normalize=False)
    gpu = bertkit.embed(TEXTS, model=model, normalize=False, device="cuda")
    assert gpu.device.type == "cpu" and next(model.parameters()).device.type == "cpu"  # the user's model stays
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
    for dtype in ("float16", "bfloat16"):
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            continue
        half = bertkit.embed(TEXTS, model=model, device="cuda", dtype=dtype)
        assert F.cosine_similarity(half, bertkit.embed(TEXTS, model=model)).min() >= 0.999, dtype
    with pytest.raises(BertkitError, match="dtype int8 runs on the CPU only"):
        bertkit.embed(TEXTS, model=model, device="cuda", dtype="int8")
    gpu_masks = bertkit.fill_mask("paris is a beautiful [MASK] .", model=FIXTURE, device="cuda", top_k=3)
    cpu_masks = bertkit.fill_mask("paris is a beautiful [MASK] .", model=FIXTURE, top_k=3)
    assert [m["token"] for m in gpu_masks] == [m["token"] for m in cpu_masks]
    assert [m["score"] for m in gpu_masks] == pytest.approx([m["score"] for m in cpu_masks], abs=1e-5, rel=1e-4)


@needs_cuda
def test_pipelines_run_on_cuda(minilm_dir):
    pipe = bertkit.pipeline("embed", model=minilm_dir, device="cuda")
    assert pipe.device.type == "cuda" and next(pipe.model.parameters()).device.type == "cuda"
    cpu = bertkit.pipeline("embed", model=minilm_dir, device="cpu")
    for a, b in zip(pipe(TEXTS), cpu(TEXTS)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_a_folder_is_loaded_once_and_again_when_rewritten(tmp_path):
    import shutil

    from bertkit.inference.runtime import load

    folder = tmp_path / "model"
    shutil.copytree(FIXTURE, folder)
    first, _ = load(folder)
    assert load(folder)[0] is first  # kept loaded
    (folder / "bert_config.json").touch()
    assert load(folder)[0] is not first  # the folder changed: read again


def test_the_onnx_backend_runs_on_the_cpu_and_says_so(monkeypatch, tmp_path):
    """backend="onnx" is onnxruntime's CPU provider: "auto" and "cpu" mean the CPU, a GPU asked
    for is refused in one line (never a silent CPU run), and hub options are refused (a local
    exported folder is read). Checked before any graph is opened, so no export is needed here."""
    from bertkit.inference import runtime

    assert runtime.check_onnx_options(None, {}) == torch.device("cpu")
    assert runtime.check_onnx_options("auto", {}) == torch.device("cpu")
    assert runtime.check_onnx_options("cpu", {}) == torch.device("cpu")
    monkeypatch.setattr(runtime, "resolve_device", lambda device, flag="device": torch.device("cuda", 0))
    with pytest.raises(BertkitError, match=r"backend='onnx' runs on the CPU .*drop device='cuda'"):
        bertkit.embed(TEXTS, model=tmp_path, backend="onnx", device="cuda")
    with pytest.raises(BertkitError, match=r"backend='onnx' runs on the CPU"):
        bertkit.fill_mask("a [MASK] .", model=tmp_path, backend="onnx", device="cuda:0")
    with pytest.raises(BertkitError, match=r"backend='onnx' runs on the CPU"):
        bertkit.pipeline("classify", model=tmp_path, backend="onnx", device="cuda")
    with pytest.raises(BertkitError, match=r"reads a local folder made by `bertkit export onnx`; drop revision"):
        bertkit.embed(TEXTS, model=tmp_path, backend="onnx", revision="main")
    with pytest.raises(BertkitError, match=r"drop local_files_only"):
        bertkit.pipeline("classify", model=tmp_path, backend="onnx", local_files_only=True)
