//! The promise of `preset/`: it is the only code that names WIT types. Everything else speaks
//! `crate::model`, so a new interface version changes one adapter, not the validator, the
//! renderer, the worker or the HTTP API.

use std::path::{Path, PathBuf};

/// What naming a WIT binding looks like: an adapter module, the old re-export, or a bindgen.
const WIT_NAMES: [&str; 4] = ["preset::v1", "preset::v2", "wit::", "bindgen!"];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_module_outside_preset_names_a_wit_type() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let preset = src.join("preset");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "host/src has its modules");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&preset)) {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            if let Some(name) = WIT_NAMES.iter().find(|w| line.contains(*w)) {
                offenders.push(format!(
                    "{}:{}: names `{name}`",
                    file.strip_prefix(&src).unwrap().display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "WIT types stop at host/src/preset/; use crate::model instead:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_adapters_are_where_the_bindings_are() {
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/preset");
    for (file, wit) in [("v1.rs", "../wit/1.0.0"), ("v2.rs", "../wit/2.0.0")] {
        let text = std::fs::read_to_string(preset.join(file)).expect("the adapter exists");
        assert!(
            text.contains("bindgen!") && text.contains(wit),
            "{file} binds {wit}"
        );
    }
}
