"""bertkit.hardware: the device rule and the precision rule, on this machine and on the other kind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bertkit import hardware
from bertkit.errors import BertkitError
from bertkit.settings import PROJECT_ROOT


def test_auto_picks_cuda_then_mps_then_cpu():
    device = hardware.resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif hardware.mps_available():
        assert device.type == "mps"
    else:
        assert device == torch.device("cpu")
    assert hardware.resolve_device(None) == device
    assert hardware.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot be observed")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1", 0, "CUDA"])
def test_cuda_where_there_is_none_is_one_line(spec):
    with pytest.raises(BertkitError, match="no CUDA GPU is visible") as err:
        hardware.resolve_device(spec)
    assert "\n" not in str(err.value) and "--device cpu" in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_indexes_are_checked():
    assert hardware.resolve_device("cuda").type == "cuda"
    with pytest.raises(BertkitError, match="CUDA device"):
        hardware.resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("spec", ["gpu0", "tpu", "cuda:x"])
def test_unknown_devices_are_refused(spec):
    with pytest.raises(BertkitError, match="--device"):
        hardware.resolve_device(spec)


@pytest.mark.parametrize(
    "name, canonical",
    [("fp32", "fp32"), ("float32", "fp32"), (None, "fp32"), ("bfloat16", "bf16"), (torch.float16, "fp16")],
)
def test_precision_spellings(name, canonical):
    assert hardware.normalize_precision(name) == canonical


def test_unknown_precision_is_refused():
    with pytest.raises(BertkitError, match="fp32, bf16, fp16"):
        hardware.normalize_precision("fp8")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_the_cpu_runs_only_where_native(monkeypatch, native):
    """Both kinds of CI machine, on this one: the answer follows the capability probe."""
    monkeypatch.setattr(hardware, "cpu_has_native", lambda precision="bf16": native)
    if native:
        assert hardware.resolve_precision("bf16", "cpu") == "bf16"
    else:
        with pytest.raises(BertkitError, match="no native bfloat16") as err:
            hardware.resolve_precision("bf16", "cpu")
        assert "\n" not in str(err.value)


def test_fp16_training_on_the_cpu_is_refused():
    with pytest.raises(BertkitError, match="float16 training needs a GPU"):
        hardware.resolve_precision("fp16", "cpu")


def test_the_probe_matches_the_kernel_flags():
    flags = hardware.cpu_flags()
    if flags:  # Linux: /proc/cpuinfo is there
        assert hardware.cpu_has_native("bf16") == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_autocast_is_a_no_op_for_fp32_and_casts_matmuls_for_bf16():
    a = torch.randn(4, 4)
    with hardware.autocast("cpu", "fp32"):
        assert (a @ a).dtype == torch.float32
    with hardware.autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16


def test_a_grad_scaler_only_for_fp16():
    assert hardware.grad_scaler("cpu", "fp32") is None
    assert hardware.grad_scaler("cpu", "bf16") is None


def test_describe_names_the_cpu_and_its_flags():
    line = hardware.describe("cpu")
    assert hardware.cpu_name() in line and "flags:" in line and "torch" in line


@pytest.mark.parametrize("dtype, canonical", [(torch.float32, "fp32"), (torch.bfloat16, "bf16"), (torch.half, "fp16")])
def test_torch_dtypes_are_read_by_name(dtype, canonical):
    """bertkit.precision never imports torch; a dtype's name is enough."""
    assert hardware.normalize_precision(dtype) == canonical


def test_other_torch_dtypes_are_refused():
    with pytest.raises(BertkitError, match="torch.int8 is not one of fp32, bf16, fp16"):
        hardware.normalize_precision(torch.int8)


def test_the_avx2_host_simulation_answers_as_an_avx2_cpu():
    """tools/avx2_host (README): on any x86 host, bertkit then sees no AVX-512, no native bf16 and
    no VNNI, PyTorch runs its AVX2 kernels, and a process that never asks (`--help`) loads no torch."""
    if "avx2" not in hardware.cpu_flags():
        pytest.skip("not an x86 CPU with AVX2")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "tools" / "avx2_host"),
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    }
    code = (
        "import sys, bertkit.cli; light = 'torch' not in sys.modules\n"
        "from bertkit import hardware; from bertkit.model.quantize import weight_qmax; import torch\n"
        "print(light, hardware.cpu_has_native('bf16'), sorted(f for f in hardware.cpu_flags() if 'avx' in f),"
        " weight_qmax(), torch.backends.cpu.get_cpu_capability())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False", "['avx',", "'avx2']", "63", "AVX2"]
