//! The whole `kaizenflow run` of Mock1 on the real `us_equity_1min_2018` minute bars
//! (read 40 gzip CSVs, the DAG, write `result.parquet`), timed as a user times it:
//! the program run as a child process, several times. Each run's phases come from
//! the program's own report. The same job in pandas and in polars
//! (`benches/py/mock1_reference.py`, when Python has them) runs in the same
//! invocation, is checked against our result to 1e-9, and the ratios are printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::mock1::median;

/// One timed `kaizenflow run`: the child's wall time and the phases it reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunTimes {
    /// The whole process, start to exit.
    pub wall: f64,
    /// Reading the market data (the source node).
    pub read: f64,
    /// The DAG's other nodes.
    pub dag: f64,
    /// Writing `result.parquet` and the run's other files.
    pub write: f64,
}

/// The `kaizenflow` program next to this one (`target/release`).
fn program() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("kaizenflow");
    p.exists().then_some(p)
}

/// Parses `# phases: read 0.123 s, dag 0.045 s, write 0.067 s` from the run's report.
fn phases(stdout: &str) -> Option<(f64, f64, f64)> {
    let line = stdout.lines().find(|l| l.starts_with("# phases:"))?;
    let num = |key: &str| -> Option<f64> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    Some((num("read ")?, num("dag ")?, num("write ")?))
}

/// Runs `kaizenflow run CONFIG` `runs` times into `out`; `None` (with a message) when
/// the program is missing or fails.
pub fn time_runs(config: &Path, out: &Path, runs: usize) -> Option<Vec<RunTimes>> {
    let Some(prog) = program() else {
        eprintln!("build the program first: cargo build --release -p kaizenflow");
        return None;
    };
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let o = Command::new(&prog)
            .args(["run", "--force", "--out"])
            .arg(out)
            .arg(config)
            .output()
            .ok()?;
        let wall = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&o.stdout);
        if !o.status.success() {
            eprintln!(
                "kaizenflow run failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        let (read, dag, write) = phases(&stdout)?;
        all.push(RunTimes {
            wall,
            read,
            dag,
            write,
        });
    }
    Some(all)
}

/// The reference script's `ENGINE median_s=X` and `ENGINE check ok` lines.
fn reference(script: &Path, data: &Path, result: &Path, runs: usize) -> Vec<(String, f64, bool)> {
    let python = crate::py::python();
    let o = match Command::new(&python)
        .arg(script)
        .arg("--data")
        .arg(data)
        .args(["--runs", &runs.to_string(), "--check"])
        .arg(result)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("  {python} not found ({e}): no pandas/polars figures");
            return Vec::new();
        }
    };
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = Vec::new();
    for engine in ["pandas", "polars"] {
        let key = format!("{engine} median_s=");
        let Some(secs) = text
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        else {
            if let Some(l) = text.lines().find(|l| l.starts_with(engine)) {
                println!("  {l}");
            }
            continue;
        };
        let ok = text
            .lines()
            .any(|l| l.starts_with(&format!("{engine} check ok")));
        out.push((engine.to_string(), secs, ok));
    }
    if !o.status.success() {
        println!("  the reference script reported a problem:\n{text}");
    }
    out
}

/// Runs the case and prints it; false when it could not run.
pub fn run(runs: usize, data: &Path) -> bool {
    let config = Path::new("configs/mock1_us_equity_1min_2018.toml");
    let out = Path::new("target/kf-bench-run-real");
    let Some(times) = time_runs(config, out, runs) else {
        return false;
    };
    let med = |f: fn(&RunTimes) -> f64| {
        median(
            times
                .iter()
                .map(|t| std::time::Duration::from_secs_f64(f(t)))
                .collect(),
        )
        .as_secs_f64()
    };
    let wall = med(|t| t.wall);
    println!(
        "run-real: kaizenflow run {} (40 stocks, 687,827 minute bars, gzip CSV), {runs} runs",
        config.display()
    );
    println!(
        "  whole process: median {:.3} s (runs: {})",
        wall,
        times
            .iter()
            .map(|t| format!("{:.3}", t.wall))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  phases (medians): read {:.3} s, DAG {:.3} s, write {:.3} s",
        med(|t| t.read),
        med(|t| t.dag),
        med(|t| t.write)
    );
    let script = Path::new("benches/py/mock1_reference.py");
    let result = out.join("result.parquet");
    for (engine, secs, ok) in reference(script, data, &result, runs) {
        println!(
            "  {engine}: median {secs:.3} s in-process (read, compute, write), outputs {} ours to 1e-9: {:.1}x our whole process",
            if ok { "match" } else { "DO NOT match" },
            secs / wall
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::phases;

    #[test]
    fn the_phases_line_is_parsed() {
        let out = "# 3518 rows\n# phases: read 0.113 s, dag 0.021 s, write 0.035 s\nnode ...";
        assert_eq!(phases(out), Some((0.113, 0.021, 0.035)));
        assert_eq!(phases("# nothing"), None);
    }
}
