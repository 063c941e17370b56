"""`bertkit embed` and `bertkit fill-mask`: thin CLI over bertkit.inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import bertkit
from bertkit.cli import main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "google_bert_tiny"


def test_embed_writes_one_row_per_line(tmp_path, minilm_dir, capsys):
    lines = ["I love Paris", "", "Sam hated the movie", "the\tsong is not good"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    code = main(
        [
            "embed",
            "--model",
            str(minilm_dir),
            "--input",
            str(tmp_path / "in.txt"),
            "--output",
            str(out),
            "--layers",
            "-1,-2",
            "--normalize",
        ]
    )
    assert code == 0 and "embedded 4 lines" in capsys.readouterr().out
    vectors = np.load(out)
    assert vectors.shape == (4, 768) and vectors.dtype == np.float32
    expected = bertkit.embed(lines, model=minilm_dir, layers=[-1, -2], normalize=True)
    assert np.abs(vectors - expected.numpy()).max() <= 1e-6


def test_embed_input_errors_are_one_line(tmp_path, minilm_dir, capsys):
    (tmp_path / "bad.txt").write_bytes(b"fine\n\xff\xfe broken\n")
    args = ["embed", "--model", str(minilm_dir), "--output", str(tmp_path / "v.npy"), "--input"]
    assert main(args + [str(tmp_path / "bad.txt")]) == 2
    err = capsys.readouterr().err
    assert "bad.txt:2: not UTF-8" in err and err.count("\n") == 1
    assert main(args + [str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "ok.txt").write_text("hello\n")
    assert main(args + [str(tmp_path / "ok.txt"), "--layers", "last"]) == 2
    assert "--layers 'last'" in capsys.readouterr().err


def test_fill_mask_prints_top_k(capsys):
    assert main(["fill-mask", "--model", str(FIXTURE), "paris is a beautiful [MASK] .", "--top-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "paris is a beautiful [MASK] ."
    assert [line.split()[0] for line in out[1:4]] == ["1.", "2.", "3."]
    scores = [float(line.split()[2]) for line in out[1:4]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1


def test_fill_mask_without_mask_is_an_error(capsys):
    assert main(["fill-mask", "--model", str(FIXTURE), "no mask here"]) == 2
    assert "has no [MASK]" in capsys.readouterr().err
