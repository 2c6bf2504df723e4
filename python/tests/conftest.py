"""Shared fixtures: the repository root (configs are named from there) and a small
graph config over the synthetic generator."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# Configs name their data relative to the repository root.
os.chdir(ROOT)


def graph_config(node: str = "", assets: int = 4, bars: int = 300) -> str:
    """A DAG of the synthetic source and the given node tables (TOML)."""
    return f"""
[market_data]
type = "synthetic"
assets = {assets}
bars = {bars}
start = "2024-01-02 09:31"
seed = 11

[dag]
type = "graph"
[dag.nodes.read]
type = "market_data"
{node}
"""
