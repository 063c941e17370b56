"""A notebook written only with Hugging Face habits runs unchanged against bertkit, but for its import line.

The notebook (NOTEBOOK below) loads models and a tokenizer by hub name, classifies with
pipeline("text-classification"), saves the tokenizer with save_pretrained and reloads it, and
finds entities with pipeline("ner", aggregation_strategy="simple"). The hub is stubbed: a local
Hugging Face cache holding two small repositories, read offline (HF_HUB_OFFLINE=1), so both
libraries resolve "bertkit-test/..." the way they would after a download. The notebook runs in a
fresh process once with transformers' import line and once with bertkit's; the printed answers
must agree (labels, token ids, entity groups, words and offsets exactly; scores to 1e-4).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from peers import peer
from tiny_models import NER_LABELS, random_head

HF_IMPORTS = "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline"
BERTKIT_IMPORTS = (
    "from bertkit import BertForSequenceClassification as AutoModelForSequenceClassification, "
    "Tokenizer as AutoTokenizer, pipeline"
)
NOTEBOOK = """
import json, os, tempfile

tokenizer = AutoTokenizer.from_pretrained("bertkit-test/tiny-sst2")
encoded = tokenizer("a gripping, funny film", "and a second sentence", truncation=True, max_length=12)

model = AutoModelForSequenceClassification.from_pretrained("bertkit-test/tiny-sst2", revision="main")
classifier = pipeline("text-classification", model=model, tokenizer=tokenizer)
by_name = pipeline("text-classification", model="bertkit-test/tiny-sst2")

save_dir = tempfile.mkdtemp()
tokenizer.save_pretrained(save_dir)
reloaded = AutoTokenizer.from_pretrained(save_dir)

ner = pipeline("ner", model="bertkit-test/tiny-ner", aggregation_strategy="simple")
entities = ner("Angela Merkel met Emmanuel Macron in Berlin on Monday, Reuters reported.")

print(json.dumps({
    "ids": encoded["input_ids"],
    "types": encoded["token_type_ids"],
    "one": classifier("a gripping, funny film"),
    "many": classifier(["a tedious mess", "fine"]),
    "every_label": by_name("fine", top_k=None),
    "saved": "tokenizer_config.json" in os.listdir(save_dir),
    "reloaded": reloaded("a gripping, funny film")["input_ids"],
    "entities": [{k: (float(v) if k == "score" else v) for k, v in e.items()} for e in entities],
}))
"""


def stub_hub(cache: Path, repos: dict[str, Path]) -> None:
    """Hugging Face's cache layout: models--owner--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    for repo_id, folder in repos.items():
        base = cache / ("models--" + repo_id.replace("/", "--"))
        shutil.copytree(folder, base / "snapshots" / commit)
        (base / "refs").mkdir(parents=True)
        (base / "refs" / "main").write_text(commit)


def run_notebook(imports: str, cache: Path, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_CACHE=str(cache), HF_HOME=str(cwd / "hf-home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", imports + "\n" + NOTEBOOK], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def scores_close(ours, theirs) -> None:
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs)
        for k in theirs:
            scores_close(ours[k], theirs[k])
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            scores_close(a, b)
    elif isinstance(theirs, float):
        assert abs(ours - theirs) <= 1e-5 + 1e-4 * abs(theirs), (ours, theirs)
    else:
        assert ours == theirs


def test_the_hf_notebook_runs_unchanged(tmp_path, minilm_dir):
    peer("transformers")
    sst2 = random_head(
        "BertForSequenceClassification",
        tmp_path / "sst2",
        minilm_dir,
        scale=30.0,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
    )
    ner = random_head(
        "BertForTokenClassification", tmp_path / "ner", minilm_dir, seed=3, scale=40.0, id2label=NER_LABELS
    )
    cache = tmp_path / "hub"
    stub_hub(cache, {"bertkit-test/tiny-sst2": sst2, "bertkit-test/tiny-ner": ner})
    theirs = run_notebook(HF_IMPORTS, cache, tmp_path)
    ours = run_notebook(BERTKIT_IMPORTS, cache, tmp_path)
    assert theirs["entities"] and theirs["saved"]  # the notebook really exercised NER and saving
    scores_close(ours, theirs)
