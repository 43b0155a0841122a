//! The job log: on wasm the host's `log` import (kept with the job), on native stderr, so a
//! preset's unit tests run without a host.
//!
//! ```
//! preset_sdk::log::info("measured -20.3 LUFS");
//! preset_sdk::log::warn(format!("pass {} missed the target", 2));
//! ```

use crate::LogLevel;

/// Logs `message` at `level`.
///
/// ```
/// preset_sdk::log::log(preset_sdk::LogLevel::Debug, "round 2");
/// ```
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::mediahost::preset::host::log(level, message.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{}] {}", level_name(level), message.as_ref());
}

#[cfg(not(target_arch = "wasm32"))]
fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Logs at debug level.
///
/// ```
/// preset_sdk::log::debug("chose stream 1");
/// ```
pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message);
}

/// Logs at info level.
///
/// ```
/// preset_sdk::log::info("linear gain suffices");
/// ```
pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message);
}

/// Logs at warn level.
///
/// ```
/// preset_sdk::log::warn("input has no default audio stream");
/// ```
pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message);
}

/// Logs at error level.
///
/// ```
/// preset_sdk::log::error("target unreachable");
/// ```
pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message);
}
