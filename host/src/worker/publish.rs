//! Storing a finished job's outputs: every object under `jobs/<id>/` with its content type and
//! cache policy, documents with their references to other outputs resolved, each HLS package's
//! master playlist after everything it names is stored, and the manifest last.
//!
//! An optional output that failed, or that cannot be stored, is recorded as failed with its
//! error; a required one fails the job.
//!
//! Not here: running ffmpeg (that is the pipeline's executor) or measuring renditions (that is
//! [`crate::package`]).

use std::path::{Path, PathBuf};

use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::render::RenderedOutput;
use crate::ffmpeg::{Tools, output};
use crate::job::VariantRecord;
use crate::job::{ObjectRecord, OutputKind, OutputRecord, OutputState, StreamSummary};
use crate::media::probe;
use crate::model;
use crate::package;
use crate::plan::layout::Layout;
use crate::storage::{ObjectKey, ObjectMeta, Storage};

/// The most objects one output may hold (segments of a rendition, images of a sequence).
const MAX_OBJECTS: usize = 20_000;

/// One object of an output, found in the scratch directory.
struct Found {
    /// Relative to the job's output prefix (`jobs/<id>/`): `poster.jpg`, `720p/seg_00001.m4s`.
    name: String,
    file: output::CheckedFile,
}

/// Stores outputs of one job.
pub struct Publisher<'a> {
    pub storage: &'a Storage,
    pub tools: &'a Tools,
    /// The job's scratch directory (outputs are under its `out/`).
    pub job_dir: &'a Path,
    /// `jobs/<id>`.
    pub prefix: String,
}

impl Publisher<'_> {
    fn key(&self, name: &str) -> ObjectKey {
        ObjectKey::parse(&format!("{}/{name}", self.prefix)).expect("output names are validated")
    }

    async fn store(&self, found: &Found) -> Result<ObjectRecord, JobError> {
        let key = self.key(&found.name);
        let meta = ObjectMeta::for_output(&found.name);
        self.storage
            .upload(&found.file.fd_path(), &key, &meta)
            .await
            .map_err(|e| JobError::new(ErrorCode::StorageFailed, "upload", e.to_string()))?;
        Ok(ObjectRecord {
            uri: self.storage.uri(&key),
            key: key.to_string(),
            content_type: meta.content_type,
            size_bytes: found.file.len,
        })
    }

    /// Every regular file directly in `dir` (an output's own directory), sorted by name.
    fn list(&self, dir: &Path, rel: &str) -> Result<Vec<Found>, String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .map(|entry| {
                entry
                    .map_err(|e| e.to_string())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
            })
            .collect::<Result<_, _>>()?;
        if names.len() > MAX_OBJECTS {
            return Err(format!("{} files; at most {MAX_OBJECTS}", names.len()));
        }
        names.sort();
        names
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .map(|n| {
                let path = dir.join(&n);
                let file = output::open_regular(self.job_dir, &path).map_err(|e| e.to_string())?;
                Ok(Found {
                    name: format!("{rel}/{n}"),
                    file,
                })
            })
            .collect()
    }
}

/// An output the finish round's steps wrote, or failed to write.
pub struct Delivered {
    pub output: model::Output,
    /// Where ffmpeg wrote it.
    pub rendered: RenderedOutput,
    /// Why its step failed, when it did (only optional outputs reach publishing so).
    pub failed: Option<JobError>,
}

/// What publishing found of one output, before documents and packages refer to it.
struct Stored {
    record: OutputRecord,
    /// The output's objects' relative names, in order (images of a sequence: 1, 2, ...).
    names: Vec<String>,
    /// A rendition's directory and streams, for the packages that group it.
    rendition: Option<package::Rendition>,
}

