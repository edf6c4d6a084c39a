//! Embeds every JSON Schema under `schemas/` and `topics.toml` into the binary, so
//! that `campusg` validates messages the same way wherever it runs.
//!
//! Paths are read from the environment cargo gives each run, and the generated
//! code names its files relative to the crate being compiled: two checkouts
//! that share a build cache (CI's clone and a working tree) each embed their own.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("../..");
    let schemas = root.join("schemas");
    println!("cargo:rerun-if-changed={}", schemas.display());
    println!("cargo:rerun-if-changed={}", root.join("topics.toml").display());
    let mut entries: Vec<_> = std::fs::read_dir(&schemas)
        .expect("schemas/ exists beside the workspace manifest")
        .map(|entry| entry.expect("schemas/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    entries.sort();
    let mut generated = String::from(
        "/// Every schema file, as (file stem, contents).\npub const SCHEMA_FILES: &[(&str, &str)] = &[\n",
    );
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        writeln!(
            generated,
            "    ({stem:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../schemas/{file}\"))),"
        )
        .unwrap();
    }
    generated.push_str("];\n");
    assert!(
        root.join("topics.toml").exists(),
        "topics.toml exists beside the workspace manifest"
    );
    generated.push_str(
        "/// The topic catalog this binary was built with.\npub const TOPICS_TOML: &str = include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../topics.toml\"));\n",
    );
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(out, generated).unwrap();
}
