"""Mock1 on the real 1-minute US equity bars, written independently in pandas and in
polars: the reference that `kaizenflow run configs/mock1_us_equity_1min_2018.toml`
is timed against and checked against.

Each engine runs the whole job the way our run does: read the 40 gzip CSVs
(`<SYMBOL>_1min.csv.gz`, columns `timestamp_et,open,high,low,close,volume`), compute
Mock1, and write the result to a Parquet file (long layout: `end_ts`,
`knowledge_ts`, `asset`, then one column per feature, `prediction` last). The code is
plain idiomatic pandas (a wide panel, `resample`, `stack`, `groupby(...).shift`) and
plain idiomatic polars (lazy queries: `scan_csv`, `group_by_dynamic`, expressions
with `over`, joins), each with the library's default threading.

How it maps to the Rust pipeline (`crates/dataflow/src/mock1.rs`):

* source (`crates/datapull/src/csv_source/`): `timestamp_et` is a naive New York
  time labelling the bar's start; the bar ends one minute later, in UTC. A minute an
  asset did not trade is simply absent (NaN in the Rust frame).
* `filter_ath` (`nodes/filters.rs`, `active_trading_hours`): keeps bars whose END,
  read in New York time, is in (09:30, 16:00]. That is 09:31..16:00, so it only
  removes the 16:00-labelled closing-auction bar (it ends at 16:01). Rust keeps the
  row and makes it NaN; here the bar is dropped, which no later step can tell apart.
* `resample` (`nodes/resample.rs`): 5-minute bins closed right and labelled right on
  multiples of 5 minutes since the epoch (bin end = the timestamp rounded up to a
  multiple of 5 minutes). Per asset and bin: `close` = last, `twap` = mean of close,
  `vwap` = sum(close * volume) / sum(volume) (NaN if not finite). `max_gap = "1h"`
  only changes how many EMPTY bins are emitted across a night (one or two instead of
  every one); no value changes, because every later step either looks exactly one
  row back (and the row before a day's first bin is always an empty bin) or skips
  NaN rows.
* `compute_ret_0` (`nodes/returns.rs`, log returns, nan_mode keep): ln(x) - ln(x of
  the previous row), so NaN at each day's first bin, and after a bin the asset
  missed. Here: the previous 5-minute bin on the time grid.
* `compute_vol` (`nodes/smooth.rs`, `rolling`: window 2, std, ddof 0, burn_in 2,
  nan_mode drop): over each asset's present `vwap.ret_0` values only (so it runs
  across nights), the population std of the last two present values, NaN for the
  first two present values. The std of two values a, b is |a - b| / 2, written so
  (`groupby(...).rolling(2).std(ddof=0)` gives the same bits on this data, slower).
* `adjust_rets` (`nodes/transforms.rs`, `combine_columns`, div, term2_delay 2,
  nan_mode drop): over the rows where both `vwap.ret_0` and its `.vol` are present,
  `vwap.ret_0` divided by `.vol` two such rows back; NaN if not finite.
* `compress_rets` (`compress_tails`): 4 tanh(x / 4).
* `add_lags` (`lags`, 0..3, nan_mode drop): lags over each asset's present values.
* `predict` (`weighted_sum`): sum of w_k * lag_k in the order lag0..lag3, NaN if any
  lag is NaN.
* output (`Frame::to_long`, `LongRows::Present`): only (end_ts, asset) pairs with at
  least one non-NaN feature, i.e. the bins in which the asset has a bar. The empty
  night bins of the Rust frame (16:05 holding the masked 16:01 bar, and 16:10, the
  collapsed rest of the night) and any bin an asset missed are all-NaN rows, so they
  are not written: the row sets agree exactly. `knowledge_ts` = `end_ts` (the bin
  closes when its end bar arrives; the source sets knowledge = bar end, delay 0).
  Rows are ordered by time, then asset.

Numerics. Mock1 is ill-conditioned in one place: the vol is |a - b| / 2 of two
consecutive log returns, each ln(x) - ln(previous x) with an absolute rounding error
near 1e-15, so where a and b nearly agree a last-bit difference in a vwap or a
logarithm becomes a relative difference above 1e-9 in `vol_adj` (and so in `.c`, the
lags and the prediction). Agreement to 1e-9 therefore needs the vwap sums added in
the Rust order (`nodes/resample.rs`, `Acc::add`: a plain running sum in time order).
polars' `group_by_dynamic` sums do that and its `log`/`tanh` are the C library's, so
its output is bit-identical to Rust's. pandas' `resample().sum()` / `.mean()` use
compensated (Kahan) summation instead, which changes the last bit of about a quarter
of the vwaps and puts 20 `vol_adj` cells (16 predictions) past 1e-9; so the pandas
path adds each bin's minutes in time order (`_bin_sums`). NumPy's SIMD `log`/`tanh`
still differ from the C library's in the last bit now and then; on this data that
leaves the pandas output within 1e-10 of Rust's (the check prints the largest gap).

Usage:
    python3 benches/py/mock1_reference.py [--data DIR] [--runs N]
        [--check RESULT.parquet] [--engine pandas|polars|both]

`--data` is the folder holding `*_1min.csv.gz` (or a folder holding
`us_equity_1min_2018/`); by default `${KF_SHARED_DATA}/us_equity_1min_2018`, with
KF_SHARED_DATA defaulting to `../shared/data` from the repository root.

Prints one line per engine, `ENGINE median_s=SECONDS runs=[...]` (an engine that
cannot be imported prints `ENGINE not installed (...)` and is skipped). With
`--check`, each engine's written Parquet is compared with the Rust result by
(end_ts, asset), every feature to 1e-9 relative (1e-12 absolute near zero), NaN
where Rust has NaN: `ENGINE check ok rows=R`, or the first mismatches and a
non-zero exit status.
"""

