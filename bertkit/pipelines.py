"""`bertkit.pipeline(task, model=DIR)`: a fine-tuned (or pretrained) folder as a callable.

    clf = bertkit.pipeline("sentiment", model="out/sst2")
    clf("a gripping, funny film")          # {"label": "positive", "score": 0.97, "probabilities": {...}}
    qa = bertkit.pipeline("qa", model="out/squad")
    qa(question="Who?", context=long_text) # {"answer", "start", "end", "score"}; any context length
    ner = bertkit.pipeline("ner", model="out/conll")
    ner("Jeremy lives in Paris")           # [{"type": "PER", "text": "Jeremy", "start": 0, "end": 6, ...}]

Each call takes one input or a list; lists run in length-sorted batches and come back in input
order. The pipelines reuse the task modules' feature and decoding code, so what `evaluate`
scores is exactly what a pipeline returns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError

TASKS = ("sentiment", "classify", "nli", "qa", "ner", "fill-mask", "embed")
SETTINGS_FILE = "finetune.json"  # written by bertkit.tasks.finetune next to the weights


def pipeline(task: str, model: str | Path | Any = None, tokenizer: Any = None, **options: Any) -> Pipeline:
    """Build the pipeline for `task` from a model folder (or a loaded model plus its tokenizer)."""
    classes = {
        "sentiment": TextClassificationPipeline,
        "classify": TextClassificationPipeline,
        "nli": TextClassificationPipeline,
        "qa": QuestionAnsweringPipeline,
        "ner": TokenClassificationPipeline,
        "fill-mask": FillMaskPipeline,
        "embed": EmbedPipeline,
    }
    if task not in classes:
        raise BertkitError(f"pipeline: unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if model is None:
        raise BertkitError(f"pipeline({task!r}): give model= a model folder (e.g. the --out of bertkit finetune)")
    return classes[task](task, model, tokenizer, **options)


def load_settings(folder: str | Path) -> dict:
    """The fine-tuning settings saved with a model ({} for a plain pretrained folder)."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg})", err.lineno) from None


def load_model_and_tokenizer(head: str, model: Any, tokenizer: Any = None):
    """A model folder -> (model in eval mode, tokenizer, saved settings); objects pass through."""
    import bertkit.model as models
    from bertkit.tokenizers import Tokenizer

    settings: dict = {}
    if isinstance(model, (str, Path)):
        folder = Path(model)
        if not folder.is_dir():
            raise InputFileError(folder, "model folder not found (give the folder holding config.json)")
        settings = load_settings(folder)
        model = getattr(models, head).from_pretrained(folder)
        check_trained_head(model, folder)
        if tokenizer is None:
            tokenizer = Tokenizer.from_pretrained(folder)
    elif tokenizer is None:
        raise BertkitError("pipeline: a model object needs tokenizer= too")
    if isinstance(tokenizer, (str, Path)):
        tokenizer = Tokenizer.from_pretrained(tokenizer)
    model.eval()
    return model, tokenizer, settings


def check_trained_head(model, folder) -> None:
    """Refuse a folder whose checkpoint lacks this head: its fresh random weights would answer noise."""
    new = list(getattr(getattr(model, "loading_info", None), "newly_initialized", []) or [])
    if new:
        raise InputFileError(
            folder,
            f"this checkpoint has no trained weights for {type(model).__name__} "
            f"({', '.join(new[:4])}{', ...' if len(new) > 4 else ''}); give a folder made by "
            "bertkit finetune for this task (or a checkpoint that has this head)",
        )


class Pipeline:
    head = "BertModel"

    def __init__(
        self, task: str, model: Any, tokenizer: Any = None, max_length: int | None = None, backend: str = "torch"
    ):
        self.task = task
        if backend == "torch":
            self.model, self.tokenizer, self.settings = load_model_and_tokenizer(self.head, model, tokenizer)
        else:  # an exported folder run by onnxruntime, called like the torch model
            from bertkit.export.runner import onnx_backend

            self.model, self.tokenizer = onnx_backend(model, tokenizer, self.head, backend)
            self.settings = load_settings(self.model.folder)
        limit = self.model.config.max_position_embeddings
        self.max_length = min(max_length or self.settings.get("max_len") or limit, limit)

    def __call__(self, inputs, **options):
        if isinstance(inputs, list) and not inputs:
            return []
        single = not isinstance(inputs, list)
        results = self.run([inputs] if single else inputs, **options)
        return results[0] if single else results

    def run(self, inputs: list, **options) -> list:
        raise NotImplementedError


