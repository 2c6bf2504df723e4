//! `report.html`: self-contained (nothing loaded from the network, no script), with
//! every section of a system run, and rendered by a real browser: headless
//! Chromium (Debian's `chromium`, which `.ci/run` installs) loads it with no console
//! error, every chart's SVG is in the rendered page with its marks, and a
//! screenshot is taken.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kaizenflow, shared_data, text};

fn run_and_check(config: &str, dir: &Path) -> String {
    let out = kaizenflow(&["run", config, "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("report: "),
        "{}",
        text(&out.stdout)
    );
    let out = kaizenflow(&["check", config, "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

/// The browser, or `None` outside CI (where its absence is a failure).
fn chromium() -> Option<&'static str> {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    let msg = "chromium is not installed (apt-get install chromium)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED the browser part: {msg}");
    None
}

fn browser(bin: &str, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The page's SVG elements, each with how many drawn marks it holds.
fn svgs(dom: &str) -> Vec<usize> {
    dom.split("<svg")
        .skip(1)
        .map(|s| {
            let body = s.split("</svg>").next().unwrap_or("");
            ["<path", "<rect", "<line", "<polyline", "<circle", "<text"]
                .iter()
                .map(|m| body.matches(m).count())
                .sum()
        })
        .collect()
}

fn rendered_in_a_browser(dir: &Path, charts: usize) {
    let Some(bin) = chromium() else { return };
    let page = format!("file://{}", dir.join("report.html").display());
    let profile = tempfile::tempdir().unwrap();
    let out = browser(bin, profile.path())
        .arg("--dump-dom")
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dom = text(&out.stdout);
    let log = text(&out.stderr);
    assert!(
        !log.lines()
            .any(|l| l.contains("CONSOLE") && !l.contains("INFO")),
        "console errors: {log}"
    );
    let found = svgs(&dom);
    assert_eq!(found.len(), charts, "charts in the rendered page");
    assert!(
        found.iter().all(|&marks| marks > 5),
        "an empty chart: {found:?}"
    );
    let shot = dir.join("report.png");
    let out = browser(bin, profile.path())
        .arg("--window-size=1100,5200")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn a_system_runs_report_is_whole_self_contained_and_renders_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let html = run_and_check("configs/mock1_system.toml", &dir);
    for section in [
        "Statistics",
        "P&amp;L",
        "Exposure and turnover",
        "Bar returns",
        "P&amp;L by asset",
        "Time by node",
        "The DAG",
        "Checks",
        "Resolved config",
    ] {
        assert!(
            html.contains(&format!("<h2>{section}</h2>")),
            "no {section}"
        );
    }
    // Nothing from the network, nothing to run.
    for banned in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        "url(http",
        "src=\"http",
    ] {
        assert!(!html.contains(banned), "{banned}");
    }
    let external = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/"))
        .count();
    assert_eq!(external, 0, "a link out of the page");
    // Every node of Mock1 is drawn, and the verdicts are there.
    for node in ["read_data", "resample", "compute_ret_0", "predict"] {
        assert!(html.contains(&format!(">{node}</text>")), "{node}");
    }
    assert!(html.contains("<td class=\"pass\">pass</td>"));
    // Time on the x axis, as dates (the default data's days in January 2024).
    assert!(html.contains(">\n2024-01-0"), "no dates on a time axis");
    rendered_in_a_browser(&dir, 7);
}

#[test]
fn the_demo_systems_report_shows_its_model_and_renders_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let html = run_and_check("configs/demo_system.toml", &dir);
    assert!(html.contains("<h2>Model metrics</h2>"), "no model metrics");
    for node in ["read_data", "lags", "model"] {
        assert!(html.contains(&format!(">{node}</text>")), "{node}");
    }
    assert!(html.contains(">\n2024-01-"), "no dates on a time axis");
    rendered_in_a_browser(&dir, 7);
}

#[test]
fn the_real_data_systems_report_renders_in_chromium() {
    if !shared_data("us_equity_1min_2018") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let html = run_and_check("configs/mock1_system_us_equity_1min_2018.toml", &dir);
    assert!(html.contains(">\n2018-0"), "no dates on a time axis");
    rendered_in_a_browser(&dir, 7);
}

#[test]
fn a_folder_without_run_files_gets_a_report_of_what_is_there_and_a_bad_table_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kaizenflow(&["report", tmp.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(html.contains("0 charts"));
    std::fs::write(tmp.path().join("portfolio.parquet"), b"not parquet").unwrap();
    let out = kaizenflow(&["report", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("portfolio.parquet") && err.contains("not a Parquet table"),
        "{err}"
    );
}
