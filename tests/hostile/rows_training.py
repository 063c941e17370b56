"""Pretraining data, the training loop, checkpoints and the pretraining commands under hostile
input and faults (catalogue rows 12-14, 19's splitter, 20-23, 24's demo part, 25's DDP part)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import torch
from harness import Case

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "google_bert_tiny"

# a hand-made data folder: two instances of 8 tokens in one shard ---------------------------------------


def _data(tmp: Path, change=None, ids=None, index=None, dtype=np.uint16) -> Path:
    from bertkit.data.shards import FORMAT, VERSION

    folder = tmp / "data"
    (folder / "train").mkdir(parents=True)
    ids = np.array([2, 7, 8, 3, 9, 10, 11, 3] * 2, dtype=dtype) if ids is None else ids
    index = np.array([[0, 8, 4, 0], [8, 8, 4, 1]], dtype=np.int64) if index is None else index
    np.save(folder / "train" / "shard-00000.ids.npy", ids)
    np.save(folder / "train" / "shard-00000.starts.npy", np.ones(len(ids), np.uint8))
    np.save(folder / "train" / "shard-00000.index.npy", index)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": {"fingerprint": "x", "vocab_size": 100, "id_bound": 100},
        "settings": {"max_seq_len": 8},
        "splits": {"train": {"shards": [{"name": "shard-00000", "instances": len(index), "tokens": len(ids)}]}},
    }
    if change:
        change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _open(tmp: Path, folder: Path) -> Any:
    from bertkit.data.shards import PretrainingData

    return PretrainingData(folder)


def _shard_name(name: str):
    return lambda tmp: _data(tmp, lambda m: m["splits"]["train"]["shards"][0].update(name=name))


def _index(rows: list[list[int]]):
    return lambda tmp: _data(tmp, index=np.array(rows, dtype=np.int64))


# a toy model, its checkpoints, its training run ----------------------------------------------------------


class _Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        logits = self.lin(x)
        return SimpleNamespace(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)


def _toy_parts():
    from bertkit.train.batches import IndexBatches
    from bertkit.train.optim import build_optimizer, linear_schedule

    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = _Toy()
    opt = build_optimizer(model, kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)
    batches = IndexBatches(
        lambda e: [list(range(i, i + 8)) for i in range(0, 64, 8)], lambda i, e: {"x": x[i], "labels": y[i]}
    )
    return model, opt, linear_schedule(opt, 1, 100), batches


def _checkpoints(tmp: Path) -> Path:
    from bertkit.train.checkpointing import capture_rng, save_checkpoint
    from bertkit.train.loop import LOOP_FIELDS

    model, opt, sched, _ = _toy_parts()
    folder = tmp / "checkpoints"
    for step in (1, 2):
        loop = {k: 0 for k in LOOP_FIELDS}
        save_checkpoint(folder, step, model, opt, sched, {"loop": loop}, [capture_rng()], keep=3)
    return folder


def _damaged(damage):
    def setup(tmp: Path) -> Path:
        folder = _checkpoints(tmp)
        damage(folder / "checkpoint-00000002")
        return folder

    return setup


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _drop_rng(ckpt: Path) -> None:
    state = json.loads((ckpt / "trainer_state.json").read_text())
    del state["rng"]
    (ckpt / "trainer_state.json").write_text(json.dumps(state))


def _all_damaged(tmp: Path) -> Path:
    folder = _checkpoints(tmp)
    for ckpt in folder.iterdir():
        (ckpt / "optimizer.pt").write_bytes(b"")
    return folder


def _newest_readable(tmp: Path, folder: Path) -> Any:
    from bertkit.train.checkpointing import newest_readable
    from bertkit.train.loop import LOOP_FIELDS

    return newest_readable(folder, LOOP_FIELDS)


def _falls_back(tmp: Path, folder: Path, ckpt: Any) -> None:
    assert ckpt.path.name == "checkpoint-00000001"


def _train_poisoned(kind: str):
    def run(tmp: Path, _: Any) -> Any:
        from bertkit.train.loop import Objective, TrainConfig, train

        class Poisoned(Objective):
            calls = 0

            def loss(self, model, batch):
                Poisoned.calls += 1
                sums, metrics = super().loss(model, batch)
                if Poisoned.calls >= 3:
                    bad = torch.tensor(float("nan") if kind == "nan" else float("inf"))
                    sums = {k: v * bad for k, v in sums.items()}
                return sums, metrics

        model, opt, sched, batches = _toy_parts()
        config = TrainConfig(tmp / "run", max_steps=50, save_every=1, keep_checkpoints=2, progress=False, plot=False)
        return train(model, opt, sched, batches, config, Poisoned(), save_fn=lambda m, d: None)

    return run


def _finite_checkpoints(tmp: Path, _: Any, err: Any) -> None:
    from safetensors.torch import load_file

    saved = sorted((tmp / "run" / "checkpoints").glob("checkpoint-*"))
    assert saved, "no checkpoint was kept"
    for ckpt in saved:
        assert all(bool(torch.isfinite(t).all()) for t in load_file(str(ckpt / "model.safetensors")).values())


def _enospc(*args: Any, **kwargs: Any) -> None:
    raise OSError(28, "No space left on device")


def _save_on_full_disk(tmp: Path, folder: Path) -> Any:
    from bertkit.train.checkpointing import capture_rng, save_checkpoint

    model, opt, sched, _ = _toy_parts()
    with mock.patch("bertkit.train.checkpointing.save_file", _enospc):
        return save_checkpoint(folder, 3, model, opt, sched, {"loop": {}}, [capture_rng()])


def _log(tmp: Path) -> Path:
    path = tmp / "log.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6)))
    return path


def _rewrite_log_on_full_disk(tmp: Path, path: Path) -> Any:
    from bertkit.train.curves import JsonlLog

    with mock.patch("bertkit.files.os.replace", _enospc):
        return JsonlLog(path, resume_step=2)


def _locked(tmp: Path) -> Path:
    from bertkit.train.lock import LOCK_FILE

    folder = tmp / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    return folder


def _lock(tmp: Path, folder: Path) -> Any:
    from bertkit.train.lock import RunLock

    with RunLock(folder):
        return None


def _user_folder(name: str):
    def setup(tmp: Path) -> Path:
        folder = tmp / name
        folder.mkdir()
        (folder / "mine.txt").write_text("a user's own file\n")
        return folder

    return setup


def _own_folder(tmp: Path, folder: Path) -> Any:
    from bertkit.cli.demo_out import own_folder

    return own_folder(folder)


def _python_docs(tmp: Path, folder: Path) -> Any:
    from bertkit.data.python_docs import write_python_docs

    return write_python_docs(folder, max_bytes=1000)


def _settings_file(content: str):
    def setup(tmp: Path) -> Path:
        path = tmp / "run.json"
        path.write_text(content)
        return path

    return setup


def _split(text: str):
    def run(tmp: Path, _: Any) -> Any:
        from bertkit.data.documents import split_sentences

        return split_sentences(text)

    return run


def _rank_one_after_rank_zero_failed(tmp: Path, _: Any) -> Any:
    from bertkit.train.distributed import DistEnv
    from bertkit.train.pretrain import _on_main

    class RankOne(DistEnv):
        def any(self, flag: bool) -> bool:  # rank 0 reported a failure in the all-reduce
            return True

    return _on_main(RankOne(rank=1, world_size=2), lambda: None)


ROWS = [
    # manifest (catalogue 12, 13)
    Case(
        "manifest-shard-traversal",
        "pretraining data manifest",
        "shard name ../../x",
        _shard_name("../../x"),
        _open,
        match=r"manifest.json: shard name train/'\.\./\.\./x' is not a plain file name",
    ),
    Case(
        "manifest-shard-absolute",
        "pretraining data manifest",
        "shard name /etc/passwd",
        _shard_name("/etc/passwd"),
        _open,
        match="is not a plain file name",
    ),
    Case(
        "manifest-shard-dotname",
        "pretraining data manifest",
        "shard name .hidden",
        _shard_name(".hidden"),
        _open,
        match="is not a plain file name",
    ),
    Case(
        "manifest-not-object",
        "pretraining data manifest",
        "manifest.json is a JSON list",
        lambda tmp: (_data(tmp), (tmp / "data" / "manifest.json").write_text("[1, 2]"))[0],
        _open,
        match="manifest.json: not a bertkit-pretraining-data v1 manifest",
    ),
    Case(
        "manifest-no-splits",
        "pretraining data manifest",
        "no 'splits'",
        lambda tmp: _data(tmp, lambda m: m.pop("splits")),
        _open,
        match="'splits' is missing or not an object",
    ),
    Case(
        "manifest-no-max-seq-len",
        "pretraining data manifest",
        "settings without max_seq_len",
        lambda tmp: _data(tmp, lambda m: m["settings"].clear()),
        _open,
        match="'settings' lacks 'max_seq_len'",
    ),
    Case(
        "manifest-shard-without-counts",
        "pretraining data manifest",
        "a shard entry without instances",
        lambda tmp: _data(tmp, lambda m: m["splits"]["train"]["shards"][0].pop("instances")),
        _open,
        match="lacks its name, instances or tokens",
    ),
    # shard index and ids, checked once when opened (catalogue 14, issue 13 item 7)
    Case(
        "index-offset-beyond-shard",
        "pretraining shard index",
        "offset 10**9",
        _index([[0, 8, 4, 0], [10**9, 8, 4, 1]]),
        _open,
        match="shard-00000.index.npy: index rows out of bounds",
    ),
    Case(
        "index-negative-offset",
        "pretraining shard index",
        "offset -3",
        _index([[0, 8, 4, 0], [-3, 8, 4, 1]]),
        _open,
        match="index rows out of bounds",
    ),
    Case(
        "index-len-a-past-length",
        "pretraining shard index",
        "len_a > length",
        _index([[0, 8, 9, 0], [8, 8, 4, 1]]),
        _open,
        match="index rows out of bounds",
    ),
    Case(
        "index-bad-label",
        "pretraining shard index",
        "notNext label 7",
        _index([[0, 8, 4, 7], [8, 8, 4, 1]]),
        _open,
        match="index rows out of bounds",
    ),
    Case(
        "ids-beyond-vocab",
        "pretraining shard ids",
        "int32 id 10**6 with 100 ids",
        lambda tmp: _data(tmp, ids=np.array([2, 7, 8, 3, 9, 10, 10**6, 3] * 2, np.int32)),
        _open,
        match=r"shard-00000.ids.npy: ids outside the vocabulary \(0..99\)",
    ),
    Case(
        "ids-negative",
        "pretraining shard ids",
        "int32 id -5",
        lambda tmp: _data(tmp, ids=np.array([2, 7, 8, 3, 9, 10, -5, 3] * 2, np.int32)),
        _open,
        match="ids outside the vocabulary",
    ),
    Case(
        "ids-dtype-too-small",
        "pretraining shard ids",
        "uint16 ids for a vocabulary up to id 70,000",
        lambda tmp: _data(tmp, lambda m: m["tokenizer"].update(id_bound=70_001)),
        _open,
        match="ids stored as uint16 cannot hold the tokenizer's ids",
    ),
    # the sentence splitter (catalogue 19)
    Case(
        "splitter-long-token",
        "pretrain-data sentence splitter",
        "a 200k-character token, no terminator",
        run=_split("a" * 200_000 + " End."),
        outcome="ok",
        expected="split in linear time",
    ),
    Case(
        "splitter-dot-run",
        "pretrain-data sentence splitter",
        "200k dots then a word",
        run=_split("." * 200_000 + " End."),
        outcome="ok",
        expected="split in linear time",
    ),
    Case(
        "splitter-dotted-token",
        "pretrain-data sentence splitter",
        "a.a.a... 200k characters",
        run=_split("a." * 100_000 + " End."),
        outcome="ok",
        expected="split in linear time",
    ),
    # training (catalogue 20)
    Case(
        "training-nan-loss",
        "training loop",
        "the loss turns NaN at step 3 and stays",
        run=_train_poisoned("nan"),
        match="more than 10 steps in a row had a non-finite loss",
        check=_finite_checkpoints,
        unchanged=False,
        cpu_seconds=5.0,
        expected="steps skipped, then a one-line error; every kept checkpoint finite",
    ),
    Case(
        "training-inf-loss",
        "training loop",
        "the loss turns inf at step 3 and stays",
        run=_train_poisoned("inf"),
        match="non-finite loss or gradient norm",
        check=_finite_checkpoints,
        unchanged=False,
        cpu_seconds=5.0,
    ),
    # resume (catalogue 21)
    Case(
        "resume-truncated-weights",
        "pretrain --resume",
        "newest model.safetensors cut to 100 bytes",
        _damaged(lambda c: _truncate(c / "model.safetensors")),
        _newest_readable,
        outcome="ok",
        check=_falls_back,
        expected="warning, resume from the previous checkpoint",
    ),
    Case(
        "resume-empty-optimizer",
        "pretrain --resume",
        "newest optimizer.pt of zero bytes",
        _damaged(lambda c: (c / "optimizer.pt").write_bytes(b"")),
        _newest_readable,
        outcome="ok",
        check=_falls_back,
        expected="warning, resume from the previous checkpoint",
    ),
    Case(
        "resume-state-without-rng",
        "pretrain --resume",
        "newest trainer_state.json without rng",
        _damaged(_drop_rng),
        _newest_readable,
        outcome="ok",
        check=_falls_back,
        expected="warning, resume from the previous checkpoint",
    ),
    Case(
        "resume-nothing-readable",
        "pretrain --resume",
        "every checkpoint's optimizer.pt empty",
        _all_damaged,
        _newest_readable,
        match="none of the 2 checkpoint.s. can be read",
    ),
    # a full disk (catalogue 22) and a second run (catalogue 23's lock)
    Case(
        "checkpoint-enospc",
        "training checkpoint",
        "ENOSPC while writing the weights",
        _checkpoints,
        _save_on_full_disk,
        match="cannot write the checkpoint .No space left on device.; the earlier checkpoints",
    ),
    Case(
        "log-enospc-on-resume",
        "training log",
        "ENOSPC while rewriting log.jsonl on resume",
        _log,
        _rewrite_log_on_full_disk,
        match="log.jsonl: cannot write the training log .* it is unchanged",
    ),
    Case(
        "second-run-same-folder",
        "pretrain --out",
        "the folder's lock held by a live process",
        _locked,
        _lock,
        match=r"another run is using this folder \(pid \d+",
    ),
    # output folders (catalogue 24: pretrain-data and the demo)
    Case(
        "pretrain-data-out-not-empty",
        "pretrain-data --out",
        "--out holds a user's file",
        _user_folder("out"),
        argv=lambda tmp, out: ["pretrain-data", FIXTURE / "vocab.txt", "--tokenizer", FIXTURE, "--out", out],
        match="the folder exists and is not empty; .*--overwrite",
    ),
    Case(
        "demo-out-foreign-folder",
        "demo --out",
        "DIR/pretrain-data holds a user's file",
        _user_folder("pretrain-data"),
        _own_folder,
        match="exists and was not made by the demo",
    ),
    Case(
        "python-docs-foreign-folder",
        "demo --out",
        "DIR/python-docs holds a user's file",
        _user_folder("python-docs"),
        _python_docs,
        match="exists and was not written by bertkit",
    ),
    # settings (issue 12's --config-file)
    Case(
        "config-file-unknown-key",
        "pretrain --config-file",
        "a key that is no setting",
        _settings_file('{"learning_rate": 1}'),
        argv=lambda tmp, p: ["pretrain", "--config-file", p],
        match=r"run.json: unknown setting\(s\) learning_rate",
    ),
    Case(
        "config-file-not-object",
        "pretrain --config-file",
        "a JSON list",
        _settings_file("[1]"),
        argv=lambda tmp, p: ["pretrain", "--config-file", p],
        match="must hold an object",
    ),
    Case(
        "config-file-wrong-type",
        "pretrain --config-file",
        "batch_size as a string",
        _settings_file('{"batch_size": "256"}'),
        argv=lambda tmp, p: ["pretrain", "--config-file", p],
        match="batch_size: '256' is not a int",
    ),
    Case(
        "budget-negative",
        "pretrain --budget-minutes",
        "-1 minutes",
        argv=lambda tmp, _: ["pretrain", "--data", tmp / "d", "--out", tmp / "o", "--budget-minutes", -1],
        match="--budget-minutes must be positive",
    ),
    # several processes (catalogue 25's DDP part)
    Case(
        "ddp-rank0-fails-first",
        "torchrun pretrain",
        "rank 0 refuses the output folder before the barrier",
        run=_rank_one_after_rank_zero_failed,
        match="rank 0 refused the run",
        expected="every rank raises at once (none waits at a barrier)",
    ),
]
