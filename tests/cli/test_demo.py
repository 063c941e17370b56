"""`bertkit demo` without $BERTKIT_DATA: the steps that need task data say what they skip, never crash."""

from __future__ import annotations

import pytest

from bertkit.cli.finetune import DEMO_RUNS, demo_step


def test_finetune_step_without_data_skips_each_task_and_says_why(tmp_path, monkeypatch, capsys, minilm_dir):
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "absent"))
    demo_step(tmp_path / "out")
    printed = capsys.readouterr().out
    for task, train, *_ in DEMO_RUNS:
        assert f"{task}: SKIPPED -- no data: {tmp_path / 'absent' / train[0] / train[1]}" in printed
    assert "no fine-tuned model, so no pipelines to show" in printed
    assert not (tmp_path / "out" / "finetuned").exists()


def test_finetune_step_stops_when_a_run_is_interrupted(tmp_path, monkeypatch, minilm_dir):
    """Ctrl-C inside fine-tuning ends the tour with one clear line, not a crash at the pipelines."""
    import pytest

    from bertkit.errors import BertkitError
    from bertkit.tasks import finetune as finetune_module

    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    (data / "train.tsv").write_text("sentence\tlabel\ngood\t1\n")
    (data / "validation.tsv").write_text("sentence\tlabel\nbad\t0\n")
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "data"))
    calls = []
    monkeypatch.setattr(finetune_module, "finetune", lambda task, *a, **k: calls.append(task) or {"interrupted": True})
    with pytest.raises(BertkitError, match="fine-tuning classify was interrupted"):
        demo_step(tmp_path / "out")
    assert calls == ["classify"]


def _small_corpus(folder, books):
    from bertkit.data.python_docs import Corpus

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for path in books[:4]:
        text = path.read_text()[20_000:32_000]
        files.append(folder / path.name)
        files[-1].write_text(text[text.index("\n\n") + 2 :])
    return Corpus(files, "4 slices of books", True)


@pytest.mark.slow
def test_pretrain_step_touches_only_folders_it_made(tmp_path, monkeypatch, shared_data, minilm_dir, capsys):
    """`demo --out DIR` refuses DIR/pretrain-data of the user's; it replaces only its own earlier output."""
    import dataclasses

    from bertkit.cli import pretrain as pretrain_cli
    from bertkit.cli.demo_out import DEMO_MARK
    from bertkit.errors import BertkitError

    books = sorted(shared_data("corpus", "books").glob("*.txt"))
    monkeypatch.setattr(pretrain_cli, "default_corpus", lambda folder, every=1: _small_corpus(tmp_path / "c", books))
    quick = dataclasses.replace(pretrain_cli.DEMO.settings, budget_minutes=0.05, eval_instances=16, progress=False)
    monkeypatch.setattr(pretrain_cli, "DEMO", dataclasses.replace(pretrain_cli.DEMO, settings=quick))
    out = tmp_path / "demo-out"
    (out / "pretrain-data").mkdir(parents=True)
    (out / "pretrain-data" / "mine.txt").write_text("the user's")
    with pytest.raises(BertkitError, match="pretrain-data: exists and was not made by the demo"):
        pretrain_cli.demo_step(out)
    assert sorted(p.name for p in (out / "pretrain-data").iterdir()) == ["mine.txt"]
    assert not (out / "pretrain-tiny").exists()

    (out / "pretrain-data" / "mine.txt").unlink()
    for _ in range(2):  # the second time it replaces what the first made
        pretrain_cli.demo_step(out)
        assert (out / "pretrain-tiny" / "model.safetensors").is_file() and (out / "pretrain-tiny" / DEMO_MARK).is_file()
    printed = capsys.readouterr().out
    assert "fill-mask with the model" in printed and "pretraining with the demo recipe" in printed


def test_finetune_step_deletes_only_folders_it_made(tmp_path, monkeypatch, minilm_dir):
    """A folder the demo did not make is refused and left as it is; one it made is cleared or resumed."""
    import pytest

    from bertkit.cli.demo_out import DEMO_MARK
    from bertkit.errors import BertkitError
    from bertkit.tasks import finetune as finetune_module

    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    (data / "train.tsv").write_text("sentence\tlabel\ngood\t1\n")
    (data / "validation.tsv").write_text("sentence\tlabel\nbad\t0\n")
    monkeypatch.setenv("BERTKIT_DATA", str(tmp_path / "data"))
    mine = tmp_path / "out" / "finetuned" / "sst2"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("a user's file")
    with pytest.raises(BertkitError, match="exists and was not made by the demo"):
        demo_step(tmp_path / "out")
    assert (mine / "notes.txt").read_text() == "a user's file"

    (mine / "notes.txt").unlink()
    (mine / DEMO_MARK).write_text("")
    (mine / "partial.bin").write_text("left by a killed demo run")
    (mine / "finetune.json").write_text('{"status": "runn')  # damaged: the demo starts its own folder over
    calls = []
    monkeypatch.setattr(
        finetune_module, "finetune", lambda task, *a, **k: calls.append((task, k["resume"])) or {"interrupted": True}
    )
    with pytest.raises(BertkitError, match="interrupted"):
        demo_step(tmp_path / "out")
    assert calls == [("classify", False)] and not (mine / "partial.bin").exists() and (mine / DEMO_MARK).is_file()

    (mine / "finetune.json").write_text('{"status": "done"}')  # a finished demo run is reused, not trained again
    calls.clear()
    monkeypatch.setattr("bertkit.cli.finetune._demo_pipelines", lambda folders: calls.append(sorted(folders)))
    demo_step(tmp_path / "out")
    assert calls == [["classify"]] and (mine / "finetune.json").read_text() == '{"status": "done"}'
