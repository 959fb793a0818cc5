#!/usr/bin/env python3
"""Write fixtures/interop/ with the real tools: an MLflow FileStore tree (mlruns/), an MLflow
SQLite store (mlflow.db), TensorBoard event files (tb/), and expected.json: every value logged,
for the Rust tests to compare. VERSIONS.txt records the versions used.

Needs: pip install mlflow-skinny sqlalchemy alembic tensorboard tensorboardX
Run:   python scripts/make-interop-fixtures.py
"""
import json
import math
import os
import platform
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "interop"
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the file store is in maintenance mode in MLflow 3

import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

# What every MLflow store gets: (experiment, run name, status, params, tags, metrics)
# metrics: key -> list of (step, value); NaN and inf included on purpose.
RUNS = [
    ("vision", "resnet-a", "FINISHED", {"lr": "0.1", "batch_size": "256"}, {"team": "cv", "stage": "baseline"},
     {"train/loss": [(s, 2.0 * math.exp(-s / 5)) for s in range(12)], "val/acc": [(s, 0.5 + s / 40) for s in range(0, 12, 3)]}),
    ("vision", "resnet-b", "FAILED", {"lr": "0.3", "batch_size": "256"}, {"team": "cv"},
     {"train/loss": [(0, 2.1), (1, 1.7), (2, float("nan")), (3, float("inf"))]}),
    ("lm", "gpt-small", "KILLED", {"lr": "0.0003", "optimizer": "adamw", "schedule/warmup": "100"}, {},
     {"loss": [(s, 10 - s * 0.5) for s in range(8)], "tokens.per.sec": [(7, 12345.5)]}),
]
DELETED = ("vision", "resnet-deleted", "FINISHED", {}, {}, {"train/loss": [(0, 1.0)]})


def log_runs(uri):
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    ids = {}
    for exp, name, status, params, tags, metrics in RUNS + [DELETED]:
        e = client.get_experiment_by_name(exp) or client.get_experiment(client.create_experiment(exp))
        run = client.create_run(e.experiment_id, run_name=name, tags=tags)
        rid = run.info.run_id
        for k, v in params.items():
            client.log_param(rid, k, v)
        t0 = run.info.start_time
        for k, pts in metrics.items():
            for step, value in pts:
                client.log_metric(rid, k, value, timestamp=t0 + step * 1000, step=step)
        client.set_terminated(rid, status=status, end_time=t0 + 60_000)
        ids[name] = rid
        if name == DELETED[1]:
            client.delete_run(rid)
    return ids


def jsonable(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return x


def tensorboard(dirpath):
    from tensorboardX import SummaryWriter
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    expected = {}
    # run_a: SummaryWriter.add_scalar writes simple_value
    w = SummaryWriter(str(dirpath / "run_a"))
    pts = [(s, 1.0 / (s + 1)) for s in range(10)]
    for s, v in pts:
        w.add_scalar("loss", v, global_step=s, walltime=1_795_000_000 + s)
    w.add_scalar("eval/acc", 0.75, global_step=9, walltime=1_795_000_009)
    w.close()
    expected["run_a"] = {"loss": pts, "eval/acc": [(9, 0.75)]}
    # run_b: the tensor form (TF2 summaries): a scalar float tensor, and a double one
    ew = EventFileWriter(str(dirpath / "run_b"))
    pts_b = [(s, 0.5 * s) for s in range(5)]
    for s, v in pts_b:
        t = tensor_pb2.TensorProto(dtype=1, tensor_content=__import__("struct").pack("<f", v))
        d = tensor_pb2.TensorProto(dtype=2, double_val=[v / 4])
        summ = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="reward", tensor=t),
                                          summary_pb2.Summary.Value(tag="reward_scaled", tensor=d)])
        ew.add_event(event_pb2.Event(wall_time=1_795_000_100 + s, step=s, summary=summ))
    ew.close()
    expected["run_b"] = {"reward": pts_b, "reward_scaled": [(s, v / 4) for s, v in pts_b]}
    # broken: run_a's file with one record's data corrupted and the end cut off mid-record
    (dirpath / "broken").mkdir()
    src = next((dirpath / "run_a").glob("*tfevents*"))
    data = bytearray(src.read_bytes())
    # records: [file_version, loss@0, loss@1, ...]; corrupt a byte inside the third record's data
    pos = 0
    for _ in range(2):
        n = int.from_bytes(data[pos:pos + 8], "little")
        pos += 12 + n + 4
    n = int.from_bytes(data[pos:pos + 8], "little")
    data[pos + 12 + n // 2] ^= 0xFF
    (dirpath / "broken" / src.name).write_bytes(bytes(data[:-7]))
    expected["broken"] = {"loss": [p for p in pts if p[0] != 1], "eval/acc": []}
    expected["broken_counts"] = {"bad_records": 1, "truncated": True}
    return expected


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cwd = os.getcwd()
    os.chdir(OUT)  # artifact locations stay relative to the fixtures
    file_ids = log_runs("file:./mlruns")
    db_ids = log_runs("sqlite:///mlflow.db")
    os.chdir(cwd)
    tb_dir = OUT / "tb"
    tb_dir.mkdir()
    tb_expected = tensorboard(tb_dir)
    expected = {
        "mlflow_runs": [
            {"experiment": e, "name": n, "status": st, "params": p, "tags": t,
             "metrics": {k: [[s, jsonable(v)] for s, v in pts] for k, pts in m.items()}}
            for e, n, st, p, t, m in RUNS
        ],
        "mlflow_file_ids": {k: v for k, v in file_ids.items() if k != DELETED[1]},
        "mlflow_db_ids": {k: v for k, v in db_ids.items() if k != DELETED[1]},
        "tensorboard": {d: {k: [[s, v] for s, v in pts] for k, pts in m.items()} if d != "broken_counts" else m
                        for d, m in tb_expected.items()},
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    import tensorboard as tbm
    import tensorboardX
    (OUT / "VERSIONS.txt").write_text(
        f"python {platform.python_version()}\nmlflow-skinny {mlflow.__version__}\n"
        f"tensorboard {tbm.__version__}\ntensorboardX {tensorboardX.__version__}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
