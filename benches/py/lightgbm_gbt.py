"""The `kf-bench gbt` case through LightGBM: the same data, the same tree shape.

Reads DIR/x.f64 (column-major, ROWS x COLS little-endian f64) and DIR/y.f64, fits on
the first TRAIN rows, predicts every row, prints `fit_s predict_s accuracy` on one
line. Called by `kf-bench gbt`; needs `pip install lightgbm`.
"""

import sys
import time

import numpy as np
import lightgbm as lgb

d, rows, cols, train, threads, iters, depth = sys.argv[1:8]
rows, cols, train, threads, iters, depth = map(int, (rows, cols, train, threads, iters, depth))
x = np.fromfile(f"{d}/x.f64", dtype="<f8").reshape(cols, rows).T.copy()
y = np.fromfile(f"{d}/y.f64", dtype="<f8")
params = dict(
    objective="binary",
    learning_rate=0.1,
    num_leaves=2**depth,
    max_depth=depth,
    max_bin=255,
    min_sum_hessian_in_leaf=1.0,
    min_data_in_leaf=1,
    lambda_l2=1.0,
    num_threads=threads,
    verbose=-1,
    deterministic=True,
    force_col_wise=True,
)
t = time.perf_counter()
ds = lgb.Dataset(x[:train], label=y[:train], params={"max_bin": 255})
model = lgb.train(params, ds, num_boost_round=iters)
fit = time.perf_counter() - t
t = time.perf_counter()
p = model.predict(x, num_threads=threads)
pred = time.perf_counter() - t
acc = float(((p[train:] >= 0.5) == (y[train:] == 1.0)).mean())
print(f"{fit:.4f} {pred:.4f} {acc:.4f}")
