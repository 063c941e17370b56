"""Recipes as data: each number written once, flags and --help generated from the chosen recipe,
a settings file between the recipe and the command line, the lecture's part named apart."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from bertkit.cli import build_parser, main
from bertkit.cli.pretrain import pretrain_settings
from bertkit.errors import BertkitError, InputFileError
from bertkit.train.recipes import DEMO, LECTURE, RECIPES, SHORT_BUDGET, describe, origins
from bertkit.train.settings import PretrainSettings

ROOT = Path(__file__).resolve().parents[2]
AREA = [
    *sorted((ROOT / "bertkit" / "train").glob("*.py")),
    *sorted((ROOT / "bertkit" / "data").glob("*.py")),
    ROOT / "bertkit" / "cli" / "pretrain.py",
    ROOT / "bertkit" / "cli" / "demo.py",
    ROOT / "bench" / "pretrain.py",
    ROOT / "bench" / "pretrain_learning.py",
]


def _settings(*argv):
    return pretrain_settings(build_parser().parse_args(["pretrain", *map(str, argv)]))


@pytest.mark.parametrize(
    "literal", ["1e-4", "10_000", "1e-6", "0.999", "1_000_000", "1e-3", "warmup_steps=100", "batch_size=16"]
)
def test_each_recipe_number_is_written_once(literal):
    where = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in AREA
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(rf"(?<![\w.]){re.escape(literal)}(?![\w.])", line)
    ]
    assert len(where) == 1, where


def test_the_lecture_recipe_is_the_settings_defaults_and_names_its_sources():
    assert LECTURE.settings == PretrainSettings()
    by = origins()
    assert set(by["lecture"]) == {"batch_size", "lr", "adam_beta1", "adam_beta2", "warmup_steps", "dropout"}
    assert set(by["google"]) == {"weight_decay", "adam_eps", "max_grad_norm"}
    text = describe(LECTURE)
    assert "from the lecture: batch_size 256, lr 0.0001, adam_beta1 0.9, adam_beta2 0.999" in text
    assert "added from google-research/bert's code (not in the lecture): weight_decay 0.01" in text
    assert "--optimizer adam" in text


def test_other_recipes_are_their_changes_from_the_lecture():
    assert SHORT_BUDGET.changes()["budget_minutes"] == 20.0 and "max_steps" not in SHORT_BUDGET.changes()
    assert SHORT_BUDGET.settings.max_seq_len == SHORT_BUDGET.data_seq_len == 64
    assert DEMO.settings.config == "tiny" and DEMO.settings.budget_minutes
    assert "changes from lecture: config mini" in describe(SHORT_BUDGET)


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_flags_default_to_the_chosen_recipe(name):
    settings = _settings("--recipe", name, "--data", "D", "--out", "O")
    assert settings == replace(RECIPES[name].settings, data="D", out="O")
    settings.check()


def test_every_settings_field_is_reachable_from_the_command_line(tmp_path):
    argv = ["--data", "D", "--out", "O", "--config", "tiny", "--tokenizer", "T", "--batch-size", 8]
    argv += ["--grad-accum", 2, "--max-steps", 9, "--budget-minutes", 3, "--max-minutes", 4, "--optimizer", "adam"]
    argv += ["--lr", 0.5, "--adam-beta1", 0.8, "--adam-beta2", 0.99, "--warmup-steps", 3, "--weight-decay", 0.2]
    argv += ["--adam-eps", 1e-7, "--max-grad-norm", 2, "--dropout", 0.2, "--max-seq-len", 64]
    argv += ["--mlm-probability", 0.2, "--max-predictions", 7, "--whole-word-mask", "--unigram-bias"]
    argv += ["--sinusoidal-positions", "--no-length-grouping", "--precision", "bf16", "--seed", 3]
    argv += ["--eval-every", 5, "--eval-instances", 6, "--eval-batch-size", 7, "--save-every", 8]
    argv += ["--keep-checkpoints", 2, "--log-every", 3, "--max-bad-steps", 4, "--resume", "--overwrite"]
    argv += ["--device", "cpu", "--threads", 1, "--no-progress"]
    settings = _settings(*argv)
    changed = {
        f.name for f in fields(PretrainSettings) if getattr(settings, f.name) != getattr(LECTURE.settings, f.name)
    }
    assert changed == {f.name for f in fields(PretrainSettings)}


def test_a_settings_file_sits_between_the_recipe_and_the_flags(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"lr": 0.002, "batch_size": 32, "data_fingerprint": "ignored", "model_config": {}}))
    settings = _settings("--recipe", "short-budget", "--config-file", path, "--batch-size", 8, "--data", "D")
    assert settings.lr == 0.002 and settings.batch_size == 8 and settings.warmup_steps == 100
    toml = tmp_path / "run.toml"
    toml.write_text("lr = 0.003\nunigram_bias = false\n")
    assert _settings("--config-file", toml).lr == 0.003
    # a run's own run.json (asdict(settings) | derived) reproduces its settings
    run = tmp_path / "old.json"
    run.write_text(json.dumps(asdict(SHORT_BUDGET.settings) | {"world_size": 1}))
    assert _settings("--config-file", run) == SHORT_BUDGET.settings


@pytest.mark.parametrize(
    "content,problem",
    [
        ('{"lr": 0.1, "learning_rate": 2}', "unknown setting.s. learning_rate"),
        ("[1, 2]", "must hold an object"),
        ('{"batch_size": "big"}', "batch_size: 'big' is not a int"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_it(tmp_path, capsys, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["pretrain", "--config-file", str(path), "--data", "D", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and re.search(problem, err), err
    assert not (tmp_path / "o").exists()


def test_help_shows_the_chosen_recipes_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--recipe", "short-budget", "--help"])
    short = " ".join(capsys.readouterr().out.split())
    assert "--lr N peak learning rate (default: 0.001)" in short and "short-budget recipe" in short
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    lecture = " ".join(capsys.readouterr().out.split())
    assert "--lr N peak learning rate [from the lecture] (default: 0.0001)" in lecture
    assert "[added from google-research/bert's code (not in the lecture)] (default: 0.01)" in lecture
    assert "Measured" not in lecture  # measurements live in docs/pretraining.md


def test_check_refuses_impossible_settings():
    base = replace(LECTURE.settings, data="D", out="O")
    for change, message in [
        ({"data": ""}, "--data is required"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"lr": 0.0}, "--lr must be positive"),
        ({"budget_minutes": -1.0}, "--budget-minutes must be positive"),
        ({"adam_beta2": 1.0}, r"--adam-beta2 must lie in \[0, 1\)"),
        ({"optimizer": "sgd"}, "--optimizer 'sgd'"),
        ({"mlm_probability": 1.5}, "--mlm-probability"),
        ({"precision": "fp8"}, "precision 'fp8'"),
    ]:
        with pytest.raises(BertkitError, match=message):
            replace(base, **change).check()


def test_plain_adam_drops_weight_decay_and_clipping():
    adam = replace(LECTURE.settings, optimizer="adam")
    assert adam.effective_weight_decay() == 0.0 and adam.effective_max_grad_norm() is None
    assert LECTURE.settings.effective_weight_decay() == 0.01 and LECTURE.settings.effective_max_grad_norm() == 1.0


def test_settings_files_name_the_file(tmp_path):
    from bertkit.cli.pretrain import read_config_file

    with pytest.raises(InputFileError, match=str(tmp_path / "missing.json")):
        read_config_file(tmp_path / "missing.json")
