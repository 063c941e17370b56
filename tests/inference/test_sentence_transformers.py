"""sentence-transformers folders: `bertkit.embed(texts, model=FOLDER)` equals `SentenceTransformer(FOLDER).encode`.

The peer reads the same folder files bertkit reads (modules.json, 1_Pooling/config.json,
sentence_bert_config.json, config_sentence_transformers.json), so every recipe below is checked
against what sentence-transformers itself makes of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from peers import peer

import bertkit
from bertkit.errors import BertkitError, InputFileError
from bertkit.inference import sentence_config

COSINE_BAR = 0.99999  # issue 15: every text, float32 on both sides
TEXTS = [
    "I love Paris",
    "Sam hated the movie because the ending was unbelievably bad",
    "The immune system protects organisms from disease . " * 12,
    "a",
    "Turn the radio on",
]
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def st_folder(
    tmp: Path,
    minilm_dir: Path,
    name: str,
    pooling: dict,
    *,
    normalize: bool = True,
    bert: dict | None = None,
    extra: dict | None = None,
    transformer_path: str = "",
) -> Path:
    """A sentence-transformers folder around MiniLM's weights (linked, not copied) with this recipe."""
    folder = tmp / name
    weights = folder / transformer_path
    weights.mkdir(parents=True)
    for f in minilm_dir.iterdir():
        if f.is_file() and f.name not in ST_FILES and not f.name.startswith("."):
            (weights / f.name).symlink_to(f)
    modules = [
        {"idx": 0, "name": "0", "path": transformer_path, "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (weights / "sentence_bert_config.json").write_text(
        json.dumps(bert or {"max_seq_length": 256, "do_lower_case": False})
    )
    if extra is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps(extra))
    return folder


def peer_encode(folder: Path, texts: list[str], **kwargs) -> torch.Tensor:
    st = peer("sentence_transformers").SentenceTransformer(str(folder), device="cpu")
    return torch.as_tensor(st.encode(texts, batch_size=16, **kwargs))


