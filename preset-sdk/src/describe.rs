//! Builders for what a preset says about itself: [`Descriptor`] and its [`ParamSpec`]s.

use crate::{
    ChoiceSpec, Descriptor, InputSpec, IntegerSpec, NumberSpec, ParamKind, ParamSpec, TextSpec,
};

impl Descriptor {
    /// A descriptor with no inputs and no params yet. `version` is semver.
    ///
    /// Using the crate's own name and version keeps the preset and its `dist/` file in step:
    ///
    /// ```
    /// let descriptor = preset_sdk::Descriptor::new(
    ///     env!("CARGO_PKG_NAME"),
    ///     env!("CARGO_PKG_VERSION"),
    ///     "What this preset does, in one line.",
    /// );
    /// assert_eq!(descriptor.name, "preset-sdk");
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Descriptor {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            inputs: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Declares a required input.
    ///
    /// ```
    /// let d = preset_sdk::Descriptor::new("x", "1.0.0", "").input("main", "The audio to process.");
    /// assert!(d.inputs[0].required);
    /// ```
    pub fn input(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.inputs.push(InputSpec {
            name: name.into(),
            description: description.into(),
            required: true,
        });
        self
    }

    /// Declares an input a job may leave out.
    ///
    /// ```
    /// let d = preset_sdk::Descriptor::new("x", "1.0.0", "").optional_input("music", "A bed.");
    /// assert!(!d.inputs[0].required);
    /// ```
    pub fn optional_input(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.inputs.push(InputSpec {
            name: name.into(),
            description: description.into(),
            required: false,
        });
        self
    }

    /// Declares a param, from any of the [`ParamSpec`] builders.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let d = Descriptor::new("x", "1.0.0", "")
    ///     .param(ParamSpec::number("gain_db", "Gain in dB.").range(-20.0, 20.0).default(0.0));
    /// assert_eq!(d.params[0].name, "gain_db");
    /// ```
    pub fn param(mut self, spec: impl Into<ParamSpec>) -> Self {
        self.params.push(spec.into());
        self
    }

    /// The declared param called `name`.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let d = Descriptor::new("x", "1.0.0", "").param(ParamSpec::boolean("dry_run", "Plan only."));
    /// assert!(d.param_spec("dry_run").is_some());
    /// ```
    pub fn param_spec(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

impl ParamSpec {
    /// A number (f64) param. Optional with no default until [`NumberParam::default`] or
    /// [`NumberParam::required`].
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let spec: ParamSpec = ParamSpec::number("target_lufs", "Integrated loudness target.")
    ///     .range(-70.0, -5.0)
    ///     .default(-16.0)
    ///     .into();
    /// assert!(matches!(spec.kind, ParamKind::Number(NumberSpec { default: Some(-16.0), .. })));
    /// ```
    pub fn number(name: impl Into<String>, description: impl Into<String>) -> NumberParam {
        NumberParam {
            common: Common::new(name, description),
            spec: NumberSpec {
                min: None,
                max: None,
                default: None,
            },
        }
    }

    /// An integer (i64) param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let spec: ParamSpec = ParamSpec::integer("bitrate_kbps", "Bit rate.").range(8, 512).into();
    /// assert!(!spec.required);
    /// ```
    pub fn integer(name: impl Into<String>, description: impl Into<String>) -> IntegerParam {
        IntegerParam {
            common: Common::new(name, description),
            spec: IntegerSpec {
                min: None,
                max: None,
                default: None,
            },
        }
    }

    /// A boolean param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let spec: ParamSpec = ParamSpec::boolean("dither", "Dither when reducing bit depth.")
    ///     .default(true)
    ///     .into();
    /// assert_eq!(spec.kind, ParamKind::Boolean(Some(true)));
    /// ```
    pub fn boolean(name: impl Into<String>, description: impl Into<String>) -> BooleanParam {
        BooleanParam {
            common: Common::new(name, description),
            default: None,
        }
    }

    /// A free text param, at most 256 characters unless [`TextParam::max_length`] says otherwise.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let spec: ParamSpec = ParamSpec::text("title", "Output title tag.").max_length(200).into();
    /// assert!(matches!(spec.kind, ParamKind::Text(TextSpec { max_length: 200, .. })));
    /// ```
    pub fn text(name: impl Into<String>, description: impl Into<String>) -> TextParam {
        TextParam {
            common: Common::new(name, description),
            spec: TextSpec {
                max_length: 256,
                default: None,
            },
        }
    }

    /// A choice among fixed words; the value arrives as text.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let spec: ParamSpec = ParamSpec::choice("codec", "Output codec.", ["flac", "mp3"])
    ///     .default("flac")
    ///     .into();
    /// assert!(matches!(&spec.kind, ParamKind::Choice(c) if c.options.len() == 2));
    /// ```
    pub fn choice<S: Into<String>>(
        name: impl Into<String>,
        description: impl Into<String>,
        options: impl IntoIterator<Item = S>,
    ) -> ChoiceParam {
        ChoiceParam {
            common: Common::new(name, description),
            spec: ChoiceSpec {
                options: options.into_iter().map(Into::into).collect(),
                default: None,
            },
        }
    }
}

/// What every param builder has: name, description, required.
#[derive(Clone, Debug, PartialEq)]
struct Common {
    name: String,
    description: String,
    required: bool,
}

impl Common {
    fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Common {
            name: name.into(),
            description: description.into(),
            required: false,
        }
    }

    fn into_spec(self, kind: ParamKind) -> ParamSpec {
        ParamSpec {
            name: self.name,
            description: self.description,
            kind,
            required: self.required,
        }
    }
}

/// Builder for a number param; see [`ParamSpec::number`].
///
/// ```
/// use preset_sdk::*;
///
/// let d = Descriptor::new("x", "1.0.0", "")
///     .param(ParamSpec::number("lra", "Loudness range limit.").min(1.0).max(50.0));
/// assert!(!d.params[0].required);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NumberParam {
    common: Common,
    spec: NumberSpec,
}

impl NumberParam {
    /// Inclusive bounds.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::number("x", "").range(0.0, 1.0);
    /// ```
    pub fn range(self, min: f64, max: f64) -> Self {
        self.min(min).max(max)
    }

