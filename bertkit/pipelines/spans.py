"""Answers that are spans of the input: extractive question answering and named entities.

Both read texts of any length through overlapping windows and give character offsets into the
input. QA ("qa", Hugging Face's "question-answering"): {"answer", "start", "end", "score"}
(HF's keys), top_k answers on request. NER: bertkit's "ner" gives word-level entities
{"type", "text", "start", "end", "score"} decoded the way conlleval reads tags; Hugging Face's
"token-classification" (and "ner" given an aggregation_strategy) gives HF's shapes, see
bertkit.pipelines.entities.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bertkit.errors import BertkitError
from bertkit.pipelines.base import Pipeline
from bertkit.pipelines.entities import AGGREGATIONS, token_entities
from bertkit.tasks import ner, qa
from bertkit.tasks.features import forward_batches, softmax
from bertkit.tasks.readers import QAExample

NER_KEYS = ("type", "text", "start", "end", "score")


class QuestionAnsweringPipeline(Pipeline):
    """{"question", "context"} -> {"answer", "start", "end", "score"}; contexts of any length."""

    head = "BertForQuestionAnswering"
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "top_k": 1, "max_answer_tokens": 30}

    def __call__(self, inputs: Any = None, *, question: Any = None, context: Any = None, **options: Any) -> Any:
        if inputs is None:
            if question is None or context is None:
                raise BertkitError("qa: give question= and context=, or {'question', 'context'} inputs")
            if isinstance(question, list) and isinstance(context, list):
                if len(question) != len(context):
                    raise BertkitError(f"qa: {len(question)} questions but {len(context)} contexts")
                inputs = [{"question": q, "context": c} for q, c in zip(question, context)]
            else:
                inputs = {"question": question, "context": context}
        return super().__call__(inputs, **options)

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        examples = []
        for i, x in enumerate(inputs):
            if (
                not isinstance(x, dict)
                or not isinstance(x.get("question"), str)
                or not isinstance(x.get("context"), str)
                or not x["question"].strip()
                or not x["context"].strip()
            ):
                raise BertkitError(f"qa: input {i} needs a non-empty 'question' and 'context'")
            examples.append(QAExample(str(i), x["question"], x["context"]))
        max_len = min(
            int(self.settings.get("max_seq_len") or self.settings.get("max_len") or qa.MAX_LENGTH), self.max_seq_len
        )
        stride = min(int(self.settings.get("doc_stride") or qa.DOC_STRIDE), max_len // 2)
        features, windows = qa.QATask().encode(examples, self.tokenizer, max_len, stride)
        out = forward_batches(self.runner(features), features, options["batch_size"], qa.QATask.outputs, per_token=True)
        top_k = options["top_k"] or 1
        answers = qa.decode_answers(
            examples, windows, [o[0] for o in out], [o[1] for o in out], options["max_answer_tokens"], n_best=top_k
        )
        results = []
        for cands in answers:
            found = [{"answer": c["text"], "start": c["start"], "end": c["end"], "score": c["score"]} for c in cands]
            results.append(found[0] if top_k == 1 else found[:top_k])
        return results


class TokenClassificationPipeline(Pipeline):
    """text -> entities, pieces merged into words (bertkit's "ner") or Hugging Face's shapes."""

    head = "BertForTokenClassification"
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "aggregation_strategy": None}
    why_not: ClassVar[dict[str, str]] = {"top_k": "does not apply: each word gets one tag; leave it out"}

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                raise BertkitError(f"{self.task}: input {i} must be a string, got {type(x).__name__}")
        strategy = options["aggregation_strategy"]
        if strategy is None and self.task == "ner":
            return self._word_entities(inputs, options["batch_size"])
        strategy = "none" if strategy is None else str(getattr(strategy, "value", strategy)).lower()
        if strategy not in AGGREGATIONS:
            raise BertkitError(
                f"{self.task}: aggregation_strategy {strategy!r} is not one of {', '.join(AGGREGATIONS)}"
            )
        return token_entities(self, inputs, strategy, options["batch_size"])

    def window_stride(self) -> int:
        return min(int(self.settings.get("doc_stride") or 128), self.max_seq_len // 2)

    def _word_entities(self, inputs: list[str], batch_size: int) -> list[list[dict]]:
        spans = [ner.split_words(text) for text in inputs]
        windows = ner.make_windows(inputs, spans, self.tokenizer, self.max_seq_len, stride=self.window_stride())
        features = [w.feature() for w in windows]
        out = forward_batches(self.runner(features), features, batch_size, per_token=True)
        id2label = {int(k): v for k, v in (self.model.config.id2label or {}).items()}
        probs = ner.word_probabilities(windows, [softmax(o[0]) for o in out], [len(s) for s in spans])
        results = []
        for text, word_spans, p in zip(inputs, spans, probs):
            tags, scores = ner.tags_from_probabilities(p, id2label)
            ents = ner.word_entities(text, word_spans, tags, scores)
            results.append([{k: e[k] for k in NER_KEYS} for e in ents])
        return results