# ----------------------------------------------------------------------------- classification


class TextClassificationPipeline(Pipeline):
    """sentiment / classify: a text; nli: (premise, hypothesis) or {"premise", "hypothesis"}."""

    head = "BertForSequenceClassification"

    def __init__(self, task, model, tokenizer=None, **options):
        super().__init__(task, model, tokenizer, **options)
        trained_for = self.settings.get("task")
        wanted = {"sentiment": "classify", "nli": "nli"}.get(task)
        if trained_for and wanted and trained_for != wanted:
            use = "'sentiment' or 'classify'" if trained_for == "classify" else f"{trained_for!r} or 'classify'"
            raise BertkitError(f"pipeline {task!r}: this model was fine-tuned for {trained_for}; use {use}")
        id2label = self.model.config.id2label or {i: str(i) for i in range(self.model.config.num_labels)}
        if task == "sentiment" and sorted(id2label.values()) == ["0", "1"]:
            id2label = {i: ("negative" if v == "0" else "positive") for i, v in id2label.items()}  # SST-2 ids
        self.id2label = id2label

    def run(self, inputs: list, batch_size: int = 32) -> list[dict]:
        import numpy as np

        from bertkit.tasks import classification
        from bertkit.tasks.batching import forward_batches, softmax
        from bertkit.tasks.readers import TextExample

        examples = [TextExample(*self._pair(x)) for x in inputs]
        pairs = [ex.text_pair is not None for ex in examples]
        if any(pairs) and not all(pairs):
            raise BertkitError(f"{self.task}: give every input as a pair, or none")
        features, _ = classification.ClassificationTask(self.task).encode(examples, self.tokenizer, self.max_length, 0)
        logits = forward_batches(self.model, features, batch_size)
        return classification.predictions(softmax(np.stack([o[0] for o in logits])), self.id2label)

    def _pair(self, x) -> tuple[str, str | None]:
        if isinstance(x, str):
            if self.task == "nli":
                raise BertkitError("nli: give (premise, hypothesis) pairs, not single strings")
            return x, None
        if isinstance(x, dict):
            keys = ("premise", "hypothesis") if "premise" in x else ("text", "text_pair")
            return x[keys[0]], x.get(keys[1])
        if isinstance(x, (tuple, list)) and len(x) == 2:
            return x[0], x[1]
        raise BertkitError(f"{self.task}: cannot read input {x!r}; give a string or a (text, text_pair) pair")


# ----------------------------------------------------------------------------- question answering


