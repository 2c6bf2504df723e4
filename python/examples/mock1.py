"""Mock1 from a notebook: run the system, check it, and plot its P&L.

Run from the repository root (the config names its data from there):

    python python/examples/mock1.py [OUT_DIR]

Each block below is a notebook cell.
"""

# %% Run the Mock1 system on the built-in synthetic data.
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; in a notebook, drop this line
import matplotlib.pyplot as plt

import kaizenflow

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mock1_python")
result = kaizenflow.run("configs/mock1_system.toml", out=out / "run", force=True)
print(result)
print({k: round(v, 4) for k, v in result.stats.items() if k in ("pnl", "sharpe", "turnover_per_bar", "hit_rate")})

# %% The forecasts as the paper's wide frame: (feature, asset) columns.
frame = result.frame()
print(frame["prediction"].iloc[-3:, :4])

# %% Check the model: tilings, streaming, perturbation of later data, replay, the
# trading loop. Every verdict comes back as a row.
verdicts = kaizenflow.check("configs/mock1_system.toml", tilings=4, perturbations=2)
print(verdicts.verdicts[["check", "verdict"]].to_string(index=False))
print("all checks passed" if verdicts.passed else f"{len(verdicts.failed)} checks failed")

# %% Plot cumulative P&L after costs against time, and the per-asset contribution.
portfolio = result.to_pandas("portfolio").set_index("ts")
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6))
portfolio["pnl"].cumsum().plot(ax=top, title="Mock1: cumulative P&L after costs")
top.set_ylabel("USD")
assets = result.to_pandas("assets").set_index("asset")["pnl"].sort_values()
assets.plot.barh(ax=bottom, title="P&L by asset")
bottom.set_xlabel("USD")
fig.tight_layout()
chart = out / "pnl.png"
fig.savefig(chart, dpi=80)
print(f"chart: {chart}")
print(f"report: {result.report}")