impl Publisher<'_> {
    /// Stores every delivered output, then the documents, then the packages' masters, and
    /// returns the records in that order. A required output that cannot be stored fails the
    /// job; an optional one is recorded as failed.
    pub async fn publish(
        &self,
        delivered: Vec<Delivered>,
        documents: &[model::Document],
        packages: &[model::HlsPackage],
    ) -> Result<Vec<OutputRecord>, JobError> {
        let mut stored: Vec<Stored> = Vec::new();
        for d in delivered {
            let result = match d.failed {
                Some(e) => Err(e),
                None => self.store_output(&d.output, &d.rendered).await,
            };
            stored.push(settle(
                &d.output.name,
                kind_of(&d.output.kind),
                d.output.optional,
                result,
            )?);
        }
        for doc in documents {
            let result = self.store_document(doc, &stored).await;
            stored.push(settle(
                &doc.name,
                OutputKind::Document,
                doc.optional,
                result,
            )?);
        }
        // Masters go last: a player that finds one finds everything it names already stored.
        let mut masters = Vec::new();
        for package in packages {
            masters.push(self.store_package(package, &stored).await?.record);
        }
        let mut records: Vec<OutputRecord> = stored.into_iter().map(|s| s.record).collect();
        records.extend(masters);
        Ok(records)
    }

    /// Measures the package's stored renditions and stores its master playlist. A variant whose
    /// optional rendition failed is left out; a package left without variants fails the job.
    async fn store_package(
        &self,
        package: &model::HlsPackage,
        stored: &[Stored],
    ) -> Result<Stored, JobError> {
        let stored_rendition = |name: &str| {
            stored
                .iter()
                .find(|s| s.record.name == name)
                .and_then(|s| s.rendition.clone())
        };
        let mut kept = package.clone();
        kept.variants.retain(|v| stored_rendition(v).is_some());
        kept.audio.retain(|a| stored_rendition(&a.output).is_some());
        if kept.variants.is_empty() {
            return Err(JobError::new(
                ErrorCode::FfmpegFailed,
                "package",
                format!(
                    "package '{}': none of its variant renditions was stored",
                    package.name
                ),
            ));
        }
        let renditions: Vec<package::Rendition> = kept
            .variants
            .iter()
            .chain(kept.audio.iter().map(|a| &a.output))
            .filter_map(|name| stored_rendition(name))
            .collect();
        let measured = kept.clone();
        let master =
            tokio::task::spawn_blocking(move || package::master_playlist(&measured, &renditions))
                .await
                .map_err(|e| JobError::new(ErrorCode::Internal, "package", e.to_string()))??;
        let name = format!("{}.m3u8", package.name);
        let key = self.key(&name);
        let meta = ObjectMeta::for_output(&name);
        let size = master.text.len() as u64;
        self.storage
            .put_bytes(&key, bytes::Bytes::from(master.text), &meta)
            .await
            .map_err(|e| JobError::new(ErrorCode::StorageFailed, "upload", e.to_string()))?;
        let variants = master
            .variants
            .into_iter()
            .map(|v| VariantRecord {
                output: v.name,
                bandwidth: v.bandwidth,
                average_bandwidth: v.average_bandwidth,
                codecs: v.codecs,
                resolution: v.resolution.map(|(w, h)| format!("{w}x{h}")),
                frame_rate: v.frame_rate,
            })
            .collect();
        Ok(Stored {
            names: vec![name],
            rendition: None,
            record: OutputRecord {
                name: package.name.clone(),
                kind: OutputKind::HlsPackage,
                state: OutputState::Completed,
                optional: false,
                error: None,
                uri: self.storage.uri(&key),
                key: key.to_string(),
                container: "hls".into(),
                size_bytes: size,
                duration_s: None,
                codecs: Vec::new(),
                streams: Vec::new(),
                objects: Vec::new(),
                variants,
            },
        })
    }

    async fn store_output(
        &self,
        output: &model::Output,
        rendered: &RenderedOutput,
    ) -> Result<Stored, JobError> {
        let unusable = |why: String| {
            JobError::new(
                ErrorCode::FfmpegFailed,
                "ffmpeg",
                format!("output '{}': {why}", output.name),
            )
        };
        let (path, found) = match (&rendered.layout, &rendered.dir) {
            (Layout::File { file }, _) => {
                let checked = output::open_regular(self.job_dir, &rendered.path)
                    .map_err(|e| unusable(format!("unusable file: {e}")))?;
                let found = vec![Found {
                    name: file.clone(),
                    file: checked,
                }];
                (rendered.path.clone(), found)
            }
            (layout, Some(dir)) => {
                let rel = layout
                    .dir()
                    .expect("sequences and renditions have a directory");
                let found = self.list(dir, rel).map_err(unusable)?;
                if found.is_empty() {
                    return Err(unusable("ffmpeg wrote nothing".into()));
                }
                (dir.clone(), found)
            }
            (_, None) => unreachable!("the renderer gives sequences and renditions a directory"),
        };
        let main = found
            .iter()
            .position(|f| f.name == rendered.layout.main_object())
            .ok_or_else(|| {
                unusable(format!(
                    "'{}' was not written",
                    rendered.layout.main_object()
                ))
            })?;
        let path = path.as_path();
        // What the output holds is read from its first media object: the file or image itself,
        // or a rendition's init segment with its first segment (see `package::probe_sample`).
        let probe_path = match output.kind {
            model::OutputKind::HlsRendition(_) => {
                let sample = self
                    .job_dir
                    .join("work")
                    .join(format!("{}.probe-sample", output.name));
                let (dir, into) = (path.to_owned(), sample.clone());
                tokio::task::spawn_blocking(move || package::probe_sample(&dir, &into))
                    .await
                    .map_err(|e| JobError::new(ErrorCode::Internal, "upload", e.to_string()))??;
                sample
            }
            _ => path_of(path, &found[0], &output.kind),
        };
        let info = probe::probe_written(self.tools, &probe_path)
            .await
            .map_err(|e| unusable(format!("unreadable: {e}")))?;
        let mut objects = Vec::with_capacity(found.len());
        for f in &found {
            objects.push(self.store(f).await?);
        }
        let (duration_s, rendition) = match output.kind {
            model::OutputKind::HlsRendition(_) => {
                let list = package::playlist::read(path)?;
                let duration = list.segments.iter().map(|s| s.duration_s).sum::<f64>();
                let rendition = package::Rendition {
                    name: output.name.clone(),
                    dir: path.to_owned(),
                    streams: info.streams.clone(),
                };
                (Some(duration), Some(rendition))
            }
            _ => (info.container.duration_s, None),
        };
        let streams = summaries(&info);
        let main_object = objects[main].clone();
        let single = found.len() == 1;
        Ok(Stored {
            names: found.iter().map(|f| f.name.clone()).collect(),
            rendition,
            record: OutputRecord {
                name: output.name.clone(),
                kind: kind_of(&output.kind),
                state: OutputState::Completed,
                optional: output.optional,
                error: None,
                uri: main_object.uri,
                key: main_object.key,
                container: container_of(&output.kind),
                size_bytes: objects.iter().map(|o| o.size_bytes).sum(),
                duration_s,
                codecs: streams.iter().map(|s| s.codec.clone()).collect(),
                streams,
                objects: if single { Vec::new() } else { objects },
                variants: Vec::new(),
            },
        })
    }
}

