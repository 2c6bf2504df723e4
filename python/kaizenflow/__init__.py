"""KaizenFlow for Rust, from Python.

Describe a time-series ML system once in TOML; run it, check it for future
peeking and tiling exactness, and step it bar by bar, from a notebook. The
engine is Rust; tables arrive as ``pyarrow.Table`` through the Arrow C stream
interface (no copy of the buffers), and wide frames as pandas DataFrames with the
paper's ``(feature, asset)`` columns.

>>> import kaizenflow
>>> result = kaizenflow.run("configs/mock1_system.toml")        # doctest: +SKIP
>>> result.stats["sharpe"], result.forecasts.num_rows           # doctest: +SKIP

Your own functions become DAG nodes with ``type = "python"`` (see
``register_node``); ``check`` then tells you whether they are causal and tilable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Union

import pandas as pd
import pyarrow as pa

from . import _frames, _nodes
from ._kaizenflow import ArrowTable, KaizenflowError
from ._kaizenflow import Dag as _Dag
from ._kaizenflow import check as _check
from ._kaizenflow import cli as _cli
from ._kaizenflow import config_show as _config_show
from ._kaizenflow import run as _run

__all__ = [
    "CheckResult",
    "Dag",
    "KaizenflowError",
    "RunResult",
    "check",
    "cli",
    "config_show",
    "long",
    "register_node",
    "run",
    "sweep",
    "wide",
]

Config = Union[str, os.PathLike]
TABLES = ("orders", "fills", "portfolio", "assets")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def _overrides(overrides: Optional[Mapping[str, object]]) -> list[str]:
    """``{"dag.nodes.x.window": 20}`` as the command line's ``key=value`` list."""
    return [f"{k}={_toml(v)}" for k, v in (overrides or {}).items()]


def _config(config: Config) -> str:
    return os.fspath(config) if isinstance(config, os.PathLike) else str(config)


def wide(table) -> pd.DataFrame:
    """A long table (``end_ts``, ``knowledge_ts``, ``asset``, features) as a pandas
    DataFrame indexed by ``end_ts`` with ``(feature, asset)`` columns."""
    return _frames.wide(pa.table(table))


def long(frame: pd.DataFrame) -> pa.Table:
    """A wide DataFrame with ``(feature, asset)`` columns as a long table."""
    return _frames.long(frame)


def register_node(name: str, func: Optional[Callable] = None):
    """Makes ``func`` the function of DAG nodes with ``type = "python"`` and
    ``function = name``; usable as a decorator.

    The function receives the rows of one call (a tile of a tiled run, one bar of
    a stream, everything in a batch run), preceded by the node's ``memory`` rows of
    history, as a DataFrame with ``(feature, asset)`` columns (or a long pyarrow
    table with ``frame = "arrow"``), and returns the same rows with its features.
    It is called once per tile, holding the GIL."""
    if func is None:
        return lambda f: (register_node(name, f), f)[1]
    _nodes.register(name, func)
    return func


class RunResult:
    """What ``run`` computed: the forecasts, and for a config with ``[system]`` the
    orders, fills, portfolio, per-asset P&L and statistics, plus the files in
    ``out`` (``report.html`` among them)."""

    def __init__(self, raw: dict, out: Path):
        self.out = out
        self.forecasts: pa.Table = pa.table(raw["forecasts"])
        for name in TABLES:
            setattr(self, name, pa.table(raw[name]) if name in raw else None)
        self.stats: Optional[dict] = raw.get("stats")
        self.timings = pd.DataFrame(
            raw["timings"], columns=["pass", "node", "kind", "wall_ms", "rows"]
        )
        self.output: str = raw["output"]
        report = out / "report.html"
        self.report: Optional[Path] = report if report.exists() else None

    def frame(self) -> pd.DataFrame:
        """The forecasts as the paper's wide frame: ``(feature, asset)`` columns."""
        return wide(self.forecasts)

    def to_pandas(self, name: str = "forecasts") -> pd.DataFrame:
        """One table (``forecasts``, ``orders``, ``fills``, ``portfolio``,
        ``assets``) as pandas."""
        table = getattr(self, name, None)
        if not isinstance(table, pa.Table):
            raise KeyError(f"this run has no {name!r} table")
        return table.to_pandas()

    def __repr__(self) -> str:
        parts = [f"forecasts: {self.forecasts.num_rows} rows"]
        if self.stats is not None:
            parts.append(f"pnl {self.stats.get('pnl', float('nan')):.2f}")
        return f"<RunResult {', '.join(parts)} in {self.out}>"


def run(
    config: Config,
    overrides: Optional[Mapping[str, object]] = None,
    out: Optional[Config] = None,
    force: bool = False,
    report: bool = True,
    sequential: bool = False,
) -> RunResult:
    """Runs a config (a path, or TOML text) as ``kaizenflow run`` does.

    ``overrides`` sets values by key path (``{"dag.nodes.zscore.window": 20}``).
    The files go to ``out`` (a new temporary folder when absent); a config error
    raises ``KaizenflowError`` naming the file, line and key."""
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="kaizenflow-run-"))
    raw = _run(
        _config(config),
        os.fspath(folder),
        _overrides(overrides),
        force=force,
        sequential=sequential,
        report=report,
    )
    return RunResult(raw, folder)


