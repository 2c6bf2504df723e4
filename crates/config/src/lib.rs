//! Configuration: one TOML file (plus `--set path=value` overrides) describes a whole
//! system, and this crate turns it into typed values with errors that say where.
//!
//! The primary type is [`Config`], a tree read from TOML in which every value keeps
//! its origin (file and line, or the override that set it). Builders read it through
//! [`Section`]s, by dotted path, as plain values or as serde structs; a [`Registry`]
//! maps a section's `type = "..."` to the builder of that name, with a [`TypeDoc`]
//! generated from the serde structs the builder reads (`kaizenflow nodes` prints it).
//!
//! # The key design decision: reads are tracked
//! A config is the complete, one-to-one description of a system (the KaizenFlow
//! paper's "config space is homeomorphic to the space of systems"). Two things make
//! that true in practice, and both rest on tracking every read:
//! - a key that nothing read is an error ([`Config::check_all_used`]), so a typo
//!   (`windw = 20`) cannot silently leave a default in place;
//! - a default a builder applies is recorded, so [`Config::to_toml_string`] prints
//!   the fully resolved config, and running that printed config rebuilds the same
//!   system, with the same [`Config::id`].
//!
//! A `[sweep]` section expands into the cartesian product of configs
//! ([`Config::expand_sweep`]), each with a stable id.
//!
//! ```
//! use kf_config::Config;
//!
//! let mut config = Config::from_toml_str(
//!     "[dag.nodes.zscore]\nwindow = 20\n",
//!     "example.toml",
//! )?;
//! config.set("dag.nodes.zscore.window=40")?;
//! let zscore = config.section("dag.nodes.zscore")?;
//! assert_eq!(zscore.get::<u32>("window")?, 40);
//! assert_eq!(zscore.get_or("min_periods", 1u32)?, 1);
//! config.check_all_used()?;
//! assert!(config.to_toml_string().contains("min_periods = 1"));
//!
//! let bad = Config::from_toml_str("[a]\nn = \"20\"\n", "x.toml")?;
//! let err = bad.section("a")?.get::<i64>("n").unwrap_err();
//! assert_eq!(err.to_string(), "x.toml:2: a.n: expected an integer, found the string \"20\"");
//! # Ok::<(), kf_config::ConfigError>(())
//! ```

#![deny(missing_docs)]

mod config;
mod de;
mod doc;
mod error;
mod registry;
mod section;
mod sweep;
mod value;

pub use config::Config;
pub use config::MAX_KEY_SEGMENTS;
pub use doc::{ParamDoc, TypeDoc, closest, did_you_mean};
pub use error::{ConfigError, Result, UnknownType, UnusedKey};
pub use registry::{BuildFn, Registered, Registry};
/// Re-exported so that a crate deriving parameter docs needs no direct dependency.
pub use schemars;
pub use section::Section;
pub use sweep::{MAX_SWEEP_POINTS, SWEEP, SweepPoint};
pub use value::{MAX_ECHO, Origin, canonical_of, clip_text};
