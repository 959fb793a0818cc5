"""The mlflow client logging metrics into one tracking server, timed: used by benches/serve.rs.

Usage: serve_client.py URL batch|single|search N create|nocreate

batch: N calls of MlflowClient.log_batch with 1,000 points each; single: N calls of log_metric;
search: N calls of search_runs with a filter and an order over 100 runs (made first, untimed;
the stub has none, and gives the client's own cost of a call).
create: make a run first (real servers); nocreate: log to a made-up run id (the stub answers {}).
Only the logging calls are timed. Prints {"points", "seconds", "pps"} as JSON.
"""

import json
import sys
import time

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

url, mode, n, create = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "create"
client = MlflowClient(tracking_uri=url)
if create:
    exp = client.get_experiment_by_name("bench")
    exp_id = exp.experiment_id if exp else client.create_experiment("bench")
    run_id = client.create_run(exp_id).info.run_id
else:
    run_id = "0" * 32
T0 = 1_700_000_000_000
if mode == "search":
    sexp = client.get_experiment_by_name("search") if create else None
    sexp_id = sexp.experiment_id if sexp else (client.create_experiment("search") if create else "0")
    if create and len(client.search_runs([sexp_id], max_results=200)) < 100:
        for r in range(100):
            rid = client.create_run(sexp_id).info.run_id
            client.log_batch(
                rid,
                metrics=[Metric("loss", 1.0 / (r + 1), T0, 0)],
                params=[Param("lr", str([1e-4, 3e-4, 1e-3][r % 3]))],
            )
            client.set_terminated(rid)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        got = client.search_runs(
            [sexp_id], filter_string="params.lr = '0.001' and metrics.loss < 0.5",
            order_by=["metrics.loss ASC"],
        )
        times.append(time.perf_counter() - t)
    if create:
        assert len(got) == 33, len(got)
    seconds = sum(times)
    points = n
elif mode == "batch":
    batches = [
        [Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(b * 1000, (b + 1) * 1000)]
        for b in range(n)
    ]
    start = time.perf_counter()
    for batch in batches:
        client.log_batch(run_id, metrics=batch)
    seconds = time.perf_counter() - start
    points = n * 1000
else:
    start = time.perf_counter()
    for s in range(n):
        client.log_metric(run_id, "loss", 1.0 / (s + 1), timestamp=T0 + s, step=s)
    seconds = time.perf_counter() - start
    points = n
if create:
    client.set_terminated(run_id)
print(json.dumps({"points": points, "seconds": seconds, "pps": points / seconds}))
