"""Is bertkit's fine-tuning gap to transformers seed noise? The same recipe, several seeds per side.

Runs `bench/finetune_quality.py` once per (task, seed, side), each in its own process, and keeps
each run's figures in OUT/TASK_sSEED_SIDE.json; a run whose file exists is not repeated, so a
stopped study goes on where it stopped. Then prints, per task, every seed's figure and each side's
mean and sample standard deviation. The recipes are the ones the comparison was first made at
(docs/finetuning.md, "Measured"): lr 5e-5, batch 32 (QA 16), SST-2 1 epoch at length 64, QA 3
epochs at 384 / stride 128; both sides fp32 unless --precision says otherwise. Run every seed of
a task on one machine: the CPU alone moves these figures (docs/finetuning.md). Finished runs of
the studies in docs/finetuning.md are kept in bench/results/seed_study/ (each run's JSON names
the CPU it ran on); `--out bench/results/seed_study` goes on from them.

    flock /tmp/bertkit-cpu.lock .venv/bin/python bench/seed_study.py --out runs/seeds \\
        [--tasks sst2,qa] [--seeds 0,1,2] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

STUDIES = {  # task: (finetune_quality task, train, dev, recipe, headline metric)
    "sst2": (
        "classify",
        "sst2/train.tsv",
        "sst2/validation.tsv",
        {"epochs": 1, "max_seq_len": 64, "batch_size": 32},
        "accuracy",
    ),
    "qa": (
        "qa",
        "squad/train-v1.1-from-dev.json",
        "squad/validation-v1.1-from-dev.json",
        {"epochs": 3, "max_seq_len": 384, "doc_stride": 128, "batch_size": 16},
        "f1",
    ),
}
SIDES = ("bertkit", "transformers")


def figure(path: Path, side: str, metric: str) -> float | None:
    """The run's headline figure, or None when the run has not finished (no file, or no figure in it)."""
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(side, {}).get(metric)


def run_one(out: Path, task: str, seed: int, side: str, precision: str) -> None:
    kind, train, dev, recipe, metric = STUDIES[task]
    target = out / f"{task}_s{seed}_{side}.json"
    if figure(target, side, metric) is not None:
        return
    settings = {**recipe, "seed": seed, "lr": 5e-5, "precision": precision}
    command = [sys.executable, str(Path(__file__).with_name("finetune_quality.py")), kind]
    command += ["--train", train, "--dev", dev, "--side", side, "--settings", json.dumps(settings)]
    command += ["--json", str(target)]
    print(f"--- {task} seed {seed} {side}", flush=True)
    with open(out / f"{task}_s{seed}_{side}.log", "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)


def report(out: Path, task: str, seeds: list[int]) -> None:
    metric = STUDIES[task][4]
    print(f"{task} ({metric}, validation)")
    for side in SIDES:
        found = (figure(out / f"{task}_s{seed}_{side}.json", side, metric) for seed in seeds)
        values = [value for value in found if value is not None]
        shown = ", ".join(f"{v:.4f}" for v in values) or "none yet"
        spread = f"mean {statistics.mean(values):.4f}" if values else ""
        if len(values) > 1:
            spread += f", sd {statistics.stdev(values):.4f}"
        print(f"  {side:12s} {shown}   {spread}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for each run's JSON and log")
    parser.add_argument("--tasks", default="sst2,qa")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--report-only", action="store_true", help="print what the folder holds, run nothing")
    args = parser.parse_args(argv)
    tasks, seeds = args.tasks.split(","), [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for task in tasks:
            for seed in seeds:
                for side in SIDES:
                    run_one(args.out, task, seed, side, args.precision)
    for task in tasks:
        report(args.out, task, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
