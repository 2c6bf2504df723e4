//! The forecast processors' documented parameters are exactly the keys their
//! builders read, and a user's processor is named like a built-in one.

use std::collections::BTreeSet;

use kf_config::{Config, TypeDoc};
use kf_system::{Registries, builtin_processors};

#[test]
fn every_processor_documents_exactly_the_keys_it_reads() {
    let processors = builtin_processors();
    assert_eq!(
        processors.names(),
        ["cross_sectional", "threshold", "trajectory"]
    );
    for name in processors.names() {
        let doc = processors.doc(name).unwrap();
        let toml = format!("[p]\ntype = \"{name}\"\n{}\n", doc.example);
        let config = Config::from_toml_str(&toml, "p.toml").unwrap();
        let p = processors.build(&config.section("p").unwrap()).unwrap();
        assert_eq!(p.kind(), name);
        config.check_all_used().unwrap();
        let asked: BTreeSet<String> = config
            .asked_keys("p")
            .into_iter()
            .filter(|k| k != "type")
            .collect();
        let documented: BTreeSet<String> =
            doc.param_names().into_iter().map(String::from).collect();
        assert_eq!(asked, documented, "processor `{name}`");
    }
}

#[test]
fn a_registered_name_cannot_be_taken_twice() {
    let mut types = Registries::default();
    let e = types
        .register_processor("threshold", TypeDoc::new("again"), |_| {
            unreachable!("never built")
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "forecast processor type \"threshold\" is registered twice"
    );
    let e = types
        .register_source("replayed", TypeDoc::new("again"), |_| {
            unreachable!("never built")
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "market data type \"replayed\" is registered twice"
    );
}
