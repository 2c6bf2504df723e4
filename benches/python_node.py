"""Cost of a `python` node per streamed bar: a pandas log return over 40 assets,
stepped bar by bar through `kaizenflow.Dag.step`, against the batch run.

    python benches/python_node.py      (from the repository root, package installed)
"""

import sys
import time

import numpy as np
import pandas as pd
import pyarrow.compute as pc

sys.path.insert(0, "python/tests")
import kaizenflow  # noqa: E402
from conftest import graph_config  # noqa: E402


@kaizenflow.register_node("bench_logret")
def logret(frame):
    close = frame["close"]
    return pd.concat({"close.logret": np.log(close / close.shift(1))}, axis=1)


config = graph_config(
    '[dag.nodes.mine]\ntype = "python"\nfunction = "bench_logret"\nmemory = 1\n', assets=40, bars=600
)
batch_dag = kaizenflow.Dag.from_config(config)
raw = batch_dag.predict(node="read")
bars = [raw.filter(pc.equal(raw.column("end_ts"), e)) for e in pc.unique(raw.column("end_ts"))]
stream = kaizenflow.Dag.from_config(config)
times = []
for bar in bars:
    t0 = time.perf_counter()
    stream.step(bar)
    times.append(time.perf_counter() - t0)
ms = np.array(times[50:]) * 1e3
t0 = time.perf_counter()
batch_dag.reset()
batch_dag.predict()
batch = (time.perf_counter() - t0) * 1e3
print(
    f"python node, 40 assets, {len(bars)} bars: step p50 {np.percentile(ms, 50):.3f} ms, "
    f"p99 {np.percentile(ms, 99):.3f} ms; batch {batch:.1f} ms"
)
