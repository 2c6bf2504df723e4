//! Behaviour of `Config`: typed access, overrides, unused keys, printing, sweeps, the
//! registry, with each error message checked.

use kf_config::{Config, ConfigError, Registry, Section};
use serde::{Deserialize, Serialize};

fn cfg(text: &str) -> Config {
    Config::from_toml_str(text, "configs/x.toml").unwrap()
}

const SAMPLE: &str = r#"
# A small system.
[dag.nodes.zscore]
window = "20"
tau = 5

[dag.nodes.ema]
tau = 2.5
"#;

#[test]
fn type_errors_name_file_line_and_path() {
    let c = cfg(SAMPLE);
    let z = c.section("dag.nodes.zscore").unwrap();
    let e = z.get::<i64>("window").unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:4: dag.nodes.zscore.window: expected an integer, found the string \"20\""
    );
    let e = c
        .section("dag.nodes")
        .unwrap()
        .get::<bool>("ema.tau")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:8: dag.nodes.ema.tau: expected a boolean (true or false), found the float 2.5"
    );
    // An integer is accepted where a float is wanted; a float is not an integer.
    assert_eq!(z.get::<f64>("tau").unwrap(), 5.0);
    assert!(matches!(
        c.section("dag.nodes.ema").unwrap().get::<u32>("tau"),
        Err(ConfigError::Type { .. })
    ));
    // Range errors are located too.
    let e = cfg("n = 300").root().get::<u8>("n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("configs/x.toml:1: n: invalid value: integer `300`"),
        "{e}"
    );
    // A path through a non-table.
    let e = c.root().get::<i64>("dag.nodes.zscore.tau.x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:5: dag.nodes.zscore.tau: expected a table, found the integer 5"
    );
}

#[test]
fn missing_keys_and_sections() {
    let c = cfg(SAMPLE);
    let e = c
        .section("dag.nodes.zscore")
        .unwrap()
        .get::<i64>("min_periods")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:3: dag.nodes.zscore.min_periods: missing; add it to the config or set it \
         with --set"
    );
    let e = c.section("dag.nodes.rank").unwrap_err();
    assert!(e.to_string().contains("dag.nodes.rank: missing"), "{e}");
    let e = c.section("dag.nodes.zscore.tau").unwrap_err();
    assert!(
        e.to_string()
            .contains("expected a table, found the integer 5"),
        "{e}"
    );
}

#[test]
fn parse_errors_give_line_and_column() {
    let e = Config::from_toml_str("[a]\nx = 1\ny = = 2\n", "bad.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Parse { line: 3, .. }), "{e}");
    assert!(e.to_string().starts_with("bad.toml:3:"), "{e}");
    let e = Config::from_toml_str("a = 1\na = 2\n", "dup.toml").unwrap_err();
    assert!(e.to_string().starts_with("dup.toml:2:"), "{e}");
    let e = Config::from_file("/nonexistent/k.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/k.toml: cannot read config"),
        "{e}"
    );
}

#[test]
fn overrides_parse_toml_values_and_report_their_origin() {
    let mut c = cfg(SAMPLE);
    c.set("dag.nodes.zscore.window=40").unwrap();
    c.set("dag.nodes.ema.tau = 1e-3").unwrap();
    c.set("data.type=csv").unwrap(); // not TOML: taken as a string
    c.set("data.assets=[\"A\", \"B\"]").unwrap();
    let z = c.section("dag.nodes.zscore").unwrap();
    assert_eq!(z.get::<i64>("window").unwrap(), 40);
    assert_eq!(c.root().get::<f64>("dag.nodes.ema.tau").unwrap(), 1e-3);
    assert_eq!(c.root().get::<String>("data.type").unwrap(), "csv");
    assert_eq!(
        c.root().get::<Vec<String>>("data.assets").unwrap(),
        ["A", "B"]
    );

    c.set("dag.nodes.zscore.tau=fast").unwrap();
    let e = c
        .section("dag.nodes.zscore")
        .unwrap()
        .get::<i64>("tau")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "--set dag.nodes.zscore.tau=fast: dag.nodes.zscore.tau: expected an integer, found the \
         string \"fast\""
    );
    let e = c.set("dag.nodes.zscore.tau.x=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "--set dag.nodes.zscore.tau.x=1: `dag.nodes.zscore.tau` is not a table, so it has no keys"
    );
    let e = c.set("no_equals_sign").unwrap_err();
    assert!(e.to_string().contains("expected PATH=VALUE"), "{e}");
    let e = c.set("a..b=1").unwrap_err();
    assert!(e.to_string().contains("empty segment"), "{e}");
}

