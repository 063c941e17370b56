"""`bertkit export onnx` from the command line: the files it writes, what it prints, what it refuses."""

from __future__ import annotations

import json

from export_models import tiny_folder

from bertkit.cli import main


def test_export_writes_a_servable_folder(tmp_path, capsys, onnx_ready):
    source = tiny_folder(tmp_path / "m", "classify")
    assert main(["export", "onnx", "--model", str(source), "--out", str(tmp_path / "o"), "--task", "classify"]) == 0
    printed = capsys.readouterr().out
    assert "model.onnx" in printed and "task classify" in printed and "logits" in printed
    names = {p.name for p in (tmp_path / "o").iterdir()}
    assert {"model.onnx", "config.json", "vocab.txt", "export.json"} <= names
    info = json.loads((tmp_path / "o" / "export.json").read_text())
    assert info["task"] == "classify" and info["outputs"] == ["logits"]
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["num_labels"] == 3


def test_non_empty_out_is_refused_unless_overwrite(tmp_path, capsys, onnx_ready):
    source = tiny_folder(tmp_path / "m", "embed")
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", "onnx", "--model", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "--overwrite" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main(["export", "onnx", "--model", str(source), "--out", str(out), "--overwrite"]) == 0
    assert (out / "model.onnx").is_file() and (out / "keep.txt").read_text() == "mine"


def test_bad_opset_and_calibration_are_one_line_errors(tmp_path, capsys, onnx_ready):
    source = tiny_folder(tmp_path / "m", "embed")
    assert main(["export", "onnx", "--model", str(source), "--out", str(tmp_path / "a"), "--opset", "11"]) == 2
    assert "--opset 11" in capsys.readouterr().err
    missing = tmp_path / "none.txt"
    argv = ["export", "onnx", "--model", str(source), "--out", str(tmp_path / "b"), "--int8", "--calibration"]
    assert main([*argv, str(missing)]) == 2
    assert "calibration file not found" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
