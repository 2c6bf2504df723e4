"""Seed 001's accuracy figures for a run of configs/lstm_us_equity_1min_2018.toml:
RMSE of the forecast price 5 minutes ahead, within a session, out of sample from
2018-03-09, on min-max normalized prices (seed 001's measure) and on relative
prices, each beside the naive last-price forecast on the same rows, and the IC of
the forecast return.

    cargo run --release -p kaizenflow --features nn -- run \\
        configs/lstm_us_equity_1min_2018.toml --out runs/lstm \\
        --set dag.nodes.model.epochs=2 --set dag.nodes.model.replicas=2
    python benches/lstm_rmse.py runs/lstm/result.parquet
"""

import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

HORIZON = 5
path = sys.argv[1] if len(sys.argv) > 1 else "runs/lstm/result.parquet"
t = pq.read_table(path, columns=["end_ts", "asset", "close", "close_hat"]).to_pandas()
close = t.pivot(index="end_ts", columns="asset", values="close")
hat = t.pivot(index="end_ts", columns="asset", values="close_hat")
oos = close.index >= pd.Timestamp("2018-03-09", tz="UTC")
future = close.shift(-HORIZON)
day = pd.Series(close.index.date, index=close.index)
rows = oos & (day == day.shift(-HORIZON)).values  # the target in the same session


def rmse(pred, true):
    d = (pred - true)[rows].stack()
    return float(np.sqrt((d**2).mean())), len(d)


both = hat.notna() & future.notna()
hat, future, base = hat.where(both), future.where(both), close.where(both)
lo, hi = close[oos].min(), close[oos].max()
norm = lambda x: (x - lo) / (hi - lo)  # noqa: E731
m, n = rmse(norm(hat), norm(future))
naive, _ = rmse(norm(base), norm(future))
print(f"{n} forecasts; RMSE on min-max normalized prices: model {m:.5f}, last price {naive:.5f}")
m, _ = rmse(hat / base - 1, future / base - 1)
naive, _ = rmse(0 * base, future / base - 1)
print(f"RMSE on relative prices: model {m:.6f}, last price {naive:.6f}")
pair = pd.concat([(hat / base - 1)[rows].stack(), (future / base - 1)[rows].stack()], axis=1)
print(f"IC of the forecast return: {pair.corr().iloc[0, 1]:.4f}")
