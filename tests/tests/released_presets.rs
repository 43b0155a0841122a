//! The released presets are locked: every artifact in `presets-wasm/released/` has the bytes
//! `released.lock` pins, and every preset crate's current version is released from the source
//! it has now. Plain file reads and `cargo metadata`; nothing is built.

use mediahost_e2e::released::{self, Entry, Lock, PresetCrate};
use mediahost_e2e::repo_root;

#[test]
fn released_artifacts_and_preset_sources_match_the_lock() {
    let problems = released::check(&repo_root()).expect("the released presets can be read");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn entry(name: &str, version: &str, sha256: &str, source: &str) -> Entry {
    Entry {
        name: name.into(),
        version: version.into(),
        interface: "1.0.0".into(),
        sha256: sha256.into(),
        source: source.into(),
    }
}

#[test]
fn a_released_artifact_with_other_bytes_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p-1.0.0.wasm"), b"original").unwrap();
    std::fs::write(dir.path().join("p-1.1.0.wasm"), b"rebuilt").unwrap();
    let lock = Lock {
        entries: vec![
            entry("p", "1.0.0", &released::sha256_hex(b"original"), "s"),
            entry("p", "1.1.0", &released::sha256_hex(b"as released"), "s"),
        ],
    };
    let problems = released::check_artifacts(dir.path(), &lock).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("p-1.1.0.wasm") && problems[0].contains("never changes"));
}

#[test]
fn a_changed_source_or_an_unreleased_version_is_reported() {
    let lock = Lock {
        entries: vec![entry("p", "1.0.0", "x", "old source")],
    };
    let preset = |version: &str| PresetCrate {
        dir: "presets-wasm/p".into(),
        name: "p".into(),
        version: version.into(),
        source: "new source".into(),
    };
    let changed = released::check_sources(&[preset("1.0.0")], &lock);
    assert!(
        changed[0].contains("bump its version and release it with `scripts/release-presets`"),
        "{changed:?}"
    );
    let unreleased = released::check_sources(&[preset("1.1.0")], &lock);
    assert!(unreleased[0].contains("p 1.1.0"), "{unreleased:?}");
    assert!(unreleased[0].contains("is not released"), "{unreleased:?}");
}

#[test]
fn the_lock_file_reads_back_what_it_wrote() {
    let lock = Lock {
        entries: vec![
            entry("b", "1.10.0", "s1", "c1"),
            entry("b", "1.9.0", "s2", "c2"),
            entry("a", "1.0.0", "s3", "c3"),
        ],
    };
    let read = Lock::parse(&lock.render()).unwrap();
    let order: Vec<_> = read.entries.iter().map(|e| e.file()).collect();
    assert_eq!(order, ["a-1.0.0.wasm", "b-1.9.0.wasm", "b-1.10.0.wasm"]);
    assert_eq!(read.find("b", "1.10.0"), lock.find("b", "1.10.0"));
}

#[test]
fn the_sdk_hashes_the_wit_directory_its_bindings_come_from() {
    let root = repo_root();
    let manifest = std::fs::read_to_string(root.join("preset-sdk/Cargo.toml")).unwrap();
    let include = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("include = [\""))
        .and_then(|rest| rest.split('"').next())
        .expect("preset-sdk/Cargo.toml has [package.metadata.source-hash] include");
    let lib = std::fs::read_to_string(root.join("preset-sdk/src/lib.rs")).unwrap();
    assert!(
        lib.contains(&format!("path: \"{include}\"")),
        "preset-sdk binds another WIT directory than the {include} its source hash covers"
    );
}
