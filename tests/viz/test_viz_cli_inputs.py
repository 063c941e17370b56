"""The viz commands: `-` reads the text from stdin, --device and --precision follow the one device
and precision rule, and drawing touches no global matplotlib state (Figure objects only, never pyplot)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import torch

from bertkit.cli import main
from bertkit.hardware import cpu_has_native

ROOT = Path(__file__).resolve().parents[2]


def stdin_of(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


def test_attention_reads_the_sentence_from_stdin(minilm_dir, tmp_path, capsys, monkeypatch):
    stdin_of(monkeypatch, "Paris is a beautiful city\n")
    out = tmp_path / "view.png"
    assert main(["attention", "--model", str(minilm_dir), "-", "--pair", "I love Paris", "--out", str(out)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "11 tokens: [CLS] paris is a beautiful city [SEP] i love paris [SEP]"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stdin_of(monkeypatch, "x\n")
    assert main(["attention", "--model", str(minilm_dir), "-", "--pair", "-", "--out", str(out)]) == 2
    assert "only one of SENTENCE and --pair can be -" in capsys.readouterr().err


def test_similarity_reads_sentences_from_stdin(minilm_dir, capsys, monkeypatch):
    stdin_of(monkeypatch, "He got bit by Python\n\nPython is my favorite programming language\n")
    assert main(["similarity", "--model", str(minilm_dir), "-", "--word", "python", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "[1] He got bit by Python" in out and "[2] Python is my favorite programming language" in out


def test_device_rule(minilm_dir, tmp_path, capsys):
    if torch.cuda.is_available():
        return  # the refusal below is for hosts without CUDA; bench/gpu_check.sh covers the GPU side
    code = main(["attention", "--model", str(minilm_dir), "hi", "--out", str(tmp_path / "a.png"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA GPU" in err and err.count("\n") == 1 and not (tmp_path / "a.png").exists()


def test_rendering_never_touches_pyplot(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from bertkit.viz import attention_png, embedding_map\n"
        "w = np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32)\n"
        f"attention_png(['[CLS]', 'a', '[SEP]'], w, {str(tmp_path / 'a.png')!r}, layer=0, head=0)\n"
        f"embedding_map(np.eye(3), ['x', 'y', 'z'], {str(tmp_path / 'm.png')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"
    for name in ("viz", "cli/viz.py"):
        for path in (
            (ROOT / "bertkit" / name).rglob("*.py") if (ROOT / "bertkit" / name).is_dir() else [ROOT / "bertkit" / name]
        ):
            text = path.read_text(encoding="utf-8")
            assert "matplotlib.use(" not in text and "pyplot" not in text.replace("no pyplot", ""), path


def test_precision_rule(minilm_dir, tmp_path, capsys):
    """bf16 runs where the CPU has it natively (else one line, exit 2), fp16 likewise, int8 on any CPU;
    each gives the float32 answer to within its rounding: the contextual cosine within 0.01."""
    pair = ["He got bit by Python", "Python is my favorite programming language", "--word", "python"]
    argv = ["similarity", "--model", str(minilm_dir), *pair]

    def contextual(out: str) -> float:
        return float(re.search(r"contextual vector \(last layer\): +([0-9.]+)", out).group(1))

    assert main(argv) == 0
    exact = contextual(capsys.readouterr().out)
    assert 0.5 < exact < 0.99  # context moves the vector, but not to another word
    for precision in ("bf16", "fp16", "int8"):
        code = main([*argv, "--precision", precision])
        out, err = capsys.readouterr()
        if precision != "int8" and not cpu_has_native(precision):
            assert code == 2 and "no native" in err and err.count("\n") == 1, err
            continue
        assert code == 0, err
        assert abs(contextual(out) - exact) <= 0.01, (precision, out)
    png = tmp_path / "int8.png"
    attention = ["attention", "--model", str(minilm_dir), "Paris is nice", "--out", str(png)]
    assert main([*attention, "--precision", "int8"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
