#!/usr/bin/env python3
"""Bytes per point on disk for the same points in MLflow's SQLite store, W&B's offline run files
and gantry's store, side by side.

The points: one run of METRICS metrics x STEPS steps, float32 values as training logs them (losses
that fall with noise, accuracies that rise, a stepped learning rate, noisy gradient norms), as
benches/common's generator makes them. They are logged with MLflow's client into mlflow.db and
with wandb in offline mode; gantry imports the mlflow.db (`gantry import mlflow`), so it stores
exactly the points MLflow holds.

    python3 scripts/bytes-per-point.py GANTRY_BIN [STEPS] [METRICS]

Needs mlflow and wandb in the Python that runs it (a venv: pip install mlflow wandb).
"""

import math
import os
import random
import struct
import subprocess
import sys
import tempfile


def values(metric, steps, rng):
    out = []
    for i in range(steps):
        t = i / steps
        noise = rng.random() - 0.5
        kind = metric % 4
        if kind == 0:
            v = 2.5 * math.exp(-5.0 * t) + 0.3 + 0.05 * noise
        elif kind == 1:
            v = 0.95 - 0.6 * math.exp(-4.0 * t) + 0.01 * noise
        elif kind == 2:
            v = 3e-4 * 0.5 ** int(t * 4.0)
        else:
            v = 1.0 + 0.5 * abs(noise)
        out.append(struct.unpack("f", struct.pack("f", v))[0])  # a float32, as a tensor holds it
    return out


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
    )


def main():
    gantry = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    metrics = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    rng = random.Random(7)
    series = [values(m, steps, rng) for m in range(metrics)]
    keys = [f"train/m{m}" for m in range(metrics)]
    t0 = 1_700_000_000_000
    points = steps * metrics
    work = tempfile.mkdtemp(prefix="bpp-")
    os.environ["WANDB_SILENT"] = "true"

    import mlflow
    from mlflow.entities import Metric

    db = os.path.join(work, "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = mlflow.tracking.MlflowClient()
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    batch = []
    for i in range(steps):
        for k, s in zip(keys, series):
            batch.append(Metric(k, s[i], t0 + i * 250, i))
            if len(batch) == 1000:
                client.log_batch(run.info.run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)

    import wandb

    wdir = os.path.join(work, "wandb")
    os.makedirs(wdir)
    w = wandb.init(project="bpp", dir=wdir, mode="offline")
    for i in range(steps):
        w.log({k: s[i] for k, s in zip(keys, series)}, step=i)
    w.finish()
    wfiles = [
        os.path.join(d, f) for d, _, fs in os.walk(wdir) for f in fs if f.endswith(".wandb")
    ]

    ws = os.path.join(work, "gantry")
    os.makedirs(ws)
    env = dict(os.environ, GANTRY_WORKSPACE=ws)
    subprocess.run([gantry, "init", ws], check=True, capture_output=True, env=env)
    subprocess.run(
        [gantry, "--workspace", ws, "import", "mlflow", db],
        check=True,
        capture_output=True,
        env=env,
    )
    gdb = os.path.join(ws, ".gantry", "gantry.db")
    # Fold the write-ahead log into the database file, as it is at rest.
    import sqlite3

    c = sqlite3.connect(gdb)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    c = sqlite3.connect(db)
    c.execute("VACUUM")
    c.close()

    print(f"{points} points ({metrics} metrics x {steps} steps, float32 values), bytes on disk:")
    rows = [
        ("MLflow SQLite store (mlflow.db, vacuumed)", size(db)),
        ("W&B offline run (.wandb files)", sum(size(f) for f in wfiles)),
        ("gantry store (gantry.db)", size(gdb)),
    ]
    for name, b in rows:
        print(f"  {name:<44} {b:>12,} bytes = {b / points:6.2f} bytes/point")


if __name__ == "__main__":
    main()
