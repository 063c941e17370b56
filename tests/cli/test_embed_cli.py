"""`bertkit embed` and `bertkit fill-mask`: thin CLI over bertkit.inference."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import bertkit
import bertkit.inference
from bertkit.cli import main, textio
from bertkit.hardware import cpu_has_native

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
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-6, rtol=1e-5)


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


def stdin_of(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_embed_streams_in_chunks_and_reads_stdin(tmp_path, minilm_dir, capsys, monkeypatch):
    lines = [f"line number {i} says {'very ' * (i % 7)}little" for i in range(23)] + [""]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[int] = []
    real = bertkit.inference.embed

    def recording(texts, **kwargs):
        seen.append(len(texts))
        return real(texts, **kwargs)

    monkeypatch.setattr(bertkit.inference, "embed", recording)
    out = tmp_path / "v.npy"
    args = ["embed", "--model", str(minilm_dir), "--output", str(out), "--chunk-lines", "5", "--no-progress"]
    assert main(args + ["--input", str(tmp_path / "in.txt")]) == 0
    assert seen == [5, 5, 5, 5, 4]  # never more than a chunk in memory
    vectors = np.load(out)
    expected = real(lines, model=minilm_dir).numpy()  # the folder's recipe: mean pooling, unit length
    assert vectors.shape == (24, 384)
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=1e-4)
    assert capsys.readouterr().err == ""  # --no-progress: nothing on stderr
    stdin_of(monkeypatch, ("\n".join(lines) + "\n").encode("utf-8"))
    assert main(args + ["--input", "-", "--output", str(tmp_path / "stdin.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "stdin.npy"), vectors)


def test_embed_progress_bar_is_on_stderr_only(tmp_path, minilm_dir, capsys, monkeypatch):
    monkeypatch.setattr(textio, "BAR_DELAY_S", 0.0)  # show the bar even on a short run
    (tmp_path / "in.txt").write_text("a\nb\nc\n", encoding="utf-8")
    args = [
        "embed",
        "--model",
        str(minilm_dir),
        "--input",
        str(tmp_path / "in.txt"),
        "--output",
        str(tmp_path / "v.npy"),
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "embed:" in captured.err and "3/3" in captured.err
    assert captured.out.count("\n") == 1 and captured.out.startswith("embedded 3 lines")
    assert main(args + ["--no-progress"]) == 0 and capsys.readouterr().err == ""
    assert main(args + ["--quiet"]) == 0 and capsys.readouterr().err == ""


def test_a_failure_midway_leaves_no_file(tmp_path, minilm_dir, capsys):
    out = tmp_path / "v.npy"
    out.write_bytes(b"old contents")
    (tmp_path / "in.txt").write_bytes(b"one\ntwo\nthree\nfour\n\xff five\n")
    args = ["embed", "--model", str(minilm_dir), "--input", str(tmp_path / "in.txt"), "--output", str(out)]
    assert main(args + ["--chunk-lines", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "in.txt:5: not UTF-8" in err and err.count("\n") == 1
    assert out.read_bytes() == b"old contents"  # the earlier file is intact, no half-written one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "v.npy"]  # no temporary file left
    (tmp_path / "empty.txt").write_text("")
    assert (
        main(["embed", "--model", str(minilm_dir), "--input", str(tmp_path / "empty.txt"), "--output", str(out)]) == 2
    )
    assert "empty; give one text per line" in capsys.readouterr().err and out.read_bytes() == b"old contents"


def test_embed_precision_device_and_recipe_flags(tmp_path, minilm_dir, capsys):
    texts = ["I love Paris", "Sam hated the movie", "the song is not good"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    base = ["embed", "--model", str(minilm_dir), "--input", str(tmp_path / "in.txt"), "--no-progress"]
    assert main(base + ["--output", str(tmp_path / "raw.npy"), "--no-normalize", "--pooling", "cls"]) == 0
    raw = np.load(tmp_path / "raw.npy")
    np.testing.assert_allclose(
        raw, bertkit.embed(texts, model=minilm_dir, pooling="cls", normalize=False).numpy(), atol=1e-5, rtol=1e-4
    )
    assert main(base + ["--output", str(tmp_path / "int8.npy"), "--precision", "int8"]) == 0
    exact = bertkit.embed(texts, model=minilm_dir)
    cos = F.cosine_similarity(torch.from_numpy(np.load(tmp_path / "int8.npy")), exact)
    assert cos.min() >= 0.99
    assert main(base + ["--output", str(tmp_path / "old.npy"), "--dtype", "float32"]) == 0  # the old flag
    assert "--dtype is renamed --precision" in capsys.readouterr().err
    code = main(base + ["--output", str(tmp_path / "bf16.npy"), "--precision", "bf16"])
    if cpu_has_native("bf16"):
        assert code == 0
    else:
        assert code == 2 and "no native bfloat16" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(base + ["--output", str(tmp_path / "gpu.npy"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "no CUDA GPU" in err and err.count("\n") == 1
    assert not (tmp_path / "gpu.npy").exists()


def test_fill_mask_reads_stdin(monkeypatch, capsys):
    stdin_of(monkeypatch, b"paris is a beautiful [MASK] .\n\n[MASK] love paris\n")
    assert main(["fill-mask", "--model", str(FIXTURE), "-", "--top-k", "2", "--json", "--device", "cpu"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 2 and all(len(r) == 2 for r in results)