class CheckResult:
    """The verdicts of ``check``: one row per check (``check``, ``verdict``,
    ``seconds``, ``detail``), and the report the command prints."""

    def __init__(self, verdicts, output: str):
        self.verdicts = pd.DataFrame(verdicts, columns=["check", "verdict", "seconds", "detail"])
        self.output = output

    @property
    def failed(self) -> pd.DataFrame:
        """The failed checks."""
        return self.verdicts[self.verdicts["verdict"] == "fail"]

    @property
    def passed(self) -> bool:
        """Whether no check failed."""
        return self.failed.empty

    def raise_for_failures(self) -> None:
        """Raises ``KaizenflowError`` with the failed checks' details, if any."""
        if not self.passed:
            lines = [f"{r.check}: {r.detail}" for r in self.failed.itertuples()]
            raise KaizenflowError(f"{len(lines)} checks failed:\n" + "\n".join(lines))

    def __repr__(self) -> str:
        n = len(self.verdicts)
        return f"<CheckResult {n - len(self.failed)} of {n} passed or not failed>"


def check(
    config: Config,
    overrides: Optional[Mapping[str, object]] = None,
    out: Optional[Config] = None,
    tilings: int = 8,
    perturbations: int = 3,
    seed: int = 0,
    skip: Iterable[str] = (),
) -> CheckResult:
    """Checks a config's DAG as ``kaizenflow check`` does: batch against random
    tilings, one-bar streaming, perturbation of later inputs, a replay, and the
    trading loop. Returns every verdict; it does not raise for a failed check
    (call ``raise_for_failures``)."""
    verdicts, output = _check(
        _config(config),
        _overrides(overrides),
        None if out is None else os.fspath(out),
        tilings,
        perturbations,
        seed,
        list(skip),
    )
    return CheckResult(verdicts, output)


def sweep(config: Config, out: Config, overrides: Optional[Mapping[str, object]] = None) -> pd.DataFrame:
    """Runs every point of a config's ``[sweep]`` on the job engine, writing each
    run under ``out``, and returns ``out/summary.tsv``."""
    path, temp = _config(config), None
    if not Path(path).is_file():
        fd, temp = tempfile.mkstemp(suffix=".toml", prefix="kaizenflow-sweep-")
        with os.fdopen(fd, "w") as f:
            f.write(path)
        path = temp
    try:
        args = ["sweep", path, "--out", os.fspath(out)]
        for o in _overrides(overrides):
            args += ["--set", o]
        _cli(args)
    finally:
        if temp:
            os.unlink(temp)
    return pd.read_csv(Path(out) / "summary.tsv", sep="\t")


def config_show(config: Config, overrides: Optional[Mapping[str, object]] = None) -> str:
    """The resolved config as TOML, every default written out."""
    return _config_show(_config(config), _overrides(overrides))


def cli(*args: str) -> str:
    """Runs a ``kaizenflow`` command line (``cli("nodes", "ema")``) and returns what
    it prints; an error raises ``KaizenflowError``."""
    return _cli([str(a) for a in args])


def _as_long(rows) -> pa.Table:
    if isinstance(rows, pd.DataFrame):
        if isinstance(rows.columns, pd.MultiIndex):
            return _frames.long(rows)
        rows = pa.Table.from_pandas(rows, preserve_index=False)
    table = pa.table(rows)
    for col in ("end_ts", "knowledge_ts"):
        if col in table.column_names and table.schema.field(col).type != _frames.TS:
            i = table.column_names.index(col)
            table = table.set_column(i, col, table.column(col).cast(_frames.TS))
    if "knowledge_ts" not in table.column_names:
        table = table.append_column("knowledge_ts", table.column("end_ts"))
    return table


class Dag:
    """A config's DAG, held for fitting, predicting and stepping bar by bar.

    Calls continue from the state the last call carried, as consecutive tiles of a
    run do, so stepping bar by bar gives the batch run's values to the bit for a
    causal DAG; ``reset`` starts afresh (keeping what the models learned)."""

    def __init__(self, inner):
        self._inner = inner

    @staticmethod
    def from_config(config: Config, overrides: Optional[Mapping[str, object]] = None) -> "Dag":
        """Builds the ``[dag]`` of a config (a path or TOML text) on its market data."""
        return Dag(_Dag.from_config(_config(config), _overrides(overrides)))

    @property
    def nodes(self) -> list[str]:
        """The node ids in topological order."""
        return self._inner.nodes

    def fit(self, start=None, end=None, node: Optional[str] = None) -> pa.Table:
        """Fits the models on the bars ending in ``[start, end]``; returns the
        sink's (or ``node``'s) output over them, long."""
        return pa.table(self._inner.fit(_ts(start), _ts(end), node))

    def predict(self, start=None, end=None, node: Optional[str] = None) -> pa.Table:
        """Predicts over the bars ending in ``[start, end]``; returns the sink's (or
        ``node``'s) output, long."""
        return pa.table(self._inner.predict(_ts(start), _ts(end), node))

    def step(self, new_rows, node: Optional[str] = None) -> pa.Table:
        """Feeds the source's next rows (a long pyarrow table or pandas frame with
        ``end_ts``, ``asset`` and features, or a wide frame) and returns the sink's
        (or ``node``'s) output rows for them."""
        return pa.table(self._inner.step(_as_long(new_rows), node))

    def reset(self) -> None:
        """Forgets the state carried between calls (not what the models learned)."""
        self._inner.reset()


def _ts(t) -> Optional[str]:
    if t is None:
        return None
    if isinstance(t, str):
        return t
    stamp = pd.Timestamp(t)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()
