//! The stable error codes every rejection and failed job carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes. The wire form is the SCREAMING_SNAKE_CASE name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    RequestMalformed,
    NotFound,
    PresetNotFound,
    PresetVersionNotFound,
    VersionRequirementInvalid,
    ParamsInvalid,
    InputsInvalid,
    InputUriInvalid,
    InputNotFound,
    InputUnreadable,
    JobNotFound,
    UploadInvalid,
    Unauthorized,
    PresetInvalid,
    PresetInterfaceUnsupported,
    PresetVersionExists,
    PresetTooLarge,
    SignatureInvalid,
    PresetRefused,
    PresetFailed,
    PlanRejected,
    FfmpegFailed,
    FfmpegTimeout,
    WorkerLost,
    JobNotCancellable,
    IdempotencyKeyReused,
    AnalysisFailed,
    StorageFailed,
    QueueUnavailable,
    OutputTooLarge,
    UploadTooLarge,
    WebhookUrlInvalid,
    JobRecordInvalid,
    JobTimeout,
    FfmpegInterrupted,
    HostOverloaded,
    /// The preset version is published but this process is still loading it (at start, or
    /// just after it was published): retry shortly.
    PresetLoading,
    RequestTimeout,
    MethodNotAllowed,
    BodyTooLarge,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestMalformed => "REQUEST_MALFORMED",
            Self::NotFound => "NOT_FOUND",
            Self::PresetNotFound => "PRESET_NOT_FOUND",
            Self::PresetVersionNotFound => "PRESET_VERSION_NOT_FOUND",
            Self::VersionRequirementInvalid => "VERSION_REQUIREMENT_INVALID",
            Self::ParamsInvalid => "PARAMS_INVALID",
            Self::InputsInvalid => "INPUTS_INVALID",
            Self::InputUriInvalid => "INPUT_URI_INVALID",
            Self::InputNotFound => "INPUT_NOT_FOUND",
            Self::InputUnreadable => "INPUT_UNREADABLE",
            Self::JobNotFound => "JOB_NOT_FOUND",
            Self::UploadInvalid => "UPLOAD_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::PresetInvalid => "PRESET_INVALID",
            Self::PresetInterfaceUnsupported => "PRESET_INTERFACE_UNSUPPORTED",
            Self::PresetVersionExists => "PRESET_VERSION_EXISTS",
            Self::PresetTooLarge => "PRESET_TOO_LARGE",
            Self::SignatureInvalid => "SIGNATURE_INVALID",
            Self::PresetRefused => "PRESET_REFUSED",
            Self::PresetFailed => "PRESET_FAILED",
            Self::PlanRejected => "PLAN_REJECTED",
            Self::FfmpegFailed => "FFMPEG_FAILED",
            Self::FfmpegTimeout => "FFMPEG_TIMEOUT",
            Self::WorkerLost => "WORKER_LOST",
            Self::JobNotCancellable => "JOB_NOT_CANCELLABLE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::AnalysisFailed => "ANALYSIS_FAILED",
            Self::StorageFailed => "STORAGE_FAILED",
            Self::QueueUnavailable => "QUEUE_UNAVAILABLE",
            Self::OutputTooLarge => "OUTPUT_TOO_LARGE",
            Self::UploadTooLarge => "UPLOAD_TOO_LARGE",
            Self::WebhookUrlInvalid => "WEBHOOK_URL_INVALID",
            Self::JobRecordInvalid => "JOB_RECORD_INVALID",
            Self::JobTimeout => "JOB_TIMEOUT",
            Self::FfmpegInterrupted => "FFMPEG_INTERRUPTED",
            Self::HostOverloaded => "HOST_OVERLOADED",
            Self::PresetLoading => "PRESET_LOADING",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::BodyTooLarge => "BODY_TOO_LARGE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status this code maps to when it is the answer to a request.
    pub fn http_status(self) -> u16 {
        match self {
            Self::RequestMalformed => 400,
            Self::NotFound | Self::PresetNotFound | Self::JobNotFound => 404,
            Self::SignatureInvalid => 403,
            Self::Unauthorized => 401,
            Self::PresetVersionExists | Self::JobNotCancellable => 409,
            Self::PresetTooLarge | Self::UploadTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::MethodNotAllowed => 405,
            Self::BodyTooLarge => 413,
            Self::PresetVersionNotFound
            | Self::VersionRequirementInvalid
            | Self::ParamsInvalid
            | Self::InputsInvalid
            | Self::InputUriInvalid
            | Self::InputNotFound
            | Self::InputUnreadable
            | Self::UploadInvalid
            | Self::PresetInvalid
            | Self::PresetInterfaceUnsupported
            | Self::PresetRefused
            | Self::IdempotencyKeyReused
            | Self::WebhookUrlInvalid
            | Self::OutputTooLarge
            | Self::JobRecordInvalid
            | Self::PlanRejected => 422,
            Self::StorageFailed
            | Self::QueueUnavailable
            | Self::HostOverloaded
            | Self::PresetLoading => 503,
            Self::PresetFailed
            | Self::FfmpegFailed
            | Self::FfmpegTimeout
            | Self::WorkerLost
            | Self::AnalysisFailed
            | Self::JobTimeout
            | Self::FfmpegInterrupted
            | Self::Internal => 500,
        }
    }

    /// The problem document's title for this code.
    pub fn title(self) -> &'static str {
        match self {
            Self::RequestMalformed => "The request body is not what this endpoint accepts",
            Self::NotFound => "No such resource",
            Self::PresetNotFound => "No preset by that name",
            Self::PresetVersionNotFound => "No version of the preset matches the requirement",
            Self::VersionRequirementInvalid => "The version requirement is not valid semver",
            Self::ParamsInvalid => "A param is invalid",
            Self::InputsInvalid => "The job's inputs do not match what the preset needs",
            Self::InputUriInvalid => "An input URI does not name an object of this host's storage",
            Self::InputNotFound => "An input object does not exist",
            Self::InputUnreadable => "An input is not readable media",
            Self::JobNotFound => "No job with that id",
            Self::UploadInvalid => "The upload request is invalid",
            Self::Unauthorized => {
                "This endpoint needs a valid bearer token (the admin token or an API token)"
            }
            Self::PresetInvalid => "The component is not a usable preset",
            Self::PresetInterfaceUnsupported => {
                "The component targets an interface version this host does not support"
            }
            Self::PresetVersionExists => "That preset version is already published",
            Self::PresetTooLarge => "The component is larger than this host accepts",
            Self::SignatureInvalid => "The signed URL is invalid or expired",
            Self::PresetRefused => "The preset refused to plan this job",
            Self::PresetFailed => "The preset failed while planning",
            Self::PlanRejected => "The preset's plan was rejected by the host",
            Self::FfmpegFailed => "ffmpeg failed",
            Self::FfmpegTimeout => "ffmpeg ran past its time limit",
            Self::WorkerLost => "The worker running the job stopped",
            Self::JobNotCancellable => "The job has already finished",
            Self::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            Self::AnalysisFailed => "A measurement of the media failed",
            Self::StorageFailed => "Object storage failed",
            Self::QueueUnavailable => "The job queue is unavailable",
            Self::OutputTooLarge => "The job wrote more than its disk budget allows",
            Self::UploadTooLarge => "The upload is larger than this host accepts",
            Self::WebhookUrlInvalid => "The webhook URL is not allowed",
            Self::JobRecordInvalid => "The stored job record is not valid",
            Self::JobTimeout => "The job ran past its time budget",
            Self::FfmpegInterrupted => "ffmpeg was stopped by a signal the host did not send",
            Self::HostOverloaded => "The host is out of capacity for this right now",
            Self::PresetLoading => "The preset version is still loading; retry shortly",
            Self::RequestTimeout => "The request was not received in time",
            Self::MethodNotAllowed => "The endpoint does not take that method",
            Self::BodyTooLarge => "The request body is larger than this endpoint accepts",
            Self::Internal => "Internal error",
        }
    }
}

impl ErrorCode {
    /// Whether a job failing with this code may succeed if run again: storage or Redis
    /// failures, timeouts and lost workers are retried with backoff; bad media, a preset's
    /// refusal or a rejected plan would fail the same way again.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::StorageFailed
                | Self::QueueUnavailable
                | Self::FfmpegTimeout
                | Self::FfmpegInterrupted
                | Self::HostOverloaded
                | Self::PresetLoading
                | Self::WorkerLost
                | Self::Internal
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
