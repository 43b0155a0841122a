//! A job record read back from Redis is untrusted: anyone who can write to Redis can rewrite it.
//! Before a worker downloads anything it checks the record against the rules the API applied at
//! submit (input names, input URIs, params, the exact pin), so a rewritten record fails with
//! `JOB_RECORD_INVALID` instead of steering the worker to a path or an object it must not touch.
//!
//! Also the one rule for which objects a job may read, shared with the API: uploads and other
//! jobs' outputs, never preset components or any other internal key.
//!
//! Not here: whether the objects exist (the download finds out) or what the plan does with them
//! (`plan::validate`).

use std::collections::BTreeMap;

use crate::error::{ErrorCode, JobError};
use crate::job::Job;
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::storage::{ObjectKey, Storage};

/// Key prefixes a job may read its inputs from: client uploads and the outputs of earlier jobs.
const INPUT_PREFIXES: [&str; 2] = ["uploads/", "jobs/"];

/// Whether a job may read this object; the reason when not.
pub fn input_key(key: &ObjectKey) -> Result<(), String> {
    if INPUT_PREFIXES.iter().any(|p| key.as_str().starts_with(p)) {
        return Ok(());
    }
    Err(format!(
        "'{key}' is not an upload or a job output; a job reads only objects under {} \
         (POST /v1/uploads gives such a URI)",
        INPUT_PREFIXES.join(" or ")
    ))
}

/// An input name is a file name the worker creates in the job's scratch directory: it must be a
/// name the preset declares, which are 1-32 characters of `a-z`, `0-9`, `-` and `_`.
fn safe_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// An input a job names that its preset does not declare, or a required one it lacks.
pub struct InputMismatch {
    pub input: String,
    pub message: String,
}

/// Every input name is one the preset declares, and every required one is given: the API's
/// check at submit and the worker's on the record it reads back.
pub fn input_names<'a>(
    preset: &Preset,
    names: impl Iterator<Item = &'a String> + Clone,
) -> Result<(), InputMismatch> {
    let declared = &preset.descriptor.inputs;
    if let Some(unknown) = names
        .clone()
        .find(|k| !declared.iter().any(|d| &d.name == *k))
    {
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        return Err(InputMismatch {
            input: unknown.clone(),
            message: format!(
                "'{}' takes no input named '{}'; its inputs are: {}",
                preset.name,
                unknown.escape_debug(),
                names.join(", ")
            ),
        });
    }
    if let Some(missing) = declared
        .iter()
        .find(|d| d.required && !names.clone().any(|n| n == &d.name))
    {
        return Err(InputMismatch {
            input: missing.name.clone(),
            message: format!(
                "'{}' needs an input named '{}': {}",
                preset.name, missing.name, missing.description
            ),
        });
    }
    Ok(())
}

/// Checks a job record taken from the queue against the preset it is pinned to; returns the
/// storage key of every input.
pub fn record(
    job: &Job,
    preset: &Preset,
    storage: &Storage,
) -> Result<BTreeMap<String, ObjectKey>, JobError> {
    let invalid = |why: String| {
        JobError::new(
            ErrorCode::JobRecordInvalid,
            "validate",
            format!("the stored job record was altered or is corrupt: {why}"),
        )
    };
    let pin = &job.preset;
    if pin.name != preset.name
        || pin.version != preset.version
        || pin.sha256 != preset.sha256
        || !pin.version.build.is_empty()
    {
        return Err(invalid(format!(
            "it is pinned to {}@{} (sha256 {}), which is not the exact version it was accepted for",
            pin.name, pin.version, pin.sha256
        )));
    }
    input_names(preset, job.inputs.keys()).map_err(|m| invalid(m.message))?;
    let mut keys = BTreeMap::new();
    for (name, uri) in &job.inputs {
        if !safe_name(name) {
            return Err(invalid(format!(
                "input name '{}' is not a plain file name",
                name.escape_debug()
            )));
        }
        let key = storage
            .parse_uri(uri)
            .map_err(|e| invalid(format!("input '{name}': {}", e.detail)))?;
        input_key(&key).map_err(|why| invalid(format!("input '{name}': {why}")))?;
        keys.insert(name.clone(), key);
    }
    let resolved = params::resolve(&preset.descriptor.params, &job.params)
        .map_err(|e| invalid(format!("params: {}", e.detail)))?;
    if resolved != job.params {
        return Err(invalid(
            "params differ from what the preset's schema gives for them".into(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::parse(s).expect("a valid key")
    }

    #[test]
    fn jobs_read_uploads_and_job_outputs_only() {
        assert!(input_key(&key("uploads/abc/in.wav")).is_ok());
        assert!(input_key(&key("jobs/abc/out.wav")).is_ok());
        for internal in [
            "presets/blobs/00ff.wav",
            "presets/x/1.0.0.json",
            "uploadsx/a",
            "signing-key",
        ] {
            let why = input_key(&key(internal)).expect_err(internal);
            assert!(why.contains("uploads/ or jobs/"), "{why}");
        }
    }

    #[test]
    fn input_names_are_plain_file_names() {
        assert!(safe_name("main"));
        assert!(safe_name("voice_2"));
        for bad in [
            "",
            "../../etc/x",
            "a/b",
            "Main",
            ".",
            "a b",
            &"x".repeat(33),
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }
}
