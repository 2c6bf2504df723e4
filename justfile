# Conveniences for those who have `just` (pip install rust-just). Every recipe is a
# plain cargo command; the README's commands work without `just`.

# Run the main job on the built-in synthetic data.
run:
    cargo run --release -p kaizenflow -- config show configs/example.toml

# Run the tests (the README's test command).
test:
    cargo test --workspace

# Everything CI checks.
ci:
    bash .ci/run

# Format and lint.
lint:
    cargo fmt --all
    cargo clippy --workspace --all-targets --all-features -- -D warnings

# Benchmarks (KF_BENCH_QUICK=1 skips the full-scale cases).
bench:
    cargo bench -p kf-benches
