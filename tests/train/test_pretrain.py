"""`bertkit pretrain` end to end on a small slice of the books: outputs, bad input, SIGKILL +
resume (bitwise), Ctrl-C, and two gloo processes against one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from peers import peer
from safetensors.torch import load_file

from bertkit.cli import main
from bertkit.data.build import BuildSettings, build_pretraining_data
from bertkit.hardware import cpu_has_native
from bertkit.train.curves import read_log

SMALL = {
    "vocab_size": 30522,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="module")
def data(shared_data, minilm_dir, tmp_path_factory):
    src = sorted(shared_data("corpus", "books").glob("*.txt"))[10:16]
    books = tmp_path_factory.mktemp("books")
    for path in src:
        text = path.read_text()[30_000:45_000]
        (books / path.name).write_text(text[text.index("\n\n") + 2 :])
    out = tmp_path_factory.mktemp("data") / "d"
    build_pretraining_data(
        [books], minilm_dir, out, BuildSettings(max_seq_len=64, heldout=2), progress=False, log=lambda s: None
    )
    return out


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "small.json"
    path.write_text(json.dumps(SMALL))
    return path


def _args(data, config, out, *extra):
    return [
        "pretrain",
        "--data",
        str(data),
        "--config",
        str(config),
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--warmup-steps",
        "2",
        "--threads",
        "1",
        "--no-progress",
        *map(str, extra),
    ]


def _cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "bertkit", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_pretrain_writes_model_tokenizer_logs_and_curves(data, tmp_path):
    out = tmp_path / "run"
    assert (
        main(_args(data, "tiny", out, "--max-steps", 12, "--eval-every", 6, "--eval-instances", 32, "--log-every", 3))
        == 0
    )
    for name in (
        "config.json",
        "model.safetensors",
        "vocab.txt",
        "tokenizer.json",
        "log.jsonl",
        "curves.png",
        "run.json",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    records = read_log(out / "log.jsonl")
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_mlm_acc" in r]
    assert [r["step"] for r in train] == [3, 6, 9, 12] and [r["step"] for r in evals] == [6, 12]
    for key in ("mlm_loss", "nsp_loss", "mlm_acc", "nsp_acc", "lr", "tokens_per_s", "grad_norm"):
        assert key in train[-1]
    assert train[-1]["mlm_loss"] < train[0]["mlm_loss"]
    assert abs(train[0]["loss"] - (train[0]["mlm_loss"] + train[0]["nsp_loss"])) < 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 12 and 0 <= summary["eval"]["mlm_acc"] <= 1

    transformers = peer("transformers")
    theirs = transformers.BertForPreTraining.from_pretrained(out)
    ours = _weights(out)
    assert torch.equal(theirs.bert.embeddings.word_embeddings.weight, ours["bert.embeddings.word_embeddings.weight"])
    from bertkit.model import BertForMaskedLM
    from bertkit.tokenizers import Tokenizer

    tok = Tokenizer.from_pretrained(out)
    mlm = BertForMaskedLM.from_pretrained(out).eval()
    enc = tok.encode("the [MASK] was dark .")
    logits = mlm(input_ids=torch.tensor([enc.ids])).logits
    assert logits.shape == (1, len(enc.ids), 30522)


def test_bad_input_gives_one_line_errors(data, small_config, tmp_path, capsys):
    def error(*args):
        assert main(list(map(str, args))) == 2
        return capsys.readouterr().err.strip()

    base = _args(data, small_config, tmp_path / "a", "--max-steps", 2)
    assert "different tokenizer" in error(*base, "--tokenizer", _other_tokenizer(tmp_path))
    assert "--max-seq-len 128 differs from the data's max_seq_len 64" in error(*base, "--max-seq-len", 128)
    assert "--max-seq-len 128 differs" in error(*base, "--seq-len", 128)  # the old spelling, a hidden alias
    bad_cfg = tmp_path / "bad.json"
    bad_cfg.write_text(json.dumps(dict(SMALL, vocab_size=1000)))
    assert "vocab_size 1000 is smaller" in error(*_args(data, bad_cfg, tmp_path / "b", "--max-steps", 2))
    short_cfg = tmp_path / "short.json"
    short_cfg.write_text(json.dumps(dict(SMALL, max_position_embeddings=32)))
    assert "max_position_embeddings 32" in error(*_args(data, short_cfg, tmp_path / "b", "--max-steps", 2))
    assert "must divide" in error(*base, "--grad-accum", 3)
    assert "not a pretraining data folder" in error(*_args(tmp_path, small_config, tmp_path / "c", "--max-steps", 2))
    assert main(base) == 0
    capsys.readouterr()
    assert "holds another run" in error(*base)
    assert "different settings (lr)" in error(
        *_args(data, small_config, tmp_path / "a", "--max-steps", 2, "--lr", 5e-4, "--resume")
    )
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    assert "not empty" in error(*_args(data, small_config, tmp_path / "junk", "--max-steps", 2))
    bf16_run = _args(data, small_config, tmp_path / "e", "--max-steps", 2, "--precision", "bf16")
    if cpu_has_native("bf16"):  # AVX-512 BF16 / AMX: the bf16 path runs
        assert main(list(map(str, bf16_run))) == 0
    else:  # emulated bf16 would be far slower than float32: refused in one line
        msg = error(*bf16_run)
        assert "--precision bf16" in msg and "\n" not in msg
    assert "--precision fp16: float16 training needs a GPU" in error(
        *_args(data, small_config, tmp_path / "f", "--max-steps", 2, "--precision", "fp16", "--device", "cpu")
    )


def _other_tokenizer(tmp_path):
    from bertkit.tokenizers import Tokenizer

    tok = Tokenizer.train(
        iter(["some other text to learn a vocabulary from"] * 10),
        model="wordpiece",
        vocab_size=80,
        min_frequency=1,
        show_progress=False,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    tok.save(tmp_path / "other_tok")
    return tmp_path / "other_tok"


def _wait_for(path, proc, timeout=120):
    start = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {path.name} appeared:\n{proc.stdout.read()}")
        if time.time() - start > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_identical(data, small_config, tmp_path):
    steps = [
        "--max-steps",
        16,
        "--save-every",
        3,
        "--log-every",
        1,
        "--eval-every",
        8,
        "--eval-instances",
        16,
        "--unigram-bias",
    ]  # the resumed run takes the bias from its checkpoint, not from a recount
    full = _cli(_args(data, small_config, tmp_path / "full", *steps))
    assert full.wait(timeout=300) == 0, full.stdout.read()

    out = tmp_path / "killed"
    proc = _cli(_args(data, small_config, out, *steps))
    _wait_for(out / "checkpoints" / "checkpoint-00000006", proc)
    time.sleep(0.3)  # somewhere in steps 7..9, maybe mid-save
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "model.safetensors").exists()  # it really died before the end
    resumed = _cli(_args(data, small_config, out, *steps, "--resume"))
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()

    a, b = _weights(tmp_path / "full"), _weights(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps_logged = [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert steps_logged == list(range(1, 17))


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(data, small_config, tmp_path):
    out = tmp_path / "run"
    proc = _cli(_args(data, small_config, out, "--max-steps", 100000, "--save-every", 1000, "--eval-every", 0))
    _wait_for(out / "log.jsonl", proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    text = proc.stdout.read()
    assert "--resume" in text
    (ckpt,) = (out / "checkpoints").iterdir()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert ckpt.name == f"checkpoint-{state['step']:08d}" and state["step"] > 0


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(data, small_config, tmp_path):
    common = ["--max-steps", 5, "--dropout", 0, "--eval-every", 0, "--save-every", 0, "--log-every", 1]
    one = _cli(_args(data, small_config, tmp_path / "one", *common))
    assert one.wait(timeout=300) == 0, one.stdout.read()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "bertkit",
            *map(str, _args(data, small_config, tmp_path / "two", *common)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stdout + two.stderr
    assert "2 process(es) x 1 x 4" in two.stderr  # progress lines go to stderr (logging)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    one_log = [r for r in read_log(tmp_path / "one" / "log.jsonl") if "loss" in r]
    two_log = [r for r in read_log(tmp_path / "two" / "log.jsonl") if "loss" in r]
    assert len(one_log) == len(two_log) == 5 and one_log[-1]["mlm_loss"] < one_log[0]["mlm_loss"]  # it trained
    for r1, r2 in zip(one_log, two_log):
        assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-4) and r1["tokens"] == r2["tokens"]
        assert r1["mlm_acc"] == pytest.approx(r2["mlm_acc"])


def test_unigram_bias_starts_at_the_unigram_loss(data, tmp_path):
    """--unigram-bias: step 1 already scores like word frequencies (far below ln V = 10.33)."""
    import numpy as np

    from bertkit.data.shards import PretrainingData
    from bertkit.tokenizers import Tokenizer
    from bertkit.train.init import unigram_log_probs

    train = PretrainingData(data, "train")
    tok = Tokenizer.from_pretrained(data / "tokenizer")
    logp = unigram_log_probs(train, 30522, tok)
    assert abs(float(logp.exp().sum()) - 1.0) < 1e-4
    ids = np.concatenate([train[i][0] for i in range(len(train))])
    words = ids[~np.isin(ids, tok.all_special_ids)]
    top = int(np.bincount(words).argmax())
    assert int(logp.argmax()) == top  # the most frequent word of the data (a comma or "the")
    assert all(float(logp[i]) == float(logp.min()) for i in tok.all_special_ids)  # never targets: add-one only
    entropy = -float(logp[torch.from_numpy(words)].mean())  # cross-entropy of the unigram model on its data

    first = {}
    for flag in ([], ["--unigram-bias"]):
        out = tmp_path / ("u" if flag else "plain")
        assert (
            main(
                _args(
                    data, "tiny", out, "--max-steps", 1, "--log-every", 1, "--eval-every", 0, "--save-every", 0, *flag
                )
            )
            == 0
        )
        first[bool(flag)] = read_log(out / "log.jsonl")[0]["mlm_loss"]
    assert first[False] > 10.0  # uniform start
    assert abs(first[True] - entropy) < 1.0 and first[True] < first[False] - 2.5


def test_sinusoidal_positions_relate_neighbours_by_one_linear_map(data, tmp_path):
    """--sinusoidal-positions: the table at p+k is one fixed linear map of the table at p, for every p."""
    from bertkit.train.init import sinusoidal_table

    table = sinusoidal_table(128, 64, std=0.02).double()
    assert table.shape == (128, 64)
    assert abs(float(table.pow(2).mean().sqrt()) - 0.02) < 1e-3  # the word embeddings' spread, not sin's
    for k in (1, 5):
        shift = torch.linalg.lstsq(table[:100], table[k : 100 + k]).solution  # X @ M = X shifted by k
        assert torch.allclose(table[:100] @ shift, table[k : 100 + k], atol=1e-9)
    assert torch.linalg.matrix_rank(table[:64]) == 64  # still 64 distinguishable positions

    out = tmp_path / "sin"
    assert (
        main(
            _args(
                data,
                "tiny",
                out,
                "--max-steps",
                3,
                "--log-every",
                1,
                "--eval-every",
                0,
                "--save-every",
                0,
                "--sinusoidal-positions",
            )
        )
        == 0
    )
    learned = _weights(out)["bert.embeddings.position_embeddings.weight"]
    start = sinusoidal_table(*learned.shape)
    assert (learned - start).abs().max() < 5e-3  # three Adam steps (lr <= 1e-3) away from the sinusoids
    assert (learned - start).abs().max() > 0  # and still trained


def test_an_injected_nan_ends_the_run_non_zero_with_finite_checkpoints(
    data, small_config, tmp_path, monkeypatch, capsys
):
    """Issue 13's done-when: NaN from step 5 on; the run stops, exit status 2, nothing poisoned saved."""
    from bertkit.train import pretrain as module

    real, calls = module.PretrainingObjective.loss, [0]

    def poisoned(self, model, batch):
        calls[0] += 1
        sums, metrics = real(self, model, batch)
        return ({k: v * float("nan") for k, v in sums.items()} if calls[0] >= 5 else sums), metrics

    monkeypatch.setattr(module.PretrainingObjective, "loss", poisoned)
    out = tmp_path / "nan"
    flags = ["--max-steps", 40, "--save-every", 2, "--eval-every", 0, "--max-bad-steps", 3, "--log-every", 1]
    assert main(_args(data, small_config, out, *flags)) == 2
    err = capsys.readouterr().err
    assert "more than 3 steps in a row had a non-finite loss" in err and "step 5: non-finite loss" in err
    newest = sorted((out / "checkpoints").glob("checkpoint-*"))[-1]
    assert newest.name == "checkpoint-00000008"  # steps 5..8 skipped, then the stop
    assert all(bool(torch.isfinite(t).all()) for t in load_file(str(newest / "model.safetensors")).values())
    assert not (out / "model.safetensors").exists()  # no final model: the run failed
    assert [r.get("skipped", 0) for r in read_log(out / "log.jsonl") if "loss" in r][3:] == [0, 1, 1, 1, 1]