impl Publisher<'_> {
    /// Resolves the document's references to other outputs and stores it as `<name>.vtt` or
    /// `<name>.json`, beside the outputs it names (so the references are relative names).
    async fn store_document(
        &self,
        doc: &model::Document,
        stored: &[Stored],
    ) -> Result<Stored, JobError> {
        let body = resolve_references(&doc.body, stored).map_err(|why| {
            JobError::new(
                ErrorCode::PlanRejected,
                "upload",
                format!("document '{}': {why}", doc.name),
            )
        })?;
        let ext = match doc.format {
            model::DocumentFormat::Webvtt => "vtt",
            model::DocumentFormat::Json => "json",
        };
        let name = format!("{}.{ext}", doc.name);
        let key = self.key(&name);
        let meta = ObjectMeta::for_output(&name);
        let size = body.len() as u64;
        self.storage
            .put_bytes(&key, bytes::Bytes::from(body), &meta)
            .await
            .map_err(|e| JobError::new(ErrorCode::StorageFailed, "upload", e.to_string()))?;
        Ok(Stored {
            names: vec![name],
            rendition: None,
            record: OutputRecord {
                name: doc.name.clone(),
                kind: OutputKind::Document,
                state: OutputState::Completed,
                optional: doc.optional,
                error: None,
                uri: self.storage.uri(&key),
                key: key.to_string(),
                container: ext.into(),
                size_bytes: size,
                duration_s: None,
                codecs: Vec::new(),
                streams: Vec::new(),
                objects: Vec::new(),
                variants: Vec::new(),
            },
        })
    }
}

