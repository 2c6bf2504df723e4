//! This crate's own `kaizenflow` program: the whole command line (`run`, `check`,
//! `sweep`, `config show`, `nodes`, ...) knowing the crate's types too.

use std::process::ExitCode;

fn main() -> ExitCode {
    match kf_example_user::registries() {
        Ok(types) => kaizenflow::cli::main_with(types),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
