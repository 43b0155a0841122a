//! Bindings for `mediahost:preset@1.x`, the interface version this host speaks.
//!
//! The rest of the host uses these types through [`super::wit`]. When a 2.0 interface appears, it
//! gets a file of its own beside this one that converts its types to the latest ones, so old
//! presets keep working (the shape of Zed's extension host).

wasmtime::component::bindgen!({
    path: "../wit/1.0.0",
    world: "preset-world",
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

pub use self::exports::mediahost::preset::preset::Guest;
pub use self::mediahost::preset::host::Host;
pub use self::mediahost::preset::types;