#[test]
fn unused_keys_are_reported_with_their_origin() {
    let mut c = cfg("[zscore]\nwindow = 20\nwindw = 30\n\n[[nodes]]\nid = \"a\"\nkind = 1\n");
    c.set("zscore.min_perods=3").unwrap();
    let z = c.section("zscore").unwrap();
    assert_eq!(z.get::<i64>("window").unwrap(), 20);
    #[derive(Deserialize)]
    struct Node {
        #[allow(dead_code)]
        id: String,
    }
    let nodes: Vec<Node> = c.root().get("nodes").unwrap();
    assert_eq!(nodes.len(), 1);
    let e = c.check_all_used().unwrap_err();
    assert_eq!(
        e.to_string(),
        "3 keys that nothing read (a typo, or a setting of something not built):\n  \
         configs/x.toml:3: zscore.windw: unknown key (nothing read it)\n  \
         --set zscore.min_perods=3: zscore.min_perods: unknown key (nothing read it)\n  \
         configs/x.toml:7: nodes[0].kind: unknown key (nothing read it)"
    );
    // Reading the rest clears it.
    let z = c.section("zscore").unwrap();
    let _: i64 = z.get("windw").unwrap();
    let _: i64 = z.get("min_perods").unwrap();
    let _: i64 = c
        .root()
        .get("nodes")
        .map(|n: Vec<toml::Value>| n.len() as i64)
        .unwrap();
    assert!(c.check_all_used().is_ok());
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    PctChange,
    LogRets,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ZScore {
    window: u32,
    #[serde(default = "one")]
    min_periods: u32,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default = "log")]
    ret_mode: Mode,
}
fn one() -> u32 {
    1
}
fn log() -> Mode {
    Mode::LogRets
}

#[test]
fn serde_sections_fill_defaults_and_report_unknown_keys() {
    let c = cfg("[z]\nwindow = 20\nmode = \"pct_change\"\nscale = 2\n");
    let z: ZScore = c.section("z").unwrap().deserialize().unwrap();
    assert_eq!(
        z,
        ZScore {
            window: 20,
            min_periods: 1,
            mode: Some(Mode::PctChange),
            ret_mode: Mode::LogRets
        }
    );
    let e = c.check_all_used().unwrap_err();
    assert!(
        e.to_string()
            .contains("configs/x.toml:4: z.scale: unknown key"),
        "{e}"
    );
    let printed = c.to_toml_string();
    assert!(printed.contains("min_periods = 1"), "{printed}");
    assert!(printed.contains("ret_mode = \"log_rets\""), "{printed}");

    let c = cfg("[z]\nmode = \"pct\"\nwindow = 1\n");
    let e = c.section("z").unwrap().deserialize::<ZScore>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:2: z.mode: unknown variant `pct`, expected `pct_change` or `log_rets`"
    );
    let c = cfg("[z]\nmin_periods = 2\n");
    let e = c.section("z").unwrap().deserialize::<ZScore>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:1: z.window: missing; add it to the config or set it with --set"
    );
    let c = cfg("[z]\nwindow = -3\n");
    let e = c.section("z").unwrap().deserialize::<ZScore>().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("configs/x.toml:2: z.window: invalid value: integer `-3`"),
        "{e}"
    );
}

const ROUND_TRIP: &str = r#"
title = "quote \" and newline \n and unicode é"
when = 2000-01-01T14:31:00Z
floats = [0.1, 1e300, -0.0, nan, inf, -inf, 5e-324]
mixed = [[1, 2], ["a"]]

[dag.nodes.zscore]
window = 20
enabled = true

[[dag.edges]]
from = "a"
to = "b"

[[dag.edges]]
from = "b"
to = "c"
"#;

#[test]
fn printed_config_reads_back_equal_with_the_same_id() {
    let c = cfg(ROUND_TRIP);
    let _ = c
        .section("dag.nodes.zscore")
        .unwrap()
        .get_or("min_periods", 3i64)
        .unwrap();
    let printed = c.to_toml_string();
    let back = Config::from_toml_str(&printed, "printed.toml").unwrap();
    assert_eq!(back, c, "{printed}");
    assert_eq!(back.id(), c.id());
    assert_eq!(
        back.root()
            .get::<i64>("dag.nodes.zscore.min_periods")
            .unwrap(),
        3
    );
    let floats: Vec<f64> = back.root().get("floats").unwrap();
    assert_eq!(floats[2].to_bits(), (-0.0f64).to_bits());
    assert!(floats[3].is_nan());
    assert_eq!(floats[6], 5e-324);
    // A changed value changes the id and breaks equality.
    let mut d = cfg(ROUND_TRIP);
    d.set("dag.nodes.zscore.window=21").unwrap();
    assert_ne!(d, cfg(ROUND_TRIP));
    assert_ne!(d.id(), cfg(ROUND_TRIP).id());
}

