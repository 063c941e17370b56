"""Feature extraction with the packaged MiniLM: order, pooling, layers, dtypes, per-word vectors, fill-mask."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import bertkit
from bertkit import BertModel, Tokenizer
from bertkit.errors import BertkitError
from bertkit.hardware import cpu_has_native
from bertkit.inference import fill_mask, prepare
from bertkit.model.quantize import Int8Linear, quantize_int8

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "google_bert_tiny"
# float32 sums in another order (batching, threads): |got - expected| <= ATOL + RTOL * |expected|
ATOL, RTOL = 1e-5, 1e-4
TEXTS = [
    "I love Paris",
    "Sam hated the movie because the ending was unbelievably bad",
    "It was a great day",
    "The song is not good",
    "We loved the game",
    "a",
    "Paris is a beautiful city . I love Paris",
    "the immune system protects organisms from disease",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return BertModel.from_pretrained(minilm_dir), Tokenizer.from_pretrained(minilm_dir)


def reference(model, tokenizer, texts, layer=-1):
    """Plain padded forward of one batch in input order: what embed must reproduce."""
    b = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"], output_hidden_states=True)
    return out.hidden_states[layer], b["attention_mask"]


def test_mean_cls_max_pooling_in_input_order(minilm):
    model, tok = minilm
    hidden, mask = reference(model, tok, TEXTS)
    m = mask.unsqueeze(-1).float()
    expected = {
        "mean": (hidden * m).sum(1) / m.sum(1),
        "cls": hidden[:, 0],
        "max": hidden.masked_fill(m == 0, -1e9).amax(1),
    }
    for pooling, want in expected.items():
        got = bertkit.embed(TEXTS, model=model, tokenizer=tok, pooling=pooling, batch_size=3, normalize=False)
        assert got.shape == (8, 384) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL, msg=pooling)


def test_batch_size_and_threads_do_not_change_results(minilm):
    model, tok = minilm
    a = bertkit.embed(TEXTS, model=model, tokenizer=tok, batch_size=1)
    b = bertkit.embed(TEXTS, model=model, tokenizer=tok, batch_size=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        c = bertkit.embed(TEXTS, model=model, tokenizer=tok, batch_size=2)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    torch.testing.assert_close(b, a, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(c, a, atol=ATOL, rtol=RTOL)
    reversed_ = bertkit.embed(TEXTS[::-1], model=model, tokenizer=tok, batch_size=3)
    torch.testing.assert_close(reversed_.flip(0), a, atol=ATOL, rtol=RTOL)


def test_layers_concatenate_and_average(minilm):
    model, tok = minilm
    first, mask = reference(model, tok, TEXTS, layer=0)
    fourth, _ = reference(model, tok, TEXTS, layer=4)
    m = mask.unsqueeze(-1).float()
    got = bertkit.embed(TEXTS, model=model, tokenizer=tok, layers=[0, -3], pooling="mean", normalize=False)
    assert got.shape == (8, 768)
    torch.testing.assert_close(got[:, :384], (first * m).sum(1) / m.sum(1), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(got[:, 384:], (fourth * m).sum(1) / m.sum(1), atol=ATOL, rtol=RTOL)
    averaged = bertkit.embed(TEXTS, model=model, tokenizer=tok, layers=[0, -3], combine="mean", normalize=False)
    torch.testing.assert_close(averaged, (got[:, :384] + got[:, 384:]) / 2, atol=ATOL, rtol=RTOL)
    with pytest.raises(BertkitError, match="layer 7 does not exist"):
        bertkit.embed(TEXTS, model=model, tokenizer=tok, layers=[7])


def test_normalize_single_text_and_errors(minilm):
    model, tok = minilm
    vectors = bertkit.embed(TEXTS, model=model, tokenizer=tok, normalize=True)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(8))
    one = bertkit.embed("I love Paris", model=model, tokenizer=tok, normalize=True)
    assert one.shape == (384,)
    torch.testing.assert_close(one, vectors[0], atol=ATOL, rtol=RTOL)
    assert bertkit.embed([], model=model, tokenizer=tok).shape == (0, 384)
    with pytest.raises(BertkitError, match="pooling 'sum'"):
        bertkit.embed(TEXTS, model=model, tokenizer=tok, pooling="sum")
    with pytest.raises(BertkitError, match="texts must be a list of strings"):
        bertkit.embed([1, 2], model=model, tokenizer=tok)
    with pytest.raises(BertkitError, match="needs tokenizer="):
        bertkit.embed(TEXTS, model=BertModel(model.config))


def test_model_folder_provides_the_tokenizer(minilm_dir, minilm):
    model, tok = minilm
    torch.testing.assert_close(
        bertkit.embed(TEXTS, model=minilm_dir), bertkit.embed(TEXTS, model=model, tokenizer=tok), atol=ATOL, rtol=RTOL
    )
    # the hub options of every model argument pass through (a local folder ignores them); a typo is one line
    torch.testing.assert_close(
        bertkit.embed(TEXTS[:2], model=minilm_dir, local_files_only=True),
        bertkit.embed(TEXTS[:2], model=minilm_dir),
        atol=0,
        rtol=0,
    )
    with pytest.raises(BertkitError, match=r"unknown loading option\(s\) \['revison'\]; use revision"):
        bertkit.embed(TEXTS, model=minilm_dir, revison="main")
    with pytest.raises(BertkitError, match=r"unknown loading option\(s\) \['cache'\]"):
        bertkit.token_embeddings(TEXTS, model=minilm_dir, cache="x")


def test_seed_example_python_differs_by_context_but_not_statically(minilm):
    """The seed's example: 'Python' the snake vs 'Python' the language."""
    model, tok = minilm
    snake, language = bertkit.token_embeddings(
        ["He got bit by Python", "Python is my favorite programming language"], model=model, tokenizer=tok
    )
    assert snake.words == ["He", "got", "bit", "by", "Python"]
    assert snake.tokens == ["[CLS]", "he", "got", "bit", "by", "python", "[SEP]"]
    contextual = F.cosine_similarity(snake.word_vector("python"), language.word_vector("python"), dim=0)
    assert contextual < 0.9  # measured 0.87
    # a static lookup (the input embedding table) gives the same vector in both sentences
    table = model.embeddings.word_embeddings.weight
    a = table[tok.encode("He got bit by Python").ids[5]]
    b = table[tok.encode("Python is my favorite programming language").ids[1]]
    assert torch.equal(a, b)


