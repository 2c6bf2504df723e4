//! A dependency's panic turned into an error at the reader boundary.
//!
//! Arrow and Parquet decoders assume well-formed input in places (a corrupt embedded
//! IPC schema panics with "FloatingPoint type with precision of <UNKNOWN 34> not
//! supported"). A file is user input, so the readers run those calls through
//! [`catch_quiet`]: a panic becomes an `Err` with its message and location, and the
//! default hook does not print it (nor a backtrace) to the terminal.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static WHERE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that stays silent inside
/// [`catch_quiet`] and chains to the hook that was there for every other panic.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                WHERE.with(|w| *w.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it comes back as `Err("MESSAGE (at FILE:LINE)")`.
///
/// # Errors
/// The panic's message and location, when `f` panicked.
pub fn catch_quiet<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let outer = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(outer));
    let at = WHERE.with(|w| w.borrow_mut().take());
    out.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        match at {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_place() {
        let e = super::catch_quiet(|| -> u8 { panic!("precision <UNKNOWN 34>") }).unwrap_err();
        assert!(e.starts_with("precision <UNKNOWN 34> (at "), "{e}");
        assert!(e.contains("guard.rs:"), "{e}");
        assert_eq!(super::catch_quiet(|| 7), Ok(7));
    }
}
