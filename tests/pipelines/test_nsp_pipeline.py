"""Next-sentence prediction on a sentence pair: the lecture's pasta / radio examples through `nsp`.

The Google fixture is a tiny BERT with real NSP weights (cls/seq_relationship) as Google's code
writes them; its isNext probability must be the one transformers computes from the same
checkpoint converted to its layout, and the one its own NSP logits give.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peers import peer
from tiny_models import SMALL, save

from bertkit import BertForNextSentencePrediction, Tokenizer
from bertkit.cli import main
from bertkit.errors import BertkitError
from bertkit.model import BertConfig
from bertkit.pipelines import pipeline

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"
LECTURE = [  # the lecture's NSP table: (A, B, its label)
    ("She cooked pasta", "It was delicious", "isNext"),
    ("Jack loves songwriting", "He wrote a new song", "isNext"),
    ("Birds fly in the sky", "He was reading", "notNext"),
    ("Turn the radio on", "She bought a new hat", "notNext"),
]
ATOL, RTOL = 1e-6, 1e-5  # probabilities of a 2-layer float32 model: |ours - theirs| <= atol + rtol * |theirs|


def test_lecture_pairs_on_the_google_fixture_equal_transformers(tmp_path):
    nsp = pipeline("nsp", model=FIXTURE)
    results = nsp([(a, b) for a, b, _ in LECTURE])
    assert all(set(r) == {"label", "score", "is_next"} for r in results)
    converted = tmp_path / "hf"
    assert main(["convert", "--from", "google", str(FIXTURE), "--out", str(converted)]) == 0
    transformers = peer("transformers")
    theirs_model = transformers.BertForNextSentencePrediction.from_pretrained(str(converted)).eval()
    tok = Tokenizer.from_pretrained(FIXTURE)
    ours_model = BertForNextSentencePrediction.from_pretrained(FIXTURE).eval()
    for (a, b, _), got in zip(LECTURE, results):
        enc = tok(a, b, return_tensors="pt")
        with torch.no_grad():
            theirs = theirs_model(**enc).logits.softmax(-1)[0]
            direct = ours_model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits.softmax(-1)[0]
        assert abs(got["is_next"] - float(theirs[0])) <= ATOL + RTOL * float(theirs[0])
        assert abs(got["is_next"] - float(direct[0])) <= ATOL + RTOL * float(direct[0])
        assert got["label"] == ("isNext" if theirs[0] >= theirs[1] else "notNext")
        assert got["score"] == pytest.approx(max(got["is_next"], 1 - got["is_next"]), abs=1e-6)


@pytest.mark.parametrize("bias, label", [((4.0, -4.0), "isNext"), ((-4.0, 4.0), "notNext")])
def test_logit_zero_is_is_next(tmp_path, minilm_dir, bias, label):
    """BERT's NSP head: logit 0 = IsNext, 1 = NotNext (Google's run_pretraining, HF's docs)."""
    torch.manual_seed(0)
    net = BertForNextSentencePrediction(BertConfig(**SMALL))
    with torch.no_grad():
        net.cls.seq_relationship.weight.zero_()
        net.cls.seq_relationship.bias.copy_(torch.tensor(bias))
    folder = save(net, tmp_path / "nsp", minilm_dir)
    got = pipeline("nsp", model=folder)({"text": "She cooked pasta.", "text_pair": "It was delicious."})
    assert got["label"] == label
    assert got["is_next"] == pytest.approx(float(torch.tensor(bias).softmax(0)[0]), abs=1e-6)


def test_refusals_are_one_line(minilm_dir):
    with pytest.raises(BertkitError, match="no trained weights for BertForNextSentencePrediction"):
        pipeline("nsp", model=minilm_dir)  # a sentence-embedding model has no NSP head
    nsp = pipeline("nsp", model=FIXTURE)
    with pytest.raises(BertkitError, match="give \\(first, second\\) sentence pairs"):
        nsp("She cooked pasta")
    with pytest.raises(BertkitError, match=r"^nsp: top_k does not apply"):
        nsp(("a", "b"), top_k=2)


def test_predict_nsp_prints_the_is_next_probability(capsys):
    assert main(["predict", "nsp", "--model", str(FIXTURE), "She cooked pasta", "--pair", "It was delicious"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    expected = pipeline("nsp", model=FIXTURE)(("She cooked pasta", "It was delicious"))
    assert line["is_next"] == pytest.approx(expected["is_next"], abs=1e-7) and line["label"] == expected["label"]
    assert main(["predict", "nsp", "--model", str(FIXTURE), "She cooked pasta"]) == 2
    assert "give the second sentence with --pair" in capsys.readouterr().err