#[test]
fn ids_ignore_formatting_and_key_order_and_match_an_independent_hash() {
    let a = cfg("b = 2\na = 1\n");
    let b = cfg("# comment\na=1\n\n\nb   =   2");
    assert_eq!(a.id(), b.id());
    // Independent check: SHA-256 of the documented canonical form "t1{1:a=i1;}",
    // computed with Python's hashlib, first 16 hex digits.
    assert_eq!(cfg("a = 1").id(), "4149e328a05cd93e");
}

#[test]
fn sweeps_expand_to_the_cartesian_product_with_distinct_stable_ids() {
    let text = r#"
[dag.nodes.zscore]
window = 20
tau = 1.0

[sweep]
"dag.nodes.zscore.window" = [10, 20, 40]
dag.nodes.zscore.tau = [0.5, 1.0]
"#;
    let c = cfg(text);
    let points = c.expand_sweep().unwrap();
    assert_eq!(points.len(), 6);
    let windows: Vec<i64> = points
        .iter()
        .map(|p| p.config.root().get("dag.nodes.zscore.window").unwrap())
        .collect();
    assert_eq!(windows, [10, 10, 20, 20, 40, 40]);
    assert_eq!(
        points[1].varied,
        [
            ("dag.nodes.zscore.window".to_string(), "10".to_string()),
            ("dag.nodes.zscore.tau".to_string(), "1.0".to_string())
        ]
    );
    let mut ids: Vec<String> = points.iter().map(|p| p.config.id()).collect();
    // Stable: expanding again, or from a reformatted file, gives the same ids.
    let again: Vec<String> = cfg(&text.replace("= [", "=["))
        .expand_sweep()
        .unwrap()
        .iter()
        .map(|p| p.config.id())
        .collect();
    assert_eq!(ids, again);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    // The sweep table is gone from each point; the point with window 20 and tau 1.0
    // is the base config itself.
    assert!(!points[0].config.root().contains("sweep"));
    let base_id = cfg(text.split("[sweep]").next().unwrap()).id();
    assert_eq!(points[3].config.id(), base_id);
}

#[test]
fn sweep_errors() {
    let e = cfg("[sweep]\n\"a.b\" = []\n").expand_sweep().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:2: sweep.a.b: an empty sweep gives no configs; list at least one value"
    );
    let e = cfg("[sweep]\n\"a.b\" = 3\n").expand_sweep().unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:2: sweep.a.b: expected an array of values to sweep over, found the integer 3"
    );
    let e = cfg("sweep = 1\n").expand_sweep().unwrap_err();
    assert!(e.to_string().contains("sweep: expected an array"), "{e}");
    let e = cfg("a = 1\n[sweep]\n\"a.b\" = [1]\n")
        .expand_sweep()
        .unwrap_err();
    assert!(e.to_string().contains("`a` is not a table"), "{e}");
    let no_sweep = cfg("a = 1").expand_sweep().unwrap();
    assert_eq!(no_sweep.len(), 1);
    assert!(no_sweep[0].varied.is_empty());
}

#[derive(Debug, PartialEq)]
enum Source {
    Synthetic { assets: u32 },
    Csv { path: String },
}

fn registry() -> Registry<Source> {
    let mut r = Registry::new("market data source");
    r.register("synthetic", |s: &Section<'_>| {
        Ok(Source::Synthetic {
            assets: s.get_or("assets", 10)?,
        })
    })
    .unwrap();
    r.register("csv", |s: &Section<'_>| {
        Ok(Source::Csv {
            path: s.get("path")?,
        })
    })
    .unwrap();
    r
}