    /// Inclusive lower bound.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::number("x", "").min(0.0);
    /// ```
    pub fn min(mut self, min: f64) -> Self {
        self.spec.min = Some(min);
        self
    }

    /// Inclusive upper bound.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::number("x", "").max(1.0);
    /// ```
    pub fn max(mut self, max: f64) -> Self {
        self.spec.max = Some(max);
        self
    }

    /// The value the host fills in when a job leaves the param out.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::number("x", "").default(0.5);
    /// ```
    pub fn default(mut self, default: f64) -> Self {
        self.spec.default = Some(default);
        self
    }

    /// Every job must give this param (only meaningful without a default).
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::number("x", "").required();
    /// ```
    pub fn required(mut self) -> Self {
        self.common.required = true;
        self
    }
}

impl From<NumberParam> for ParamSpec {
    fn from(p: NumberParam) -> Self {
        p.common.into_spec(ParamKind::Number(p.spec))
    }
}

/// Builder for an integer param; see [`ParamSpec::integer`].
///
/// ```
/// use preset_sdk::*;
///
/// let d = Descriptor::new("x", "1.0.0", "")
///     .param(ParamSpec::integer("channels", "Output channels.").range(1, 8));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct IntegerParam {
    common: Common,
    spec: IntegerSpec,
}

impl IntegerParam {
    /// Inclusive bounds.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::integer("x", "").range(1, 8);
    /// ```
    pub fn range(self, min: i64, max: i64) -> Self {
        self.min(min).max(max)
    }

    /// Inclusive lower bound.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::integer("x", "").min(1);
    /// ```
    pub fn min(mut self, min: i64) -> Self {
        self.spec.min = Some(min);
        self
    }

    /// Inclusive upper bound.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::integer("x", "").max(8);
    /// ```
    pub fn max(mut self, max: i64) -> Self {
        self.spec.max = Some(max);
        self
    }

    /// The value the host fills in when a job leaves the param out.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::integer("x", "").default(2);
    /// ```
    pub fn default(mut self, default: i64) -> Self {
        self.spec.default = Some(default);
        self
    }

    /// Every job must give this param (only meaningful without a default).
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::integer("x", "").required();
    /// ```
    pub fn required(mut self) -> Self {
        self.common.required = true;
        self
    }
}

impl From<IntegerParam> for ParamSpec {
    fn from(p: IntegerParam) -> Self {
        p.common.into_spec(ParamKind::Integer(p.spec))
    }
}

/// Builder for a boolean param; see [`ParamSpec::boolean`].
///
/// ```
/// let p = preset_sdk::ParamSpec::boolean("x", "").default(false);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BooleanParam {
    common: Common,
    default: Option<bool>,
}