def assert_same_vectors(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    cos = F.cosine_similarity(ours, theirs)
    assert cos.min() >= COSINE_BAR, cos.min()
    # norms agree too (normalised or not): |a - b| <= 1e-5 + 1e-4 * |b|
    torch.testing.assert_close(ours.norm(dim=-1), theirs.norm(dim=-1), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_minilm_equals_sentence_transformers_on_sst2_and_book_paragraphs(minilm_dir, shared_data):
    lines = shared_data("sst2", "validation.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines[:400]]
    book = sorted(shared_data("corpus", "books").glob("*.txt"))[0].read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in book.split("\n\n") if len(p.split()) >= 20]
    long_ones = [p for p in paragraphs if len(p.split()) > 220][:20]
    texts = sentences + paragraphs[:100] + long_ones
    tok = bertkit.Tokenizer.from_pretrained(minilm_dir)
    beyond = sum(len(tok.encode(t).ids) > 256 for t in texts)
    assert len(texts) >= 500 and beyond >= 10  # the test covers texts cut at max_seq_length
    ours = bertkit.embed(texts, model=minilm_dir)
    assert_same_vectors(ours, peer_encode(minilm_dir, texts))
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(len(texts)), atol=1e-5, rtol=0)  # Normalize module


def test_the_packaged_folder_recipe_is_read(minilm_dir):
    recipe = sentence_config(minilm_dir)
    assert recipe.sentence_transformers and recipe.pooling == ("mean",) and recipe.normalize
    assert recipe.max_seq_len == 256 and recipe.similarity_fn_name == "cosine"
    # a bare BERT folder: mean pooling, no normalisation, the model's own limit
    bare = sentence_config(Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny")
    assert (
        not bare.sentence_transformers and bare.pooling == ("mean",) and not bare.normalize and bare.max_seq_len is None
    )


@pytest.mark.parametrize(
    "name, pooling, normalize",
    [
        ("cls", {"embedding_dimension": 384, "pooling_mode": "cls"}, False),
        ("max", {"word_embedding_dimension": 384, "pooling_mode_max_tokens": True}, True),
        ("sqrt", {"embedding_dimension": 384, "pooling_mode": "mean_sqrt_len_tokens"}, False),
        ("weighted", {"embedding_dimension": 384, "pooling_mode": "weightedmean"}, False),
        ("last", {"embedding_dimension": 384, "pooling_mode": "lasttoken"}, True),
        (
            "cls+mean",
            {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
            False,
        ),
    ],
)
def test_every_pooling_mode_equals_the_peer(tmp_path, minilm_dir, name, pooling, normalize):
    folder = st_folder(tmp_path, minilm_dir, name, pooling, normalize=normalize, bert={"max_seq_length": 24})
    ours = bertkit.embed(TEXTS, model=folder)
    assert_same_vectors(ours, peer_encode(folder, TEXTS))


def test_prompts_and_include_prompt_equal_the_peer(tmp_path, minilm_dir):
    extra = {"prompts": {"query": "query: ", "doc": "passage: "}, "default_prompt_name": "query"}
    pooling = {"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": False}
    folder = st_folder(tmp_path, minilm_dir, "prompts", pooling, extra=extra)
    recipe = sentence_config(folder)
    assert recipe.default_prompt_name == "query" and not recipe.include_prompt
    assert_same_vectors(bertkit.embed(TEXTS, model=folder), peer_encode(folder, TEXTS))  # the default prompt
    assert_same_vectors(
        bertkit.embed(TEXTS, model=folder, prompt_name="doc"), peer_encode(folder, TEXTS, prompt_name="doc")
    )
    assert_same_vectors(bertkit.embed(TEXTS, model=folder, prompt=""), peer_encode(folder, TEXTS, prompt=""))
    with pytest.raises(BertkitError, match="prompt_name 'title' is not one of this model's prompts"):
        bertkit.embed(TEXTS, model=folder, prompt_name="title")


def test_older_layout_with_the_bert_in_a_sub_folder(tmp_path, minilm_dir):
    pooling = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}
    folder = st_folder(tmp_path, minilm_dir, "old", pooling, transformer_path="0_Transformer")
    assert not (folder / "config.json").exists()
    assert_same_vectors(bertkit.embed(TEXTS, model=folder), peer_encode(folder, TEXTS))


def test_explicit_arguments_override_the_folder(minilm_dir):
    model = bertkit.BertModel.from_pretrained(minilm_dir)
    tok = bertkit.Tokenizer.from_pretrained(minilm_dir)
    text = "the immune system protects organisms from disease . " * 40  # ~400 tokens
    b = tok([text], truncation=True, max_length=300, return_tensors="pt")
    with torch.no_grad():
        hidden = model(b["input_ids"], b["attention_mask"], b["token_type_ids"]).last_hidden_state
    raw_cls = bertkit.embed(text, model=minilm_dir, pooling="cls", normalize=False, max_seq_len=300)
    torch.testing.assert_close(raw_cls, hidden[0, 0], atol=1e-5, rtol=1e-4)
    assert abs(float(raw_cls.norm()) - 1.0) > 0.1  # not normalised
    folder_default = bertkit.embed(text, model=minilm_dir)  # mean over the text cut at 256 tokens, unit length
    b = tok([text], truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(b["input_ids"], b["attention_mask"], b["token_type_ids"]).last_hidden_state
    assert hidden.shape[1] == 256
    torch.testing.assert_close(folder_default, F.normalize(hidden[0].mean(0), dim=0), atol=1e-5, rtol=1e-4)


def test_broken_recipes_are_one_line_errors(tmp_path, minilm_dir):
    pooling = {"embedding_dimension": 384, "pooling_mode": "mean"}
    dense = st_folder(tmp_path, minilm_dir, "dense", pooling)
    modules = json.loads((dense / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(InputFileError, match=r"modules.json: module sentence_transformers.models.Dense \(3_Dense\)"):
        bertkit.embed(TEXTS, model=dense)
    odd = st_folder(tmp_path, minilm_dir, "odd", {"pooling_mode": "median"})
    with pytest.raises(InputFileError, match="pooling mode 'median' is not one of"):
        bertkit.embed(TEXTS, model=odd)
    broken = st_folder(tmp_path, minilm_dir, "broken", pooling)
    (broken / "modules.json").write_text("[{")
    with pytest.raises(InputFileError, match=r"modules.json:1: not valid JSON"):
        bertkit.embed(TEXTS, model=broken)