#[test]
fn registry_builds_by_type_and_lists_known_names() {
    let r = registry();
    let c = cfg("[data]\ntype = \"synthetic\"\n");
    assert_eq!(
        r.build(&c.section("data").unwrap()).unwrap(),
        Source::Synthetic { assets: 10 }
    );
    assert!(c.check_all_used().is_ok());
    assert!(c.to_toml_string().contains("assets = 10"));
    let c = cfg("[data]\ntype = \"csv\"\npath = \"x.csv\"\n");
    assert_eq!(
        r.build(&c.section("data").unwrap()).unwrap(),
        Source::Csv {
            path: "x.csv".into()
        }
    );

    let c = cfg("[data]\n\ntype = \"parquett\"\n");
    let e = r.build(&c.section("data").unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:3: data.type: unknown market data source type \"parquett\"; known types: \
         csv, synthetic"
    );
    let c = cfg("[data]\npath = 1\n");
    let e = r.build(&c.section("data").unwrap()).unwrap_err();
    assert!(e.to_string().contains("data.type: missing"), "{e}");
    let mut r = registry();
    let e = r
        .register("csv", |_| {
            Ok(Source::Csv {
                path: String::new(),
            })
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "market data source type \"csv\" is registered twice"
    );
}

#[test]
fn section_validation_errors_point_at_the_value() {
    let c = cfg("[ema]\n\ntau = -1.0\n");
    let s = c.section("ema").unwrap();
    let tau: f64 = s.get("tau").unwrap();
    assert!(tau < 0.0);
    let e = s.invalid("tau", "must be positive");
    assert_eq!(e.to_string(), "configs/x.toml:3: ema.tau: must be positive");
    let e = s.build_error("cannot open the data", std::io::Error::other("gone"));
    assert_eq!(e.to_string(), "configs/x.toml:1: ema: cannot open the data");
    assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "gone");
}

/// Parameters of a made-up type, to hold [`TypeDoc::params_of`] to its serde struct.
#[derive(serde::Serialize, serde::Deserialize, kf_config::schemars::JsonSchema)]
#[schemars(crate = "kf_config::schemars")]
#[serde(default)]
struct Knobs {
    /// How many rows
    /// to look back.
    window: u32,
    /// A scale.
    scale: f64,
    /// Where to read from.
    source: Option<String>,
    /// The side.
    side: Side,
    /// Names.
    names: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize, kf_config::schemars::JsonSchema)]
#[schemars(crate = "kf_config::schemars")]
#[serde(rename_all = "snake_case")]
enum Side {
    /// Buy.
    Long,
    /// Sell.
    Short,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            window: 20,
            scale: 0.5,
            source: None,
            side: Side::Long,
            names: vec!["a".into()],
        }
    }
}

#[test]
fn a_type_doc_lists_the_structs_fields_with_types_defaults_and_docs() {
    let doc = kf_config::TypeDoc::new("a knob box").params_of::<Knobs>();
    assert_eq!(
        doc.param_names(),
        ["window", "scale", "source", "side", "names"]
    );
    let text = doc.render("widget", "knobs");
    assert_eq!(
        text,
        "knobs (widget): a knob box\n\
         parameters:\n  \
           window: integer = 20\n      How many rows to look back.\n  \
           scale: number = 0.5\n      A scale.\n  \
           source: string (optional, no default)\n      Where to read from.\n  \
           side: one of \"long\", \"short\" = \"long\"\n      The side.\n  \
           names: array of string = [\"a\"]\n      Names.\n"
    );
}

#[test]
fn asked_keys_are_the_keys_a_builder_reads_present_or_not() {
    let c = cfg("[k]\nwindow = 3\nextra = 1\n");
    let s = c.section("k").unwrap();
    let _: Knobs = s.deserialize().unwrap();
    let _ = s.get_opt::<String>("alone").unwrap();
    let _ = s.get_or("deep.inner", 1i64).unwrap();
    assert_eq!(
        c.asked_keys("k"),
        [
            "alone", "deep", "names", "scale", "side", "source", "window"
        ]
    );
    assert!(c.asked_keys("other").is_empty());
    // `extra` was not asked for, so it stays unread.
    assert!(
        c.check_all_used()
            .unwrap_err()
            .to_string()
            .contains("k.extra")
    );
}

#[test]
fn closest_suggests_typos_and_missing_prefixes_only() {
    let names = ["close", "volume", "vwap.ret_0", "vwap.ret_0.vol"];
    assert_eq!(kf_config::closest("closee", names), Some("close"));
    assert_eq!(kf_config::closest("volme", names), Some("volume"));
    assert_eq!(
        kf_config::closest("ret_0", ["vwap.ret_0", "twap"]),
        Some("vwap.ret_0")
    );
    assert_eq!(
        kf_config::closest("vwap.ret_0.voll", names),
        Some("vwap.ret_0.vol")
    );
    assert_eq!(kf_config::closest("prediction", names), None);
    // An exact name is not a suggestion for itself.
    assert_eq!(kf_config::closest("close", ["close"]), None);
}

#[test]
fn an_unknown_type_close_to_a_known_one_is_suggested() {
    let r = registry();
    let c = cfg("[data]\ntype = \"synthetc\"\n");
    let e = r.build(&c.section("data").unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "configs/x.toml:2: data.type: unknown market data source type \"synthetc\"; known \
         types: csv, synthetic (did you mean \"synthetic\"?)"
    );
}
