"""Fine-tuning and evaluation: task data, settings files, output folders and the best-model move."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from harness import Case

from bertkit.tasks import outputs, qa
from bertkit.tasks.readers import read_task_data
from bertkit.tasks.settings import FinetuneSettings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"


def _latin1(name: str, text: str):
    def setup(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(text.encode("latin-1"))
        return path

    return setup


def _write(name: str, text: str):
    def setup(tmp: Path) -> Path:
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    return setup


def _squad(answers: object) -> str:
    qas = [{"id": "q1", "question": "Who?", "answers": answers}]
    return json.dumps(
        {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Ann met Bo.", "qas": qas}]}]}
    )


def _finetune_argv(task: str, data_key: str = "data"):
    def argv(tmp: Path, ctx):
        data = ctx[data_key] if isinstance(ctx, dict) else ctx
        return ["finetune", task, "--model", FIXTURE, "--train", data, "--dev", data, "--out", tmp / "out"]

    return argv


def _settings_not_object(tmp: Path) -> Path:
    (tmp / "m").mkdir()
    (tmp / "m" / "finetune.json").write_text("[1]")
    return tmp / "m"


def _big_cell(tmp: Path) -> Path:
    path = tmp / "big.csv"
    path.write_text('sentence,label\n"' + "word " * 40_000 + '",1\nshort,0\n', encoding="utf-8")
    return path


def _check_big_cell(tmp: Path, path: Path, examples) -> None:
    assert len(examples) == 2 and len(examples[0].text) == 200_000


def _busy_out(tmp: Path) -> dict:
    (tmp / "out").mkdir()
    (tmp / "out" / "mine.txt").write_text("keep me")
    return {"data": _write("train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n")(tmp)}


def _half_published(tmp: Path) -> dict:
    """A run killed while moving best/ into the folder: one file already replaced, the rest not."""
    out = tmp / "run"
    (out / "best").mkdir(parents=True)
    (out / "best" / "config.json").write_text('{"new": true}')
    (out / "best" / "model.safetensors").write_bytes(b"new weights")
    (out / "model.safetensors").write_bytes(b"old weights")
    (out / ".config.json.publishing").write_text("half")
    (out / "config.json").write_text('{"new": true}')
    return {"out": out}


def _check_published(tmp: Path, ctx: dict, result) -> None:
    out = ctx["out"]
    assert result is True and not (out / "best").exists()
    assert (out / "model.safetensors").read_bytes() == b"new weights"
    assert json.loads((out / "config.json").read_text()) == {"new": True}
    assert not list(out.glob(".*publishing"))


def _between_renames(tmp: Path) -> dict:
    """Killed between `best -> best.old` and `best.partial -> best`: the old best is the complete one."""
    out = tmp / "run"
    (out / "best.old").mkdir(parents=True)
    (out / "best.old" / "model.safetensors").write_bytes(b"previous best")
    (out / "best.partial").mkdir()
    (out / "best.partial" / "model.safetensors").write_bytes(b"half writ")
    return {"out": out}


def _check_recovered(tmp: Path, ctx: dict, result) -> None:
    out = ctx["out"]
    assert (out / "model.safetensors").read_bytes() == b"previous best"
    assert not (out / "best.partial").exists() and not (out / "best.old").exists()


def _long_question(tmp: Path) -> dict:
    from bertkit.tokenizers import Tokenizer

    examples = read_task_data("qa", _write("q.json", _squad([{"text": "Bo", "answer_start": 8}]))(tmp))
    long = type(examples[0])("q2", "why " * 600, examples[0].context, examples[0].answers)
    return {"examples": [examples[0], long], "tokenizer": Tokenizer.from_pretrained(FIXTURE)}


def _encode_long_question(tmp: Path, ctx: dict):
    logger = logging.getLogger("bertkit.tasks.qa")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        features, windows = qa.QATask().encode(ctx["examples"], ctx["tokenizer"], 128, 32, train=True)
    finally:
        logger.removeHandler(handler)
    return features, windows, seen


def _check_long_question(tmp: Path, ctx: dict, result) -> None:
    features, windows, seen = result
    assert features and all(w.example == 0 for w in windows)
    assert any("skipped 1 of 2 questions" in m for m in seen)


ROWS = [
    *(
        Case(
            id=f"task-data-latin1-{kind}",
            surface=f"finetune {task} --train ({kind})",
            fault="a Latin-1 byte on line 2",
            setup=_latin1(name, text),
            run=lambda tmp, path, task=task: read_task_data(task, path),
            argv=_finetune_argv(task),
            match=rf"{name}:2: not UTF-8",
        )
        for kind, task, name, text in [
            ("tsv", "classify", "t.tsv", "sentence\tlabel\ncaf\xe9\t1\n"),
            ("csv", "classify", "t.csv", "sentence,label\ncaf\xe9,1\n"),
            ("jsonl", "classify", "t.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": "caf\xe9", "label": 1}\n'),
            ("conll", "ner", "t.txt", "EU B-ORG\ncaf\xe9 O\n"),
            ("squad", "qa", "t.json", '{"version": "1.1",\n "data": ["caf\xe9"]}'),
        ]
    ),
    Case(
        id="task-csv-200kb-cell",
        surface="finetune classify --train (csv)",
        fault="a CSV cell of 200 KB",
        setup=_big_cell,
        run=lambda tmp, path: read_task_data("classify", path),
        outcome="ok",
        check=_check_big_cell,
        cpu_seconds=2.0,
        expected="accepted: the whole cell is the text",
    ),
    Case(
        id="squad-answers-not-objects",
        surface="finetune qa --train",
        fault='answers: ["x"]',
        setup=_write("s.json", _squad(["x"])),
        run=lambda tmp, path: read_task_data("qa", path),
        argv=_finetune_argv("qa"),
        match=r"s.json:\d+: .*each answer must be an object",
    ),
    Case(
        id="squad-answers-not-a-list",
        surface="finetune qa --train",
        fault='answers: {"text": "Bo"}',
        setup=_write("s.json", _squad({"text": "Bo"})),
        run=lambda tmp, path: read_task_data("qa", path),
        match=r'"answers" must be a list',
    ),
    Case(
        id="squad-answer-start-true",
        surface="finetune qa --train",
        fault="answer_start: true",
        setup=_write("s.json", _squad([{"text": "A", "answer_start": True}])),
        run=lambda tmp, path: read_task_data("qa", path),
        match=r'integer "answer_start"',
    ),
    Case(
        id="evaluate-qa-stride-too-large",
        surface="evaluate qa --doc-stride",
        fault="a stride of 400 in windows of 384 tokens",
        setup=_write("s.json", _squad([{"text": "Bo", "answer_start": 8}])),
        argv=lambda tmp, path: ["evaluate", "qa", "--model", tmp, "--data", path, "--doc-stride", "400"],
        match=r"--doc-stride 400 must be positive and leave room",
    ),
    Case(
        id="qa-question-longer-than-window",
        surface="finetune qa (features)",
        fault="a question of 600 tokens with windows of 128",
        setup=_long_question,
        run=_encode_long_question,
        outcome="ok",
        check=_check_long_question,
        cpu_seconds=3.0,
        expected="the question is skipped with a warning counting it; the others train",
    ),
    Case(
        id="finetune-json-not-an-object",
        surface="evaluate --model (finetune.json)",
        fault="finetune.json holds [1]",
        setup=_settings_not_object,
        argv=lambda tmp, folder: ["evaluate", "classify", "--model", folder, "--data", folder / "x.tsv"],
        match=r"finetune.json: must hold a JSON object",
    ),
    Case(
        id="finetune-out-not-empty",
        surface="finetune --out",
        fault="--out holds a user's file",
        setup=_busy_out,
        run=lambda tmp, ctx: __import__("bertkit").finetune("classify", FIXTURE, ctx["data"], ctx["data"], tmp / "out"),
        argv=_finetune_argv("classify"),
        match=r"--out .*not empty.*--overwrite",
    ),
    Case(
        id="finetune-resume-without-checkpoint",
        surface="finetune --resume",
        fault="--resume into a folder no run wrote",
        setup=_busy_out,
        argv=lambda tmp, ctx: [*_finetune_argv("classify")(tmp, ctx), "--resume"],
        match=r"--resume: .* holds no checkpoint",
    ),
    Case(
        id="finetune-config-file-unknown-key",
        surface="finetune --config-file",
        fault='{"learning_rate": 1e-4}',
        setup=lambda tmp: {
            "data": _write("t.tsv", "sentence\tlabel\na\t1\n")(tmp),
            "cfg": _write("c.json", '{"learning_rate": 1}')(tmp),
        },
        argv=lambda tmp, ctx: [*_finetune_argv("classify")(tmp, ctx), "--config-file", ctx["cfg"]],
        match=r"c.json: unknown setting\(s\) learning_rate",
    ),
    Case(
        id="finetune-best-move-killed-half-way",
        surface="finetune (best/* -> out move)",
        fault="SIGKILL after one of the model's files was moved",
        setup=_half_published,
        run=lambda tmp, ctx: outputs.publish_best(ctx["out"]),
        outcome="ok",
        check=_check_published,
        unchanged=False,
        expected="the next run (or --resume) completes the move: a complete model in the folder",
    ),
    Case(
        id="finetune-best-save-killed-between-renames",
        surface="finetune (best/ replaced by a new best)",
        fault="SIGKILL between the two renames of a new best model",
        setup=_between_renames,
        run=lambda tmp, ctx: outputs.publish_best(ctx["out"]),
        outcome="ok",
        check=_check_recovered,
        unchanged=False,
        expected="the previous best model is put back and published",
    ),
    Case(
        id="finetune-regress-score-not-a-number",
        surface="finetune regress --train",
        fault="score 'high' on line 3",
        setup=_write("r.tsv", "sentence_a\tsentence_b\tscore\na\tb\t4.5\nc\td\thigh\n"),
        argv=lambda tmp, path: [
            "finetune",
            "regress",
            "--model",
            FIXTURE,
            "--train",
            path,
            "--dev",
            path,
            "--out",
            tmp / "o",
        ],
        match=r"r.tsv:3: score 'high' is not a finite number",
        cpu_seconds=2.0,
    ),
]

if not torch.cuda.is_available():
    ROWS.append(
        Case(
            id="finetune-device-cuda-without-gpu",
            surface="finetune --device",
            fault="--device cuda on a CPU-only host",
            setup=_write("t.tsv", "sentence\tlabel\na\t1\n"),
            run=lambda tmp, path: __import__("bertkit").finetune(
                "classify", FIXTURE, path, path, tmp / "o", FinetuneSettings(device="cuda")
            ),
            argv=lambda tmp, path: [*_finetune_argv("classify")(tmp, path), "--device", "cuda"],
            match=r"--device cuda: no CUDA GPU",
        )
    )
