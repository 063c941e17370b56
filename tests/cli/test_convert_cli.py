"""`bertkit convert --from google`: the thin CLI over checkpoint.google."""

from __future__ import annotations

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