import argparse
import datetime as dt
import glob
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TZ = "America/New_York"
SESSION_START, SESSION_END = dt.time(9, 30), dt.time(16, 0)
DATASET = "us_equity_1min_2018"
FILE_SUFFIX = "_1min.csv.gz"
RULE_MIN = 5  # resample rule, minutes
COMPRESS_SCALE = 4.0
WEIGHTS = (-0.209, -0.223, 0.304, -0.264)  # lags 0..3
R = "vwap.ret_0"
VOL = R + ".vol"
ADJ = R + ".vol_adj"
COMP = ADJ + ".c"
LAGS = [f"{COMP}.lag{k}" for k in range(4)]
FEATURES = ["close", "vwap", "twap", "close.ret_0", R, "twap.ret_0", VOL, ADJ, COMP, *LAGS,
            "prediction"]
RTOL, ATOL = 1e-9, 1e-12


# ----------------------------------------------------------------------------- pandas

def _since_midnight(t):
    import pandas as pd
    return pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def _bin_sums(minutes, rule_min):
    """Per-bin (closed and labelled right) sums and counts of the present values of a
    wide panel of bars ending on whole minutes, each sum added in time order.

    `resample(...).sum()` would do, but pandas adds with compensated summation, and
    Mock1 amplifies the last-bit differences (see "Numerics" in the module docs). So
    each bin's minutes are laid out as slots, oldest first, and added slot by slot,
    0 + x0 + x1 + ..., a missing minute adding 0: the Rust accumulator's order.
    """
    import numpy as np
    import pandas as pd

    if not (minutes.index == minutes.index.floor("1min")).all():
        raise ValueError("_bin_sums expects bars ending on whole minutes")
    bins = minutes.index.ceil(f"{rule_min}min").unique()
    offsets = pd.to_timedelta(np.arange(rule_min - 1, -1, -1), unit="min")
    grid = bins.repeat(rule_min) - np.tile(offsets, len(bins))  # each bin's minutes
    cube = minutes.reindex(grid).to_numpy().reshape(len(bins), rule_min, -1)
    total = np.zeros((len(bins), cube.shape[2]))
    count = np.zeros_like(total)
    for k in range(rule_min):
        x = cube[:, k]
        present = ~np.isnan(x)
        total += np.where(present, x, 0.0)
        count += present
    frame = lambda a: pd.DataFrame(a, index=bins, columns=minutes.columns)  # noqa: E731
    sums = frame(total)
    counts = frame(count).where(lambda c: c > 0)
    return sums.where(counts.notna()), counts