/// Replaces `{{output:<name>}}` with the output's main object's relative name and
/// `{{output:<name>:<n>}}` with the n-th (from 1) object of an image sequence.
fn resolve_references(body: &str, stored: &[Stored]) -> Result<String, String> {
    const OPEN: &str = "{{output:";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let end = after
            .find("}}")
            .ok_or("a reference '{{output:' is not closed with '}}'")?;
        let reference = &after[..end];
        let (name, nth) =
            match reference.split_once(':') {
                Some((name, n)) => (
                    name,
                    Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("'{reference}': the image number must be 1 or more")
                    })?),
                ),
                None => (reference, None),
            };
        let target = stored
            .iter()
            .find(|s| s.record.name == name)
            .ok_or_else(|| format!("it refers to '{name}', which is not an output of this job"))?;
        if target.record.state == OutputState::Failed {
            return Err(format!("it refers to output '{name}', which failed"));
        }
        let resolved = match nth {
            Some(n) if target.record.kind == OutputKind::ImageSequence => {
                target.names.get(n - 1).ok_or_else(|| {
                    format!(
                        "it refers to image {n} of '{name}', which holds {} images",
                        target.names.len()
                    )
                })?
            }
            Some(_) => return Err(format!("'{name}' is not an image sequence")),
            None if target.record.kind == OutputKind::HlsRendition => target
                .names
                .iter()
                .find(|n| n.ends_with("/index.m3u8"))
                .ok_or_else(|| format!("'{name}' has no media playlist"))?,
            None => target
                .names
                .first()
                .ok_or_else(|| format!("'{name}' holds nothing"))?,
        };
        out.push_str(resolved);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a found object is on disk: the delivered file itself, or a file in its directory.
fn path_of(path: &Path, found: &Found, kind: &model::OutputKind) -> PathBuf {
    match kind {
        model::OutputKind::File(_) | model::OutputKind::Still(_) => path.to_owned(),
        _ => path.join(found.name.rsplit('/').next().unwrap_or_default()),
    }
}

/// Turns an output's result into its record: a failed optional output is kept as failed, a
/// failed required one fails the job.
fn settle(
    name: &str,
    kind: OutputKind,
    optional: bool,
    result: Result<Stored, JobError>,
) -> Result<Stored, JobError> {
    match result {
        Ok(stored) => Ok(stored),
        Err(e) if optional => Ok(Stored {
            names: Vec::new(),
            rendition: None,
            record: OutputRecord::failed(name, kind, optional, e),
        }),
        Err(e) => Err(e),
    }
}

fn kind_of(kind: &model::OutputKind) -> OutputKind {
    match kind {
        model::OutputKind::File(_) => OutputKind::File,
        model::OutputKind::Still(_) => OutputKind::Still,
        model::OutputKind::ImageSequence(_) => OutputKind::ImageSequence,
        model::OutputKind::HlsRendition(_) => OutputKind::HlsRendition,
    }
}