impl BooleanParam {
    /// The value the host fills in when a job leaves the param out.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::boolean("x", "").default(true);
    /// ```
    pub fn default(mut self, default: bool) -> Self {
        self.default = Some(default);
        self
    }

    /// Every job must give this param (only meaningful without a default).
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::boolean("x", "").required();
    /// ```
    pub fn required(mut self) -> Self {
        self.common.required = true;
        self
    }
}

impl From<BooleanParam> for ParamSpec {
    fn from(p: BooleanParam) -> Self {
        p.common.into_spec(ParamKind::Boolean(p.default))
    }
}

/// Builder for a text param; see [`ParamSpec::text`].
///
/// ```
/// let p = preset_sdk::ParamSpec::text("x", "").max_length(64).default("untitled");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TextParam {
    common: Common,
    spec: TextSpec,
}

impl TextParam {
    /// The longest value accepted, in characters.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::text("x", "").max_length(64);
    /// ```
    pub fn max_length(mut self, max_length: u32) -> Self {
        self.spec.max_length = max_length;
        self
    }

    /// The value the host fills in when a job leaves the param out.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::text("x", "").default("untitled");
    /// ```
    pub fn default(mut self, default: impl Into<String>) -> Self {
        self.spec.default = Some(default.into());
        self
    }

    /// Every job must give this param (only meaningful without a default).
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::text("x", "").required();
    /// ```
    pub fn required(mut self) -> Self {
        self.common.required = true;
        self
    }
}

impl From<TextParam> for ParamSpec {
    fn from(p: TextParam) -> Self {
        p.common.into_spec(ParamKind::Text(p.spec))
    }
}

/// Builder for a choice param; see [`ParamSpec::choice`].
///
/// ```
/// let p = preset_sdk::ParamSpec::choice("x", "", ["a", "b"]).default("a");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceParam {
    common: Common,
    spec: ChoiceSpec,
}

impl ChoiceParam {
    /// The option the host fills in when a job leaves the param out.
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::choice("x", "", ["a", "b"]).default("b");
    /// ```
    pub fn default(mut self, default: impl Into<String>) -> Self {
        self.spec.default = Some(default.into());
        self
    }

    /// Every job must give this param (only meaningful without a default).
    ///
    /// ```
    /// let p = preset_sdk::ParamSpec::choice("x", "", ["a", "b"]).required();
    /// ```
    pub fn required(mut self) -> Self {
        self.common.required = true;
        self
    }
}

impl From<ChoiceParam> for ParamSpec {
    fn from(p: ChoiceParam) -> Self {
        p.common.into_spec(ParamKind::Choice(p.spec))
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn number_param_carries_range_and_default() {
        let spec: ParamSpec = ParamSpec::number("target_lufs", "Target.")
            .range(-70.0, -5.0)
            .default(-16.0)
            .into();
        assert_eq!(spec.name, "target_lufs");
        assert!(!spec.required);
        assert_eq!(
            spec.kind,
            ParamKind::Number(NumberSpec {
                min: Some(-70.0),
                max: Some(-5.0),
                default: Some(-16.0)
            })
        );
    }

    #[test]
    fn required_params_are_marked_required() {
        let spec: ParamSpec = ParamSpec::integer("n", "").required().into();
        assert!(spec.required);
        assert_eq!(
            spec.kind,
            ParamKind::Integer(IntegerSpec {
                min: None,
                max: None,
                default: None
            })
        );
    }

    #[test]
    fn descriptor_collects_inputs_and_params_in_order() {
        let d = Descriptor::new("p", "1.2.3", "s")
            .input("main", "m")
            .optional_input("extra", "e")
            .param(ParamSpec::choice("codec", "c", ["a", "b"]).default("a"))
            .param(ParamSpec::text("t", "").max_length(10));
        assert_eq!(d.version, "1.2.3");
        assert_eq!(
            d.inputs
                .iter()
                .map(|i| (i.name.as_str(), i.required))
                .collect::<Vec<_>>(),
            [("main", true), ("extra", false)]
        );
        assert_eq!(
            d.param_spec("codec").map(|p| &p.kind),
            Some(&ParamKind::Choice(ChoiceSpec {
                options: vec!["a".into(), "b".into()],
                default: Some("a".into())
            }))
        );
        assert!(matches!(
            d.param_spec("t").map(|p| &p.kind),
            Some(ParamKind::Text(TextSpec {
                max_length: 10,
                default: None
            }))
        ));
        assert!(d.param_spec("missing").is_none());
    }
}
