"""`bertkit info`: per-module parameter counts of a size or a config file."""

from __future__ import annotations

from pathlib import Path

from bertkit.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_info_base_prints_every_part_and_the_totals(capsys):
    assert main(["info", "--config", "base"]) == 0
    out = capsys.readouterr().out
    for row in ("embeddings: token", "embeddings: segment", "embeddings: position", "embeddings: LayerNorm"):
        assert row in out
    assert out.count(": attention") == 12 and out.count(": FFN") == 12
    assert "layer 11: FFN" in out and "pooler" in out and "MLM head" in out and "NSP head" in out
    assert "109,482,240  = 109.5M" in out and "110,106,428" in out


def test_info_reads_config_files_and_folders(capsys):
    assert main(["info", "--config", str(FIXTURES / "google_bert_tiny" / "bert_config.json")]) == 0
    out = capsys.readouterr().out
    assert "L=2 H=32 A=4 FFN=64 vocab=60" in out and "layer 1: FFN" in out
    assert main(["info", "--config", str(FIXTURES / "bertkit_v0_1_tiny")]) == 0
    assert "vocab=30" in capsys.readouterr().out


def test_info_unknown_size_is_one_line(capsys):
    assert main(["info", "--config", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown preset 'huge'" in err
