"""`bertkit convert --from google`: the thin CLI over checkpoint.google."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from bertkit import BertForPreTraining
from bertkit.cli import main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "google_bert_tiny"


def test_convert_google_folder(tmp_path, capsys):
    out = tmp_path / "hf"
    assert main(["convert", "--from", "google", str(FIXTURE), "--out", str(out)]) == 0
    assert "BertForPreTraining: L=2 H=32 A=4 vocab=60" in capsys.readouterr().out
    assert (out / "vocab.txt").read_text() == (FIXTURE / "vocab.txt").read_text()
    direct = BertForPreTraining.from_pretrained(FIXTURE)
    converted = BertForPreTraining.from_pretrained(out)
    ids = torch.tensor([[2, 7, 9, 3]])
    assert torch.equal(direct(ids).prediction_logits, converted(ids).prediction_logits)


def test_convert_missing_folder_is_one_line_error(tmp_path, capsys):
    assert main(["convert", "--from", "google", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such folder" in err


def test_convert_refuses_a_non_empty_out_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    argv = ["convert", "--from", "google", str(FIXTURE), "--out", str(out)]
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(argv + ["--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "model.safetensors", "notes.txt", "tokenizer_config.json", "vocab.txt"]
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is True
    assert not list(out.glob(".*"))  # no temporary files left


def test_convert_checks_the_vocabulary_before_writing(tmp_path, capsys):
    folder = tmp_path / "google"
    shutil.copytree(FIXTURE, folder)
    with open(folder / "vocab.txt", "ab") as f:
        f.write(b"caf\xe9\n")
    lines = (FIXTURE / "vocab.txt").read_text().count("\n") + 1
    assert main(["convert", "--from", "google", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert f"vocab.txt:{lines}: not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_python_api_is_exported():
    import bertkit

    assert bertkit.convert_google_checkpoint.__module__ == "bertkit.convert"
