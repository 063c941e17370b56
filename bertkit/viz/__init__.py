"""Looking inside BERT: attention views (PNG, HTML) and context-dependent word vectors.

    from bertkit.viz import compute_attention, attention_png, attention_html
    att = compute_attention(model, tokenizer, "The cat sat on the mat.")
    attention_png(att.tokens, att.weights, "head.png", layer=2, head=5)   # or att.to_png(...)
    attention_html(att.tokens, att.weights, "view.html", type_ids=att.type_ids)

The renderers take tokens and an attention stack (numpy [L, A, T, T], or the model's
`outputs.attentions` directly); matplotlib is imported only when a figure is drawn.
"""

from bertkit.viz.attention import Attention, compute_attention
from bertkit.viz.attention_html import attention_html, head_view_html
from bertkit.viz.attention_png import attention_png, head_figure, layer_figure, overview_figure
from bertkit.viz.contextual import WordSimilarity, WordVectors, cosine, find_word, word_similarity, word_vectors
from bertkit.viz.embeddings_plot import embedding_figure, embedding_map, pca_2d
from bertkit.viz.stack import as_attention_stack, check_index, head_summary

__all__ = [
    "Attention",
    "as_attention_stack",
    "compute_attention",
    "head_summary",
    "check_index",
    "attention_html",
    "head_view_html",
    "attention_png",
    "head_figure",
    "layer_figure",
    "overview_figure",
    "WordSimilarity",
    "WordVectors",
    "cosine",
    "find_word",
    "word_similarity",
    "word_vectors",
    "embedding_figure",
    "embedding_map",
    "pca_2d",
]
