"""Task data from the `datasets` world: parquet, arrow, save_to_disk folders and Dataset objects,
with ClassLabel ids read as their names and unlabelled (-1) rows dropped."""

import logging

import pytest
from peers import peer
from tiny import one_thread  # noqa: F401  (autouse: one intra-op thread)

from bertkit.tasks.readers import read_task_data

datasets = peer("datasets")


def sst2_like(n_unlabelled: int = 0):
    labels = datasets.ClassLabel(names=["negative", "positive"])
    rows = {
        "sentence": ["good film", "bad film", "fine"] + ["?"] * n_unlabelled,
        "label": [1, 0, 1] + [-1] * n_unlabelled,
    }
    return datasets.Dataset.from_dict(
        rows, features=datasets.Features({"sentence": datasets.Value("string"), "label": labels})
    )


def conll_like():
    tags = datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER", "B-LOC"]))
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": tags})
    return datasets.Dataset.from_dict(
        {"tokens": [["Ann", "Lee", "in", "Rome"]], "ner_tags": [[1, 2, 0, 3]]}, features=features
    )


@pytest.mark.parametrize("kind", ["object", "parquet", "arrow", "save_to_disk"])
def test_every_source_kind_reads_class_names(tmp_path, kind):
    ds = sst2_like()
    if kind == "object":
        source = ds
    elif kind == "parquet":
        source = tmp_path / "train.parquet"
        ds.to_parquet(str(source))
    elif kind == "save_to_disk":
        source = tmp_path / "saved"
        ds.save_to_disk(str(source))
    else:
        ds.save_to_disk(str(tmp_path / "saved"))
        source = next((tmp_path / "saved").glob("*.arrow"))
    examples = read_task_data("classify", source)
    assert [(e.text, e.label, e.line) for e in examples] == [
        ("good film", "positive", 1),
        ("bad film", "negative", 2),
        ("fine", "positive", 3),
    ]


def test_unlabelled_rows_are_dropped_and_counted(caplog):
    with caplog.at_level(logging.INFO, logger="bertkit"):
        examples = read_task_data("classify", sst2_like(n_unlabelled=2))
    assert len(examples) == 3
    assert "dropped 2 of 5 rows without a gold label (-1)" in caplog.text


def test_ner_tags_become_iob_names_and_squad_rows_read(tmp_path):
    ex = read_task_data("ner", conll_like())[0]
    assert ex.words == ["Ann", "Lee", "in", "Rome"] and ex.tags == ["B-PER", "I-PER", "O", "B-LOC"]
    squad = datasets.Dataset.from_list(
        [
            {
                "id": "a",
                "title": "t",
                "context": "Ann met Bo.",
                "question": "Who?",
                "answers": {"text": ["Bo"], "answer_start": [8]},
            }
        ]
    )
    qa = read_task_data("qa", squad)[0]
    assert (qa.id, qa.answers) == ("a", [("Bo", 8)])


def test_a_folder_with_splits_and_a_damaged_file_are_one_line_errors(tmp_path):
    from bertkit.errors import InputFileError

    datasets.DatasetDict({"train": sst2_like(), "validation": sst2_like()}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputFileError, match=r"holds several splits \(train, validation\); give one of them"):
        read_task_data("classify", tmp_path / "dd")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputFileError, match=r"bad.parquet: not a readable .parquet") as err:
        read_task_data("classify", bad)
    assert "\n" not in str(err.value)


def test_finetune_takes_a_dataset_object(tmp_path, minilm_dir):
    from tiny import tiny_bert

    import bertkit

    train = datasets.concatenate_datasets([sst2_like()] * 4)
    result = bertkit.finetune(
        "classify",
        tiny_bert(tmp_path, minilm_dir),
        train,
        sst2_like(),
        tmp_path / "out",
        bertkit.FinetuneSettings(epochs=1, batch_size=4, max_seq_len=16, progress=False),
    )
    assert 0.0 <= result["best"]["accuracy"] <= 1.0
    assert bertkit.pipeline("classify", model=tmp_path / "out")(["good film"])[0]["label"] in ("negative", "positive")
