//! Helpers shared by the program's tests: run the program from the workspace, read
//! its output, find the shared data.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `kaizenflow` program with `args` from the workspace root.
pub fn kaizenflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap_or_else(|e| panic!("cannot run kaizenflow: {e}"))
}

/// Runs the `kaizenflow` program with `args` on `np` ranks of `mpirun`, from the
/// workspace root (as root and with more ranks than cores allowed, as CI runs it).
pub fn mpirun<S: AsRef<std::ffi::OsStr>>(np: usize, args: &[S]) -> Output {
    Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &np.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_kaizenflow"))
        .args(args)
        .current_dir(workspace())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run mpirun (install openmpi-bin): {e}"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `../shared/data/NAME` (or `$KF_SHARED_DATA/NAME`) is there; in CI its
/// absence is a failure, elsewhere the caller skips with a message.
pub fn shared_data(name: &str) -> bool {
    let base = std::env::var_os("KF_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data"));
    if base.join(name).is_dir() {
        return true;
    }
    let msg = format!(
        "shared data {} is missing (set KF_SHARED_DATA)",
        base.join(name).display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}
