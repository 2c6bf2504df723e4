//! Properties of `Config`: printing then reading gives an equal config with the same
//! id; ids ignore key order; sweeps expand to the product of their axes with distinct
//! ids. `PROPTEST_CASES` raises the number of cases.

use kf_config::Config;
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}"
}

fn scalar() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        Just(toml::Value::Float(-0.0)),
        any::<bool>().prop_map(toml::Value::Boolean),
        ".{0,12}".prop_map(toml::Value::String),
    ]
}

/// A random TOML tree: nested tables, arrays (of scalars and of tables).
fn tree() -> impl Strategy<Value = toml::Table> {
    let leaf = prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(toml::Value::Array),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map(key(), inner.clone(), 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
            prop::collection::vec(
                prop::collection::btree_map(key(), inner, 1..3)
                    .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
                1..3
            )
            .prop_map(toml::Value::Array),
        ]
    });
    prop::collection::btree_map(key(), value, 0..6).prop_map(|m| m.into_iter().collect())
}

fn reversed(t: &toml::Table) -> toml::Table {
    t.iter()
        .rev()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::Table(inner) => toml::Value::Table(reversed(inner)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn print_then_read_is_the_identity(t in tree()) {
        let text = toml::to_string(&t).unwrap();
        let c = Config::from_toml_str(&text, "gen.toml").unwrap();
        let printed = c.to_toml_string();
        let back = Config::from_toml_str(&printed, "printed.toml").unwrap();
        prop_assert!(back == c, "{}\n---\n{}", text, printed);
        prop_assert_eq!(back.id(), c.id());
    }

    #[test]
    fn ids_do_not_depend_on_key_order(t in tree()) {
        let a = Config::from_toml_str(&toml::to_string(&t).unwrap(), "a.toml").unwrap();
        let b = Config::from_toml_str(&toml::to_string(&reversed(&t)).unwrap(), "b.toml").unwrap();
        prop_assert_eq!(a.id(), b.id());
    }

    #[test]
    fn a_changed_value_changes_the_id(t in tree(), k in key(), v in any::<i64>()) {
        let mut a = Config::from_toml_str(&toml::to_string(&t).unwrap(), "a.toml").unwrap();
        let before = a.id();
        let existing = t.get(&k).cloned();
        a.set(&format!("{k}={v}")).unwrap();
        if existing != Some(toml::Value::Integer(v)) {
            prop_assert_ne!(a.id(), before);
        }
    }

    #[test]
    fn sweeps_expand_to_the_product_with_distinct_ids(
        axes in prop::collection::btree_map(key(), prop::collection::btree_set(any::<i32>(), 1..4), 1..4),
    ) {
        let mut text = String::from("[sweep]\n");
        for (k, values) in &axes {
            let vs: Vec<String> = values.iter().map(i32::to_string).collect();
            text.push_str(&format!("\"params.{k}\" = [{}]\n", vs.join(", ")));
        }
        let c = Config::from_toml_str(&text, "sweep.toml").unwrap();
        let points = c.expand_sweep().unwrap();
        let expected: usize = axes.values().map(|v| v.len()).product();
        prop_assert_eq!(points.len(), expected);
        let mut ids: Vec<String> = points.iter().map(|p| p.config.id()).collect();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), expected);
        for p in &points {
            prop_assert_eq!(p.varied.len(), axes.len());
            for (path, value) in &p.varied {
                let got: i64 = p.config.root().get(path).unwrap();
                prop_assert_eq!(got.to_string(), value.clone());
            }
        }
    }
}
