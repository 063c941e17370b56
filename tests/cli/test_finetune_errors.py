"""Bad input through the CLI: one-line errors naming file and line, exit 2, nothing written."""

import json

import pytest

from bertkit.cli import main


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n", encoding="utf-8")
    return tmp_path, train


def run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_unknown_dev_label_fails_before_writing(files, capsys, minilm_dir):
    tmp, train = files
    dev = tmp / "dev.tsv"
    dev.write_text("sentence\tlabel\nok\t1\nmeh\t2\n", encoding="utf-8")
    out = tmp / "out"
    code, err = run(
        [
            "finetune",
            "classify",
            "--model",
            str(minilm_dir),
            "--train",
            str(train),
            "--dev",
            str(dev),
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{dev}:3: label '2' is not one the model was trained with" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "task,content,expect",
    [
        ("classify", "sentence\tlabel\nfine\n", ":2: expected at least 2 columns, found 1"),
        ("nli", "premise\tlabel\na\tb\n", ":1: the header has no column 'hypothesis'"),
        ("ner", "EU NNP B-NP B-ORG\nrejects VBZ O\n", ":2: expected 4 space-separated columns"),
    ],
)
def test_bad_training_file_names_file_and_line(files, capsys, minilm_dir, task, content, expect):
    tmp, _ = files
    bad = tmp / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    out = tmp / "out"
    code, err = run(
        ["finetune", task, "--model", str(minilm_dir), "--train", str(bad), "--dev", str(bad), "--out", str(out)],
        capsys,
    )
    assert code == 2 and f"{bad}{expect}" in err and not out.exists()


def test_squad_errors_and_nonempty_out(files, capsys, minilm_dir):
    tmp, train = files
    squad = tmp / "s.json"
    squad.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "paragraphs": [
                            {
                                "context": "Paris is nice.",
                                "qas": [
                                    {"id": "a", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 1}]}
                                ],
                            }
                        ]
                    }
                ]
            }
        )
    )
    out = tmp / "out"
    code, err = run(
        ["finetune", "qa", "--model", str(minilm_dir), "--train", str(squad), "--dev", str(squad), "--out", str(out)],
        capsys,
    )
    assert code == 2 and "(id a): answer_start 1 does not match the answer" in err and not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, err = run(
        [
            "finetune",
            "classify",
            "--model",
            str(minilm_dir),
            "--train",
            str(train),
            "--dev",
            str(train),
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and "not empty" in err and sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_settings_are_checked(files, capsys, minilm_dir):
    tmp, train = files
    code, err = run(
        [
            "finetune",
            "classify",
            "--model",
            str(minilm_dir),
            "--train",
            str(train),
            "--dev",
            str(train),
            "--out",
            str(tmp / "o"),
            "--max-len",
            "600",
        ],
        capsys,
    )
    assert code == 2 and "exceeds the model's max_position_embeddings 512" in err
    code, err = run(
        [
            "finetune",
            "classify",
            "--model",
            str(tmp / "nope"),
            "--train",
            str(train),
            "--dev",
            str(train),
            "--out",
            str(tmp / "o"),
        ],
        capsys,
    )
    assert code == 2 and "no such model folder" in err and not (tmp / "o").exists()


def test_predict_needs_one_input_source(capsys, minilm_dir):
    code, err = run(["predict", "sentiment", "--model", str(minilm_dir)], capsys)
    assert code == 2 and "exactly one of them" in err
