//! mediahost: FFmpeg media jobs from versioned presets that are sandboxed WebAssembly components.
//!
//! Follow one job: [`api`] accepts it through the [`lifecycle`], which owns every change of its
//! state; [`queue`] holds it, [`worker`] runs it through
//! [`media::probe`], the [`preset`] sandbox, [`plan::validate`] and [`ffmpeg::render`], and
//! [`storage`] keeps its inputs and outputs. [`error`] is the one taxonomy of failures.

pub mod api;
pub mod cli;
pub mod config;
pub mod error;
pub mod ffmpeg;
pub mod job;
pub mod lifecycle;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod model;
pub mod package;
pub mod plan;
pub mod preset;
pub mod queue;
pub mod recheck;
pub mod redis_server;
pub mod result_cache;
pub mod secret;
pub mod server;
pub mod storage;
pub mod webhook;
pub mod worker;
