"""`bertkit.pipeline(task, model=DIR)`: a fine-tuned (or pretrained) folder as a callable.

    clf = bertkit.pipeline("sentiment", model="out/sst2")
    clf("a gripping, funny film")          # {"label": "positive", "score": 0.97, "probabilities": {...}}
    qa = bertkit.pipeline("qa", model="out/squad")
    qa(question="Who?", context=long_text) # {"answer", "start", "end", "score"}; any context length
    ner = bertkit.pipeline("ner", model="out/conll")
    ner("Jeremy lives in Paris")           # [{"type": "PER", "text": "Jeremy", "start": 0, "end": 6, ...}]
    nsp = bertkit.pipeline("nsp", model=PRETRAINED)
    nsp(("She cooked pasta.", "It was delicious."))  # {"label": "isNext", "score", "is_next"}

Hugging Face's task names are accepted too and answer with Hugging Face's output keys
(docs/hf.md has the table): "text-classification", "sentiment-analysis", "question-answering",
"token-classification" (and "ner" given aggregation_strategy=), "feature-extraction",
"fill-mask". Each call takes one input or a list; lists run in length-sorted batches and come
back in input order. device= (default: where a given model is, else "auto") and dtype=
(float32, bfloat16, float16, int8) as in bertkit.embed. The pipelines reuse the task modules'
feature and decoding code, so what `evaluate` scores is exactly what a pipeline returns.
"""

from __future__ import annotations

from typing import Any

from bertkit.constants import ALL_PIPELINE_TASKS as ALL_TASKS
from bertkit.constants import HF_PIPELINE_TASKS as HF_TASKS
from bertkit.constants import PIPELINE_TASKS as TASKS
from bertkit.errors import BertkitError
from bertkit.pipelines.base import Pipeline
from bertkit.pipelines.pretrained import EmbedPipeline, FeatureExtractionPipeline, FillMaskPipeline
from bertkit.pipelines.spans import QuestionAnsweringPipeline, TokenClassificationPipeline
from bertkit.pipelines.text import NextSentencePipeline, TextClassificationPipeline

CLASSES: dict[str, type[Pipeline]] = {
    "sentiment": TextClassificationPipeline,
    "classify": TextClassificationPipeline,
    "nli": TextClassificationPipeline,
    "text-classification": TextClassificationPipeline,
    "sentiment-analysis": TextClassificationPipeline,
    "nsp": NextSentencePipeline,
    "qa": QuestionAnsweringPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "ner": TokenClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "fill-mask": FillMaskPipeline,
    "embed": EmbedPipeline,
    "feature-extraction": FeatureExtractionPipeline,
}


def pipeline(task: str, model: Any = None, tokenizer: Any = None, **options: Any) -> Pipeline:
    """The pipeline for `task` from a model folder or hub name (or a loaded model plus its tokenizer).

    options: device, dtype, max_seq_len, backend ("torch", or "onnx" for a folder made by
    `bertkit export onnx`), the hub options (revision, token, cache_dir,
    local_files_only) and any option the task's calls take (batch_size, top_k,
    aggregation_strategy, ...), which then become that pipeline's defaults.
    """
    if task not in CLASSES:
        raise BertkitError(
            f"pipeline: unknown task {task!r}; choose one of {', '.join(TASKS)} "
            f"(or Hugging Face's {', '.join(n for n in HF_TASKS if n not in TASKS)})"
        )
    if model is None:
        raise BertkitError(f"pipeline({task!r}): give model= a model folder (e.g. the --out of bertkit finetune)")
    return CLASSES[task](task, model, tokenizer, **options)


__all__ = [
    "ALL_TASKS",
    "HF_TASKS",
    "TASKS",
    "EmbedPipeline",
    "FeatureExtractionPipeline",
    "FillMaskPipeline",
    "NextSentencePipeline",
    "Pipeline",
    "QuestionAnsweringPipeline",
    "TextClassificationPipeline",
    "TokenClassificationPipeline",
    "pipeline",
]