def run_pandas(files, out_path):
    import numpy as np
    import pandas as pd

    parts = []
    for f in files:
        df = pd.read_csv(f, usecols=["timestamp_et", "close", "volume"],
                         parse_dates=["timestamp_et"], dtype={"close": "float64",
                                                              "volume": "float64"})
        df["asset"] = os.path.basename(f)[: -len(FILE_SUFFIX)]
        parts.append(df)
    bars = pd.concat(parts, ignore_index=True)

    # Bar end: start + 1 minute, a New York time; keep 09:30 < end <= 16:00 local.
    end = bars["timestamp_et"].dt.tz_localize(TZ) + pd.Timedelta(minutes=1)
    tod = end - end.dt.normalize()
    active = (tod > _since_midnight(SESSION_START)) & (tod <= _since_midnight(SESSION_END))
    bars = bars.loc[active, ["asset", "close", "volume"]]
    bars["end_ts"] = end[active].dt.tz_convert("UTC")
    bars["pv"] = bars["close"] * bars["volume"]

    # A wide panel (bar end x asset), resampled to 5-minute bins closed/labelled right.
    # Bins are aligned on midnight UTC, i.e. on multiples of 5 minutes since the epoch;
    # the resample also lays out the regular grid of bins, the empty ones included.
    wide = bars.pivot(index="end_ts", columns="asset", values=["close", "volume", "pv"])
    close = wide["close"].resample(f"{RULE_MIN}min", closed="right", label="right").last()
    # Sums added in time order, as the Rust accumulators do (see _bin_sums).
    sums, counts = _bin_sums(wide, RULE_MIN)
    twap = (sums["close"] / counts["close"]).reindex(close.index)
    vwap = (sums["pv"] / sums["volume"]).reindex(close.index)
    vwap = vwap.where(np.isfinite(vwap))

    # Log returns bin to bin on the regular grid (keep mode: a missing bin gives NaN).
    def log_ret(x):
        lx = np.log(x)
        r = lx - lx.shift(1)
        return r.where(np.isfinite(r))

    rets = {"close.ret_0": log_ret(close), R: log_ret(vwap), "twap.ret_0": log_ret(twap)}

    # Drop-mode steps: each asset's present values, in time order (long series).
    r = rets[R].stack().dropna()
    g = r.groupby(level="asset", sort=False)
    vol = (r - g.shift(1)).abs() / 2.0  # population std of the last two present values
    vol = vol.where(g.cumcount() >= 2)  # burn_in = 2
    joint = vol.dropna()  # rows with both the return and its vol
    adj = r.loc[joint.index] / joint.groupby(level="asset", sort=False).shift(2)
    adj = adj.where(np.isfinite(adj)).dropna()
    comp = COMPRESS_SCALE * np.tanh(adj / COMPRESS_SCALE)
    gc = comp.groupby(level="asset", sort=False)
    lags = {name: gc.shift(k) for k, name in enumerate(LAGS)}
    pred = sum(w * lags[name] for w, name in zip(WEIGHTS, LAGS))

    # Long output: the (bin, asset) pairs where the asset has a bar (close present).
    out = close.stack().dropna().rename("close").to_frame()
    out["vwap"] = vwap.stack()
    out["twap"] = twap.stack()
    for name, x in rets.items():
        out[name] = x.stack()
    out[VOL] = vol
    out[ADJ] = adj
    out[COMP] = comp
    for name, x in lags.items():
        out[name] = x
    out["prediction"] = pred
    out = out.sort_index().reset_index()
    out = out.rename(columns={out.columns[0]: "end_ts"})
    out["end_ts"] = out["end_ts"].astype("datetime64[ns, UTC]")
    out.insert(1, "knowledge_ts", out["end_ts"])
    out[["end_ts", "knowledge_ts", "asset", *FEATURES]].to_parquet(out_path, index=False)


# ----------------------------------------------------------------------------- polars

