"""Feature extraction: texts -> sentence vectors, per-token and per-word vectors, [MASK] filling.

    vectors = bertkit.embed(texts, model="all-MiniLM-L6-v2 folder")   # == SentenceTransformer(...).encode
    words = bertkit.token_embeddings("He got bit by Python", model=DIR)
    bertkit.fill_mask("Paris is a beautiful [MASK].", model=DIR)

Everything runs through one batching loop (batches.py); runtime.py decides which model runs,
where (`device=`) and in which arithmetic (`dtype=`); sentence.py pools token vectors as a
sentence-transformers folder's recipe (bertkit.sentence_folder: pooling, normalisation, token
limit, prompts) says.
"""

from bertkit.inference.batches import for_each_batch, pad, sorted_batches, tokenize
from bertkit.inference.masked import fill_mask
from bertkit.inference.runtime import half_is_native, load, prepare
from bertkit.inference.sentence import pool
from bertkit.inference.vectors import TokenEmbeddings, embed, folder_recipe, token_embeddings
from bertkit.sentence_folder import POOLINGS, SentenceConfig, sentence_config

__all__ = [
    "POOLINGS",
    "SentenceConfig",
    "TokenEmbeddings",
    "embed",
    "fill_mask",
    "folder_recipe",
    "for_each_batch",
    "half_is_native",
    "load",
    "pad",
    "pool",
    "prepare",
    "sentence_config",
    "sorted_batches",
    "token_embeddings",
    "tokenize",
]
