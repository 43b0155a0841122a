//! The conversion trait the interface adapters implement, and macros for the many records and
//! variants whose shape a WIT version shares with [`crate::model`].
//!
//! A conversion is written once per type and direction as a struct literal or an exhaustive
//! match, so when the model gains a field or a case, every adapter fails to build until it says
//! what an older interface version gets for it (the WIT side never changes: it is frozen).
//!
//! Not here: the conversions themselves (each version's adapter, `v1.rs`, `v2.rs`).

/// A total conversion between a WIT type and its model counterpart.
pub trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {
        $(impl Conv<$t> for $t {
            fn conv(self) -> $t {
                self
            }
        })*
    };
}

same!(String, bool, u32, i32, u64, i64, f64);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

/// `record!(A => B { fields })`: a record converted field by field (both are paths).
macro_rules! record {
    ($from:path => $to:path { $($field:ident),* $(,)? }) => {
        impl $crate::preset::convert::Conv<$to> for $from {
            fn conv(self) -> $to {
                $to { $($field: $crate::preset::convert::Conv::conv(self.$field)),* }
            }
        }
    };
}

/// `variants!(A => B { Case, Case(x) })`: a variant or enum converted case by case, each case
/// carrying at most one value.
macro_rules! variants {
    ($from:path => $to:path { $($case:ident $(($x:ident))?),* $(,)? }) => {
        impl $crate::preset::convert::Conv<$to> for $from {
            fn conv(self) -> $to {
                match self {
                    $(Self::$case $(($x))? => <$to>::$case $(($crate::preset::convert::Conv::conv($x)))?),*
                }
            }
        }
    };
}

/// Both directions of a record whose fields the two sides share.
macro_rules! records {
    ($($a:path, $b:path { $($field:ident),* $(,)? })*) => {
        $(record!($a => $b { $($field),* });
          record!($b => $a { $($field),* });)*
    };
}

/// Both directions of a variant or enum whose cases the two sides share.
macro_rules! variants_both {
    ($($a:path, $b:path { $($case:ident $(($x:ident))?),* $(,)? })*) => {
        $(variants!($a => $b { $($case $(($x))?),* });
          variants!($b => $a { $($case $(($x))?),* });)*
    };
}

pub(super) use {record, records, variants, variants_both};

/// The conversions of every type that 1.0 and 2.0 share unchanged, for the WIT types module
/// aliased as `$w`. Steps, round work and decisions go one way only (a preset writes them); the
/// adapter supplies what differs (outputs, analyses, finish, the plan request).
macro_rules! shared {
    ($w:ident) => {
        use $crate::model;
        use $crate::preset::convert::{record, records, variants, variants_both};

        records! {
            $w::Rational, model::Rational { num, den }
            $w::Tag, model::Tag { key, value }
            $w::Disposition, model::Disposition {
                default, forced, attached_pic, hearing_impaired, visual_impaired, comment,
                original, dub,
            }
            $w::AudioInfo, model::AudioInfo {
                sample_rate, channels, channel_layout, sample_format, bits_per_sample,
            }
            $w::ColorInfo, model::ColorInfo { range, space, transfer, primaries }
            $w::VideoInfo, model::VideoInfo {
                width, height, frame_rate, average_frame_rate, pixel_format, sample_aspect_ratio,
                color, rotation_degrees, field_order,
            }
            $w::StreamInfo, model::StreamInfo {
                index, kind, codec, profile, bit_rate, duration_s, language, disposition, tags,
                detail,
            }
            $w::Container, model::Container { format_names, duration_s, size_bytes, bit_rate, tags }
            $w::MediaInfo, model::MediaInfo { container, streams }
            $w::NamedMedia, model::NamedMedia { source, info }
            $w::Loudness, model::Loudness {
                integrated_lufs, true_peak_dbtp, lra_lu, threshold_lufs,
            }
            $w::IntegerSpec, model::IntegerSpec { min, max, default }
            $w::NumberSpec, model::NumberSpec { min, max, default }
            $w::TextSpec, model::TextSpec { max_length, default }
            $w::ChoiceSpec, model::ChoiceSpec { options, default }
            $w::ParamSpec, model::ParamSpec { name, description, kind, required }
            $w::Param, model::Param { name, value }
            $w::InputSpec, model::InputSpec { name, description, required }
            $w::Descriptor, model::Descriptor { name, version, summary, inputs, params }
            $w::OptionValue, model::OptionValue { name, value }
            $w::StepInput, model::StepInput { source, seek_s, duration_s }
            $w::StreamRef, model::StreamRef { input, stream }
            $w::FilterNode, model::FilterNode { filter, args, inputs, outputs }
            $w::Encoder, model::Encoder {
                codec, bit_rate, sample_rate, channels, sample_format, pixel_format, frame_rate,
                options,
            }
            $w::OutputStream, model::OutputStream { source, codec, metadata }
            $w::Refusal, model::Refusal { code, message }
        }
        variants_both! {
            $w::StreamKind, model::StreamKind {
                Audio, Video, Subtitle, Data, Attachment, Unknown,
            }
            $w::StreamDetail, model::StreamDetail { Audio(x), Video(x), Other }
            $w::MediaRef, model::MediaRef { Input(x), Produced(x) }
            $w::ParamKind, model::ParamKind {
                Integer(x), Number(x), Boolean(x), Text(x), Choice(x),
            }
            $w::ParamValue, model::ParamValue { Integer(x), Number(x), Boolean(x), Text(x) }
            $w::Value, model::Value { Integer(x), Number(x), Boolean(x), Text(x) }
            $w::Pad, model::Pad { Stream(x), Link(x) }
            $w::Codec, model::Codec { Copy, Encode(x) }
            $w::LogLevel, model::LogLevel { Debug, Info, Warn, Error }
        }
        record!($w::Step => model::Step { name, inputs, graph, outputs });
        record!($w::RoundWork => model::RoundWork { steps, analyses });
        variants!($w::Decision => model::Decision { Next(x), Finish(x) });
    };
}

pub(super) use shared;
