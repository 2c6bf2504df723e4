"""kaizenflow.Dag: fit, predict and step from Python; stepping bar by bar gives
the batch run's values to the bit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import kaizenflow
from test_run import same_bits


def test_stepping_bar_by_bar_equals_the_batch_run():
    batch_dag = kaizenflow.Dag.from_config("configs/mock1.toml")
    assert batch_dag.nodes[0] == "read_data"
    batch = batch_dag.predict()
    raw = batch_dag.predict(node="read_data")
    ends = pc.unique(raw.column("end_ts")).to_pylist()
    assert len(ends) == 1950

    stream = kaizenflow.Dag.from_config("configs/mock1.toml")
    pieces = []
    for end in ends:
        rows = raw.filter(pc.equal(raw.column("end_ts"), pa.scalar(end, raw.schema.field("end_ts").type)))
        out = stream.step(rows)
        if out.num_rows:
            pieces.append(out)
    streamed = pa.concat_tables(pieces)
    same_bits(streamed, batch)
    assert np.isfinite(batch.column("prediction").to_numpy()).sum() > 7000


def test_predict_over_an_interval_and_reset():
    dag = kaizenflow.Dag.from_config("configs/mock1.toml")
    first = dag.predict("2024-01-02 14:31", "2024-01-02 16:00")
    assert 0 < first.num_rows
    ends = first.column("end_ts").to_pylist()
    assert min(ends).isoformat() >= "2024-01-02T14:31"
    dag.reset()
    again = dag.predict("2024-01-02 14:31", "2024-01-02 16:00")
    same_bits(again, first)


def test_step_refuses_bad_rows():
    dag = kaizenflow.Dag.from_config("configs/mock1.toml")
    with pytest.raises(TypeError, match="Arrow table"):
        dag._inner.step(object())
    with pytest.raises(kaizenflow.KaizenflowError, match="not a long-layout frame"):
        dag.step(pa.table({"end_ts": pa.array([0], pa.timestamp("ns", tz="UTC")), "close": [1.0]}))
    with pytest.raises(kaizenflow.KaizenflowError, match="not a time"):
        dag.predict("yesterday")
    with pytest.raises(kaizenflow.KaizenflowError, match="unknown node|no node"):
        dag.predict(node="nope")
