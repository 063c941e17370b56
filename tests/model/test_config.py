"""BertConfig: presets, the seed's L/H grid, validation, Hugging Face and Google config files."""

from __future__ import annotations

import json

import pytest
from peers import peer

from bertkit import BertConfig
from bertkit.errors import BertkitError, InputFileError


def test_defaults_are_bert_base():
    c = BertConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (
        30522,
        768,
        12,
        12,
        3072,
    )
    assert (c.hidden_act, c.hidden_dropout_prob, c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps) == (
        "gelu",
        0.1,
        512,
        2,
        1e-12,
    )


@pytest.mark.parametrize(
    "name,layers,hidden",
    [("tiny", 2, 128), ("mini", 4, 256), ("small", 4, 512), ("medium", 8, 512), ("base", 12, 768), ("large", 24, 1024)],
)
def test_named_presets(name, layers, hidden):
    c = BertConfig.preset(name)
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (
        layers,
        hidden,
        hidden // 64,
        4 * hidden,
    )


def test_grid_presets_cover_the_seed_table():
    names = [n for n in BertConfig.preset_names() if n.startswith("L")]
    assert len(names) == 24
    for name in names:
        c = BertConfig.preset(name)
        assert name == f"L{c.num_hidden_layers}-H{c.hidden_size}"
        assert c.head_size == 64
    assert BertConfig.preset("l6-h512", vocab_size=1000).vocab_size == 1000
    with pytest.raises(BertkitError, match="off the grid"):
        BertConfig.preset("L3-H256")
    with pytest.raises(BertkitError, match="unknown preset"):
        BertConfig.preset("huge")


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(hidden_size=100, num_attention_heads=12), "not divisible by num_attention_heads"),
        (dict(num_hidden_layers=0), "num_hidden_layers must be a positive integer"),
        (dict(hidden_act="tanh"), "hidden_act 'tanh' is not supported"),
        (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\)"),
        (dict(position_embedding_type="relative_key"), "absolute"),
        (dict(vocab_size=10, pad_token_id=10), "pad_token_id 10 is outside the vocabulary"),
        (dict(num_labels=3, id2label={0: "a", 1: "b"}), "num_labels 3 disagrees with id2label"),
    ],
)
def test_inconsistent_configs_are_refused(changes, message):
    with pytest.raises(BertkitError, match=message):
        BertConfig(**changes)


def test_hf_config_round_trip_and_transformers_reads_it(tmp_path):
    transformers = peer("transformers")
    c = BertConfig.preset("mini", id2label={0: "neg", 1: "pos", 2: "neutral"}, hidden_act="gelu_tanh")
    c.save_pretrained(tmp_path, architectures=["BertForSequenceClassification"])
    again = BertConfig.from_pretrained(tmp_path)
    assert again == c and again.num_labels == 3 and again.label2id == {"neg": 0, "pos": 1, "neutral": 2}
    theirs = transformers.BertConfig.from_pretrained(tmp_path)
    assert theirs.hidden_size == 256 and theirs.num_labels == 3 and theirs.id2label[2] == "neutral"
    assert theirs.hidden_act == "gelu_pytorch_tanh"  # a name transformers knows, same function


def test_reads_transformers_config_and_keeps_unknown_keys(tmp_path):
    transformers = peer("transformers")
    transformers.BertConfig(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=3, intermediate_size=99, num_labels=5
    ).save_pretrained(tmp_path)
    c = BertConfig.from_pretrained(tmp_path)
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.num_labels) == (64, 3, 99, 5)
    written = json.loads((tmp_path / "config.json").read_text())
    extra = {
        k
        for k in written
        if k not in c.to_dict()
        and k not in ("label2id", "architectures", "model_type", "transformers_version", "dtype")
    }
    assert extra <= set(c.extra)
    c.save_pretrained(tmp_path / "again")
    assert BertConfig.from_pretrained(tmp_path / "again") == c


def test_overrides_of_num_labels_drop_stale_label_names():
    c = BertConfig(id2label={0: "a", 1: "b"})
    assert c.copy(num_labels=4).num_labels == 4 and c.copy(num_labels=4).id2label is None
    with pytest.raises(BertkitError, match="no field"):
        c.copy(hiden_size=3)


