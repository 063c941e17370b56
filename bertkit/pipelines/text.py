"""Whole-text answers: sentence (pair) classification and next-sentence prediction.

bertkit's names: "sentiment" / "classify" (a text) and "nli" (premise, hypothesis) give
{"label", "score", "probabilities"}; with top_k, the k best {"label", "score"}. Hugging Face's
"text-classification" / "sentiment-analysis" give its shapes: {"label", "score"} per input (a
one-element list for a single string), top_k=k the k best, top_k=None every label. "nsp" reads
BERT's next-sentence head: {"label": "isNext" | "notNext", "score", "is_next"} for (A, B).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bertkit.errors import BertkitError
from bertkit.pipelines.base import UNSET, Pipeline, text_pair
from bertkit.tasks import classification
from bertkit.tasks.features import forward_batches, softmax
from bertkit.tasks.readers import TextExample

HF_CLASSIFICATION = ("text-classification", "sentiment-analysis")


class TextClassificationPipeline(Pipeline):
    """sentiment / classify: a text or (text, text_pair); nli: (premise, hypothesis) or a dict."""

    head = "BertForSequenceClassification"
    call_options: ClassVar[dict[str, Any]] = {"batch_size": 32, "top_k": UNSET}

    def __init__(self, task: str, model: Any, tokenizer: Any = None, **options: Any) -> None:
        super().__init__(task, model, tokenizer, **options)
        trained_for = self.settings.get("task")
        wanted = {"sentiment": "classify", "sentiment-analysis": "classify", "nli": "nli"}.get(task)
        if trained_for and wanted and trained_for != wanted:
            use = "'sentiment' or 'classify'" if trained_for == "classify" else f"{trained_for!r} or 'classify'"
            raise BertkitError(f"pipeline {task!r}: this model was fine-tuned for {trained_for}; use {use}")
        config = self.model.config
        id2label = {int(i): str(v) for i, v in (config.id2label or {}).items()}
        id2label = id2label or {i: str(i) for i in range(config.num_labels)}
        if task == "sentiment" and sorted(id2label.values()) == ["0", "1"]:
            id2label = {i: ("negative" if v == "0" else "positive") for i, v in id2label.items()}  # SST-2 ids
        self.id2label = id2label

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        examples = [TextExample(*text_pair(self.task, x, self.task == "nli" or None)) for x in inputs]
        # single texts and pairs are encoded apart (pairs truncate longest-first), then run together
        groups = [
            [i for i, ex in enumerate(examples) if (ex.text_pair is not None) is paired] for paired in (False, True)
        ]
        features = [
            f
            for group in groups
            if group
            for f in classification.encode([examples[i] for i in group], self.tokenizer, self.max_seq_len)
        ]
        outputs = forward_batches(self.runner(features), features, options["batch_size"])
        logits = np.empty((len(examples), outputs[0][0].shape[-1]), dtype=np.float32)
        logits[groups[0] + groups[1]] = np.stack([o[0] for o in outputs])  # back in input order
        probs = softmax(logits)
        top_k = options["top_k"]
        if self.task in HF_CLASSIFICATION:
            return [self._ranked(row, top_k if top_k is not UNSET else 1, flat=top_k is UNSET) for row in probs]
        if top_k is UNSET or top_k is None:
            return classification.predictions(probs, self.id2label)
        return [self._ranked(row, top_k, flat=False) for row in probs]

    def _ranked(self, row: np.ndarray, top_k: int | None, flat: bool) -> Any:
        order = np.argsort(-row, kind="stable")[: top_k or len(row)]
        ranked = [{"label": self.id2label[int(i)], "score": float(row[i])} for i in order]
        return ranked[0] if flat else ranked

    def single(self, given: Any, result: Any, options: dict[str, Any]) -> Any:
        if self.task in HF_CLASSIFICATION and options["top_k"] is UNSET and isinstance(given, str):
            return [result]  # Hugging Face answers one string with a one-element list
        return result


class NextSentencePipeline(Pipeline):
    """(sentence A, sentence B) -> whether B follows A, from the pretraining NSP head."""

    head = "BertForNextSentencePrediction"
    why_not: ClassVar[dict[str, str]] = {"top_k": "does not apply (two labels: isNext / notNext); leave it out"}
    LABELS = ("isNext", "notNext")  # BERT's NSP head: logit 0 = isNext, 1 = notNext

    def run(self, inputs: list[Any], options: dict[str, Any]) -> list[Any]:
        pairs = [text_pair(self.task, x, True) for x in inputs]
        enc = self.tokenizer(
            [a for a, _ in pairs],
            text_pair=[b for _, b in pairs],
            truncation="longest_first",
            max_length=self.max_seq_len,
            padding=False,
        )
        features = [
            {"input_ids": list(ids), "token_type_ids": list(types)}
            for ids, types in zip(enc["input_ids"], enc["token_type_ids"])
        ]
        logits = forward_batches(self.runner(features), features, options["batch_size"])
        results = []
        for row in softmax(np.stack([o[0] for o in logits])):
            best = int(row.argmax())
            results.append({"label": self.LABELS[best], "score": float(row[best]), "is_next": float(row[0])})
        return results
