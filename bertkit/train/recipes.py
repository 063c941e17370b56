"""The pretraining recipes, as data: `bertkit pretrain --recipe lecture|short-budget|demo`.

lecture       the lecture's recipe (its numbers are PretrainSettings' defaults: Adam, the peak lr,
              the betas, warmup steps then linear decay, dropout, the batch size) with what
              google-research/bert's code adds (decoupled weight decay, eps, clipping).
              `--optimizer adam` leaves the additions out: the lecture's plain Adam.
short-budget  minutes on a CPU (docs/pretraining.md has the measurements behind each change):
              BERT-mini on short sequences, a higher peak lr with a short warmup, small batches,
              no dropout, more masking, decoder bias and position table started from the data,
              and a schedule laid over a wall-clock budget instead of a step count.
demo          `bertkit demo`'s two minutes: BERT-tiny, the same spirit.

Each recipe is a PretrainSettings object (no data or out folder); a run is
`dataclasses.replace(recipe.settings, data=..., out=...)`. Every number is written once: the
lecture's in PretrainSettings, each other recipe's as its change from the lecture.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from bertkit.errors import BertkitError
from bertkit.train.settings import ORIGINS, PretrainSettings


@dataclass(frozen=True)
class Recipe:
    name: str
    purpose: str  # one line: what it is for
    settings: PretrainSettings
    data_seq_len: int  # `pretrain-data --max-seq-len` the recipe expects

    def changes(self) -> dict[str, object]:
        """The fields this recipe sets differently from the lecture recipe."""
        base = LECTURE.settings
        return {
            f.name: getattr(self.settings, f.name)
            for f in fields(PretrainSettings)
            if getattr(self.settings, f.name) != getattr(base, f.name)
        }


def origins() -> dict[str, list[str]]:
    """Field names by where the lecture recipe's value comes from (the lecture, or Google's code)."""
    by: dict[str, list[str]] = {}
    for f in fields(PretrainSettings):
        if f.metadata.get("origin"):
            by.setdefault(f.metadata["origin"], []).append(f.name)
    return by


LECTURE = Recipe(
    "lecture",
    "the lecture's recipe plus Google's additions (BERT-base for 1M steps: a cluster's job); the "
    "lecture's 512 tokens come from the data (pretrain-data --max-seq-len 512; its default builds 128)",
    PretrainSettings(),
    data_seq_len=128,
)

SHORT_BUDGET = Recipe(
    "short-budget",
    "minutes on a CPU: BERT-mini on 64-token data, every change measured in docs/pretraining.md",
    replace(
        LECTURE.settings,
        config="mini",
        max_seq_len=64,
        budget_minutes=20.0,
        lr=1e-3,
        warmup_steps=100,
        batch_size=16,
        dropout=0.0,
        unigram_bias=True,
        sinusoidal_positions=True,
        mlm_probability=0.25,
        eval_every=400,
        eval_instances=512,
        save_every=400,
    ),
    data_seq_len=64,
)

DEMO = Recipe(
    "demo",
    "`bertkit demo`'s two minutes: BERT-tiny on 128-token data, the short-budget optimizer settings",
    replace(
        SHORT_BUDGET.settings,
        config="tiny",
        max_seq_len=None,
        budget_minutes=2.0,
        warmup_steps=50,
        unigram_bias=False,
        sinusoidal_positions=False,
        mlm_probability=None,
        eval_every=200,
        eval_instances=256,
        save_every=200,
    ),
    data_seq_len=128,
)

RECIPES = {r.name: r for r in (LECTURE, SHORT_BUDGET, DEMO)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise BertkitError(f"--recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def describe(recipe: Recipe) -> str:
    """The recipe in a few lines for --help and the docs, generated from its values."""
    lines = [f"{recipe.name}: {recipe.purpose}"]
    if recipe is LECTURE:
        s = recipe.settings
        for origin, names in origins().items():
            lines.append(f"  {ORIGINS[origin]}: " + ", ".join(f"{n} {getattr(s, n)}" for n in names))
        lines.append("  --optimizer adam leaves the additions out: the lecture's plain Adam")
    else:
        lines.append("  changes from lecture: " + ", ".join(f"{k} {v}" for k, v in recipe.changes().items()))
    return "\n".join(lines)
