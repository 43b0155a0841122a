//! The interface fixtures build, and each exports the interface version it stands for: the
//! one built from the frozen WIT is a 1.0 component, the SDK one a 2.0 component. (The tests
//! that run them on a host live with the host's interface tests.)

use mediahost_e2e::{interface_fixtures, released};

fn interface(path: std::path::PathBuf) -> Option<String> {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    released::interface_of(&bytes)
}

#[test]
fn the_frozen_wit_fixture_is_a_1_0_component_and_the_sdk_fixture_a_2_0_one() {
    let v1 = interface_fixtures::v1_aac().expect("the 1.0 fixture builds");
    let v2 = interface_fixtures::v2_showcase().expect("the 2.0 fixture builds");
    assert_eq!(interface(v1).as_deref(), Some("1.0.0"));
    assert_eq!(interface(v2).as_deref(), Some("2.0.0"));
}
