"""Conversions between the long layout (one row per bar end and asset: ``end_ts``,
``knowledge_ts``, ``asset``, one float column per feature) and the wide pandas
frame of the KaizenFlow paper (index ``end_ts``, columns ``(feature, asset)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

KEYS = ("end_ts", "knowledge_ts", "asset")
TS = pa.timestamp("ns", tz="UTC")


def features_of(table: pa.Table) -> list[str]:
    """The feature columns of a long table, in order."""
    return [c for c in table.column_names if c not in KEYS]


def wide(table: pa.Table, assets: list[str] | None = None) -> pd.DataFrame:
    """A long table as a wide frame with ``(feature, asset)`` columns.

    A table with every (time, asset) pair in row-major order (what a node is
    handed, with its ``assets`` in order) is reshaped without a pivot; any other is
    pivoted (missing pairs are NaN)."""
    table = pa.table(table)
    features = features_of(table)
    if assets is None:
        assets = pd.unique(np.asarray(table.column("asset").to_pylist(), dtype=object))
    else:
        assets = np.asarray(assets, dtype=object)
    n, total = len(assets), table.num_rows
    end = table.column("end_ts").to_numpy()
    if (n and total % n == 0) or total == 0:
        rows = total // n if n else 0
        asset_col = np.asarray(table.column("asset").to_pylist(), dtype=object)
        grid = (
            np.array_equal(asset_col.reshape(rows, n), np.tile(assets, (rows, 1)))
            and (end.reshape(rows, n) == end[:: max(n, 1), None]).all()
            and (rows < 2 or (np.diff(end[::n]) > np.timedelta64(0, "ns")).all())
        )
        if grid:
            index = pd.DatetimeIndex(end[:: max(n, 1)].astype("datetime64[ns]"), name="end_ts")
            index = index.tz_localize("UTC")
            columns = pd.MultiIndex.from_product(
                [features, list(assets)], names=["feature", "asset"]
            )
            blocks = [
                table.column(f).to_numpy(zero_copy_only=False).astype(float).reshape(rows, n)
                for f in features
            ]
            data = np.hstack(blocks) if blocks else np.empty((rows, 0))
            return pd.DataFrame(data, index=index, columns=columns)
    df = table.to_pandas()
    out = df.pivot(index="end_ts", columns="asset", values=features)
    out.columns = out.columns.set_names(["feature", "asset"])
    return out


def long(frame: pd.DataFrame, knowledge: pd.Index | None = None) -> pa.Table:
    """A wide frame with ``(feature, asset)`` columns as a long table, every
    (time, asset) pair in row-major order. ``knowledge_ts`` is the bar end unless
    given."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    cols = frame.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 2:
        raise ValueError(
            "the frame's columns must be a two-level MultiIndex (feature, asset), as the "
            f"input's were; got {cols!r:.200}"
        )
    index = pd.DatetimeIndex(frame.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    features = list(dict.fromkeys(cols.get_level_values(0)))
    assets = list(dict.fromkeys(cols.get_level_values(1)))
    rows, n = len(index), len(assets)
    end = np.repeat(index.asi8, n)
    arrays = {
        "end_ts": pa.array(end, type=pa.int64()).cast(TS),
        "knowledge_ts": (
            pa.array(np.repeat(pd.DatetimeIndex(knowledge).asi8, n), type=pa.int64()).cast(TS)
            if knowledge is not None
            else pa.array(end, type=pa.int64()).cast(TS)
        ),
        "asset": pa.array(np.tile(np.asarray(assets, dtype=object), rows), type=pa.string()),
    }
    for f in features:
        block = frame[f].reindex(columns=assets).to_numpy(dtype=float)
        arrays[str(f)] = pa.array(block.reshape(rows * n), type=pa.float64())
    return pa.table(arrays)
