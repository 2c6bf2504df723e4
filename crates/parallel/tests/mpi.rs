//! The MPI backend under a real `mpirun` with 4 ranks on this machine.
#![cfg(feature = "mpi")]

use std::process::Command;

#[test]
fn four_ranks_reduce_bit_identically_to_the_sequential_path() {
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "4"])
        .arg(env!("CARGO_BIN_EXE_kf-mpi-check"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run mpirun (install openmpi-bin): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mpirun failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("ok: 4 ranks"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
