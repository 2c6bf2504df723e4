//! The Python references of `benches/py/`: run one beside our code and read the
//! numbers it prints, so a benchmark can print the ratios in the same invocation.

use std::path::Path;
use std::process::Command;

/// The interpreter for the references: `$KF_BENCH_PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("KF_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `benches/py/{script}` with `args` under `$KF_BENCH_PYTHON` (default
/// `python3`) and returns the numbers it printed on stdout, in order. When it cannot
/// run (no interpreter, a library missing, a failure), prints why under `label` and
/// what to install (`needs`), and returns `None`: the reference is optional.
pub fn numbers(label: &str, needs: &str, script: &str, args: &[String]) -> Option<Vec<f64>> {
    let python = python();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(script);
    match Command::new(&python).arg(&path).args(args).output() {
        Ok(o) if o.status.success() => Some(
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect(),
        ),
        Ok(o) => {
            println!(
                "{label}: not run ({}); `pip install {needs}`, or point KF_BENCH_PYTHON at a \
                 python that has it",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        }
        Err(e) => {
            println!("{label}: cannot run {python}: {e}");
            None
        }
    }
}
