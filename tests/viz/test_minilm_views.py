"""End to end on the packaged all-MiniLM-L6-v2: the views show the model's own attention, the
word vectors behave as the seed says, and bad input gets a clear one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from peers import peer
from viz_browser import choose, drawn_matrix

from bertkit.cli import main
from bertkit.viz import compute_attention, head_figure, pca_2d, word_vectors
from bertkit.viz.contextual import cosine
from bertkit.viz.embeddings_plot import embedding_figure

PYTHON_SNAKE = "He got bit by Python"
PYTHON_LANGUAGE = "Python is my favorite programming language"
PARIS = ("Paris is a beautiful city", "I love Paris")


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from bertkit import BertModel, Tokenizer

    model = BertModel.from_pretrained(minilm_dir)
    model.eval()
    return model, Tokenizer.from_pretrained(minilm_dir)


def forward(model, tokenizer, text, pair=None):
    """An independent forward pass: (encoding, outputs with attentions and hidden states)."""
    enc = tokenizer.encode(text, pair)
    ids = torch.tensor([enc.ids])
    with torch.no_grad():
        out = model(ids, token_type_ids=torch.tensor([enc.type_ids]), output_attentions=True, output_hidden_states=True)
    return enc, out


def stacked(attentions) -> np.ndarray:
    return np.stack([a[0].numpy() for a in attentions])  # L x [1, A, T, T] -> [L, A, T, T]


def test_compute_attention_is_the_models_attention(minilm):
    model, tokenizer = minilm
    att = compute_attention(model, tokenizer, *PARIS)
    assert att.tokens == ["[CLS]", "paris", "is", "a", "beautiful", "city", "[SEP]", "i", "love", "paris", "[SEP]"]
    assert att.type_ids == [0] * 7 + [1] * 4
    assert att.weights.shape == (6, 12, 11, 11)
    np.testing.assert_allclose(att.weights.sum(-1), 1.0, atol=1e-5)
    _, out = forward(model, tokenizer, *PARIS)
    np.testing.assert_allclose(att.weights, stacked(out.attentions), atol=1e-6)


def test_attention_matches_transformers(minilm, minilm_dir):
    transformers = peer("transformers")
    model, tokenizer = minilm
    att = compute_attention(model, tokenizer, PYTHON_SNAKE, PYTHON_LANGUAGE)
    reference = transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()
    enc = tokenizer.encode(PYTHON_SNAKE, PYTHON_LANGUAGE)
    with torch.no_grad():
        out = reference(torch.tensor([enc.ids]), token_type_ids=torch.tensor([enc.type_ids]), output_attentions=True)
    np.testing.assert_allclose(att.weights, stacked(out.attentions), atol=1e-5)


def test_cli_png_plots_the_attention_probabilities(minilm, minilm_dir, tmp_path, capsys):
    model, tokenizer = minilm
    out = tmp_path / "head.png"
    assert (
        main(
            [
                "attention",
                "--model",
                str(minilm_dir),
                PARIS[0],
                "--pair",
                PARIS[1],
                "--layer",
                "4",
                "--head",
                "7",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert f"wrote {out} (layer 4, head 7)" in capsys.readouterr().out
    assert out.stat().st_size > 20_000 and imread(out).shape[0] > 300
    att = compute_attention(model, tokenizer, *PARIS)
    fig = head_figure(att.tokens, att.weights, 4, 7)  # what the command drew
    _, reference = forward(model, tokenizer, *PARIS)
    np.testing.assert_allclose(
        np.asarray(fig.axes[0].images[0].get_array()), reference.attentions[4][0, 7].numpy(), atol=1e-6
    )
    for extra, expect in ((["--layer", "-1"], "all 12 heads of layer 5"), ([], "layers x heads overview: 6 x 12")):
        path = tmp_path / f"view{len(extra)}.png"
        assert main(["attention", "--model", str(minilm_dir), PARIS[0], *extra, "--out", str(path)]) == 0
        assert expect in capsys.readouterr().out
        assert path.stat().st_size > 20_000


def test_html_in_chromium_shows_the_models_probabilities(browser, minilm, minilm_dir, tmp_path, capsys):
    model, tokenizer = minilm
    out = tmp_path / "view.html"
    assert (
        main(["attention", "--model", str(minilm_dir), PYTHON_SNAKE, "--pair", PYTHON_LANGUAGE, "--out", str(out)]) == 0
    )
    capsys.readouterr()
    enc, reference = forward(model, tokenizer, PYTHON_SNAKE, PYTHON_LANGUAGE)
    n = len(enc.ids)
    browser.get(out.resolve().as_uri())
    assert browser.execute_script("return window.bertkitHeadView.tokens") == list(enc.tokens)
    for layer, head in [(5, 11), (2, 3), (0, 0)]:
        choose(browser, layer, head)
        shown, _ = drawn_matrix(browser, n)
        np.testing.assert_allclose(shown, reference.attentions[layer][0, head].numpy(), atol=1e-6)


def test_python_the_snake_and_python_the_language(minilm, minilm_dir, capsys):
    model, tokenizer = minilm
    assert main(["similarity", "--model", str(minilm_dir), PYTHON_SNAKE, PYTHON_LANGUAGE, "--word", "python"]) == 0
    printed = capsys.readouterr().out
    # independently: the vectors at the "python" token of each sentence
    vectors, rows = [], []
    for text in (PYTHON_SNAKE, PYTHON_LANGUAGE):
        enc, out = forward(model, tokenizer, text)
        k = enc.tokens.index("python")
        vectors.append(out.last_hidden_state[0, k].numpy())
        rows.append(enc.ids[k])
    contextual = cosine(*vectors)
    assert rows[0] == rows[1]  # same vocabulary row: the static embeddings are equal
    assert "static input embedding (token table): 1.0000" in printed
    assert f"contextual vector (last layer):      {contextual:.4f}" in printed
    assert contextual < 0.95  # context moved them apart


def test_word_pieces_are_averaged(minilm):
    model, tokenizer = minilm
    vectors = word_vectors(model, tokenizer, ["Let us start pretraining the model"], "pretraining")
    assert vectors.pieces == [["pre", "##train", "##ing"]]
    enc, out = forward(model, tokenizer, "Let us start pretraining the model")
    positions = [enc.tokens.index(p) for p in ("pre", "##train", "##ing")]
    # |values| <= ~1: two float32 kernels (oneDNN in bertkit's batching loop, MKL in a plain forward) round apart
    expected = out.last_hidden_state[0, positions].mean(0).numpy()
    np.testing.assert_allclose(vectors.contextual[0], expected, rtol=1e-5, atol=1e-5)
    table = model.embeddings.word_embeddings.weight.detach()
    np.testing.assert_allclose(vectors.static[0], table[[enc.ids[p] for p in positions]].mean(0).numpy(), atol=1e-7)
    assert vectors.layers.shape == (1, 7, 384)  # embedding output + 6 layers


def test_bank_map_separates_the_senses(minilm, minilm_dir, tmp_path, capsys):
    model, tokenizer = minilm
    river = ["We sat on the bank of the river and watched the boats.", "The river overflowed its bank after the storm."]
    money = ["I deposited my salary at the bank this morning.", "The bank approved our loan for the new house."]
    plot = tmp_path / "bank.png"
    assert main(["similarity", "--model", str(minilm_dir), *river, *money, "--word", "bank", "--plot", str(plot)]) == 0
    assert "static input embedding" in capsys.readouterr().out
    assert plot.stat().st_size > 15_000
    vectors = word_vectors(model, tokenizer, river + money, "bank")
    coords, _ = pca_2d(vectors.contextual)
    assert np.sign(coords[0, 0]) == np.sign(coords[1, 0]) != np.sign(coords[2, 0]) == np.sign(coords[3, 0])
    fig = embedding_figure(vectors.contextual, river + money, word="bank")
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), coords)
    np.testing.assert_allclose(vectors.static, np.repeat(vectors.static[:1], 4, axis=0))  # one table row


def test_unknown_word_lists_the_sentence_words(minilm_dir, capsys):
    assert main(["similarity", "--model", str(minilm_dir), PYTHON_SNAKE, PYTHON_LANGUAGE, "--word", "snake"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "word 'snake' is not in the sentence 'He got bit by Python'; its words are: He, got, bit, by, Python" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layer", "6"], "layer 6 is out of range: the model has 6 layers (use 0..5, or -1 for the last)"),
        (["--layer", "0", "--head", "12"], "head 12 is out of range: the model has 12 heads"),
        (["--head", "3"], "--head needs --layer for a PNG"),
    ],
)
def test_layer_or_head_out_of_range(minilm_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "x.png"
    assert main(["attention", "--model", str(minilm_dir), "I love Paris", *extra, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_long_sentence_is_truncated_with_a_warning(minilm_dir, tmp_path, capsys):
    out = tmp_path / "long.png"
    text = " ".join(["word"] * 600)
    assert main(["attention", "--model", str(minilm_dir), text, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning: the input has 602 tokens but the model takes at most 512" in captured.err
    assert captured.out.startswith("512 tokens: [CLS] word")
    assert out.stat().st_size > 20_000


def test_similarity_of_a_long_sentence(minilm_dir, capsys):
    filler = " ".join(["very"] * 600)
    early = f"Python is {filler} fast"
    assert main(["similarity", "--model", str(minilm_dir), early, PYTHON_LANGUAGE, "--word", "python"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: the sentence 'Python is very very" in err and "has 605 tokens but the model takes at most 512" in err
    )
    late = f"It is {filler} Python"
    assert main(["similarity", "--model", str(minilm_dir), late, PYTHON_LANGUAGE, "--word", "python"]) == 2
    assert "'python' lies past the model's maximum of 512 tokens" in capsys.readouterr().err


def test_demo_step_leaves_the_files_it_announces(minilm_dir, tmp_path, capsys):
    import re

    from bertkit.cli.viz import demo_step

    demo_step(tmp_path)
    printed = capsys.readouterr().out
    announced = [Path(p) for p in re.findall(r"^wrote (\S+) ", printed, flags=re.M)]
    assert {p.name for p in announced} == {
        "bank-pca.png",
        "attention.html",
        "attention-overview.png",
        "attention-last-layer.png",
        "attention-layer2-head0.png",
    }
    for path in announced:
        assert path.parent == tmp_path / "look-inside" and path.stat().st_size > 15_000
    assert "static input embedding (token table): 1.0000" in printed
    assert "$ bertkit attention --model" in printed  # the tour shows the commands it runs
    cls_row = re.search(r"cls pooling: (.+)", printed).group(1).split()
    mean_row = re.search(r"mean pooling: (.+)", printed).group(1).split()
    assert len(cls_row) == len(mean_row) == 3


def test_long_pair_keeps_both_sentences(minilm, minilm_dir, tmp_path):
    import warnings

    model, tokenizer = minilm
    long_a = " ".join(["word"] * 600)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        att = compute_attention(model, tokenizer, long_a, "I love Paris")
    assert "the input has 606 tokens but the model takes at most 512" in str(caught[0].message)
    assert len(att.tokens) == 512 and att.weights.shape[-1] == 512
    assert att.tokens[-5:] == ["[SEP]", "i", "love", "paris", "[SEP]"]  # sentence B survives the cut
    assert att.type_ids.count(1) == 4
