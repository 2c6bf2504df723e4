# Conveniences for those who have `just` (pip install rust-just). Every recipe is a
# plain cargo command; the README's commands work without `just`.

# Run the main job on the built-in synthetic data.
run:
    cargo run --release -p kaizenflow -- run configs/demo_system.toml --out runs/demo_system

# Run the tests (the README's test command).
test:
    cargo test --workspace

# Everything CI checks.
ci:
    bash .ci/run

# Format and lint.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets --features kaizenflow/hdf5,kaizenflow/sql,kaizenflow/postgres,kaizenflow/mpi,kaizenflow/nn,kf-benches/hdf5,kf-benches/mpi,kf-benches/nn -- -D warnings

# Benchmarks (KF_BENCH_QUICK=1 skips the full-scale cases).
bench:
    cargo bench -p kf-benches