def test_google_bert_config(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(
        json.dumps(
            {
                "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1,
                "hidden_size": 768,
                "initializer_range": 0.02,
                "intermediate_size": 3072,
                "max_position_embeddings": 512,
                "num_attention_heads": 12,
                "num_hidden_layers": 12,
                "type_vocab_size": 2,
                "vocab_size": 30522,
            }
        )
    )
    c = BertConfig.from_pretrained(tmp_path)  # no config.json: Google's file is used
    assert c.hidden_act == "gelu_tanh" and c.num_hidden_layers == 12
    c.save_google_json(tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(path.read_text())


def test_bad_config_files(tmp_path):
    with pytest.raises(InputFileError, match="config.json: missing"):
        BertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(InputFileError, match="JSON object"):
        BertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(InputFileError, match="model_type is 'roberta'"):
        BertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": "big"}))
    with pytest.raises(InputFileError, match="hidden_size must be a positive integer"):
        BertConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(vocab_size=10**12), r"vocab_size is 1,000,000,000,000, above bertkit's limit of 4,000,000"),
        (dict(num_hidden_layers=5000), r"num_hidden_layers is 5,000, above"),
        (dict(max_position_embeddings=2**30), r"max_position_embeddings is .* above"),
        (dict(vocab_size=True), r"vocab_size must be a positive integer, got True"),
        (dict(initializer_range="x"), r"initializer_range must be a number >= 0, got 'x'"),
        (dict(initializer_range=float("nan")), r"initializer_range must be a number"),
        (dict(layer_norm_eps=0), r"layer_norm_eps must be a positive number"),
        (dict(hidden_act=3), r"hidden_act 3 is not supported"),
        (dict(classifier_dropout="0.1"), r"classifier_dropout must be in \[0, 1\)"),
        (dict(pad_token_id="0"), r"pad_token_id '0' is outside the vocabulary"),
        (dict(id2label=["a", "b"]), r"id2label must be an object \{id: label\}, got a list"),
        (dict(id2label={"x": "a"}), r"id2label keys must be label ids \(0, 1, ...\), got 'x'"),
        (dict(id2label={"0": ["a"]}), r"id2label values must be label names"),
        (dict(label2id=["a", "b"]), r"label2id must be an object \{label: id\}, got a list"),
        (dict(label2id={"a": 0, "b": 0}), r"label2id must map each label to a distinct id"),
    ],
)
def test_config_values_of_the_wrong_kind_or_size_are_one_line_errors(tmp_path, changes, message):
    values = BertConfig(vocab_size=99, hidden_size=32, num_attention_heads=4).to_hf_dict() | changes
    if "label2id" in changes:
        values.pop("id2label", None)
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(InputFileError, match=message) as info:
        BertConfig.from_pretrained(tmp_path)
    assert "\n" not in str(info.value) and str(tmp_path / "config.json") in str(info.value)


def test_label_maps_from_json_and_a_config_without_padding(tmp_path):
    c = BertConfig.from_dict({"label2id": {"neg": 0, "pos": 1}, "pad_token_id": None})
    assert c.id2label == {0: "neg", 1: "pos"} and c.num_labels == 2 and c.pad_token_id is None
    assert BertConfig.from_dict({"id2label": {"0": "x", 1: "y", "2": "z"}}).id2label == {0: "x", 1: "y", 2: "z"}


def test_json_nested_too_deep_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputFileError, match="nested too deeply"):
        BertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_bytes(b'{"hidden_act": "g\xe9lu"}')
    with pytest.raises(InputFileError, match=r"config\.json:1: not UTF-8"):
        BertConfig.from_pretrained(tmp_path)


def test_from_pretrained_takes_the_hub_options(tmp_path, monkeypatch):
    """revision/token/cache_dir/local_files_only go to bertkit.hub.resolve_folder (a stub here)."""
    import bertkit.model.config as config_module

    BertConfig(vocab_size=99, hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path / "snap")
    seen = {}

    def resolve_folder(name, **options):
        seen.update(options, name=name)
        return tmp_path / "snap"

    monkeypatch.setattr(config_module, "resolve_folder", resolve_folder)
    c = BertConfig.from_pretrained(
        "someone/bert", revision="v2", token="t", cache_dir=tmp_path / "c", local_files_only=True, num_labels=3
    )
    assert c.hidden_size == 32 and c.num_labels == 3
    assert seen == dict(name="someone/bert", revision="v2", token="t", cache_dir=tmp_path / "c", local_files_only=True)
    assert BertConfig.from_pretrained(tmp_path / "snap" / "config.json").hidden_size == 32  # a file works too


def test_config_files_are_written_atomically_with_the_umask(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        path = BertConfig().save_pretrained(tmp_path)
    finally:
        os.umask(old)
    assert path == tmp_path / "config.json" and (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left


def test_null_label_maps_as_transformers_writes_them():
    c = BertConfig.from_dict({"id2label": None, "label2id": None, "num_labels": 3})
    assert c.id2label is None and c.num_labels == 3
    assert BertConfig.from_dict({"id2label": None, "label2id": {"a": 0, "b": 1}}).id2label == {0: "a", 1: "b"}
