//! The DAG: construction errors, topological runs, partial runs, parallel runs.
