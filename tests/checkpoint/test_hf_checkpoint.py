"""Hugging Face folders: round trips with transformers, prefix handling, load reports, bad files."""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from peers import peer
from safetensors.torch import load_file

import bertkit.model as bk
from bertkit.checkpoint.hf import load_state_into
from bertkit.errors import BertkitError, InputFileError

transformers = peer("transformers")

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def inputs(B=3, T=9):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 99, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 6:] = 0
    types = torch.zeros(B, T, dtype=torch.long)
    types[:, 5:] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def randomized(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


@pytest.mark.parametrize(
    "name,field",
    [
        ("BertForSequenceClassification", "logits"),
        ("BertForPreTraining", "prediction_logits"),
        ("BertForQuestionAnswering", "start_logits"),
        ("BertModel", "pooler_output"),
    ],
)
def test_saved_by_bertkit_loads_in_transformers(tmp_path, name, field):
    ours = randomized(getattr(bk, name)(bk.BertConfig(**TINY, num_labels=2 if "Question" in name else 3)))
    ours.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob("*.tmp"))
    hf, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    x = inputs()
    assert (getattr(hf.eval()(**x), field) - getattr(ours(**x), field)).abs().max() <= 1e-5


@pytest.mark.parametrize("safe", [True, False])
def test_saved_by_transformers_loads_in_bertkit(tmp_path, safe):
    hf = randomized(transformers.BertForPreTraining(transformers.BertConfig(**TINY)))
    hf.save_pretrained(tmp_path, safe_serialization=safe)
    ours, report = bk.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not report.missing and not report.unexpected and not report.mismatched
    x = inputs()
    a, b = hf(**x), ours(**x)
    assert (a.prediction_logits - b.prediction_logits).abs().max() <= 1e-5
    assert (a.seq_relationship_logits - b.seq_relationship_logits).abs().max() <= 1e-5
    assert not ours.training  # loaded models start in eval mode, as in transformers


def test_state_dict_keys_are_hugging_face_keys():
    ours = bk.BertForPreTraining(bk.BertConfig(**TINY))
    theirs = transformers.BertForPreTraining(transformers.BertConfig(**TINY))
    hf_keys = {k for k in theirs.state_dict() if not k.endswith(("position_ids", "token_type_ids", "decoder.bias"))}
    assert set(ours.state_dict()) == hf_keys


def test_base_checkpoint_into_head_reports_new_weights_by_name(minilm_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        model, report = bk.BertForSequenceClassification.from_pretrained(
            minilm_dir, num_labels=4, output_loading_info=True
        )
    assert report.newly_initialized == ["classifier.bias", "classifier.weight"]
    assert not report.unexpected and not report.mismatched
    assert "classifier.weight" in caplog.text and "newly initialised" in caplog.text
    raw = load_file(str(Path(minilm_dir) / "model.safetensors"))
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, raw["embeddings.word_embeddings.weight"])
    assert torch.equal(
        model.state_dict()["bert.encoder.layer.3.attention.self.key.weight"],
        raw["encoder.layer.3.attention.self.key.weight"],
    )
    assert model.classifier.weight.shape == (4, 384)


def test_head_checkpoint_into_base_model_strips_prefix_and_reports_unused(tmp_path):
    head = randomized(bk.BertForSequenceClassification(bk.BertConfig(**TINY)))
    head.save_pretrained(tmp_path)
    base, report = bk.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert report.unexpected == ["classifier.bias", "classifier.weight"]
    assert not report.missing
    x = inputs()
    assert torch.equal(base(**x).pooler_output, head.bert(**x).pooler_output)


def test_mismatched_shapes_stop_the_load_unless_asked(tmp_path):
    bk.BertForSequenceClassification(bk.BertConfig(**TINY, num_labels=3)).save_pretrained(tmp_path)
    with pytest.raises(BertkitError, match=r"classifier\.weight \(checkpoint \[3, 32\] vs model \[5, 32\]\)"):
        bk.BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, report = bk.BertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert [m[0] for m in report.mismatched] == ["classifier.bias", "classifier.weight"]
    assert model.classifier.weight.shape == (5, 32)


def test_old_names_and_aliases_are_understood(tmp_path):
    ref = randomized(bk.BertForMaskedLM(bk.BertConfig(**TINY)))
    state = {}
    for k, v in ref.state_dict().items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[k.replace("cls.predictions.bias", "cls.predictions.decoder.bias")] = v.clone()
    state["bert.embeddings.position_ids"] = torch.arange(64)[None]
    model = bk.BertForMaskedLM(bk.BertConfig(**TINY))
    report = load_state_into(model, state)
    assert not report.missing and not report.unexpected
    x = inputs()
    assert torch.equal(model.eval()(**x).logits, ref(**x).logits)


