"""`bertkit predict` through bertkit.cli.main: one input per argument or line, one output line each.

Issue 16's CLI items: each TEXT argument is its own input (9); --input keeps line numbers, a blank
line gives null and --output writes JSON lines with the line number (10); --top-k ranks labels
where that means something and is a one-line refusal elsewhere (11); a progress bar on stderr
only, off with --no-progress (13); `-` reads stdin (14).
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from tiny_models import random_head

from bertkit.cli import main, textio
from bertkit.pipelines import pipeline


@pytest.fixture(scope="module")
def sst2_like(tmp_path_factory, minilm_dir):
    folder = tmp_path_factory.mktemp("sst2")
    return random_head("BertForSequenceClassification", folder, minilm_dir, id2label={0: "0", 1: "1"}, scale=30.0)


@pytest.fixture(scope="module")
def nli_model(tmp_path_factory, minilm_dir):
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    return random_head("BertForSequenceClassification", tmp_path_factory.mktemp("nli"), minilm_dir, id2label=labels)


def lines_of(capsys) -> list:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def stdin_of(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


def test_each_argument_is_one_input(sst2_like, capsys):
    texts = ["a gripping, funny film", "a tedious mess", "fine"]
    assert main(["predict", "sentiment", "--model", str(sst2_like), *texts]) == 0
    got = lines_of(capsys)
    expected = pipeline("sentiment", model=sst2_like)(texts)
    assert len(got) == 3 and [g["label"] for g in got] == [e["label"] for e in expected]
    assert all(g["label"] in ("negative", "positive") for g in got)
    assert [g["score"] for g in got] == pytest.approx([e["score"] for e in expected], abs=1e-6)


def test_input_lines_keep_their_numbers(sst2_like, tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a gripping film\r\n\n   \nsecond\tpair half\nlast line without newline")
    assert main(["predict", "classify", "--model", str(sst2_like), "--input", str(path)]) == 0
    got = lines_of(capsys)
    assert len(got) == 5 and got[1] is None and got[2] is None  # blank lines answer null, in place
    assert got[0]["label"] == pipeline("classify", model=sst2_like)("a gripping film")["label"]
    assert got[3] == pipeline("classify", model=sst2_like)(("second", "pair half"))  # a tab: a sentence pair
    out = tmp_path / "out.jsonl"
    assert main(["predict", "classify", "--model", str(sst2_like), "--input", str(path), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 5 results to {out}"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5] and rows[1]["result"] is None
    assert rows[0]["input"] == "a gripping film" and rows[0]["result"] == got[0]


def test_top_k_means_labels_or_a_one_line_refusal(sst2_like, nli_model, tmp_path, minilm_dir, capsys):
    assert main(["predict", "nli", "--model", str(nli_model), "A man sleeps.", "A man is awake.", "--top-k", "2"]) == 0
    (ranked,) = lines_of(capsys)
    assert len(ranked) == 2 and ranked[0]["score"] >= ranked[1]["score"]
    full = pipeline("nli", model=nli_model)(("A man sleeps.", "A man is awake."))
    assert ranked[0] == {"label": full["label"], "score": pytest.approx(full["score"], abs=1e-6)}
    assert main(["predict", "sentiment", "--model", str(sst2_like), "good", "--top-k", "1"]) == 0
    assert len(lines_of(capsys)[0]) == 1
    ner = random_head("BertForTokenClassification", tmp_path / "ner", minilm_dir, num_labels=3)
    for task, model in (("ner", ner), ("embed", minilm_dir)):
        assert main(["predict", task, "--model", str(model), "Paris", "--top-k", "3"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{task}: top_k does not apply" in err and "Traceback" not in err


def test_pairs_for_nli_and_qa_questions(nli_model, tmp_path, capsys):
    expected = pipeline("nli", model=nli_model)(("A man sleeps.", "A man is awake."))
    assert main(["predict", "nli", "--model", str(nli_model), "A man sleeps.", "--pair", "A man is awake."]) == 0
    assert lines_of(capsys)[0]["label"] == expected["label"]
    bad = tmp_path / "pairs.txt"
    bad.write_text("A man sleeps.\tA man is awake.\nno tab on this line\n", encoding="utf-8")
    assert main(["predict", "nli", "--model", str(nli_model), "--input", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "pairs.txt:2: nli input lines are first<TAB>second" in err and err.count("\n") == 1


def test_stdin_and_the_progress_bar(sst2_like, capsys, monkeypatch):
    monkeypatch.setattr(textio, "BAR_DELAY_S", 0.0)
    stdin_of(monkeypatch, "good film\n\nbad film\n")
    assert main(["predict", "sentiment", "--model", str(sst2_like), "--input", "-"]) == 0
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    assert len(out) == 3 and out[1] is None and all(o["label"] for o in (out[0], out[2]))
    assert "predict sentiment" in captured.err  # the bar: stderr only, stdout stays JSON lines
    stdin_of(monkeypatch, "good film\n")
    assert main(["predict", "sentiment", "--model", str(sst2_like), "--input", "-", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_qa_questions_and_json_lines(tmp_path, minilm_dir, capsys):
    folder = random_head("BertForQuestionAnswering", tmp_path / "qa", minilm_dir)
    args = ["predict", "qa", "--model", str(folder)]
    assert main([*args, "Where?", "Who?", "--context", "He lives in Paris now."]) == 0
    assert len(lines_of(capsys)) == 2
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Where?", "context": "He lives in Paris."}\n\n{"question": "x"}\n', encoding="utf-8")
    assert main([*args, "--input", str(path)]) == 2
    assert "q.jsonl:3: each line must be JSON" in capsys.readouterr().err


def test_fill_mask_lines_without_a_mask_are_named(tmp_path, capsys):
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"
    path = tmp_path / "masks.txt"
    path.write_text("paris is a [MASK] .\n\nno mask here\n", encoding="utf-8")
    assert main(["predict", "fill-mask", "--model", str(fixture), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert "masks.txt:3: no [MASK] in this line" in err and err.count("\n") == 1
