"""The functions that ``python`` nodes call, and the call itself (made from Rust,
once per tile, with the GIL held)."""

from __future__ import annotations

import importlib
from typing import Callable

import pandas as pd
import pyarrow as pa

from . import _frames

_FUNCTIONS: dict[str, Callable] = {}


def register(name: str, func: Callable) -> None:
    """Makes ``func`` the function of ``python`` nodes with ``function = name``."""
    if not callable(func):
        raise TypeError(f"register_node({name!r}): {func!r} is not callable")
    _FUNCTIONS[name] = func


def resolve(name: str) -> Callable:
    """The function a node names: a registered name, or ``module:attribute``."""
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{name} is not callable")
        return obj
    known = ", ".join(sorted(_FUNCTIONS)) or "none yet"
    raise LookupError(
        f"no function registered as {name!r} (registered: {known}); register it with "
        f"kaizenflow.register_node({name!r}, func) or write function = \"module:attribute\""
    )


def call(name: str, kind: str, stream, node: str, assets: list[str]) -> pa.Table:
    """Runs node ``node``'s function on the rows of one call and returns its rows."""
    table = pa.table(stream)
    func = resolve(name)
    if kind == "arrow":
        out = func(table)
        if not isinstance(out, pa.Table):
            out = pa.table(out)
        if "knowledge_ts" not in out.column_names:
            out = out.append_column("knowledge_ts", out.column("end_ts"))
        return out
    frame = _frames.wide(table, assets)
    out = func(frame)
    if not hasattr(out, "columns"):
        raise TypeError(
            f"node {node}: {name} returned a {type(out).__name__}; return a DataFrame with "
            "(feature, asset) columns and the input's index"
        )
    if len(out.index) != len(frame.index) or not (
        pd.DatetimeIndex(out.index) == frame.index
    ).all():
        raise ValueError(
            f"node {node}: {name} returned {len(out.index)} rows for {len(frame.index)}; "
            "return one row per input row, with the input's index"
        )
    return _frames.long(out)
