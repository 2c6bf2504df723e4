//! File paths in configs: `${VAR}` expansion, resolution against the config file's
//! folder, and globs.

use std::path::{Path, PathBuf};

use kf_config::{Origin, Section};

/// The folder of the file a section was written in (the current folder for configs
/// built from text or overrides).
pub fn config_dir(section: &Section<'_>) -> PathBuf {
    match section.origin() {
        Origin::File { file, .. } => Path::new(&**file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        _ => PathBuf::new(),
    }
}

/// Expands `${VAR}` and `${VAR:-default}` from the environment.
///
/// # Errors
/// A message naming a variable that is unset and has no default, or an unclosed `${`.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let inner = &after[..close];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (std::env::var(name), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => {
                return Err(format!(
                    "environment variable {name} is not set (in {text:?}); set it or write \
                     ${{{name}:-default}}"
                ));
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves a path from a config: expands variables, then joins a relative path to
/// `base`.
///
/// # Errors
/// As [`expand_env`].
pub fn resolve(text: &str, base: &Path) -> Result<PathBuf, String> {
    let expanded = PathBuf::from(expand_env(text)?);
    Ok(if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    })
}

/// The files a path or glob names, sorted.
///
/// # Errors
/// A message when the pattern is empty or malformed, or matches no file.
pub(crate) fn expand_files(pattern: &str, base: &Path) -> Result<Vec<PathBuf>, String> {
    if pattern.is_empty() {
        return Err("give the file or glob to read".into());
    }
    let path = resolve(pattern, base)?;
    let text = path.to_string_lossy().into_owned();
    if !text.contains(['*', '?', '[']) {
        if !path.is_file() {
            return Err(format!(
                "{} does not exist or is not a file",
                path.display()
            ));
        }
        return Ok(vec![path]);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in glob::glob(&text).map_err(|e| format!("bad glob {text:?}: {e}"))? {
        let p = entry
            .map_err(|e| format!("{text}: cannot read {}: {}", e.path().display(), e.error()))?;
        if p.is_file() {
            files.push(p);
        } else if p
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            // A link whose target is gone would otherwise drop its asset silently.
            return Err(format!(
                "{} matches {text} but is a symbolic link to a missing file; restore its \
                 target or remove the link",
                p.display()
            ));
        }
    }
    if files.is_empty() {
        return Err(format!("no file matches {text}"));
    }
    files.sort();
    Ok(files)
}