def run_polars(files, out_path):
    import polars as pl

    rule = pl.duration(minutes=RULE_MIN, time_unit="ns")
    by = "asset"

    def finite(e):
        return pl.when(e.is_finite()).then(e)  # NaN / inf -> null

    bars = (
        pl.scan_csv(files, include_file_paths="path",
                    schema_overrides={"close": pl.Float64, "volume": pl.Float64})
        .select(
            asset=pl.col("path").str.extract(r"([^/\\]+)_1min\.csv\.gz$"),
            end=pl.col("timestamp_et").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ns")
            .dt.replace_time_zone(TZ) + pl.duration(minutes=1, time_unit="ns"),
            close="close",
            volume="volume",
        )
        # Active trading hours: 09:30 < local bar end <= 16:00.
        .filter(pl.col("end").dt.time().is_between(SESSION_START, SESSION_END,
                                                    closed="right"))
        .with_columns(end=pl.col("end").dt.convert_time_zone("UTC"))
    )
    # 5-minute bins closed and labelled right, on multiples of 5 minutes since the epoch.
    res = (
        bars.sort(by, "end")
        .group_by_dynamic("end", every=f"{RULE_MIN}m", closed="right", label="right",
                          group_by=by)
        .agg(
            close=pl.col("close").last(),
            vwap=(pl.col("close") * pl.col("volume")).sum() / pl.col("volume").sum(),
            twap=pl.col("close").mean(),
        )
        .rename({"end": "bin"})
        .with_columns(vwap=finite(pl.col("vwap")))
        .sort(by, "bin")
        # Log returns from the previous 5-minute bin (null if the asset missed it: at a
        # day's first bin, the previous row of the Rust frame is an empty night bin).
        .with_columns(
            finite(pl.when(pl.col("bin").diff() == rule).then(pl.col(c).log().diff()))
            .over(by).alias(f"{c}.ret_0")
            for c in ("close", "vwap", "twap"))
        .collect()  # 5-minute bars, small; three branches below read them
        .lazy()
    )
    # Drop-mode steps run over each asset's present values: filter, compute, join back.
    vol = (
        res.select(by, "bin", R).filter(pl.col(R).is_not_null())
        .with_columns(
            pl.when(pl.int_range(pl.len()).over(by) >= 2)  # burn_in = 2
            .then((pl.col(R) - pl.col(R).shift(1).over(by)).abs() / 2.0)
            .alias(VOL))
    )
    adj = (
        vol.filter(pl.col(VOL).is_not_null())
        .with_columns(finite(pl.col(R) / pl.col(VOL).shift(2).over(by)).alias(ADJ))
        .filter(pl.col(ADJ).is_not_null())
        .with_columns((COMPRESS_SCALE * (pl.col(ADJ) / COMPRESS_SCALE).tanh()).alias(COMP))
        .with_columns(pl.col(COMP).shift(k).over(by).alias(name) for k, name in enumerate(LAGS))
        .with_columns(prediction=sum(w * pl.col(name) for w, name in zip(WEIGHTS, LAGS)))
    )
    out = (
        res.join(vol.select(by, "bin", VOL), on=[by, "bin"], how="left")
        .join(adj.select(by, "bin", ADJ, COMP, *LAGS, "prediction"), on=[by, "bin"],
              how="left")
        .sort("bin", by)
        .select(
            pl.col("bin").alias("end_ts"),
            pl.col("bin").alias("knowledge_ts"),
            by,
            *[pl.col(c).fill_null(float("nan")) for c in FEATURES],
        )
    )
    out.sink_parquet(out_path)


# ----------------------------------------------------------------------------- check

def read_long(path):
    """(end_ts ns, knowledge_ts ns, asset, {feature: float array}) of a long Parquet."""
    import numpy as np
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
        t = pq.read_table(path)

        def ns(name):
            c = t.column(name)
            return pc.cast(c, "int64").to_numpy() * {"s": 10**9, "ms": 10**6, "us": 10**3,
                                                     "ns": 1}[c.type.unit]
        cols = {n: t.column(n).to_numpy(zero_copy_only=False).astype("float64")
                for n in t.column_names if n not in ("end_ts", "knowledge_ts", "asset")}
        return ns("end_ts"), ns("knowledge_ts"), np.asarray(t.column("asset").to_pylist(),
                                                              dtype=object), cols
    except ImportError:
        import polars as pl
        df = pl.read_parquet(path)
        ns = [df[c].dt.cast_time_unit("ns").cast(pl.Int64).to_numpy()
              for c in ("end_ts", "knowledge_ts")]
        cols = {n: df[n].cast(pl.Float64).fill_null(float("nan")).to_numpy()
                for n in df.columns if n not in ("end_ts", "knowledge_ts", "asset")}
        return ns[0], ns[1], df["asset"].to_numpy().astype(object), cols