def test_resume_after_truncating_the_newest_checkpoint_is_bitwise_identical(data, small_config, tmp_path, monkeypatch):
    """Issue 13's done-when: the resume falls back to the previous checkpoint and ends as an uncut run."""
    from bertkit.train.steps import Run

    steps = ["--max-steps", 12, "--save-every", 4, "--log-every", 1, "--eval-every", 0]
    assert main(_args(data, small_config, tmp_path / "full", *steps)) == 0
    out = tmp_path / "cut"
    real = Run.after_step

    def stop_at_8(self, interrupted):  # as a kill right after the save of step 8
        real(self, interrupted)
        self.state.should_stop = self.state.should_stop or self.state.step >= 8

    with monkeypatch.context() as patch:
        patch.setattr(Run, "after_step", stop_at_8)
        assert main(_args(data, small_config, out, *steps)) == 0
    newest = out / "checkpoints" / "checkpoint-00000008"
    weights = (newest / "model.safetensors").read_bytes()
    (newest / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    assert main(_args(data, small_config, out, *steps, "--resume")) == 0
    a, b = _weights(tmp_path / "full"), _weights(out)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r] == list(range(1, 13))


@pytest.fixture(scope="module")
def data512(shared_data, minilm_dir, tmp_path_factory):
    src = sorted(shared_data("corpus", "books").glob("*.txt"))[20:23]
    books = tmp_path_factory.mktemp("books512")
    for path in src:
        text = path.read_text()[30_000:90_000]
        (books / path.name).write_text(text[text.index("\n\n") + 2 :])
    out = tmp_path_factory.mktemp("data512") / "d"
    build_pretraining_data([books], minilm_dir, out, BuildSettings(max_seq_len=512), progress=False, log=lambda s: None)
    return out


