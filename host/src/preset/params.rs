//! Job params checked against the schema a preset declares.
//!
//! Validation happens once, at submit time; the job stores the resolved params (defaults filled
//! in), so a replay sees exactly the same values. The worker turns them into WIT params.

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::model::{self, ParamKind, ParamSpec, ParamValue};

/// Checks a declared param's own consistency: ranges ordered, defaults inside them.
pub fn check_spec(spec: &ParamSpec) -> Result<(), String> {
    match &spec.kind {
        ParamKind::Integer(s) => {
            if let (Some(min), Some(max)) = (s.min, s.max)
                && min > max
            {
                return Err(format!("min {min} is above max {max}"));
            }
            if let Some(d) = s.default {
                check_int(spec, s, d)?;
            }
        }
        ParamKind::Number(s) => {
            for bound in [s.min, s.max, s.default].into_iter().flatten() {
                if !bound.is_finite() {
                    return Err("bounds and default must be finite".into());
                }
            }
            if let (Some(min), Some(max)) = (s.min, s.max)
                && min > max
            {
                return Err(format!("min {min} is above max {max}"));
            }
            if let Some(d) = s.default {
                check_number(spec, s, d)?;
            }
        }
        ParamKind::Boolean(_) => {}
        ParamKind::Text(s) => {
            if let Some(d) = &s.default {
                check_text(spec, s, d)?;
            }
        }
        ParamKind::Choice(s) => {
            if s.options.is_empty() {
                return Err("a choice needs at least one option".into());
            }
            if let Some(d) = &s.default
                && !s.options.contains(d)
            {
                return Err(format!("default '{d}' is not one of its options"));
            }
        }
    }
    if spec.required && has_default(spec) {
        return Err("a required param cannot have a default".into());
    }
    Ok(())
}

fn has_default(spec: &ParamSpec) -> bool {
    match &spec.kind {
        ParamKind::Integer(s) => s.default.is_some(),
        ParamKind::Number(s) => s.default.is_some(),
        ParamKind::Boolean(d) => d.is_some(),
        ParamKind::Text(s) => s.default.is_some(),
        ParamKind::Choice(s) => s.default.is_some(),
    }
}

fn check_int(spec: &ParamSpec, s: &model::IntegerSpec, v: i64) -> Result<(), String> {
    if s.min.is_some_and(|min| v < min) || s.max.is_some_and(|max| v > max) {
        return Err(format!(
            "{} must be an integer in {}, got {v}",
            spec.name,
            range_text(s.min.map(|x| x as f64), s.max.map(|x| x as f64))
        ));
    }
    Ok(())
}

fn check_number(spec: &ParamSpec, s: &model::NumberSpec, v: f64) -> Result<(), String> {
    if !v.is_finite() || s.min.is_some_and(|min| v < min) || s.max.is_some_and(|max| v > max) {
        return Err(format!(
            "{} must be a number in {}, got {v}",
            spec.name,
            range_text(s.min, s.max)
        ));
    }
    Ok(())
}

fn check_text(spec: &ParamSpec, s: &model::TextSpec, v: &str) -> Result<(), String> {
    if v.len() > s.max_length as usize {
        return Err(format!(
            "{} must be at most {} bytes long",
            spec.name, s.max_length
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{} must not contain control characters", spec.name));
    }
    Ok(())
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("[{a}, {b}]"),
        (Some(a), None) => format!("[{a}, ∞)"),
        (None, Some(b)) => format!("(-∞, {b}]"),
        (None, None) => "(-∞, ∞)".into(),
    }
}

fn invalid(param: &str, detail: String) -> ApiError {
    ApiError::new(ErrorCode::ParamsInvalid, detail).with("param", param)
}

/// Validates a job's params and returns them with defaults filled in.
pub fn resolve(
    specs: &[ParamSpec],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(unknown) = given.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
        let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        return Err(invalid(
            unknown,
            format!(
                "unknown param '{unknown}'; this preset takes: {}",
                known.join(", ")
            ),
        ));
    }
    let mut out = Map::new();
    for spec in specs {
        let value = match given.get(&spec.name) {
            Some(Value::Null) | None => {
                if spec.required {
                    return Err(invalid(
                        &spec.name,
                        format!("param '{}' is required: {}", spec.name, spec.description),
                    ));
                }
                match default_of(spec) {
                    Some(v) => v,
                    None => continue,
                }
            }
            Some(v) => check_value(spec, v).map_err(|why| invalid(&spec.name, why))?,
        };
        out.insert(spec.name.clone(), value);
    }
    Ok(out)
}

fn default_of(spec: &ParamSpec) -> Option<Value> {
    match &spec.kind {
        ParamKind::Integer(s) => s.default.map(Value::from),
        ParamKind::Number(s) => s.default.map(Value::from),
        ParamKind::Boolean(d) => d.map(Value::from),
        ParamKind::Text(s) => s.default.clone().map(Value::from),
        ParamKind::Choice(s) => s.default.clone().map(Value::from),
    }
}