def test_word_vectors_average_their_pieces(minilm):
    model, tok = minilm
    text = "Sam hated the movie because the ending was unbelievably bad"
    te = bertkit.token_embeddings(text, model=model, tokenizer=tok)
    enc = tok.encode(text)
    assert te.tokens == enc.tokens and te.vectors.shape == (len(enc.ids), 384)
    w = te.words.index("unbelievably")
    pieces = [t for t, word in enumerate(enc.word_ids) if word == enc.word_ids[enc.tokens.index("un")]]
    assert len(pieces) > 1  # the word is split into word pieces
    torch.testing.assert_close(te.word_vectors[w], te.vectors[pieces].mean(0))
    for word, (start, end) in zip(te.words, te.word_offsets):
        assert text[start:end] == word
    with pytest.raises(BertkitError, match="occurs 0 time"):
        te.word_vector("python")


def test_bfloat16_path_stays_close_or_is_refused_without_native_bf16(minilm):
    model, tok = minilm
    if not cpu_has_native("bf16"):  # emulated bf16 is refused, one line
        with pytest.raises(BertkitError, match="dtype bf16: this CPU .* has no native bfloat16"):
            bertkit.embed(TEXTS[:4], model=model, tokenizer=tok, dtype=torch.bfloat16)
        return
    exact = bertkit.embed(TEXTS[:4], model=model, tokenizer=tok)
    bf16 = bertkit.embed(TEXTS[:4], model=model, tokenizer=tok, dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert F.cosine_similarity(exact, bf16).min() >= 0.999
    assert model.dtype == torch.float32  # the user's model is not converted in place


def test_int8_path_keeps_cosine_above_099_for_every_sentence(minilm, shared_data):
    model, tok = minilm
    lines = shared_data("sst2", "validation.tsv").read_text(encoding="utf-8").splitlines()[1:201]
    texts = [line.split("\t")[0] for line in lines]
    exact = bertkit.embed(texts, model=model, tokenizer=tok)
    int8 = bertkit.embed(texts, model=model, tokenizer=tok, dtype="int8")
    cos = F.cosine_similarity(exact, int8)
    assert cos.mean() >= 0.995 and cos.min() >= 0.99, (cos.mean(), cos.min())
    assert not torch.equal(exact, int8)  # it really ran int8 arithmetic
    prepared = prepare(model, "int8")
    assert sum(isinstance(m, Int8Linear) for m in prepared.modules()) >= 20  # most matmuls are int8


def test_int8_linear_per_token_matches_exact_product_closely():
    """Rows of very different scale each keep their own 8-bit grid; 7-bit weights never saturate."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 64)
    x = torch.randn(6, 256)
    x[0] *= 50  # an outlier token
    x[1] = x[1].abs()  # a one-signed row (GELU output)
    exact = linear(x)
    for per_token in (True, False):
        y = Int8Linear(linear, per_token=per_token)(x)
        rel = (y - exact).norm(dim=-1) / exact.norm(dim=-1)
        if per_token:
            assert rel.max() < 0.03, rel
        else:
            assert rel[2:].max() > 0.05  # one scale for the batch: the outlier flattens the small rows
    q = quantize_int8(torch.nn.Sequential(torch.nn.Linear(8, 8)), skip=[r"^0$"])
    assert isinstance(q[0], torch.nn.Linear)  # skipped by name


def test_prepared_copies_are_cached_and_refreshed_after_training(minilm):
    model, _ = minilm
    kind = torch.bfloat16 if cpu_has_native("bf16") else "int8"
    a = prepare(model, kind)
    assert prepare(model, kind) is a and prepare(model, None) is model
    with torch.no_grad():
        model.pooler.dense.bias.add_(0.0)  # an in-place update, as an optimizer step makes
    assert prepare(model, kind) is not a
    with pytest.raises(BertkitError, match="dtype 'int4'"):
        prepare(model, "int4")


def test_fill_mask_scores_only_masks_and_matches_full_softmax():
    from bertkit import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(FIXTURE)
    tok = Tokenizer.from_pretrained(FIXTURE)
    texts = ["paris is a beautiful [MASK] .", "[MASK] love [MASK]"]
    results = fill_mask(texts, model=model, tokenizer=tok, top_k=4)
    assert len(results[0]) == 4 and len(results[1]) == 2 and len(results[1][0]) == 4
    enc = tok(texts[0], return_tensors="pt")
    with torch.no_grad():
        probs = model(**enc).logits[0].softmax(-1)
    position = enc["input_ids"][0].tolist().index(tok.token_to_id("[MASK]"))
    top = probs[position].topk(4)
    assert [r["token"] for r in results[0]] == top.indices.tolist()
    assert [r["score"] for r in results[0]] == pytest.approx(top.values.tolist(), abs=1e-6, rel=1e-5)
    assert results[0][0]["sequence"].startswith("paris is a beautiful")
    with pytest.raises(BertkitError, match="has no \\[MASK\\]"):
        fill_mask("no mask here", model=model, tokenizer=tok)


def test_fill_mask_refuses_a_model_without_mlm_weights(minilm_dir):
    with pytest.raises(BertkitError, match="no masked-LM head weights"):
        fill_mask("paris is a beautiful [MASK] .", model=minilm_dir)


def test_a_hub_name_loads_through_the_one_loader(minilm_dir, tmp_path, monkeypatch):
    """embed / fill_mask / token_embeddings take a hub name with revision=, token=, ... as every model
    argument does (bertkit.hub, stubbed here): the snapshot's own recipe applies (MiniLM: unit length)."""
    import sys
    import types

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BERTKIT_OFFLINE", raising=False)
    snapshot = tmp_path / "snapshot"
    snapshot.symlink_to(minilm_dir, target_is_directory=True)
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(snapshot)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download))
    got = bertkit.embed(TEXTS[:3], model="someone/minilm", revision="v2", token="t")
    assert calls and calls[0][0] == "someone/minilm" and calls[0][1]["revision"] == "v2"
    torch.testing.assert_close(got, bertkit.embed(TEXTS[:3], model=minilm_dir), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(3), atol=ATOL, rtol=0)
    words = bertkit.token_embeddings("He got bit by Python", model="someone/minilm", revision="v2")
    assert words.words == ["He", "got", "bit", "by", "Python"]
