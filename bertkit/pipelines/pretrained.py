"""Pipelines over a pretrained model without a fine-tuned head: fill-mask, sentence vectors, token features.

"fill-mask": the top_k words for each [MASK] as {"token", "token_str", "score", "sequence"}
(bertkit's and Hugging Face's keys). "embed": one sentence vector per text (the folder's pooling
and normalisation, see bertkit.sentence_folder). "feature-extraction" (Hugging Face's): the
last layer's vector of every token, [CLS] and [SEP] included, as nested lists [1][tokens][hidden]
(a tensor [1, tokens, hidden] with return_tensors=True).
"""

from __future__ import annotations

from typing import Any, ClassVar

from bertkit.inference.masked import fill_mask
from bertkit.inference.vectors import embed, token_embeddings
from bertkit.pipelines.base import Pipeline

_DTYPES = {"float32": None, "bfloat16": "bfloat16", "float16": "float16", "int8": "int8"}


class FillMaskPipeline(Pipeline):
    """ "Paris is a beautiful [MASK]." -> the top_k words for each [MASK] with probabilities."""

    head = "BertForMaskedLM"
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "top_k": 5}

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        return fill_mask(
            inputs,
            model=self.model,
            tokenizer=self.tokenizer,
            top_k=options["top_k"] or 5,
            batch_size=options["batch_size"],
            dtype=_DTYPES[self.dtype],
            device=self.device,
        )


class EmbedPipeline(Pipeline):
    """text -> one sentence vector (the folder's pooling unless pooling= says else)."""

    head = "BertModel"
    require_head = False  # a sentence-embedding folder has no pooler weights to check
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "pooling": None, "normalize": None}
    why_not: ClassVar[dict[str, str]] = {"top_k": "does not apply to sentence vectors; leave it out"}

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        vectors = embed(
            inputs,
            model=self.model,
            tokenizer=self.tokenizer,
            pooling=options["pooling"],
            normalize=options["normalize"],
            batch_size=options["batch_size"],
            dtype=_DTYPES[self.dtype],
            max_seq_len=self.asked_max_seq_len,
            device=self.device,
        )
        return list(vectors)


class FeatureExtractionPipeline(Pipeline):
    """text -> the last layer's token vectors, Hugging Face's feature-extraction shape."""

    head = "BertModel"
    require_head = False
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "return_tensors": False}
    why_not: ClassVar[dict[str, str]] = {"top_k": "does not apply to token vectors; leave it out"}

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        found = token_embeddings(
            inputs,
            model=self.model,
            tokenizer=self.tokenizer,
            batch_size=options["batch_size"],
            dtype=_DTYPES[self.dtype],
            max_seq_len=self.max_seq_len,
            device=self.device,
        )
        vectors = [t.vectors.unsqueeze(0) for t in found]  # [1, T, H] each
        return vectors if options["return_tensors"] else [v.tolist() for v in vectors]