@pytest.mark.parametrize("length", [128, 512])
def test_masking_keeps_15_percent_at_any_length(data, data512, length, caplog):
    """--max-predictions defaults to ceil(0.15 x length): 20 at 128 (Google's), 77 at 512 (not 20: 4%)."""
    import logging

    from bertkit.data.batching import PretrainingCollator
    from bertkit.data.shards import PretrainingData
    from bertkit.tokenizers import Tokenizer
    from bertkit.train.pretrain import _masker
    from bertkit.train.settings import PretrainSettings

    folder = data512 if length == 512 else data
    train = PretrainingData(folder, "train")
    tok = Tokenizer.from_pretrained(folder / "tokenizer")
    built = dict(train.manifest["settings"], max_seq_len=length)
    masker = _masker(PretrainSettings(data=str(folder)), built, tok, len(tok), length)
    assert masker.max_predictions == {128: 20, 512: 77}[length] and masker.mlm_probability == 0.15
    collate = PretrainingCollator(train, masker, seed=0)
    batch = collate(range(min(len(train), 64)))
    real = batch["attention_mask"].sum() - 3 * len(batch["attention_mask"])  # less [CLS] and two [SEP]
    share = float(batch["labels"].ne(-100).sum() / real)
    assert abs(share - 0.15) < 0.01, share
    with caplog.at_level(logging.WARNING, logger="bertkit"):
        capped = _masker(PretrainSettings(data=str(folder), max_predictions=20), built, tok, len(tok), length)
    assert capped.max_predictions == 20
    assert ("--max-predictions 20 masks at most 3.9% of a 512-token sequence" in caplog.text) == (length == 512)