def check(engine, ours_path, rust_path, show=10):
    """Compares `ours_path` with the Rust result; returns True when they agree."""
    import numpy as np

    r_end, r_kt, r_asset, r_cols = read_long(rust_path)
    o_end, o_kt, o_asset, o_cols = read_long(ours_path)
    ok = True
    rkeys = {(int(t), a): i for i, (t, a) in enumerate(zip(r_end, r_asset))}
    okeys = {(int(t), a): i for i, (t, a) in enumerate(zip(o_end, o_asset))}
    if len(rkeys) != len(r_end) or len(okeys) != len(o_end):
        print(f"{engine} check: duplicate (end_ts, asset) rows "
              f"(rust {len(r_end) - len(rkeys)}, ours {len(o_end) - len(okeys)})")
        ok = False
    only_r = sorted(set(rkeys) - set(okeys))
    only_o = sorted(set(okeys) - set(rkeys))
    for what, keys in (("rows only in the Rust result", only_r),
                       ("rows only in the reference", only_o)):
        if keys:
            ok = False
            print(f"{engine} check: {len(keys)} {what}, first: "
                  + ", ".join(f"({_ts(t)}, {a})" for t, a in keys[:show]))
    both = sorted(set(rkeys) & set(okeys))
    ri = np.fromiter((rkeys[k] for k in both), dtype=np.int64, count=len(both))
    oi = np.fromiter((okeys[k] for k in both), dtype=np.int64, count=len(both))
    bad_kt = np.flatnonzero(r_kt[ri] != o_kt[oi])
    if len(bad_kt):
        ok = False
        print(f"{engine} check: knowledge_ts differs on {len(bad_kt)} rows, first at "
              f"({_ts(r_end[ri[bad_kt[0]]])}, {r_asset[ri[bad_kt[0]]]})")
    missing = [c for c in r_cols if c not in o_cols]
    if missing:
        ok = False
        print(f"{engine} check: features missing from the reference: {missing}")
    cells = identical = 0
    worst = (0.0, None)
    for c in (c for c in r_cols if c in o_cols):
        a, b = r_cols[c][ri], o_cols[c][oi]
        an, bn = np.isnan(a), np.isnan(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = np.abs(a - b)
            scale = np.maximum(np.abs(a), np.abs(b))
            close = diff <= np.maximum(RTOL * scale, ATOL)
            rel = np.where(~an & ~bn & (diff > ATOL), diff / scale, 0.0)
        cells += len(a)
        identical += int(((a == b) | (an & bn)).sum())
        if len(rel) and rel.max() > worst[0]:
            worst = (float(rel.max()), c)
        bad = np.flatnonzero((an != bn) | (~an & ~bn & ~close))
        if len(bad):
            ok = False
            print(f"{engine} check: {c}: {len(bad)} mismatches "
                  f"(NaN pattern differs on {int((an != bn).sum())})")
            for j in bad[:show]:
                gap = "" if an[j] or bn[j] else f" rel={rel[j]:.3g}"
                print(f"    ({_ts(r_end[ri[j]])}, {r_asset[ri[j]]}): rust={float(a[j])!r} "
                      f"ours={float(b[j])!r}{gap}")
    print(f"{engine} check detail: {identical}/{cells} cells bit-identical, largest "
          f"relative difference (above {ATOL:g} absolute) {worst[0]:.3g}"
          + (f" in {worst[1]}" if worst[1] else ""))
    if ok:
        print(f"{engine} check ok rows={len(both)}")
    return ok


def _ts(ns):
    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
            + dt.timedelta(microseconds=int(ns) // 1000)).strftime("%Y-%m-%d %H:%M:%SZ")


# ----------------------------------------------------------------------------- main

def data_files(d):
    if d is None:
        root = os.environ.get("KF_SHARED_DATA") or str(
            Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
        d = os.path.join(root, DATASET)
    files = sorted(glob.glob(os.path.join(d, "*" + FILE_SUFFIX)))
    if not files:
        files = sorted(glob.glob(os.path.join(d, DATASET, "*" + FILE_SUFFIX)))
    if not files:
        sys.exit(f"no *{FILE_SUFFIX} files in {d} (or {os.path.join(d, DATASET)})")
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="folder of the *_1min.csv.gz files")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per engine (default 3)")
    ap.add_argument("--check", metavar="RESULT.parquet",
                    help="compare each engine's output with this Rust result")
    ap.add_argument("--engine", choices=("pandas", "polars", "both"), default="both")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    files = data_files(args.data)
    engines = {"pandas": run_pandas, "polars": run_polars}
    chosen = list(engines) if args.engine == "both" else [args.engine]
    ok, ran = True, 0
    with tempfile.TemporaryDirectory(prefix="mock1_ref_") as tmp:
        for name in chosen:
            try:
                __import__(name)
            except ImportError as e:
                print(f"{name} not installed ({e}); skipped", flush=True)
                continue
            out = os.path.join(tmp, f"{name}_result.parquet")
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                engines[name](files, out)
                times.append(time.perf_counter() - t)
            ran += 1
            print(f"{name} median_s={statistics.median(times):.6f} "
                  f"runs=[{', '.join(f'{x:.6f}' for x in times)}]", flush=True)
            if args.check:
                ok &= check(name, out, args.check)
                sys.stdout.flush()
    if args.check and ran == 0:
        print("no engine could run; nothing was checked")
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
