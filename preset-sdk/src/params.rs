//! Reading a job's params by name, typed, with errors that become refusals.
//!
//! The host has already checked params against the descriptor and filled in defaults, so an
//! error here means the preset and its descriptor disagree; it still refuses cleanly instead of
//! trapping.

use std::fmt;

use crate::{Param, ParamValue, Refusal};

/// Typed access to a job's params; get one from [`crate::PlanRequest::params`].
///
/// ```
/// use preset_sdk::*;
///
/// fn gain(request: &PlanRequest) -> Result<f64, Refusal> {
///     let params = request.params();
///     let target = params.number("target_lufs")?;
///     let extra = params.optional_number("extra_db")?.unwrap_or(0.0);
///     Ok(target + extra)
/// }
///
/// let request = PlanRequest::new(1).with_param("target_lufs", -16.0);
/// assert_eq!(gain(&request), Ok(-16.0));
/// assert_eq!(gain(&PlanRequest::new(1)).unwrap_err().code, "PARAM_MISSING");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    params: &'a [Param],
}

/// Why a param could not be read. Converts into a [`Refusal`] so `?` works in `plan`.
///
/// ```
/// use preset_sdk::*;
///
/// let error = PlanRequest::new(1).with_param("codec", 3).params().text("codec").unwrap_err();
/// assert_eq!(error, ParamError::WrongType { name: "codec".into(), expected: "text", found: "integer" });
/// assert_eq!(Refusal::from(error).code, "PARAM_TYPE");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum ParamError {
    /// The job has no param of that name (and it has no default).
    Missing {
        /// The param's name.
        name: String,
    },
    /// The param has another type than the preset reads it as.
    WrongType {
        /// The param's name.
        name: String,
        /// The type the preset asked for.
        expected: &'static str,
        /// The type the value has.
        found: &'static str,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Missing { name } => write!(f, "param '{name}' is missing"),
            ParamError::WrongType {
                name,
                expected,
                found,
            } => write!(f, "param '{name}' should be {expected} but is {found}"),
        }
    }
}

impl std::error::Error for ParamError {}

impl From<ParamError> for Refusal {
    fn from(error: ParamError) -> Self {
        let code = match error {
            ParamError::Missing { .. } => "PARAM_MISSING",
            ParamError::WrongType { .. } => "PARAM_TYPE",
        };
        Refusal::new(code, error.to_string())
    }
}

fn type_name(value: &ParamValue) -> &'static str {
    match value {
        ParamValue::Integer(_) => "integer",
        ParamValue::Number(_) => "number",
        ParamValue::Boolean(_) => "boolean",
        ParamValue::Text(_) => "text",
    }
}

impl<'a> Params<'a> {
    /// Wraps a list of params.
    ///
    /// ```
    /// let params = preset_sdk::Params::new(&[]);
    /// assert!(params.get("x").is_none());
    /// ```
    pub fn new(params: &'a [Param]) -> Self {
        Params { params }
    }