def test_missing_config_is_a_clear_error(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(InputFileError, match=r"config\.json: missing"):
        bk.BertModel.from_pretrained(tmp_path)


def test_inconsistent_config_is_a_clear_error(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_attention_heads"] = 5
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InputFileError, match=r"config\.json: .*hidden_size 32 is not divisible by num_attention_heads 5"
    ):
        bk.BertModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        bk.BertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage_header"])
def test_damaged_safetensors_is_a_clear_error(tmp_path, damage):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\xff" * 16 + data[16:])
    with pytest.raises(InputFileError, match="corrupt or truncated safetensors"):
        bk.BertModel.from_pretrained(tmp_path)


class _Payload:
    """Pickles into a call of open(marker, 'w'): loading it unsafely would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save(
        {"embeddings.word_embeddings.weight": torch.zeros(99, 32), "x": _Payload(marker)},
        tmp_path / "pytorch_model.bin",
    )
    with pytest.raises(InputFileError, match="refused: the pickle holds objects other than tensors"):
        bk.BertModel.from_pretrained(tmp_path)
    assert not marker.exists()
    # a bare (non-zip) pickle stream as well
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump(_Payload(marker), f, protocol=2)
    with pytest.raises(InputFileError):
        bk.BertModel.from_pretrained(tmp_path)
    assert not marker.exists()


def test_folder_without_weights_and_missing_folder(tmp_path):
    bk.BertConfig(**TINY).save_pretrained(tmp_path)
    with pytest.raises(InputFileError, match="no weights found"):
        bk.BertModel.from_pretrained(tmp_path)
    with pytest.raises(InputFileError, match="no such model folder"):
        bk.BertModel.from_pretrained(tmp_path / "does not exist")


def test_hub_name_offline_is_a_clear_error(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        BertkitError, match="no-such-user/no-such-bert: .* fetching it from the Hugging Face hub failed"
    ):
        bk.BertModel.from_pretrained("no-such-user/no-such-bert")


def test_dtype_and_config_overrides(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    model = bk.BertModel.from_pretrained(tmp_path, dtype=torch.bfloat16, hidden_dropout_prob=0.2)
    assert model.dtype == torch.bfloat16 and model.config.hidden_dropout_prob == 0.2
    assert bk.BertModel.from_pretrained(tmp_path, torch_dtype="float16").dtype == torch.float16
    with pytest.raises(BertkitError, match="dtype 'int3'"):
        bk.BertModel.from_pretrained(tmp_path, dtype="int3")
    with pytest.raises(BertkitError, match="no field"):
        bk.BertModel.from_pretrained(tmp_path, hidden_sise=3)


@pytest.mark.parametrize("layout", ["safetensors", "pytorch_model.bin"])
def test_hub_name_downloads_through_huggingface_hub(tmp_path, monkeypatch, layout):
    """A hub name goes to huggingface_hub.snapshot_download (replaced here by a local copy: offline)."""
    hub = pytest.importorskip("huggingface_hub")
    ref = randomized(bk.BertModel(bk.BertConfig(**TINY)))
    repo = tmp_path / "hub" / "someone--tiny-bert"
    if layout == "safetensors":
        ref.save_pretrained(repo)
    else:  # an older repository: weights only as a pickle, read with weights_only=True
        ref.config.save_pretrained(repo)
        torch.save(ref.state_dict(), repo / "pytorch_model.bin")
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, list(allow_patterns)))
        local = tmp_path / "cache" / str(len(calls))
        local.mkdir(parents=True)
        for f in repo.iterdir():  # what the hub would send for these patterns
            if any(Path(f.name).match(p) for p in allow_patterns):
                (local / f.name).write_bytes(f.read_bytes())
        return str(local)

    monkeypatch.setattr(hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.chdir(tmp_path)  # no local folder of that name
    model = bk.BertModel.from_pretrained("someone/tiny-bert")
    assert calls[0][0] == "someone/tiny-bert" and "*.safetensors" in calls[0][1]
    assert len(calls) == (1 if layout == "safetensors" else 2)  # falls back to pytorch_model.bin
    x = inputs()
    assert torch.equal(model(**x).last_hidden_state, ref(**x).last_hidden_state)


def test_hub_name_without_huggingface_hub_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputFileError, match=r"pip install .bertkit\[hub\]."):
        bk.BertModel.from_pretrained("bert-base-uncased")


OLD_FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "bertkit_v0_1_tiny"


def test_folders_saved_before_the_checkpoint_refactor_load_unchanged():
    """tests/fixtures/bertkit_v0_1_tiny was saved by bertkit at ae581db, before model/pretrained.py."""
    expected = np.load(OLD_FOLDER / "expected_outputs.npz")
    model, report = bk.BertForSequenceClassification.from_pretrained(OLD_FOLDER, output_loading_info=True)
    assert not report.missing and not report.unexpected and not report.mismatched
    assert model.config.id2label == {0: "neg", 1: "pos", 2: "neutral"}
    with torch.no_grad():
        logits = model(
            torch.from_numpy(expected["input_ids"]), attention_mask=torch.from_numpy(expected["attention_mask"])
        ).logits
    # |a - b| <= 1e-6 + 1e-5 * |b|: the same float32 arithmetic, up to summation order across CPUs
    np.testing.assert_allclose(logits.numpy(), expected["logits"], rtol=1e-5, atol=1e-6)


def test_safe_serialization_false_writes_pytorch_model_bin(tmp_path):
    ours = randomized(bk.BertForMaskedLM(bk.BertConfig(**TINY)))
    ours.save_pretrained(tmp_path)
    ours.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").is_file() and not (tmp_path / "model.safetensors").exists()
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)  # plain tensors only
    assert "cls.predictions.decoder.weight" not in state  # the tied copy is stored once
    x = inputs()
    again = bk.BertForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(again(**x).logits, ours(**x).logits)
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    assert (hf(**x).logits - ours(**x).logits).abs().max() <= 1e-5
    ours.save_pretrained(tmp_path)  # back to safetensors: the stale pickle goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_saved_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"config.json": 0o644, "model.safetensors": 0o644}


def test_from_pretrained_passes_the_hub_options(tmp_path, monkeypatch):
    import bertkit.model.pretrained as pretrained

    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path / "snap")
    seen = {}

    def resolve_folder(name, **options):
        seen.update(options, name=name)
        return tmp_path / "snap"

    monkeypatch.setattr(pretrained, "resolve_folder", resolve_folder)
    model = bk.BertModel.from_pretrained("someone/tiny", revision="main", token=False, local_files_only=True)
    assert model.config.hidden_size == 32 and model.name_or_path == str(tmp_path / "snap")
    assert seen == dict(name="someone/tiny", revision="main", token=False, cache_dir=None, local_files_only=True)


def test_push_to_hub_saves_and_uploads_through_a_stubbed_api(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            uploaded["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            uploaded["repo"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, revision=None, commit_message=None):
            uploaded["files"] = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            uploaded["message"] = commit_message
            return types.SimpleNamespace(commit_url=f"https://hub.example/{repo_id}/commit/1")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=FakeApi))
    ours = randomized(bk.BertForSequenceClassification(bk.BertConfig(**TINY, num_labels=3)))
    url = ours.push_to_hub("me/tiny", token="t", private=True, commit_message="first")
    assert url == "https://hub.example/me/tiny/commit/1"
    assert uploaded["repo"] == ("me/tiny", True, True) and uploaded["token"] == "t" and uploaded["message"] == "first"
    assert set(uploaded["files"]) == {"config.json", "model.safetensors"}
    for name, data in uploaded["files"].items():  # what was uploaded is a loadable folder
        (tmp_path / name).write_bytes(data)
    x = inputs()
    assert torch.equal(bk.BertForSequenceClassification.from_pretrained(tmp_path)(**x).logits, ours(**x).logits)


def test_dtype_spellings_and_device(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    assert bk.BertModel.from_pretrained(tmp_path, dtype="bf16").dtype == torch.bfloat16
    assert bk.BertModel.from_pretrained(tmp_path, dtype="float16").dtype == torch.float16
    assert bk.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == torch.float32
    assert bk.BertModel.from_pretrained(tmp_path, device="cpu").device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(BertkitError) as info:
            bk.BertModel.from_pretrained(tmp_path, device="cuda")
        assert "\n" not in str(info.value) and "cuda" in str(info.value).lower()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_float16_on_the_gpu(tmp_path):
    ours = randomized(bk.BertModel(bk.BertConfig(**TINY)))
    ours.save_pretrained(tmp_path)
    gpu = bk.BertModel.from_pretrained(tmp_path, dtype="float16", device="cuda")
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float16
    x = inputs()
    with torch.no_grad():
        got = gpu(**{k: v.cuda() for k, v in x.items()}).last_hidden_state.float().cpu()
    # |a - b| <= 1e-2 + 1e-2 * |b|: float16 keeps ~3 decimal digits through two layers
    torch.testing.assert_close(got, ours(**x).last_hidden_state, rtol=1e-2, atol=1e-2)


def test_more_layers_than_the_checkpoint_is_refused_before_building(tmp_path):
    bk.BertModel(bk.BertConfig(**TINY)).save_pretrained(tmp_path)
    with pytest.raises(BertkitError, match="asks for 500 encoder layers, the checkpoint has 2"):
        bk.BertModel.from_pretrained(tmp_path, num_hidden_layers=500)
    model, report = bk.BertModel.from_pretrained(
        tmp_path, num_hidden_layers=3, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert any(name.startswith("encoder.layer.2.") for name in report.missing)
    fewer, report = bk.BertModel.from_pretrained(tmp_path, num_hidden_layers=1, output_loading_info=True)
    assert any(name.startswith("encoder.layer.1.") for name in report.unexpected)