class QuestionAnsweringPipeline(Pipeline):
    """{"question", "context"} -> {"answer", "start", "end", "score"}; contexts of any length."""

    head = "BertForQuestionAnswering"

    def __call__(self, inputs=None, *, question: str | None = None, context: str | None = None, **options):
        if inputs is None:
            if question is None or context is None:
                raise BertkitError("qa: give question= and context=, or {'question', 'context'} inputs")
            inputs = {"question": question, "context": context}
        return super().__call__(inputs, **options)

    def run(self, inputs: list, batch_size: int = 32, top_k: int = 1, max_answer_tokens: int = 30) -> list:
        from bertkit.tasks import qa
        from bertkit.tasks.batching import forward_batches
        from bertkit.tasks.readers import QAExample

        examples = []
        for i, x in enumerate(inputs):
            if (
                not isinstance(x, dict)
                or not str(x.get("question", "")).strip()
                or not str(x.get("context", "")).strip()
            ):
                raise BertkitError(f"qa: input {i} needs a non-empty 'question' and 'context'")
            examples.append(QAExample(str(i), x["question"], x["context"]))
        max_length = min(self.settings.get("max_len", qa.MAX_LENGTH), self.max_length)
        stride = min(self.settings.get("doc_stride", qa.DOC_STRIDE), max_length // 2)
        features, windows = qa.QATask().encode(examples, self.tokenizer, max_length, stride)
        out = forward_batches(self.model, features, batch_size, qa.QATask.outputs, per_token=True)
        answers = qa.decode_answers(
            examples, windows, [o[0] for o in out], [o[1] for o in out], max_answer_tokens, n_best=max(top_k, 1)
        )
        results = []
        for cands in answers:
            found = [{"answer": c["text"], "start": c["start"], "end": c["end"], "score": c["score"]} for c in cands]
            results.append(found[0] if top_k == 1 else found[:top_k])
        return results


# ----------------------------------------------------------------------------- named entities


class TokenClassificationPipeline(Pipeline):
    """text -> entities [{"type", "text", "start", "end", "score"}], pieces merged into words."""

    head = "BertForTokenClassification"

    def run(self, inputs: list, batch_size: int = 32) -> list[list[dict]]:
        from bertkit.tasks import ner
        from bertkit.tasks.batching import forward_batches, softmax

        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                raise BertkitError(f"ner: input {i} must be a string, got {type(x).__name__}")
        spans = [ner.split_words(text) for text in inputs]
        stride = min(self.settings.get("doc_stride", 128), self.max_length // 2)
        windows = ner.make_windows(inputs, spans, self.tokenizer, self.max_length, stride=stride)
        out = forward_batches(self.model, [w.feature() for w in windows], batch_size, per_token=True)
        id2label = self.model.config.id2label or {}
        probs = ner.word_probabilities(windows, [softmax(o[0]) for o in out], [len(s) for s in spans])
        results = []
        for text, word_spans, p in zip(inputs, spans, probs):
            tags, scores = ner.tags_from_probabilities(p, id2label)
            ents = ner.word_entities(text, word_spans, tags, scores)
            results.append([{k: e[k] for k in ("type", "text", "start", "end", "score")} for e in ents])
        return results


# ----------------------------------------------------------------------------- pretrained uses


class FillMaskPipeline(Pipeline):
    """ "Paris is a beautiful [MASK]." -> the top_k words for each [MASK] with probabilities."""

    head = "BertForMaskedLM"

    def run(self, inputs: list, batch_size: int = 32, top_k: int = 5) -> list:
        from bertkit.inference import fill_mask

        return fill_mask(inputs, model=self.model, tokenizer=self.tokenizer, top_k=top_k, batch_size=batch_size)


class EmbedPipeline(Pipeline):
    """text -> one sentence vector (mean of the last layer's tokens unless pooling= says else)."""

    head = "BertModel"

    def run(self, inputs: list, batch_size: int = 32, pooling: str = "mean", normalize: bool = False) -> list:
        from bertkit import embed

        vectors = embed(
            inputs,
            model=self.model,
            tokenizer=self.tokenizer,
            pooling=pooling,
            normalize=normalize,
            batch_size=batch_size,
        )
        return list(vectors)


# ----------------------------------------------------------------------------- CLI inputs


def read_inputs(task: str, texts: Sequence[str], path: str | None, context: str | None) -> list:
    """What `bertkit predict TASK` reads: arguments or a file, shaped for the task's pipeline."""
    if task == "qa":
        return _qa_inputs(texts, path, context)
    if path is not None:
        from bertkit.tasks.readers import read_text_lines

        rows = read_text_lines(path)
        if task == "nli":
            for r in rows:
                if r.text_pair is None:
                    raise InputFileError(path, "nli input lines are premise<TAB>hypothesis", r.line)
            return [(r.text, r.text_pair) for r in rows]
        return [r.text if r.text_pair is None else (r.text, r.text_pair) for r in rows]
    if task == "nli":
        if len(texts) != 2:
            raise BertkitError("predict nli: give two arguments, PREMISE HYPOTHESIS")
        return [(texts[0], texts[1])]
    return [" ".join(texts)]


def _qa_inputs(texts: Sequence[str], path: str | None, context: str | None) -> list[dict]:
    if path is not None:
        if Path(path).suffix.lower() == ".json":
            from bertkit.tasks.readers import read_squad

            return [{"question": ex.question, "context": ex.context} for ex in read_squad(path, require_answers=False)]
        rows = []
        with open(path, encoding="utf-8") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError:
                    row = None
                if not isinstance(row, dict) or "question" not in row or "context" not in row:
                    raise InputFileError(path, 'each line must be JSON {"question": ..., "context": ...}', line)
                rows.append(row)
        if not rows:
            raise InputFileError(path, "no questions found")
        return rows
    if not context:
        raise BertkitError("predict qa: give the context with --context TEXT (or --context @FILE)")
    if context.startswith("@"):
        file = Path(context[1:])
        if not file.is_file():
            raise InputFileError(file, "context file not found")
        context = file.read_text(encoding="utf-8")
    return [{"question": " ".join(texts), "context": context}]
