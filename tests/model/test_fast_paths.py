"""The oneDNN projections of CPU inference (bertkit/model/fast_paths.py): on where the CPU runs
PyTorch at its AVX-512 level, the same network as plain nn.Linear on every CPU (an AVX2-only run
is checked in a subprocess with PyTorch and oneDNN held to AVX2), and never on in training. And
Packing's pack / pad, with their gradients, equal to the plain index operations."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

import bertkit.model.fast_paths as fast_paths
from bertkit import BertConfig, BertModel
from bertkit.hardware import cpu_flags, cpu_has_native
from bertkit.model.fast_paths import Packing

TINY = dict(
    vocab_size=60,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=64,
)
needs_onednn = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")),
    reason="this PyTorch build has no oneDNN linear kernels",
)


def tiny(act: str = "gelu", seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    m = BertModel(BertConfig(**TINY, hidden_act=act)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m


def padded_batch(lengths: list[int]) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    T = max(lengths)
    ids = torch.randint(5, TINY["vocab_size"], (len(lengths), T))
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return dict(input_ids=ids * mask, attention_mask=mask)


def both_paths(monkeypatch, model, **kwargs):
    """(oneDNN on, oneDNN off) outputs of one forward at inference; checks the first one used oneDNN."""
    real, calls = fast_paths.packed, []

    def spy(module):
        calls.append(module)
        return real(module)

    monkeypatch.setattr(fast_paths, "packed", spy)
    outs = []
    for on in (True, False):
        monkeypatch.setattr(fast_paths, "ONEDNN", on)
        with torch.inference_mode(), fast_paths.fast_inference():
            outs.append(model(**kwargs))
        assert bool(calls) == on  # every layer's projections: 3 per layer, none with oneDNN off
        calls.clear()
    return outs


def test_onednn_is_on_exactly_where_pytorch_runs_avx512():
    capability = torch.backends.cpu.get_cpu_capability()
    expected = capability.startswith("AVX512") and torch.backends.mkldnn.is_available()
    assert fast_paths.onednn_wanted() == (expected and os.environ.get("BERTKIT_ONEDNN", "1") != "0")
    if "avx512f" not in cpu_flags():
        assert not fast_paths.onednn_wanted()  # AVX2-only CPUs keep plain nn.Linear


@needs_onednn
@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "relu"])
@pytest.mark.parametrize("lengths", [[3, 9, 20], [24, 24], [1]])
def test_onednn_path_equals_plain_linear(monkeypatch, act, lengths):
    model = tiny(act)
    fused, plain = both_paths(monkeypatch, model, **padded_batch(lengths))
    for a, b in ((fused.last_hidden_state, plain.last_hidden_state), (fused.pooler_output, plain.pooler_output)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)  # float32 sums in another order


@needs_onednn
@pytest.mark.parametrize("switch", ["cls_only", "skip_padding"])
def test_onednn_path_equals_plain_linear_with_bertkit_switches(monkeypatch, switch):
    model = tiny()
    fused, plain = both_paths(monkeypatch, model, **padded_batch([5, 17, 11]), **{switch: True})
    torch.testing.assert_close(fused.last_hidden_state, plain.last_hidden_state, atol=2e-5, rtol=1e-5)


@needs_onednn
@pytest.mark.skipif(not cpu_has_native("bf16"), reason="bfloat16 inference is refused on CPUs without native bf16")
def test_onednn_path_equals_plain_linear_in_bfloat16(monkeypatch):
    model = tiny().to(torch.bfloat16)
    fused, plain = both_paths(monkeypatch, model, **padded_batch([4, 12]))
    # bfloat16 keeps 8 bits of mantissa: the two kernels round at different points
    torch.testing.assert_close(fused.last_hidden_state.float(), plain.last_hidden_state.float(), atol=0.1, rtol=0.05)


def test_a_plain_forward_never_takes_the_onednn_path(monkeypatch):
    """Outside bertkit's batching loop a forward is nn.Linear's arithmetic (transformers' own, bit for bit)."""

    def refuse(module):
        raise AssertionError("packed a weight outside fast_inference()")

    monkeypatch.setattr(fast_paths, "ONEDNN", True)
    monkeypatch.setattr(fast_paths, "packed", refuse)
    with torch.inference_mode():
        tiny()(**padded_batch([4, 9]))


@needs_onednn
def test_embed_takes_the_onednn_path_where_it_is_on_and_keeps_its_vectors(monkeypatch, minilm_dir):
    import bertkit

    texts = ["a gripping , funny film .", "no movement , no yuks , not much of anything .", "fine"] * 4
    real, calls = fast_paths.packed, []

    def spy(module):
        calls.append(module)
        return real(module)

    monkeypatch.setattr(fast_paths, "packed", spy)
    vectors = {}
    for on in (True, False):
        monkeypatch.setattr(fast_paths, "ONEDNN", on)
        vectors[on] = bertkit.embed(texts, model=minilm_dir, batch_size=4)
        assert bool(calls) == on
        calls.clear()
    torch.testing.assert_close(vectors[True], vectors[False], atol=1e-5, rtol=1e-5)  # unit vectors


def test_training_and_autograd_never_take_the_onednn_path(monkeypatch):
    def refuse(module):
        raise AssertionError("packed a weight outside inference")

    monkeypatch.setattr(fast_paths, "ONEDNN", True)
    monkeypatch.setattr(fast_paths, "packed", refuse)
    model = tiny()
    with fast_paths.fast_inference():
        model(**padded_batch([4, 9])).last_hidden_state.sum().backward()  # eval, but gradients wanted
        model.train()
        model(**padded_batch([4, 9])).last_hidden_state.sum().backward()
    assert model.encoder.layer[0].intermediate.dense.weight.grad is not None


@needs_onednn
def test_a_changed_weight_is_packed_again(monkeypatch):
    model = tiny()
    batch = padded_batch([6, 8])
    monkeypatch.setattr(fast_paths, "ONEDNN", True)
    with torch.inference_mode(), fast_paths.fast_inference():
        before = model(**batch).last_hidden_state
    with torch.no_grad():
        model.encoder.layer[1].output.dense.weight.mul_(2.0)
    fused, plain = both_paths(monkeypatch, model, **batch)
    assert (fused.last_hidden_state - before).abs().max() > 0.01
    torch.testing.assert_close(fused.last_hidden_state, plain.last_hidden_state, atol=2e-5, rtol=1e-5)


@needs_onednn
@pytest.mark.parametrize("kind", ["fused", "foreach"])
def test_an_optimizer_step_between_evaluations_is_seen(monkeypatch, kind):
    """Fine-tuning evaluates, trains a step, evaluates again: the second evaluation must see the new
    weights. A fused AdamW step leaves the weights' version counters unchanged, so the packed copy
    cannot be trusted on the version alone."""
    model = tiny()
    batch = padded_batch([6, 8])
    monkeypatch.setattr(fast_paths, "ONEDNN", True)
    with torch.inference_mode(), fast_paths.fast_inference():
        before = model(**batch).last_hidden_state
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, **{kind: True})
    model.train()
    model(**batch).last_hidden_state.pow(2).mean().backward()
    opt.step()
    model.eval()
    fused, plain = both_paths(monkeypatch, model, **batch)
    assert (plain.last_hidden_state - before).abs().max() > 0.01  # the step changed the answer
    torch.testing.assert_close(fused.last_hidden_state, plain.last_hidden_state, atol=2e-5, rtol=1e-5)


