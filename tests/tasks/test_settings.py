"""The recipe written once: per-task defaults, settings files, and a CLI generated from the settings."""

import dataclasses
import json

import pytest

from bertkit.cli import build_parser
from bertkit.cli.finetune import _settings
from bertkit.constants import DEFAULT_SEED
from bertkit.errors import BertkitError, InputFileError
from bertkit.tasks.settings import RECIPES, FinetuneSettings


def parse(*argv):
    return build_parser().parse_args(
        ["finetune", "classify", "--model", "m", "--train", "t", "--dev", "d", "--out", "o", *argv]
    )


def test_none_fields_take_the_tasks_recipe_and_explicit_ones_win():
    qa = FinetuneSettings().for_task("qa")
    assert (qa.batch_size, qa.lr, qa.max_seq_len, qa.doc_stride) == (16, 1e-4, 384, 128)
    lrs = {task: FinetuneSettings().for_task(task).lr for task in ("classify", "nli", "regress", "ner")}
    assert lrs == {"classify": 5e-5, "nli": 1e-4, "regress": 5e-5, "ner": 1e-4}  # docs/finetuning.md's runs
    assert FinetuneSettings(lr=3e-5).for_task("qa").lr == 3e-5
    assert FinetuneSettings().seed == DEFAULT_SEED
    assert set(RECIPES) == {"classify", "nli", "regress", "multilabel", "qa", "ner"}
    with pytest.raises(BertkitError, match="unknown task 'pos'"):
        FinetuneSettings().for_task("pos")


def test_every_settings_field_is_reachable_from_the_cli():
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["finetune"]._actions}
    assert {f.name for f in dataclasses.fields(FinetuneSettings)} <= flags
    values = {
        "epochs": "2",
        "lr": "3e-5",
        "batch-size": "8",
        "max-seq-len": "64",
        "doc-stride": "32",
        "weight-decay": "0.1",
        "warmup-ratio": "0.2",
        "max-grad-norm": "2",
        "grad-accum": "2",
        "eval-every": "5",
        "save-every": "7",
        "max-steps": "9",
        "early-stopping": "3",
        "seed": "1",
        "device": "cpu",
        "precision": "bf16",
        "report-to": "tensorboard",
        "eval-batch-size": "16",
        "limit-train": "100",
        "limit-dev": "10",
        "log-every": "4",
    }
    argv = [x for k, v in values.items() for x in (f"--{k}", v)] + ["--freeze-encoder", "--skip-eval", "--no-progress"]
    s = _settings(parse(*argv))
    expected = FinetuneSettings(
        epochs=2.0, lr=3e-5, batch_size=8, max_seq_len=64, doc_stride=32, weight_decay=0.1, warmup_ratio=0.2,
        max_grad_norm=2.0, grad_accum=2, eval_every=5, save_every=7, max_steps=9, early_stopping=3, seed=1,
        device="cpu", precision="bf16", report_to="tensorboard", eval_batch_size=16, limit_train=100, limit_dev=10,
        log_every=4, freeze_encoder=True, skip_eval=True, progress=False,
    )  # fmt: skip
    assert s == expected


def test_defaults_come_from_the_settings_and_old_spellings_still_work(capsys):
    assert _settings(parse()) == FinetuneSettings()
    assert _settings(parse("--max-len", "64", "--bf16")).max_seq_len == 64
    assert _settings(parse("--bf16")).precision == "bf16"
    assert "--max-len is renamed --max-seq-len" in capsys.readouterr().err
    help_text = build_parser()._subparsers._group_actions[0].choices["finetune"].format_help()
    assert "default: 32; qa 16" in help_text and "default: 42" in help_text


def test_config_file_fills_settings_and_flags_win(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"lr": 1e-4, "epochs": 2, "max_len": 96, "bf16": True}))
    s = _settings(parse("--config-file", str(path), "--epochs", "5"))
    assert (s.lr, s.epochs, s.max_seq_len, s.precision) == (1e-4, 5.0, 96, "bf16")
    earlier = tmp_path / "finetune.json"  # an earlier run's record: its recipe is reused
    earlier.write_text(json.dumps({"task": "classify", "settings": {"lr": 2e-5, "seed": 7}}))
    assert FinetuneSettings.from_file(earlier).seed == 7


@pytest.mark.parametrize(
    "content,match",
    [
        ("[1, 2]", "must hold a JSON object"),
        ('{"learning_rate": 1}', "unknown setting.*learning_rate"),
        ('{"lr": "fast"}', "setting 'lr' must be float"),
        ('{"batch_size": 1.5}', "setting 'batch_size' must be int"),
        ('{"lr": -1}', "--lr must be positive"),
        ("{oops", "not valid JSON"),
    ],
)
def test_bad_settings_files_are_refused_in_one_line(tmp_path, content, match):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(BertkitError, match=match) as err:
        FinetuneSettings.from_file(path)
    assert "\n" not in str(err.value)
    if isinstance(err.value, InputFileError):
        assert str(path) in str(err.value)
