"""Python nodes: a user's function in the DAG, and `check` telling whether it is
causal and tilable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kaizenflow
from conftest import graph_config


@kaizenflow.register_node("log_return")
def log_return(frame: pd.DataFrame) -> pd.DataFrame:
    """Honest: each row reads itself and the row before (memory = 1)."""
    close = frame["close"]
    out = np.log(close / close.shift(1))
    return pd.concat({"close.logret": out}, axis=1)


@kaizenflow.register_node("next_return")
def next_return(frame: pd.DataFrame) -> pd.DataFrame:
    """Peeks: each row reads the row after it (research code's shift(-1))."""
    close = frame["close"]
    out = np.log(close.shift(-1) / close)
    return pd.concat({"close.next": out}, axis=1)


@kaizenflow.register_node("rolling_max")
def rolling_max(frame: pd.DataFrame) -> pd.DataFrame:
    """Causal, but reads 4 rows back: tilable only if it declares that memory."""
    return pd.concat({"close.max5": frame["close"].rolling(5).max()}, axis=1)


def node(function: str, memory: int, extra: str = "") -> str:
    return graph_config(
        f'[dag.nodes.mine]\ntype = "python"\nfunction = "{function}"\nmemory = {memory}\n{extra}'
    )


def verdicts(result) -> dict:
    return {row.check.split(":")[0].split(" ")[0]: row for row in result.verdicts.itertuples()}


def test_the_function_runs_in_the_dag_with_its_outputs_appended(tmp_path):
    result = kaizenflow.run(node("log_return", 1), out=tmp_path / "r")
    frame = result.frame()
    features = list(dict.fromkeys(frame.columns.get_level_values(0)))
    assert features[-1] == "close.logret" and "close" in features[:-1], features
    close = frame["close"]
    assert np.array_equal(
        frame["close.logret"].to_numpy(), np.log(close / close.shift(1)).to_numpy(), equal_nan=True
    )


def test_an_honest_function_passes_every_check():
    result = kaizenflow.check(node("log_return", 1), tilings=4, perturbations=2)
    assert result.passed, result.output
    names = set(verdicts(result))
    assert {"tiling", "perturbation"} <= names, result.verdicts


def test_a_peeking_function_is_named_by_check():
    result = kaizenflow.check(node("next_return", 0), tilings=4, perturbations=2)
    assert not result.passed
    failed = result.failed
    assert "perturbation" in " ".join(failed["check"]), result.output
    detail = " ".join(failed["detail"])
    assert "mine" in detail, detail
    with pytest.raises(kaizenflow.KaizenflowError, match="checks failed"):
        result.raise_for_failures()


def test_too_little_declared_memory_fails_tiling_and_enough_passes():
    short = kaizenflow.check(node("rolling_max", 1), tilings=6, perturbations=1)
    assert "tiling" in " ".join(short.failed["check"]), short.output
    enough = kaizenflow.check(node("rolling_max", 4), tilings=6, perturbations=1)
    assert enough.passed, enough.output


def test_an_arrow_function_sees_the_long_table(tmp_path):
    import pyarrow.compute as pc

    seen = {}

    def doubled(table):
        seen["columns"] = table.column_names
        return table.select(["end_ts", "asset"]).append_column(
            "close.x2", pc.multiply(table.column("close"), 2.0)
        )

    kaizenflow.register_node("doubled", doubled)
    result = kaizenflow.run(
        node("doubled", 0, 'frame = "arrow"\ncol_mode = "replace_all"\n'), out=tmp_path / "r"
    )
    assert seen["columns"][:3] == ["end_ts", "knowledge_ts", "asset"]
    assert result.forecasts.column_names == ["end_ts", "knowledge_ts", "asset", "close.x2"]
    frame = result.frame()
    assert np.array_equal(frame["close.x2"].to_numpy(), 2.0 * kaizenflow.run(
        graph_config(), out=tmp_path / "plain").frame()["close"].to_numpy())


def test_errors_in_the_function_reach_python_with_the_node_and_traceback():
    @kaizenflow.register_node("broken")
    def broken(frame):
        raise ZeroDivisionError("the user's bug")

    with pytest.raises(kaizenflow.KaizenflowError) as e:
        kaizenflow.run(node("broken", 0))
    text = str(e.value)
    assert "mine" in text and "ZeroDivisionError: the user's bug" in text, text
    assert "test_python_nodes.py" in text, text


def test_bad_parameters_and_bad_returns_are_named():
    with pytest.raises(kaizenflow.KaizenflowError, match=r"dag.nodes.mine.memory: -3"):
        kaizenflow.config_show(node("log_return", -3))
    with pytest.raises(kaizenflow.KaizenflowError, match=r"dag.nodes.mine.frame"):
        kaizenflow.config_show(node("log_return", 0, 'frame = "polars"\n'))
    with pytest.raises(
        kaizenflow.KaizenflowError,
        match=r"<config string>:15: dag.nodes.mine.function: no function registered as 'nope'",
    ):
        kaizenflow.config_show(node("nope", 0))
    with pytest.raises(kaizenflow.KaizenflowError, match="No module named 'no_such_module'"):
        kaizenflow.config_show(node("no_such_module:f", 0))
    kaizenflow.register_node("short", lambda f: f.iloc[1:])
    with pytest.raises(kaizenflow.KaizenflowError, match="return one row per input row"):
        kaizenflow.run(node("short", 0))
    kaizenflow.register_node("flat", lambda f: f.droplevel(0, axis=1))
    with pytest.raises(kaizenflow.KaizenflowError, match=r"MultiIndex \(feature, asset\)"):
        kaizenflow.run(node("flat", 0))
