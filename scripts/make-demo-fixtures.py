#!/usr/bin/env python3
"""Write fixtures/demo/: the runs `gantry demo` seeds its workspace with.

runs.json holds each run's record; metrics/<name>.jsonl holds its metrics in gantry's metric
protocol (one JSON object per line, `step` plus numeric fields). Deterministic: run it again and
the files come out the same. Standard library only.
"""
import json
import math
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "demo"

RUNS = [
    # name, experiment, status, exit code, lr, batch, steps logged, planned steps, minutes ago
    ("resnet50-baseline", "vision", "finished", 0, 0.1, 256, 300, 300, 26 * 60),
    ("resnet50-cosine", "vision", "finished", 0, 0.2, 256, 300, 300, 20 * 60),
    ("resnet50-warmup", "vision", "running", None, 0.2, 512, 140, 300, 35),
    ("vit-small-adamw", "vision", "failed", 1, 3e-3, 128, 180, 300, 6 * 60),
    ("gpt2-124m-lr3e-4", "lm", "finished", 0, 3e-4, 64, 300, 300, 3 * 24 * 60),
    ("gpt2-124m-lr6e-4", "lm", "killed", None, 6e-4, 64, 220, 300, 2 * 24 * 60),
    ("gpt2-124m-bs32", "lm", "crashed", None, 3e-4, 32, 90, 300, 30 * 60),
    ("gpt2-124m-bs64", "lm", "running", None, 3e-4, 64, 120, 300, 95),
]

# The language-model runs ran on a second box; one of them is still running there, but its gantry
# has been silent for 12 minutes: the workbench shows it lost.
HOSTS = {"lm": "gpu02"}
SILENT_MIN = {"gpt2-124m-bs64": 12}


def curve(rng, run, step, planned):
    name, exp, status, _, lr, batch, _, _, _ = run
    t = step / planned
    if exp == "vision":
        floor = 0.55 if "cosine" in name else 0.65
        train = floor + 4.2 * math.exp(-5.0 * t) + rng.gauss(0, 0.04)
        if name.startswith("vit") and step > 150:
            train = float("nan") if step > 170 else train * (1 + (step - 150) * 0.2)
        out = {"train/loss": train, "lr": lr * (0.5 * (1 + math.cos(math.pi * t)))}
        if step % 10 == 0:
            out["val/loss"] = train + 0.12 + rng.gauss(0, 0.02)
            out["val/acc"] = min(0.99, 0.95 - 0.8 * math.exp(-4.5 * t) + rng.gauss(0, 0.005))
    else:
        scale = 1.0 if lr < 5e-4 else 0.96
        train = scale * (3.1 + 7.8 * math.exp(-6.0 * t)) + rng.gauss(0, 0.05)
        out = {"train/loss": train, "lr": lr * min(1.0, step / 30)}
        if step % 10 == 0:
            out["val/loss"] = train + 0.08 + rng.gauss(0, 0.02)
            out["val/ppl"] = math.exp(out["val/loss"])
    return out


def main():
    (OUT / "metrics").mkdir(parents=True, exist_ok=True)
    (OUT / "live").mkdir(parents=True, exist_ok=True)
    records = []
    for run in RUNS:
        name, exp, status, code, lr, batch, logged, planned, ago_min = run
        rng = random.Random(name)
        step_ms = 2000 if exp == "vision" else 6000
        record = {
            "name": name,
            "experiment": exp,
            "status": status,
            "exit_code": code,
            "started_min_ago": ago_min,
            "step_ms": step_ms,
            "command": ["python", "train.py", "--lr", str(lr), "--batch-size", str(batch)],
            "params": {"lr": str(lr), "batch_size": str(batch), "epochs": "30", "optimizer": "adamw" if "vit" in name else "sgd"},
            "tags": {"baseline": "true"} if "baseline" in name or "lr3e-4" in name else {},
            "git_commit": "%040x" % rng.getrandbits(160),
            "git_branch": "main",
            "git_dirty": status == "running",
        }
        if exp in HOSTS:
            record["host"] = HOSTS[exp]
        if name in SILENT_MIN:
            record["heartbeat_min_ago"] = SILENT_MIN[name]
        records.append(record)
        with open(OUT / "metrics" / f"{name}.jsonl", "w") as f:
            for step in range(1, logged + 1):
                point = {"step": step}
                point.update(curve(rng, run, step, planned))
                f.write(json.dumps(point, allow_nan=True, sort_keys=True) + "\n")
        if status == "running" and name not in SILENT_MIN:
            # The rest of the running run, replayed live by `gantry demo`.
            with open(OUT / "live" / f"{name}.jsonl", "w") as f:
                for step in range(logged + 1, planned + 1):
                    point = {"step": step}
                    point.update(curve(rng, run, step, planned))
                    f.write(json.dumps(point, allow_nan=True, sort_keys=True) + "\n")
    (OUT / "runs.json").write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
