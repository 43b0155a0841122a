//! Refusals: a preset's reasoned "no", with a stable code the host reports under PRESET_REFUSED.

use crate::Refusal;

/// Builds a [`Refusal`]: `code` is a short upper-case word, `message` tells the user what to
/// change.
///
/// ```
/// use preset_sdk::refuse;
///
/// let refusal = refuse("NO_AUDIO", "input 'main' has no audio stream");
/// assert_eq!(refusal.code, "NO_AUDIO");
/// ```
pub fn refuse(code: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal {
        code: code.into(),
        message: message.into(),
    }
}

impl Refusal {
    /// Same as [`refuse`].
    ///
    /// ```
    /// let refusal = preset_sdk::Refusal::new("SILENT_INPUT", "nothing to normalize");
    /// assert_eq!(refusal.message, "nothing to normalize");
    /// ```
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        refuse(code, message)
    }
}
