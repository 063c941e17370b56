"""`bertkit demo` without $BERTKIT_DATA: the steps that need task data say what they skip, never crash."""
from __future__ import annotations

from bertkit.cli.finetune import DEMO_RUNS, demo_step


def test_finetune_step_without_data_skips_each_task_and_says_why(tmp_path, monkeypatch, capsys, minilm_dir):
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "absent"))
    demo_step(tmp_path / "out")
    printed = capsys.readouterr().out
    for task, train, *_ in DEMO_RUNS:
        assert f"{task}: SKIPPED -- no data: {tmp_path / 'absent' / train[0] / train[1]}" in printed
    assert "no fine-tuned model, so no pipelines to show" in printed
    assert not (tmp_path / "out" / "finetuned").exists()
