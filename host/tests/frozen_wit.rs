//! A released interface version is never edited: its WIT must hash to what was released.
//! `wit/released.sha256` lists every released version's file and hash (`sha256sum` format);
//! adding a version adds a line, and no line ever changes.

use std::path::Path;

use sha2::{Digest, Sha256};

#[test]
fn released_interface_versions_are_unchanged() {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let listed = std::fs::read_to_string(wit.join("released.sha256")).expect("wit/released.sha256");
    let mut versions = 0;
    for line in listed.lines().filter(|l| !l.trim().is_empty()) {
        let (want, file) = line.split_once("  ").expect("`<sha256>  <file>` lines");
        let bytes = std::fs::read(wit.join(file)).unwrap_or_else(|e| panic!("wit/{file}: {e}"));
        let got = hex::encode(Sha256::digest(&bytes));
        assert_eq!(
            got, want,
            "wit/{file} was released and must never change; put changes in a new version directory"
        );
        versions += 1;
    }
    assert!(
        versions >= 1,
        "wit/released.sha256 lists no released version"
    );
    for entry in std::fs::read_dir(&wit).unwrap().flatten() {
        if entry.path().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                listed.contains(&format!("  {name}/")),
                "wit/{name}/ is not listed in wit/released.sha256"
            );
        }
    }
}