def test_a_weight_is_checked_once_per_inference_scope(monkeypatch):
    """Within one fast_inference() scope weights cannot change, so packed() compares them once."""
    model = tiny()
    checks = []
    real = fast_paths._fingerprint
    monkeypatch.setattr(fast_paths, "_fingerprint", lambda w: checks.append(w) or real(w))
    monkeypatch.setattr(fast_paths, "ONEDNN", True)
    if not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        pytest.skip("this PyTorch build has no oneDNN linear kernels")
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    with torch.inference_mode(), fast_paths.fast_inference():
        for _ in range(3):
            for m in linears:
                fast_paths.packed(m)
    assert len(checks) == len(linears)
    with torch.inference_mode(), fast_paths.fast_inference():
        fast_paths.packed(linears[0])
    assert len(checks) == len(linears) + 1
    # a scope object given again (a server's frozen model), from two threads: still one check
    frozen, before = object(), len(checks)

    def use() -> None:
        with torch.inference_mode(), fast_paths.fast_inference(frozen):
            fast_paths.packed(linears[0])

    use()
    worker = threading.Thread(target=use)
    worker.start()
    worker.join()
    use()
    assert len(checks) == before + 1


AVX2_RUN = textwrap.dedent(
    """
    import torch
    import bertkit.model.fast_paths as fast_paths
    from tests.model.test_fast_paths import padded_batch, tiny
    assert torch.backends.cpu.get_cpu_capability() == "AVX2", torch.backends.cpu.get_cpu_capability()
    assert not fast_paths.ONEDNN, "oneDNN projections chosen on an AVX2 CPU"
    model, batch = tiny(), padded_batch([3, 15, 22])
    with torch.inference_mode(), fast_paths.fast_inference():
        plain = model(**batch).last_hidden_state
        fast_paths.ONEDNN = True  # the kernels themselves, held to AVX2, still compute the same network
        fused = model(**batch).last_hidden_state
    torch.testing.assert_close(fused, plain, atol=2e-5, rtol=1e-5)
    print("ok")
    """
)


@needs_onednn
@pytest.mark.skipif("avx2" not in cpu_flags(), reason="needs an x86 CPU with at least AVX2")
def test_an_avx2_only_cpu_keeps_plain_linear_and_the_kernels_agree_there():
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", BERTKIT_ONEDNN="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", AVX2_RUN], env=env, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


# ---------------------------------------------------------------------- packing
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pack_and_pad_equal_the_plain_index_ops_and_their_gradients(dtype):
    """Packing.pad adds the real rows into fresh zeros in place: values and gradients must be those of
    index_select / zeros + index_copy."""
    torch.manual_seed(0)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    packing = Packing.of(mask)
    index = mask.flatten().nonzero().squeeze(1)
    padded = torch.randn(3, 7, 5, dtype=dtype, requires_grad=True)
    got = packing.pad(packing.pack(padded) * 2)
    plain = torch.zeros(21, 5, dtype=dtype).index_copy(0, index, padded.reshape(21, 5).index_select(0, index) * 2)
    assert torch.equal(got, plain.view(3, 7, 5))
    weights = torch.randn(3, 7, 5, dtype=dtype)
    (grad,) = torch.autograd.grad((got * weights).sum(), padded)
    assert torch.equal(grad, 2 * weights * mask[..., None].to(dtype))  # padding gets no gradient
    with torch.no_grad():
        assert torch.equal(packing.pad(packing.pack(padded) * 2), got)
