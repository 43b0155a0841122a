//! Metrics in the Prometheus text format, shared by every process through Redis.
//!
//! Workers add to counters in the hash `<prefix>:metrics` (field: the series with its labels,
//! value: the count), mostly in the same transaction that records the job's transition, so the
//! API process can serve totals for the whole deployment at `GET /metrics`. Queue depths are read
//! live. Labels are preset names, versions, states and error codes: all from closed alphabets.
//!
//! Queue wait and run time are Prometheus histograms per preset
//! (`mediahost_job_queue_wait_seconds`, `mediahost_job_run_seconds`). Their buckets are kept
//! per bucket (not cumulative) in the hash `<prefix>:metrics:histograms`, written with the same
//! transition, and made cumulative when rendered, so `_count` is always the last bucket. A preset
//! gets series of its own when it is among the first [`MAX_PRESETS`] presets ever observed
//! (remembered with their first-seen time in `<prefix>:metrics:presets`); later ones are
//! rendered as `preset="other"`, which bounds the series a scrape returns whatever the catalog
//! grows to.
//!
//! Not here: when a job's counters are written (inside its `lifecycle` transition).

use std::collections::BTreeMap;
use std::sync::Mutex;

use redis::AsyncCommands;

use crate::job::{Job, JobState};
use crate::queue::Queue;

/// Upper bounds (seconds) of the buckets of the job duration histograms, `+Inf` implied.
pub const BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    3600.0,
];

/// Presets with histogram series of their own; presets first observed after them are `other`.
pub const MAX_PRESETS: usize = 200;

/// The label value of the presets past [`MAX_PRESETS`].
pub const OTHER_PRESET: &str = "other";

/// Seconds a job waited in the queue before an attempt started (from its submission).
pub const QUEUE_WAIT: &str = "mediahost_job_queue_wait_seconds";

/// Seconds an attempt ran (download to upload), per preset.
pub const RUN: &str = "mediahost_job_run_seconds";

/// Families written by earlier versions as summaries (`_sum`, `_count`): never rendered, since
/// the histograms replace them under other labels.
const SUPERSEDED: [&str; 2] = ["mediahost_job_wait_seconds", RUN];

#[derive(Clone)]
pub struct Metrics {
    redis: redis::aio::ConnectionManager,
    key: String,
    histograms: String,
    presets: String,
    cache_index: String,
}

