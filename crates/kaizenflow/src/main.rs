//! The `kaizenflow` program with the built-in types. See `kaizenflow --help`.

use std::process::ExitCode;

/// mimalloc keeps freed memory for the next allocation: a run's nodes free and
/// allocate frames of the same sizes, which the system allocator would hand back to
/// the kernel and fault in again, zeroed, page by page.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kaizenflow::cli::main_with(kaizenflow::Registries::default())
}