fn check_value(spec: &ParamSpec, v: &Value) -> Result<Value, String> {
    let name = &spec.name;
    match &spec.kind {
        ParamKind::Integer(s) => {
            let n = v
                .as_i64()
                .ok_or_else(|| format!("{name} must be an integer, got {v}"))?;
            check_int(spec, s, n)?;
            Ok(Value::from(n))
        }
        ParamKind::Number(s) => {
            let n = v
                .as_f64()
                .ok_or_else(|| format!("{name} must be a number, got {v}"))?;
            check_number(spec, s, n)?;
            Ok(Value::from(n))
        }
        ParamKind::Boolean(_) => v
            .as_bool()
            .map(Value::from)
            .ok_or_else(|| format!("{name} must be true or false, got {v}")),
        ParamKind::Text(s) => {
            let t = v
                .as_str()
                .ok_or_else(|| format!("{name} must be a string, got {v}"))?;
            check_text(spec, s, t)?;
            Ok(Value::from(t))
        }
        ParamKind::Choice(s) => {
            let t = v.as_str().filter(|t| s.options.iter().any(|o| o == t));
            t.map(Value::from)
                .ok_or_else(|| format!("{name} must be one of: {}; got {v}", s.options.join(", ")))
        }
    }
}

/// Turns resolved params (as stored in the job) into the typed params of a plan request.
pub fn typed(specs: &[ParamSpec], resolved: &Map<String, Value>) -> Vec<model::Param> {
    specs
        .iter()
        .filter_map(|spec| {
            let v = resolved.get(&spec.name)?;
            let value = match &spec.kind {
                ParamKind::Integer(_) => ParamValue::Integer(v.as_i64()?),
                ParamKind::Number(_) => ParamValue::Number(v.as_f64()?),
                ParamKind::Boolean(_) => ParamValue::Boolean(v.as_bool()?),
                ParamKind::Text(_) | ParamKind::Choice(_) => {
                    ParamValue::Text(v.as_str()?.to_owned())
                }
            };
            Some(model::Param {
                name: spec.name.clone(),
                value,
            })
        })
        .collect()
}

/// The param schema as `GET /v1/presets` shows it.
pub fn schema(spec: &ParamSpec) -> mediahost_api::ParamSchema {
    use mediahost_api::ParamType;
    let kind = match &spec.kind {
        ParamKind::Integer(s) => ParamType::Integer {
            min: s.min,
            max: s.max,
            default: s.default,
        },
        ParamKind::Number(s) => ParamType::Number {
            min: s.min,
            max: s.max,
            default: s.default,
        },
        ParamKind::Boolean(default) => ParamType::Boolean { default: *default },
        ParamKind::Text(s) => ParamType::Text {
            max_length: s.max_length,
            default: s.default.clone(),
        },
        ParamKind::Choice(s) => ParamType::Choice {
            options: s.options.clone(),
            default: s.default.clone(),
        },
    };
    mediahost_api::ParamSchema {
        name: spec.name.clone(),
        description: spec.description.clone(),
        required: spec.required,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number(name: &str, min: f64, max: f64, default: Option<f64>) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            description: "test".into(),
            kind: ParamKind::Number(model::NumberSpec {
                min: Some(min),
                max: Some(max),
                default,
            }),
            required: false,
        }
    }

    fn given(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn fills_defaults_and_accepts_integers_for_numbers() {
        let specs = [
            number("target", -70.0, -5.0, Some(-16.0)),
            number("peak", -9.0, 0.0, None),
        ];
        let out = resolve(&specs, &given(json!({"peak": -1}))).unwrap();
        assert_eq!(out["target"], json!(-16.0));
        assert_eq!(out["peak"], json!(-1.0));
    }

    #[test]
    fn names_the_param_that_is_wrong() {
        let specs = [number("target", -70.0, -5.0, Some(-16.0))];
        for bad in [
            json!({"target": "loud"}),
            json!({"target": -100}),
            json!({"other": 1}),
        ] {
            let err = resolve(&specs, &given(bad)).unwrap_err();
            assert_eq!(err.code, ErrorCode::ParamsInvalid);
            assert!(err.extra.contains_key("param"));
        }
    }

    #[test]
    fn choice_must_be_an_option() {
        let spec = ParamSpec {
            name: "codec".into(),
            description: "".into(),
            kind: ParamKind::Choice(model::ChoiceSpec {
                options: vec!["flac".into(), "wav".into()],
                default: Some("flac".into()),
            }),
            required: false,
        };
        assert!(resolve(std::slice::from_ref(&spec), &given(json!({"codec": "mp4"}))).is_err());
        let out = resolve(std::slice::from_ref(&spec), &given(json!({}))).unwrap();
        assert_eq!(
            typed(&[spec], &out)[0].value,
            ParamValue::Text("flac".into())
        );
    }

    #[test]
    fn inconsistent_specs_are_refused() {
        assert!(check_spec(&number("x", 0.0, 1.0, Some(2.0))).is_err());
        assert!(check_spec(&number("x", 2.0, 1.0, None)).is_err());
        assert!(check_spec(&number("x", 0.0, 1.0, Some(0.5))).is_ok());
    }
}
