//! The memory a run may ask for, checked before a large allocation is attempted.
//!
//! Rust aborts the process when an allocation fails, with no word about which key
//! asked for too much. Components that size an allocation from input (bars x assets
//! x features from a config, the bins of a resample) call [`check_bytes`] first, so
//! the user gets an error naming what was asked, the size and the limit instead.
//!
//! The limit is the machine's physical memory (from `/proc/meminfo` on Linux, 16 GiB
//! where that cannot be read), or `KF_MAX_MEMORY` in bytes (suffixes `K`, `M`, `G`,
//! `T` allowed) when set.

/// The environment variable that overrides the memory limit.
pub const MAX_MEMORY_ENV: &str = "KF_MAX_MEMORY";

/// Parses a byte count such as `8G`, `512M` or `1000000`.
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        't' | 'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// The memory limit in bytes (see the module doc).
pub fn memory_limit() -> u64 {
    if let Some(b) = std::env::var(MAX_MEMORY_ENV)
        .ok()
        .and_then(|v| parse_bytes(&v))
    {
        return b;
    }
    // The machine's memory does not change during a run: read it once (a streaming
    // step checks its budget every bar).
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                kb.checked_mul(1024)
            })
            .unwrap_or(16 << 30)
    })
}

/// Checks that `bytes` (computed in `u128`, so a product of config values cannot
/// overflow) fits the memory limit.
///
/// # Errors
/// A message naming `what`, the size asked and the limit, and how to raise it.
pub fn check_bytes(what: &str, bytes: u128) -> Result<(), String> {
    check_bytes_with(bytes, || what.to_string())
}

/// As [`check_bytes`], with the description built only when the check fails (a
/// check on every streaming step then allocates nothing).
///
/// # Errors
/// As [`check_bytes`].
pub fn check_bytes_with(bytes: u128, what: impl FnOnce() -> String) -> Result<(), String> {
    let limit = memory_limit();
    if bytes > u128::from(limit) {
        let what = what();
        return Err(format!(
            "{what} needs {} of memory, more than this machine's {} \
             (set {MAX_MEMORY_ENV} to change the limit); ask for fewer",
            human(bytes),
            human(u128::from(limit))
        ));
    }
    Ok(())
}

/// Bytes in words (`12.5 GB`).
pub fn human(bytes: u128) -> String {
    let b = bytes as f64;
    if b >= 1e12 {
        format!("{:.3e} bytes", b)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_huge_products_are_refused() {
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("512 M"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        let e = check_bytes("9223372036854775807 assets", u128::from(u64::MAX) * 40).unwrap_err();
        assert!(
            e.starts_with("9223372036854775807 assets needs 7.379e20 bytes"),
            "{e}"
        );
        assert!(check_bytes("a little", 1 << 20).is_ok());
    }
}