    /// The raw value of `name`, if the job has it.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("loud", true);
    /// assert_eq!(request.params().get("loud"), Some(&ParamValue::Boolean(true)));
    /// ```
    pub fn get(&self, name: &str) -> Option<&'a ParamValue> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.value)
    }

    fn read<T>(
        &self,
        name: &str,
        expected: &'static str,
        convert: impl Fn(&'a ParamValue) -> Option<T>,
    ) -> Result<Option<T>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => convert(value)
                .map(Some)
                .ok_or_else(|| ParamError::WrongType {
                    name: name.to_owned(),
                    expected,
                    found: type_name(value),
                }),
        }
    }

    fn required<T>(name: &str, value: Option<T>) -> Result<T, ParamError> {
        value.ok_or_else(|| ParamError::Missing {
            name: name.to_owned(),
        })
    }

    /// A number param; an integer value is accepted and widened.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("target_lufs", -23);
    /// assert_eq!(request.params().number("target_lufs"), Ok(-23.0));
    /// ```
    pub fn number(&self, name: &str) -> Result<f64, ParamError> {
        Self::required(name, self.optional_number(name)?)
    }

    /// A number param that may be absent.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert_eq!(PlanRequest::new(1).params().optional_number("lra"), Ok(None));
    /// ```
    pub fn optional_number(&self, name: &str) -> Result<Option<f64>, ParamError> {
        self.read(name, "number", |value| match value {
            ParamValue::Number(n) => Some(*n),
            ParamValue::Integer(i) => Some(*i as f64),
            _ => None,
        })
    }

    /// An integer param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("channels", 2);
    /// assert_eq!(request.params().integer("channels"), Ok(2));
    /// ```
    pub fn integer(&self, name: &str) -> Result<i64, ParamError> {
        Self::required(name, self.optional_integer(name)?)
    }

    /// An integer param that may be absent.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert_eq!(PlanRequest::new(1).params().optional_integer("channels"), Ok(None));
    /// ```
    pub fn optional_integer(&self, name: &str) -> Result<Option<i64>, ParamError> {
        self.read(name, "integer", |value| match value {
            ParamValue::Integer(i) => Some(*i),
            _ => None,
        })
    }

    /// A text or choice param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("codec", "flac");
    /// assert_eq!(request.params().text("codec"), Ok("flac"));
    /// ```
    pub fn text(&self, name: &str) -> Result<&'a str, ParamError> {
        Self::required(name, self.optional_text(name)?)
    }

    /// A text or choice param that may be absent.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert_eq!(PlanRequest::new(1).params().optional_text("title"), Ok(None));
    /// ```
    pub fn optional_text(&self, name: &str) -> Result<Option<&'a str>, ParamError> {
        self.read(name, "text", |value| match value {
            ParamValue::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// A boolean param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("dither", false);
    /// assert_eq!(request.params().boolean("dither"), Ok(false));
    /// ```
    pub fn boolean(&self, name: &str) -> Result<bool, ParamError> {
        Self::required(name, self.optional_boolean(name)?)
    }

    /// A boolean param that may be absent.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert_eq!(PlanRequest::new(1).params().optional_boolean("dither"), Ok(None));
    /// ```
    pub fn optional_boolean(&self, name: &str) -> Result<Option<bool>, ParamError> {
        self.read(name, "boolean", |value| match value {
            ParamValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }
}

impl From<f64> for ParamValue {
    fn from(value: f64) -> Self {
        ParamValue::Number(value)
    }
}

impl From<i64> for ParamValue {
    fn from(value: i64) -> Self {
        ParamValue::Integer(value)
    }
}

impl From<i32> for ParamValue {
    fn from(value: i32) -> Self {
        ParamValue::Integer(value.into())
    }
}

impl From<bool> for ParamValue {
    fn from(value: bool) -> Self {
        ParamValue::Boolean(value)
    }
}

impl From<&str> for ParamValue {
    fn from(value: &str) -> Self {
        ParamValue::Text(value.to_owned())
    }
}

impl From<String> for ParamValue {
    fn from(value: String) -> Self {
        ParamValue::Text(value)
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn request() -> PlanRequest {
        PlanRequest::new(1)
            .with_param("n", -16.5)
            .with_param("i", 7)
            .with_param("t", "auto")
            .with_param("b", true)
    }

    #[test]
    fn reads_each_type() {
        let request = request();
        let params = request.params();
        assert_eq!(params.number("n"), Ok(-16.5));
        assert_eq!(params.integer("i"), Ok(7));
        assert_eq!(params.number("i"), Ok(7.0));
        assert_eq!(params.text("t"), Ok("auto"));
        assert_eq!(params.boolean("b"), Ok(true));
    }

    #[test]
    fn absent_optional_is_none_and_absent_required_refuses() {
        let request = request();
        let params = request.params();
        assert_eq!(params.optional_number("lra"), Ok(None));
        let refusal: Refusal = params.number("lra").unwrap_err().into();
        assert_eq!(refusal.code, "PARAM_MISSING");
        assert!(refusal.message.contains("'lra'"), "{}", refusal.message);
    }

    #[test]
    fn wrong_type_names_both_types() {
        let request = request();
        let error = request.params().integer("n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "param 'n' should be integer but is number"
        );
        assert_eq!(Refusal::from(error).code, "PARAM_TYPE");
        assert!(request.params().optional_boolean("t").is_err());
    }
}