/// What one call of [`Metrics::job_event_into`] records.
pub enum Event<'a> {
    /// A job was accepted.
    Accepted,
    /// The job (of this preset) started an attempt after waiting this long.
    Started { preset: &'a str, wait_s: f64 },
    /// The job reached `job.state` (terminal, or PENDING for a retry) after running this long.
    Ended { job: &'a Job, run_s: f64 },
    /// The job ended without running (cancelled while pending).
    Withdrawn { job: &'a Job },
}

impl Metrics {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        let keys = crate::lifecycle::Keys::new(prefix);
        Self {
            redis,
            key: keys.metrics(),
            histograms: keys.metrics_histograms(),
            presets: keys.metrics_presets(),
            cache_index: keys.cache_index(),
        }
    }

    /// Adds one observation of a histogram to a pipeline: its bucket, its sum, and the preset's
    /// first-seen time (kept only the first time, so the presets with own series never change).
    fn observe(&self, pipe: &mut redis::Pipeline, family: &str, preset: &str, value: f64) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        let first_seen = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        pipe.cmd("ZADD")
            .arg(&self.presets)
            .arg("NX")
            .arg(first_seen)
            .arg(preset)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(&self.histograms)
            .arg(histogram_field(family, preset, &bucket_label(value)))
            .arg(1)
            .ignore();
        pipe.cmd("HINCRBYFLOAT")
            .arg(&self.histograms)
            .arg(histogram_field(family, preset, "sum"))
            .arg(value)
            .ignore();
    }

    /// Adds to one counter in a pipeline (the one storing a transition).
    pub fn count_into(&self, pipe: &mut redis::Pipeline, series: &str, by: f64) {
        self.incr(pipe, series.to_owned(), by);
    }

    fn incr(&self, pipe: &mut redis::Pipeline, series: String, by: f64) {
        pipe.cmd("HINCRBYFLOAT")
            .arg(&self.key)
            .arg(series)
            .arg(by)
            .ignore();
    }

    /// Adds the counters of a job event to a pipeline (the one storing the transition).
    pub fn job_event_into(&self, pipe: &mut redis::Pipeline, event: Event<'_>) {
        match event {
            Event::Accepted => self.incr(pipe, "mediahost_jobs_accepted_total".into(), 1.0),
            Event::Withdrawn { job } => self.incr(
                pipe,
                format!(
                    "mediahost_jobs_finished_total{{state=\"{}\",preset=\"{}\",version=\"{}\"}}",
                    job.state.as_str(),
                    job.preset.name,
                    job.preset.version
                ),
                1.0,
            ),
            Event::Started { preset, wait_s } => self.observe(pipe, QUEUE_WAIT, preset, wait_s),
            Event::Ended { job, run_s } => {
                let preset = format!(
                    "preset=\"{}\",version=\"{}\"",
                    job.preset.name, job.preset.version
                );
                // A job answered from the result cache at submission never ran (no attempt).
                if job.attempts > 0 {
                    self.observe(pipe, RUN, &job.preset.name, run_s);
                }
                if let Some(error) = &job.error {
                    self.incr(
                        pipe,
                        format!("mediahost_job_failures_total{{code=\"{}\"}}", error.code),
                        1.0,
                    );
                }
                if job.state == JobState::Pending {
                    self.incr(pipe, "mediahost_job_retries_total".into(), 1.0);
                } else {
                    self.incr(
                        pipe,
                        format!(
                            "mediahost_jobs_finished_total{{state=\"{}\",{preset}}}",
                            job.state.as_str()
                        ),
                        1.0,
                    );
                }
            }
        }
    }

    /// Adds to one counter on its own (reclaims, ffmpeg CPU time).
    pub async fn add(&self, series: &str, by: f64) {
        let mut pipe = redis::pipe();
        self.incr(&mut pipe, series.to_owned(), by);
        if let Err(e) = pipe.query_async::<()>(&mut self.redis.clone()).await {
            tracing::debug!(error = %e, series, "could not update a metric");
        }
    }

    /// Every series, in the Prometheus text exposition format.
    pub async fn render(&self, queue: &Queue) -> redis::RedisResult<String> {
        let mut conn = self.redis.clone();
        let counters: BTreeMap<String, String> = conn.hgetall(&self.key).await?;
        let (depths, delayed) = queue.depth(&mut conn).await?;
        let mut out = String::new();
        out.push_str("# HELP mediahost_queue_depth Jobs queued or running, per priority.\n");
        out.push_str("# TYPE mediahost_queue_depth gauge\n");
        for (priority, n) in depths {
            out.push_str(&format!(
                "mediahost_queue_depth{{priority=\"{}\"}} {n}\n",
                priority.as_str()
            ));
        }
        out.push_str("# HELP mediahost_retries_waiting Jobs waiting for their retry backoff.\n");
        out.push_str("# TYPE mediahost_retries_waiting gauge\n");
        out.push_str(&format!("mediahost_retries_waiting {delayed}\n"));
        let entries: u64 = conn.zcard(&self.cache_index).await?;
        out.push_str(
            "# HELP mediahost_result_cache_entries Completed jobs the result cache holds.\n",
        );
        out.push_str("# TYPE mediahost_result_cache_entries gauge\n");
        out.push_str(&format!("mediahost_result_cache_entries {entries}\n"));
        let lookups = |result: &str| -> f64 {
            counters
                .get(&format!(
                    "mediahost_result_cache_lookups_total{{result=\"{result}\"}}"
                ))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let (hits, misses) = (lookups("hit"), lookups("miss"));
        let ratio = if hits + misses > 0.0 {
            hits / (hits + misses)
        } else {
            0.0
        };
        out.push_str(
            "# HELP mediahost_result_cache_hit_ratio Share of cacheable jobs answered from the \
             result cache, since the counters began.\n",
        );
        out.push_str("# TYPE mediahost_result_cache_hit_ratio gauge\n");
        out.push_str(&format!("mediahost_result_cache_hit_ratio {ratio:.4}\n"));
        let histograms: BTreeMap<String, String> = conn.hgetall(&self.histograms).await?;
        let named: Vec<String> = conn
            .zrange(&self.presets, 0, MAX_PRESETS as isize - 1)
            .await?;
        out.push_str(&render_histograms(
            &histograms,
            &named.into_iter().collect(),
        ));
        let mut last_family = String::new();
        for (series, value) in counters {
            let name = series.split('{').next().unwrap_or(&series);
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            if SUPERSEDED.contains(&family) {
                continue;
            }
            if family != last_family {
                let kind = if family == name { "counter" } else { "summary" };
                out.push_str(&format!("# TYPE {family} {kind}\n"));
                last_family = family.to_owned();
            }
            out.push_str(&format!("{series} {value}\n"));
        }
        Ok(out)
    }
}

/// The field of one histogram bucket (by its `le`) or sum (`sum`) in the histograms hash.
fn histogram_field(family: &str, preset: &str, slot: &str) -> String {
    format!("{family}|{preset}|{slot}")
}

/// The `le` of the smallest bucket holding `value`.
fn bucket_label(value: f64) -> String {
    BUCKETS
        .iter()
        .find(|&&le| value <= le)
        .map_or_else(|| "+Inf".to_owned(), |le| le.to_string())
}

/// The index in `BUCKETS` (or `BUCKETS.len()` for `+Inf`) a stored `le` counts in. A bound no
/// longer in `BUCKETS` counts in the next larger one, so a change of buckets loses nothing.
fn bucket_index(le: &str) -> Option<usize> {
    if le == "+Inf" {
        return Some(BUCKETS.len());
    }
    let le: f64 = le.parse().ok()?;
    Some(
        BUCKETS
            .iter()
            .position(|&b| le <= b)
            .unwrap_or(BUCKETS.len()),
    )
}

/// One histogram's buckets (not cumulative, the last `+Inf`) and sum.
#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
}

