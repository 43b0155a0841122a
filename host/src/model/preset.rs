//! What a preset says about itself, and what it is asked and answers in one planning round.

use serde::{Deserialize, Serialize};

use super::analysis::AnalysisResult;
use super::media::NamedMedia;
use super::plan::Decision;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegerSpec {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub default: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberSpec {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub default: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    pub max_length: u32,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceSpec {
    pub options: Vec<String>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ParamKind {
    Integer(IntegerSpec),
    Number(NumberSpec),
    Boolean(Option<bool>),
    Text(TextSpec),
    Choice(ChoiceSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub description: String,
    pub kind: ParamKind,
    /// A required param has no default and must be given by every job.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ParamValue {
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub description: String,
    pub required: bool,
}

/// What a preset says about itself. `name` and `version` (semver) identify it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub inputs: Vec<InputSpec>,
    pub params: Vec<ParamSpec>,
}

/// What a preset is asked in one planning round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Starts at 1.
    pub round: u32,
    pub inputs: Vec<NamedMedia>,
    /// Every param the job has, with defaults filled in by the host.
    pub params: Vec<Param>,
    /// Intermediates produced by earlier rounds.
    pub produced: Vec<NamedMedia>,
    /// Results of every analysis requested so far.
    pub analyses: Vec<AnalysisResult>,
}

/// A preset's reasoned refusal to plan: `code` is reported under PRESET_REFUSED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

/// A preset's answer to one planning round.
pub type Answer = Result<Decision, Refusal>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}
