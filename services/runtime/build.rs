//! Embeds every JSON Schema under `schemas/` and `topics.toml` into the binary, so
//! that `campusg` validates messages the same way wherever it runs.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
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
        let absolute = path.canonicalize().unwrap();
        writeln!(
            generated,
            "    ({stem:?}, include_str!({:?})),",
            absolute.display().to_string()
        )
        .unwrap();
    }
    generated.push_str("];\n");
    let topics = root
        .join("topics.toml")
        .canonicalize()
        .expect("topics.toml exists beside the workspace manifest");
    writeln!(
        generated,
        "/// The topic catalog this binary was built with.\npub const TOPICS_TOML: &str = include_str!({:?});",
        topics.display().to_string()
    )
    .unwrap();
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("embedded.rs");
    std::fs::write(out, generated).unwrap();
}