/// The histogram families in the text format from the fields of the histograms hash: presets
/// not in `named` are merged into `preset="other"`; buckets are made cumulative and `_count` is
/// the `+Inf` bucket, so a scrape is consistent even while observations are being added.
fn render_histograms(
    fields: &BTreeMap<String, String>,
    named: &std::collections::HashSet<String>,
) -> String {
    let mut by_series: BTreeMap<(&str, &str), Histogram> = BTreeMap::new();
    for (field, value) in fields {
        let mut parts = field.splitn(3, '|');
        let (Some(family), Some(preset), Some(slot)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(family) = [QUEUE_WAIT, RUN].into_iter().find(|f| *f == family) else {
            continue;
        };
        let preset = if named.contains(preset) {
            preset
        } else {
            OTHER_PRESET
        };
        let histogram = by_series.entry((family, preset)).or_default();
        if slot == "sum" {
            histogram.sum += value.parse::<f64>().unwrap_or(0.0);
        } else if let (Some(i), Ok(n)) = (bucket_index(slot), value.parse::<u64>()) {
            histogram.buckets[i] += n;
        }
    }
    let mut out = String::new();
    for (family, help) in [
        (
            QUEUE_WAIT,
            "Seconds from a job's submission to the start of an attempt, per preset.",
        ),
        (
            RUN,
            "Seconds an attempt of a job ran (download to upload), per preset.",
        ),
    ] {
        out.push_str(&format!(
            "# HELP {family} {help}\n# TYPE {family} histogram\n"
        ));
        for ((_, preset), histogram) in by_series
            .range((family, "")..)
            .take_while(|((f, _), _)| *f == family)
        {
            let preset = escape_label(preset);
            let mut cumulative = 0;
            for (i, n) in histogram.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                out.push_str(&format!(
                    "{family}_bucket{{preset=\"{preset}\",le=\"{le}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "{family}_sum{{preset=\"{preset}\"}} {}\n{family}_count{{preset=\"{preset}\"}} {cumulative}\n",
                histogram.sum
            ));
        }
    }
    out
}

/// A label value as the text format writes it.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// CPU seconds (user + system) of this process's reaped children, for the ffmpeg CPU counter:
/// each worker adds what accrued since it last looked.
pub struct ChildCpu {
    last: Mutex<f64>,
}

impl Default for ChildCpu {
    fn default() -> Self {
        Self {
            last: Mutex::new(children_cpu_s()),
        }
    }
}

impl ChildCpu {
    /// Seconds of child CPU since the previous call.
    pub fn take(&self) -> f64 {
        let now = children_cpu_s();
        let mut last = self.last.lock().expect("child cpu lock");
        let delta = (now - *last).max(0.0);
        *last = now;
        delta
    }
}

fn children_cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use super::*;

    /// Checks `text` against the Prometheus text exposition format (version 0.0.4): every line
    /// a comment, a `# HELP`/`# TYPE` of a valid name, or a sample with valid labels and value;
    /// one `# TYPE` per family, before its samples, which are not interleaved with another
    /// family's; and each histogram series has ascending `le` buckets ending in `+Inf`, counts
    /// that never decrease, `_count` equal to the `+Inf` bucket, and a `_sum`.
    pub(crate) fn check_exposition(text: &str) -> Result<(), String> {
        fn valid_name(name: &str) -> bool {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        /// A sample's name, labels and value.
        type Sample = (String, Vec<(String, String)>, f64);
        /// `name{a="x",b="y"} value` → (name, labels, value).
        fn sample(line: &str) -> Result<Sample, String> {
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| format!("no value: {line}"))?;
            let name = &line[..name_end];
            if !valid_name(name) {
                return Err(format!("bad metric name {name:?}: {line}"));
            }
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(body) = rest.strip_prefix('{') {
                let mut chars = body.char_indices().peekable();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == '}' {
                        end = Some(i);
                        break;
                    }
                    let start = i;
                    let mut eq = None;
                    for (j, c) in chars.by_ref() {
                        if c == '=' {
                            eq = Some(j);
                            break;
                        }
                    }
                    let eq = eq.ok_or_else(|| format!("label without '=': {line}"))?;
                    let label = &body[start..eq];
                    if !valid_name(label) || label.starts_with("__") {
                        return Err(format!("bad label name {label:?}: {line}"));
                    }
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err(format!("unquoted label value: {line}"));
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c @ ('\\' | '"'))) => value.push(c),
                                _ => return Err(format!("bad escape: {line}")),
                            },
                            Some((_, '"')) => break,
                            Some((_, '\n')) | None => {
                                return Err(format!("unterminated label value: {line}"));
                            }
                            Some((_, c)) => value.push(c),
                        }
                    }
                    if labels.iter().any(|(l, _)| l == label) {
                        return Err(format!("label {label} twice: {line}"));
                    }
                    labels.push((label.to_owned(), value));
                    if let Some(&(_, ',')) = chars.peek() {
                        chars.next();
                    }
                }
                let end = end.ok_or_else(|| format!("unclosed labels: {line}"))?;
                rest = &body[end + 1..];
            }
            let mut fields = rest.split_whitespace();
            let value = fields.next().ok_or_else(|| format!("no value: {line}"))?;
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().map_err(|_| format!("bad value {v:?}: {line}"))?,
            };
            if let Some(ts) = fields.next() {
                ts.parse::<i64>()
                    .map_err(|_| format!("bad timestamp {ts:?}: {line}"))?;
            }
            if fields.next().is_some() {
                return Err(format!("trailing text: {line}"));
            }
            Ok((name.to_owned(), labels, value))
        }

        let mut types: HashMap<String, String> = HashMap::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        // Histogram series (family, labels without le) → (buckets, sum, count).
        type Series = (Vec<(f64, f64)>, Option<f64>, Option<f64>);
        let mut histograms: BTreeMap<(String, String), Series> = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                match words.next() {
                    Some("TYPE") => {
                        let name = words.next().ok_or(format!("TYPE without name: {line}"))?;
                        let kind = words.next().ok_or(format!("TYPE without type: {line}"))?;
                        if !valid_name(name)
                            || !["counter", "gauge", "histogram", "summary", "untyped"]
                                .contains(&kind)
                            || words.next().is_some()
                        {
                            return Err(format!("bad TYPE line: {line}"));
                        }
                        if types.insert(name.to_owned(), kind.to_owned()).is_some()
                            || finished.contains(name)
                        {
                            return Err(format!("second TYPE, or TYPE after samples: {line}"));
                        }
                    }
                    Some("HELP") => {
                        let name = words.next().ok_or(format!("HELP without name: {line}"))?;
                        if !valid_name(name) {
                            return Err(format!("bad HELP line: {line}"));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let (name, labels, value) = sample(line)?;
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    matches!(
                        types.get(base).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                    .then(|| base.to_owned())
                })
                .unwrap_or_else(|| name.clone());
            if current.as_deref() != Some(family.as_str()) {
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                if finished.contains(&family) {
                    return Err(format!("samples of {family} are not together: {line}"));
                }
                current = Some(family.clone());
            }
            if types.get(&family).map(String::as_str) != Some("histogram") {
                continue;
            }
            let le = labels
                .iter()
                .find(|(l, _)| l == "le")
                .map(|(_, v)| v.clone());
            let key: Vec<String> = labels
                .iter()
                .filter(|(l, _)| l != "le")
                .map(|(l, v)| format!("{l}={v:?}"))
                .collect();
            let series = histograms
                .entry((family.clone(), key.join(",")))
                .or_default();
            match name.strip_prefix(family.as_str()) {
                Some("_bucket") => {
                    let le = le.ok_or_else(|| format!("bucket without le: {line}"))?;
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().map_err(|_| format!("bad le: {line}"))?
                    };
                    series.0.push((le, value));
                }
                Some("_sum") => series.1 = Some(value),
                Some("_count") => series.2 = Some(value),
                _ => return Err(format!("histogram sample {name} of no kind: {line}")),
            }
        }
        for ((family, labels), (buckets, sum, count)) in &histograms {
            let what = format!("{family}{{{labels}}}");
            if !buckets.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err(format!("{what}: le not ascending: {buckets:?}"));
            }
            if !buckets.windows(2).all(|w| w[0].1 <= w[1].1) {
                return Err(format!("{what}: buckets not cumulative: {buckets:?}"));
            }
            let Some(&(last_le, inf)) = buckets.last() else {
                return Err(format!("{what}: no buckets"));
            };
            if last_le != f64::INFINITY {
                return Err(format!("{what}: no +Inf bucket"));
            }
            if *count != Some(inf) {
                return Err(format!(
                    "{what}: _count {count:?} is not the +Inf bucket {inf}"
                ));
            }
            if sum.is_none() {
                return Err(format!("{what}: no _sum"));
            }
        }
        Ok(())
    }

    fn fields(entries: &[(&str, &str, &str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(family, preset, slot, value)| {
                (histogram_field(family, preset, slot), value.to_string())
            })
            .collect()
    }

    #[test]
    fn observations_land_in_the_smallest_bucket_that_holds_them() {
        assert_eq!(bucket_label(0.0), "0.05");
        assert_eq!(bucket_label(0.05), "0.05");
        assert_eq!(bucket_label(0.051), "0.1");
        assert_eq!(bucket_label(59.9), "60");
        assert_eq!(bucket_label(3600.0), "3600");
        assert_eq!(bucket_label(3600.5), "+Inf");
        assert_eq!(bucket_index("0.05"), Some(0));
        assert_eq!(bucket_index("+Inf"), Some(BUCKETS.len()));
        // A bound that is no longer a bucket counts in the next larger one.
        assert_eq!(bucket_index("0.07"), Some(1));
        assert_eq!(bucket_index("7200"), Some(BUCKETS.len()));
        assert_eq!(bucket_index("x"), None);
    }

    #[test]
    fn histograms_render_cumulative_buckets_consistent_with_their_count() {
        let stored = fields(&[
            (RUN, "audio-convert", "0.5", "2"),
            (RUN, "audio-convert", "10", "1"),
            (RUN, "audio-convert", "+Inf", "1"),
            (RUN, "audio-convert", "sum", "4000.75"),
            (QUEUE_WAIT, "audio-convert", "0.05", "4"),
            (QUEUE_WAIT, "audio-convert", "sum", "0.1"),
        ]);
        let named = HashSet::from(["audio-convert".to_owned()]);
        let text = render_histograms(&stored, &named);
        check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for expected in [
            "# TYPE mediahost_job_run_seconds histogram",
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="0.25"} 0"#,
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="0.5"} 2"#,
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="5"} 2"#,
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="10"} 3"#,
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="3600"} 3"#,
            r#"mediahost_job_run_seconds_bucket{preset="audio-convert",le="+Inf"} 4"#,
            r#"mediahost_job_run_seconds_sum{preset="audio-convert"} 4000.75"#,
            r#"mediahost_job_run_seconds_count{preset="audio-convert"} 4"#,
            r#"mediahost_job_queue_wait_seconds_bucket{preset="audio-convert",le="+Inf"} 4"#,
            r#"mediahost_job_queue_wait_seconds_count{preset="audio-convert"} 4"#,
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "no {expected} in\n{text}"
            );
        }
    }

    #[test]
    fn presets_past_the_cap_are_merged_into_other() {
        let stored = fields(&[
            (RUN, "a", "1", "1"),
            (RUN, "a", "sum", "1"),
            (RUN, "b", "1", "2"),
            (RUN, "b", "sum", "2"),
            (RUN, "c", "60", "3"),
            (RUN, "c", "sum", "90"),
        ]);
        let named = HashSet::from(["a".to_owned()]);
        let text = render_histograms(&stored, &named);
        check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(
            text.contains(r#"mediahost_job_run_seconds_count{preset="a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mediahost_job_run_seconds_count{preset="other"} 5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mediahost_job_run_seconds_bucket{preset="other",le="1"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mediahost_job_run_seconds_sum{preset="other"} 92"#),
            "{text}"
        );
        assert!(!text.contains(r#"preset="b""#), "{text}");
    }

    #[test]
    fn the_checker_rejects_what_prometheus_would() {
        let good = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
        check_exposition(good).unwrap();
        for bad in [
            // Not cumulative.
            "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
            // _count other than the +Inf bucket.
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n",
            // No +Inf bucket.
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n",
            // A family's samples split by another's.
            "a 1\nb 1\na{x=\"y\"} 2\n",
            // Unquoted label value, bad name, bad value, TYPE twice.
            "a{x=y} 1\n",
            "1a 1\n",
            "a one\n",
            "# TYPE a counter\n# TYPE a counter\na 1\n",
        ] {
            assert!(check_exposition(bad).is_err(), "accepted:\n{bad}");
        }
    }

    /// The counters of real transitions, written by the lifecycle's scripts, as `/metrics`
    /// renders them.
    #[tokio::test]
    async fn metrics_from_redis_render_as_valid_exposition() {
        let server = crate::lifecycle::tests::redis_server().await;
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
        let metrics = Metrics::new(manager.clone(), "t");
        let queue = Queue::new("t", std::time::Duration::from_secs(30));
        let mut pipe = redis::pipe();
        for (preset, wait_s) in [
            ("audio-convert", 0.02),
            ("audio-convert", 7.0),
            ("web-video", 4000.0),
        ] {
            metrics.job_event_into(&mut pipe, Event::Started { preset, wait_s });
        }
        // What earlier versions wrote: summaries, superseded by the histograms.
        for legacy in [
            "mediahost_job_wait_seconds_sum",
            "mediahost_job_wait_seconds_count",
            r#"mediahost_job_run_seconds_count{preset="a",version="1.0.0"}"#,
        ] {
            metrics.count_into(&mut pipe, legacy, 1.0);
        }
        metrics.count_into(&mut pipe, "mediahost_job_retries_total", 1.0);
        pipe.query_async::<()>(&mut manager.clone()).await.unwrap();
        let text = metrics.render(&queue).await.unwrap();
        assert!(!text.contains("mediahost_job_wait_seconds"), "{text}");
        assert!(!text.contains("version=\"1.0.0\""), "{text}");
        assert!(text.contains("mediahost_job_retries_total 1"), "{text}");
        check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for expected in [
            r#"mediahost_job_queue_wait_seconds_bucket{preset="audio-convert",le="0.05"} 1"#,
            r#"mediahost_job_queue_wait_seconds_bucket{preset="audio-convert",le="10"} 2"#,
            r#"mediahost_job_queue_wait_seconds_count{preset="audio-convert"} 2"#,
            r#"mediahost_job_queue_wait_seconds_sum{preset="audio-convert"} 7.02"#,
            r#"mediahost_job_queue_wait_seconds_bucket{preset="web-video",le="3600"} 0"#,
            r#"mediahost_job_queue_wait_seconds_count{preset="web-video"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "no {expected} in\n{text}"
            );
        }
    }
}
