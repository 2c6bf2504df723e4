"""kaizenflow.run: the tables handed over in memory are the files `kaizenflow run`
writes, to the bit; frames round-trip through pandas; errors keep their location."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kaizenflow
from conftest import graph_config


def same_bits(a: pa.Table, b: pa.Table) -> None:
    """Equal schemas and equal columns, floats compared by their bit patterns (so a
    NaN equals a NaN and -0.0 differs from 0.0)."""
    assert a.schema.equals(b.schema), (a.schema, b.schema)
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if pa.types.is_floating(x.type):
            xb = x.to_numpy(zero_copy_only=False).view(np.int64)
            yb = y.to_numpy(zero_copy_only=False).view(np.int64)
            assert np.array_equal(xb, yb), name
        else:
            assert x.equals(y), name


@pytest.fixture(scope="module")
def system_run(tmp_path_factory):
    return kaizenflow.run("configs/mock1_system.toml", out=tmp_path_factory.mktemp("run"))


def test_forecasts_equal_result_parquet_bit_for_bit(system_run):
    same_bits(system_run.forecasts, pq.read_table(system_run.out / "result.parquet"))
    # Not a vacuous comparison: thousands of rows with real values.
    assert system_run.forecasts.num_rows == 20 * 390
    assert np.isfinite(system_run.forecasts.column("prediction").to_numpy()).sum() > 7000


def test_system_tables_equal_their_files(system_run):
    for name in kaizenflow.TABLES:
        same_bits(getattr(system_run, name), pq.read_table(system_run.out / f"{name}.parquet"))
    with open(system_run.out / "stats.toml", "rb") as f:
        assert system_run.stats == tomllib.load(f)
    # The portfolio's P&L column sums to the run's P&L (two computations).
    pnl = system_run.portfolio.column("pnl").to_numpy()
    assert abs(np.nansum(pnl) - system_run.stats["pnl"]) < 1e-6 * max(1.0, abs(system_run.stats["pnl"]))
    assert system_run.report is not None and system_run.report.stat().st_size > 10_000
    assert "read_data" in set(system_run.timings["node"])


def test_wide_frame_has_the_papers_columns(system_run):
    frame = system_run.frame()
    assert frame.columns.names == ["feature", "asset"]
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    # An independent pivot of the Parquet file gives the same cells.
    df = pq.read_table(system_run.out / "result.parquet").to_pandas()
    pivot = df.pivot(index="end_ts", columns="asset", values="prediction")
    got = frame["prediction"].reindex(index=pivot.index, columns=pivot.columns)
    assert np.array_equal(got.to_numpy(), pivot.to_numpy(), equal_nan=True)


def test_long_wide_long_round_trip():
    rng = np.random.default_rng(3)
    index = pd.date_range(
        "2024-01-02 14:31", periods=7, freq="1min", tz="UTC", name="end_ts"
    ).as_unit("ns")
    columns = pd.MultiIndex.from_product([["a", "b"], ["X", "Y", "Z"]], names=["feature", "asset"])
    values = rng.normal(size=(7, 6))
    values[2, 4] = np.nan
    frame = pd.DataFrame(values, index=index, columns=columns)
    table = kaizenflow.long(frame)
    assert table.column_names == ["end_ts", "knowledge_ts", "asset", "a", "b"]
    assert table.num_rows == 21
    # Row-major: row 1, asset Y is entry 4; feature b of (row 2, asset Y) is NaN.
    assert table.column("asset")[4].as_py() == "Y"
    assert table.column("a")[4].as_py() == values[1, 1]
    assert np.isnan(table.column("b")[7].as_py())
    back = kaizenflow.wide(table)
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_freq=False)


def test_a_config_given_as_text_with_overrides(tmp_path):
    result = kaizenflow.run(
        graph_config('[dag.nodes.ret]\ntype = "compute_ret_0"\ncols = ["close"]\n'),
        overrides={"market_data.assets": 3, "market_data.bars": 50},
        out=tmp_path / "r",
    )
    assert set(result.forecasts.column("asset").to_pylist()) == {"A0000", "A0001", "A0002"}
    assert result.orders is None and result.stats is None
    close = result.frame()["close"]
    ret = result.frame()["close.ret_0"]
    # compute_ret_0 is the one-bar log return: checked on every cell.
    expect = np.log(close / close.shift(1))
    assert np.allclose(ret.to_numpy()[1:], expect.to_numpy()[1:], rtol=1e-12)


def test_a_bad_key_is_located():
    with pytest.raises(kaizenflow.KaizenflowError) as e:
        kaizenflow.run(graph_config('[dag.nodes.ema]\ntype = "ema"\ncols = ["close"]\ntua = 3.0\n'))
    text = str(e.value)
    assert "<config string>:" in text and "dag.nodes.ema.tua" in text, text


def test_a_missing_file_and_an_unknown_type_are_named():
    with pytest.raises(kaizenflow.KaizenflowError, match="no_such.toml: no such config file"):
        kaizenflow.run("no_such.toml")
    with pytest.raises(kaizenflow.KaizenflowError, match=r"unknown node type \"emaa\""):
        kaizenflow.config_show(graph_config('[dag.nodes.x]\ntype = "emaa"\n'))


def test_config_show_writes_the_defaults():
    text = kaizenflow.config_show(graph_config('[dag.nodes.e]\ntype = "ema"\ncols = ["close"]\n'))
    parsed = tomllib.loads(text)
    assert parsed["dag"]["nodes"]["e"]["cols"] == ["close"]
    assert "tau" in parsed["dag"]["nodes"]["e"], text


def test_sweep_returns_its_summary(tmp_path):
    config = graph_config(
        '[dag.nodes.e]\ntype = "ema"\ncols = ["close"]\ntau = 2.0\n'
        '[sweep]\n"dag.nodes.e.tau" = [2.0, 5.0]\n',
        bars=40,
    )
    summary = kaizenflow.sweep(config, tmp_path / "sweep")
    assert len(summary) == 2
    assert (tmp_path / "sweep" / "summary.tsv").exists()
