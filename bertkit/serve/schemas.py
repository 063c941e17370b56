"""Request bodies, as text-embeddings-inference and OpenAI spell them, and /predict's per-task inputs.

Types are strict (a number is not a text) and unknown fields are refused, so that a client who
sends an option this server does not implement (TEI's `prompt_name`, OpenAI's `dimensions`) hears
so (422) instead of getting vectors computed without it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from bertkit.serve.settings import ServeSettings


class Refused(Exception):
    """A request the server answers with `status` and a one-line JSON message."""

    def __init__(self, status: int, message: str, error_type: str = "validation", headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.headers = headers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedRequest(_Strict):
    """POST /embed (text-embeddings-inference)."""

    inputs: StrictStr | list[StrictStr] = Field(description="a text, or a list of texts")
    normalize: StrictBool = Field(True, description="scale each vector to unit length")
    truncate: StrictBool = Field(False, description="cut inputs longer than the model's limit instead of a 413")


class OpenAIEmbeddingRequest(_Strict):
    """POST /v1/embeddings (OpenAI); vectors are unit length, as OpenAI's are."""

    input: StrictStr | list[StrictStr] = Field(description="a text, or a list of texts")
    model: StrictStr | None = Field(None, description="accepted and ignored: this server runs one model")
    encoding_format: Literal["float", "base64"] = Field("float", description="base64: little-endian float32")
    user: StrictStr | None = None


class PredictRequest(_Strict):
    """POST /predict: one input or a list, shaped for the server's task (see /info)."""

    inputs: Any = Field(
        description="classify, ner, fill-mask, embed: a text or a list of texts (classify also "
        '{"text", "text_pair"}); nli: [premise, hypothesis] or {"premise", "hypothesis"}, or a list '
        'of them; qa: {"question", "context"} or a list of them'
    )
    truncate: StrictBool = Field(False, description="cut inputs longer than the model's limit instead of a 413")
    top_k: StrictInt | None = Field(None, ge=1, le=100, description="qa and fill-mask: answers per input")


def texts_of(inputs: str | list[str], settings: ServeSettings) -> list[str]:
    """/embed's and /v1/embeddings' inputs as a list, within the count and size limits."""
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    _check_count(len(texts), settings)
    for i, text in enumerate(texts):
        _check_chars(i, len(text), settings)
    return texts


def predict_inputs(task: str, inputs: Any, settings: ServeSettings) -> tuple[list[Any], bool]:
    """(inputs as the task's pipeline takes them, whether one input was given) or Refused(422/413)."""
    single = _is_single(task, inputs)
    items = [inputs] if single else inputs
    _check_count(len(items), settings)
    shaped = [_shape(task, i, x) for i, x in enumerate(items)]
    for i, x in enumerate(shaped):
        text = x if isinstance(x, str) else " ".join(x.values()) if isinstance(x, dict) else " ".join(x)
        _check_chars(i, len(text), settings)
    return shaped, single


def _is_single(task: str, inputs: Any) -> bool:
    if isinstance(inputs, (str, dict)):
        return True
    if not isinstance(inputs, list):
        raise Refused(422, f"inputs must be a text, an object or a list, not {_kind(inputs)}")
    # nli: ["premise", "hypothesis"] is one pair; a list of pairs is a batch
    return task == "nli" and len(inputs) == 2 and all(isinstance(x, str) for x in inputs)


def _shape(task: str, i: int, x: Any) -> Any:
    if task == "qa":
        if isinstance(x, dict) and set(x) == {"question", "context"} and all(isinstance(v, str) for v in x.values()):
            return {"question": x["question"], "context": x["context"]}
        raise Refused(422, f'input {i}: qa takes {{"question": TEXT, "context": TEXT}}, got {_kind(x)}')
    if task == "nli":
        if isinstance(x, dict) and set(x) == {"premise", "hypothesis"} and all(isinstance(v, str) for v in x.values()):
            return (x["premise"], x["hypothesis"])
        if isinstance(x, list) and len(x) == 2 and all(isinstance(v, str) for v in x):
            return (x[0], x[1])
        raise Refused(422, f"input {i}: nli takes [premise, hypothesis] or {{premise, hypothesis}}, got {_kind(x)}")
    if isinstance(x, str):
        return x
    if task == "classify" and isinstance(x, dict) and set(x) == {"text", "text_pair"}:
        if all(isinstance(v, str) for v in x.values()):
            return (x["text"], x["text_pair"])
    raise Refused(422, f"input {i}: {task} takes a text, got {_kind(x)}")


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a text", bool: "true/false", type(None): "null"}.get(
        type(x), "a number" if isinstance(x, (int, float)) else type(x).__name__
    )


def _check_count(n: int, settings: ServeSettings) -> None:
    if n == 0:
        raise Refused(422, "inputs is an empty list; give at least one input")
    if n > settings.inputs_per_request:
        raise Refused(413, f"{n} inputs in one request; send at most {settings.inputs_per_request} per request")


def _check_chars(i: int, chars: int, settings: ServeSettings) -> None:
    if chars > settings.max_input_chars:
        raise Refused(
            413, f"input {i} has {chars} characters; at most {settings.max_input_chars} (split it, or shorten it)"
        )
