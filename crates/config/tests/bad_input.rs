//! Hostile config input: paths too deep to nest, sweeps too large to build, text that
//! is not UTF-8, values too long to echo. Each is refused with a message that says
//! where and what to do, and none of them overflows the stack or the memory.

use kf_config::{Config, MAX_ECHO, MAX_KEY_SEGMENTS, MAX_SWEEP_POINTS, clip_text};

fn cfg(text: &str) -> Config {
    Config::from_toml_str(text, "x.toml").unwrap()
}

#[test]
fn a_set_path_of_fifty_thousand_segments_is_refused_not_nested() {
    let mut c = cfg("a = 1\n");
    let deep = vec!["k"; 50_000].join(".");
    let e = c.set(&format!("{deep}=1")).unwrap_err().to_string();
    assert!(e.contains("50000 segments"), "{e}");
    assert!(e.contains(&format!("at most {MAX_KEY_SEGMENTS}")), "{e}");
    // The message does not echo the 100 KB path back.
    assert!(e.len() < 600, "{} bytes: {e}", e.len());
    // The limit itself is allowed.
    let ok = vec!["k"; MAX_KEY_SEGMENTS].join(".");
    c.set(&format!("{ok}=1")).unwrap();
}

#[test]
fn a_sweep_key_of_fifty_thousand_segments_is_refused() {
    let deep = vec!["k"; 50_000].join(".");
    let c = cfg(&format!("[sweep]\n\"{deep}\" = [1, 2]\n"));
    let e = c.expand_sweep().unwrap_err().to_string();
    assert!(e.starts_with("x.toml:2: sweep:"), "{e}");
    assert!(e.contains("50000 segments"), "{e}");
}

#[test]
fn a_sweep_of_a_million_points_is_refused_before_building_any() {
    // 10 axes of 4 values: 4^10 = 1,048,576 points.
    let mut text = String::from("[sweep]\n");
    for i in 0..10 {
        text.push_str(&format!("\"dag.p{i}\" = [1, 2, 3, 4]\n"));
    }
    let c = cfg(&text);
    let t = std::time::Instant::now();
    let e = c.expand_sweep().unwrap_err().to_string();
    assert!(
        t.elapsed().as_secs() < 5,
        "refusal must not build the points"
    );
    assert!(
        e.contains(&format!("more than {MAX_SWEEP_POINTS} points")),
        "{e}"
    );
    assert!(e.contains("dag.p0 (4) x dag.p1 (4)"), "{e}");
    assert!(e.contains("split it"), "{e}");
    // A product that overflows usize is refused the same way.
    let mut text = String::from("[sweep]\n");
    for i in 0..70 {
        text.push_str(&format!("\"dag.p{i}\" = [1, 2]\n"));
    }
    assert!(cfg(&text).expand_sweep().is_err());
    // At the limit it expands: 10,000 = 100 x 100.
    let a: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let text = format!(
        "[sweep]\n\"dag.a\" = [{}]\n\"dag.b\" = [{}]\n",
        a.join(","),
        a.join(",")
    );
    assert_eq!(cfg(&text).expand_sweep().unwrap().len(), MAX_SWEEP_POINTS);
}

#[test]
fn invalid_utf8_names_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let mut bytes = b"a = 1\nb = 2\nc = \"x".to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\"\n");
    std::fs::write(&path, bytes).unwrap();
    let e = Config::from_file(&path).unwrap_err().to_string();
    let want = format!("{}:3:7: invalid TOML: invalid UTF-8", path.display());
    assert!(e.starts_with(&want), "{e}");
}

#[test]
fn a_two_megabyte_value_is_not_echoed_back_in_full() {
    let big = "x".repeat(2_000_000);
    let c = cfg(&format!("n = \"{big}\"\n"));
    let e = c.root().get::<i64>("n").unwrap_err().to_string();
    assert!(e.len() < 400, "{} bytes", e.len());
    assert!(e.contains("(2000000 characters)"), "{e}");
    // The same for an override, in the value and in its origin.
    let mut c = cfg("[a]\nn = 1\n");
    c.set(&format!("a.n=\"{big}\"")).unwrap();
    let e = c
        .section("a")
        .unwrap()
        .get::<i64>("n")
        .unwrap_err()
        .to_string();
    assert!(e.len() < 600, "{} bytes", e.len());
    // A short text is shown whole; a long one keeps its start and its end.
    assert_eq!(clip_text("short"), "short");
    let long: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let clipped = clip_text(&long);
    assert!(clipped.starts_with(&long[..MAX_ECHO / 2]));
    assert!(clipped.ends_with(&long[1000 - MAX_ECHO / 4..]));
}
