"""backend="onnx": embed and the pipelines give the torch backend's answers; misuse is one clear error."""

from __future__ import annotations

import shutil

import pytest
from export_models import minilm_vocab_folder, tiny_folder

import bertkit
from bertkit.errors import BertkitError, InputFileError
from bertkit.export import OnnxModel, export_onnx

TOL = 1e-4


TEXTS = ["a gripping, funny film", "Paris is a beautiful city.", "no", "the river flows past the old town " * 12]


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_embed_backends_agree(tmp_path, minilm_dir, onnx_ready, pooling):
    source = minilm_vocab_folder(tmp_path / "m", "embed", minilm_dir)
    export_onnx(source, tmp_path / "onnx")
    expected = bertkit.embed(TEXTS, model=source, pooling=pooling, batch_size=2)
    got = bertkit.embed(TEXTS, model=tmp_path / "onnx", backend="onnx", pooling=pooling, batch_size=2)
    assert got.shape == expected.shape == (4, 32)
    assert (got - expected).abs().max() <= TOL
    one = bertkit.embed(TEXTS[1], model=tmp_path / "onnx", backend="onnx", pooling=pooling)
    assert (one - expected[1]).abs().max() <= TOL


def test_a_sentence_transformers_recipe_travels_with_the_graph(tmp_path, minilm_dir, onnx_ready):
    """The source folder's pooling (cls) and Normalize module, in the old 0_Transformer layout, reach
    the exported folder: embed with no options pools and normalizes as it does on the source."""
    import json

    source = tmp_path / "st"
    minilm_vocab_folder(source / "0_Transformer", "embed", minilm_dir)
    (source / "1_Pooling").mkdir()
    (source / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (source / "2_Normalize").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (source / "modules.json").write_text(json.dumps(modules))
    export_onnx(source / "0_Transformer", tmp_path / "onnx")
    expected = bertkit.embed(TEXTS, model=source)
    got = bertkit.embed(TEXTS, model=tmp_path / "onnx", backend="onnx")
    assert abs(float(expected[0].norm()) - 1.0) < 1e-5  # the recipe really normalizes
    assert (got - expected).abs().max() <= TOL
    plain = bertkit.embed(TEXTS, model=source / "0_Transformer", pooling="cls", normalize=True)
    assert (plain - expected).abs().max() <= TOL  # and really pools the [CLS] vector


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_pipelines_backends_agree(tmp_path, minilm_dir, onnx_ready, task):
    source = minilm_vocab_folder(tmp_path / "m", task, minilm_dir)
    export_onnx(source, tmp_path / "onnx", task=task)
    if task == "qa":
        inputs = [
            {"question": "where does the river flow?", "context": TEXTS[3]},
            {"question": "who?", "context": TEXTS[1]},
        ]
    else:
        inputs = TEXTS
    torch_answers = bertkit.pipeline(task, model=source)(inputs)
    onnx_answers = bertkit.pipeline(task, model=tmp_path / "onnx", backend="onnx")(inputs)
    assert len(onnx_answers) == len(inputs)
    if task == "classify":
        for a, b in zip(torch_answers, onnx_answers):
            assert a["label"] == b["label"]
            assert all(abs(a["probabilities"][k] - b["probabilities"][k]) <= TOL for k in a["probabilities"])
    elif task == "qa":
        for a, b in zip(torch_answers, onnx_answers):
            assert (a["start"], a["end"]) == (b["start"], b["end"]) and abs(a["score"] - b["score"]) <= TOL
    else:
        assert sum(len(row) for row in onnx_answers) > 5  # the random tagger does tag entities
        assert [[(e["type"], e["start"], e["end"]) for e in row] for row in torch_answers] == [
            [(e["type"], e["start"], e["end"]) for e in row] for row in onnx_answers
        ]


def test_fill_mask_backends_agree(tmp_path, minilm_dir, onnx_ready):
    source = minilm_vocab_folder(tmp_path / "m", "fill-mask", minilm_dir)
    export_onnx(source, tmp_path / "onnx", task="fill-mask")
    texts = ["paris is a beautiful [MASK].", "the [MASK] sat on the [MASK]."]
    expected = bertkit.pipeline("fill-mask", model=source)(texts, top_k=3)
    got = bertkit.pipeline("fill-mask", model=tmp_path / "onnx", backend="onnx")(texts, top_k=3)
    assert [c["token"] for c in got[0]] == [c["token"] for c in expected[0]]
    assert [[c["token"] for c in m] for m in got[1]] == [[c["token"] for c in m] for m in expected[1]]


@pytest.fixture(scope="module")
def embed_export(tmp_path_factory, onnx_ready):
    root = tmp_path_factory.mktemp("runner")
    export_onnx(tiny_folder(root / "m", "embed"), root / "onnx")
    return root / "onnx"


def test_misuse_is_one_clear_error(embed_export, tmp_path):
    with pytest.raises(BertkitError, match="dtype"):
        bertkit.embed(["x"], model=embed_export, backend="onnx", dtype="int8")
    with pytest.raises(BertkitError, match="backend 'tensorflow'"):
        bertkit.embed(["x"], model=embed_export, backend="tensorflow")
    with pytest.raises(BertkitError, match="exported for task 'embed'.*--task ner"):
        bertkit.pipeline("ner", model=embed_export, backend="onnx")
    with pytest.raises(BertkitError, match="last layer only"):
        bertkit.embed(["x"], model=embed_export, backend="onnx", layers=[-1, -2])
    with pytest.raises(BertkitError, match="inference only"):
        OnnxModel(embed_export).train()
    with pytest.raises(InputFileError, match="no model.onnx"):
        OnnxModel(tmp_path)
    shutil.copytree(embed_export, tmp_path / "broken")
    (tmp_path / "broken" / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(InputFileError, match="onnxruntime cannot load it"):
        OnnxModel(tmp_path / "broken")


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    import sys

    from bertkit.export.runner import require_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(BertkitError, match=r"pip install 'bertkit\[onnx\]'"):
        require_onnx()
