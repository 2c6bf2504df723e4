//! Errors across the boundary: a Rust error chain becomes a `KaizenflowError`
//! whose message keeps every located cause (file:line, key, node), and a Python
//! exception raised in a user's function becomes a node error with its traceback.

use pyo3::prelude::*;
use pyo3::types::PyTracebackMethods;

pyo3::create_exception!(
    _kaizenflow,
    KaizenflowError,
    pyo3::exceptions::PyException,
    "An error of KaizenFlow: a bad config, a failed build or run, a check that cannot run. The message names the file, line, key or node."
);

/// `e` and its causes, one per line, as the command line prints them.
pub fn chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        // A wrapper that already quotes its cause (a node error) is not repeated.
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str("\n  caused by: ");
            text.push_str(&cause);
        }
    }
    text
}

/// A `KaizenflowError` carrying `e`'s chain.
pub fn to_py(e: anyhow::Error) -> PyErr {
    // A user's Python exception raised inside a node travels as text in the chain;
    // the original type is kept when it is the error itself.
    KaizenflowError::new_err(chain(&e))
}

/// A Python exception as text: its type, message and traceback.
pub fn python_message(e: &PyErr) -> String {
    Python::attach(|py| {
        let tb = e
            .traceback(py)
            .and_then(|t| t.format().ok())
            .unwrap_or_default();
        let kind = e
            .get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "Exception".into());
        format!("{tb}{kind}: {}", e.value(py))
            .trim_end()
            .replace('\n', "\n    ")
    })
}
