//! The `kaizenflow` program with the built-in types. See `kaizenflow --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    kaizenflow::cli::main_with(kaizenflow::Registries::default())
}