fn container_of(kind: &model::OutputKind) -> String {
    let image = |f: model::ImageFormat| match f {
        model::ImageFormat::Jpeg => "jpeg",
        model::ImageFormat::Png => "png",
        model::ImageFormat::Webp => "webp",
        model::ImageFormat::Avif => "avif",
    };
    match kind {
        model::OutputKind::File(container) => container.clone(),
        model::OutputKind::Still(spec) => image(spec.format).into(),
        model::OutputKind::ImageSequence(spec) => image(spec.image.format).into(),
        model::OutputKind::HlsRendition(spec) => match spec.segment_format {
            model::SegmentFormat::Fmp4 => "hls-fmp4".into(),
            model::SegmentFormat::Mpegts => "hls-mpegts".into(),
        },
    }
}

/// The job record's view of each stream.
pub fn summaries(info: &model::MediaInfo) -> Vec<StreamSummary> {
    info.streams
        .iter()
        .map(|s| {
            let (sample_rate, channels, channel_layout, width, height) = match &s.detail {
                model::StreamDetail::Audio(a) => (
                    Some(a.sample_rate),
                    Some(a.channels),
                    a.channel_layout.clone(),
                    None,
                    None,
                ),
                model::StreamDetail::Video(v) => (None, None, None, Some(v.width), Some(v.height)),
                model::StreamDetail::Other => (None, None, None, None, None),
            };
            StreamSummary {
                index: s.index,
                kind: s.kind.name().to_owned(),
                codec: s.codec.clone(),
                sample_rate,
                channels,
                channel_layout,
                width,
                height,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str, kind: OutputKind, names: &[&str], state: OutputState) -> Stored {
        Stored {
            names: names.iter().map(|n| n.to_string()).collect(),
            rendition: None,
            record: OutputRecord {
                state,
                error: None,
                ..OutputRecord::failed(
                    name,
                    kind,
                    state == OutputState::Failed,
                    JobError::new(ErrorCode::FfmpegFailed, "ffmpeg", "failed"),
                )
            },
        }
    }

    fn job() -> Vec<Stored> {
        vec![
            stored(
                "poster",
                OutputKind::Still,
                &["poster.jpg"],
                OutputState::Completed,
            ),
            stored(
                "sprites",
                OutputKind::ImageSequence,
                &["sprites/0001.jpg", "sprites/0002.jpg"],
                OutputState::Completed,
            ),
            stored(
                "720p",
                OutputKind::HlsRendition,
                &["720p/index.m3u8", "720p/init.mp4", "720p/seg_00001.m4s"],
                OutputState::Completed,
            ),
            stored("2160p", OutputKind::HlsRendition, &[], OutputState::Failed),
        ]
    }

    #[test]
    fn references_become_relative_object_names() {
        let body = "WEBVTT\n\n00:00.000 --> 00:02.000\n{{output:sprites:2}}#xywh=0,0,160,90\n\
                    poster={{output:poster}} playlist={{output:720p}}";
        assert_eq!(
            resolve_references(body, &job()).unwrap(),
            "WEBVTT\n\n00:00.000 --> 00:02.000\nsprites/0002.jpg#xywh=0,0,160,90\n\
             poster=poster.jpg playlist=720p/index.m3u8"
        );
    }

    #[test]
    fn a_reference_to_nothing_usable_is_refused() {
        for (body, why) in [
            ("{{output:sprites:3}}", "holds 2 images"),
            ("{{output:sprites:0}}", "1 or more"),
            ("{{output:poster:1}}", "not an image sequence"),
            ("{{output:nope}}", "not an output"),
            ("{{output:2160p}}", "which failed"),
            ("{{output:poster", "not closed"),
        ] {
            let err = resolve_references(body, &job()).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
