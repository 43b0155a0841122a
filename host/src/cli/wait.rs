//! Following one job until it ends, for `mediahost job wait` and `job submit --wait`: its event
//! stream read as it arrives, shown as a progress bar per output on a terminal and as a plain
//! line per change elsewhere (logs, CI, pipes).
//!
//! A stream that drops before the job ends is reopened (a few times in a row at most, with a
//! growing pause), then the job is polled instead; a host that refuses streams
//! (`HOST_OVERLOADED`) is polled at once.
//!
//! Not here: parsing the stream (`events`), printing the outcome (`job`).

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mediahost_api::{ErrorCode, Job, OutputPhase, OutputState};
use reqwest::Method;
use uuid::Uuid;

use super::events::{SseParser, job_frame, job_of};
use super::{Api, CliError, stderr_is_terminal};

/// Streams opened in a row without an event before the CLI polls instead.
const MAX_RECONNECTS: u32 = 5;
/// A stream silent this long is taken for dropped (the host sends a keep-alive every 15 s).
const STREAM_IDLE: Duration = Duration::from_secs(45);
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Follows job `id` until it ends (or `timeout` passes) and returns it as it ended.
pub(super) async fn follow(
    api: &Api,
    id: Uuid,
    timeout: Option<Duration>,
) -> Result<Job, CliError> {
    let mut follower = Follower {
        display: Display::new(stderr_is_terminal()),
        last: None,
    };
    let result = match timeout {
        None => follower.run(api, id).await,
        Some(limit) => match tokio::time::timeout(limit, follower.run(api, id)).await {
            Ok(result) => result,
            Err(_) => Err(CliError::Other(format!(
                "gave up waiting after {} s: job {id} is still {}; it goes on (wait again, or \
                 cancel it with `mediahost job cancel {id}`)",
                limit.as_secs_f64(),
                follower
                    .last
                    .as_ref()
                    .map_or("unknown", |j| j.state.as_str())
            ))),
        },
    };
    follower.display.finish(result.as_ref().ok());
    result
}

struct Follower {
    display: Display,
    /// The job as last seen.
    last: Option<Job>,
}

/// How one opened stream ended without an error the user must see.
enum Streamed {
    /// The job reached a terminal state.
    Ended(Box<Job>),
    /// The stream broke off or ended early, after `events` events.
    Dropped { events: usize, why: String },
}

impl Follower {
    async fn run(&mut self, api: &Api, id: Uuid) -> Result<Job, CliError> {
        let mut in_a_row = 0;
        loop {
            match self.stream(api, id).await {
                Ok(Streamed::Ended(job)) => return Ok(*job),
                Ok(Streamed::Dropped { events, why }) => {
                    in_a_row = if events > 0 { 1 } else { in_a_row + 1 };
                    if in_a_row > MAX_RECONNECTS {
                        self.display
                            .note(&format!("the event stream keeps failing ({why}); polling"));
                        break;
                    }
                    self.display
                        .note(&format!("the event stream dropped ({why}); reconnecting"));
                    tokio::time::sleep(Duration::from_millis(250 << in_a_row.min(4))).await;
                }
                Err(CliError::Problem { problem, .. })
                    if problem.code == ErrorCode::HostOverloaded =>
                {
                    self.display.note(&format!("{}; polling", problem.detail));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.poll(api, id).await
    }

    /// Opens the job's event stream and shows each event until the job ends or the stream does.
    async fn stream(&mut self, api: &Api, id: Uuid) -> Result<Streamed, CliError> {
        let request = api
            .request(Method::GET, &format!("/v1/jobs/{id}/events"))
            .header("accept", "text/event-stream");
        let mut response = match request.send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return Err(super::refusal(r).await),
            Err(e) => {
                return Ok(Streamed::Dropped {
                    events: 0,
                    why: format!("cannot reach the host: {}", super::with_causes(&e)),
                });
            }
        };
        let mut parser = SseParser::default();
        let mut events = 0;
        loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => {
                    let why = "it ended before the job did".to_owned();
                    return Ok(Streamed::Dropped { events, why });
                }
                Ok(Err(e)) => {
                    return Ok(Streamed::Dropped {
                        events,
                        why: super::with_causes(&e),
                    });
                }
                Err(_) => {
                    let why = format!("nothing for {} s", STREAM_IDLE.as_secs());
                    return Ok(Streamed::Dropped { events, why });
                }
            };
            for frame in parser.feed(&chunk).into_iter().filter_map(job_frame) {
                events += 1;
                let job = job_of(&frame).map_err(|e| {
                    CliError::Other(format!(
                        "an event of job {id} is not a job this CLI reads: {e}"
                    ))
                })?;
                if let Some(ended) = self.seen(job) {
                    return Ok(Streamed::Ended(Box::new(ended)));
                }
            }
        }
    }

    async fn poll(&mut self, api: &Api, id: Uuid) -> Result<Job, CliError> {
        loop {
            let job: Job = api
                .send(api.request(Method::GET, &format!("/v1/jobs/{id}")))
                .await?;
            if let Some(ended) = self.seen(job) {
                return Ok(ended);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Shows `job`; returns it when it has ended.
    fn seen(&mut self, job: Job) -> Option<Job> {
        self.display.show(&job);
        let ended = job.state.is_terminal().then(|| job.clone());
        self.last = Some(job);
        ended
    }
}

/// Where progress goes: bars on a terminal, lines elsewhere (both on stderr, so stdout keeps
/// only the outcome).
enum Display {
    Bars(Bars),
    Lines { last: String },
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    outputs: BTreeMap<String, ProgressBar>,
}

/// Bars count in thousandths.
const BAR_LEN: u64 = 1000;

impl Display {
    fn new(terminal: bool) -> Self {
        if !terminal {
            return Self::Lines {
                last: String::new(),
            };
        }
        let multi = MultiProgress::new();
        let overall = multi.add(bar("job"));
        Self::Bars(Bars {
            multi,
            overall,
            outputs: BTreeMap::new(),
        })
    }

    fn show(&mut self, job: &Job) {
        match self {
            Self::Lines { last } => {
                let line = progress_line(job);
                if line != *last {
                    eprintln!("{line}");
                    *last = line;
                }
            }
            Self::Bars(bars) => {
                bars.overall.set_position(thousandths(job.progress));
                bars.overall.set_message(match job.attempts {
                    0 | 1 => job.state.as_str().to_owned(),
                    n => format!("{} (attempt {n})", job.state.as_str()),
                });
                for (name, output) in &job.output_progress {
                    let b = bars
                        .outputs
                        .entry(name.clone())
                        .or_insert_with(|| bars.multi.add(bar(name)));
                    b.set_position(thousandths(output.progress));
                    b.set_message(phase_name(output.state));
                }
            }
        }
    }

    fn note(&self, message: &str) {
        match self {
            Self::Lines { .. } => eprintln!("mediahost: {message}"),
            Self::Bars(bars) => {
                let _ = bars.multi.println(format!("mediahost: {message}"));
            }
        }
    }

    /// Leaves the bars as the job ended (or as they stood, when following failed).
    fn finish(self, ended: Option<&Job>) {
        let Self::Bars(bars) = self else { return };
        let Some(job) = ended else {
            bars.overall.abandon();
            bars.outputs.values().for_each(ProgressBar::abandon);
            return;
        };
        for (name, b) in &bars.outputs {
            match job.outputs.iter().find(|o| &o.name == name) {
                Some(o) if o.state == OutputState::Completed => {
                    b.set_position(BAR_LEN);
                    b.finish_with_message("COMPLETED");
                }
                Some(_) => b.abandon_with_message("FAILED"),
                None => b.abandon(),
            }
        }
        if job.state == mediahost_api::JobState::Completed {
            bars.overall.set_position(BAR_LEN);
            bars.overall.finish_with_message("COMPLETED");
        } else {
            bars.overall.abandon_with_message(job.state.as_str());
        }
    }
}

fn bar(label: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:32}] {percent:>3}% {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    ProgressBar::new(BAR_LEN)
        .with_style(style)
        .with_prefix(label.to_owned())
}

fn thousandths(fraction: f64) -> u64 {
    (fraction.clamp(0.0, 1.0) * BAR_LEN as f64).round() as u64
}

/// A whole percentage that reaches 100 only when the work is done.
fn percent(fraction: f64) -> u32 {
    (fraction.clamp(0.0, 1.0) * 100.0).floor() as u32
}

fn phase_name(phase: OutputPhase) -> &'static str {
    match phase {
        OutputPhase::Pending => "PENDING",
        OutputPhase::Running => "RUNNING",
        OutputPhase::Storing => "STORING",
        OutputPhase::Completed => "COMPLETED",
        OutputPhase::Failed => "FAILED",
    }
}

/// `PROCESSING 42% master=RUNNING 40% poster=COMPLETED 100%`: the job's state and progress, then
/// each output's phase and progress.
fn progress_line(job: &Job) -> String {
    let mut line = format!("{} {}%", job.state.as_str(), percent(job.progress));
    if job.attempts > 1 {
        line.push_str(&format!(" (attempt {})", job.attempts));
    }
    for (name, output) in &job.output_progress {
        line.push_str(&format!(
            " {name}={} {}%",
            phase_name(output.state),
            percent(output.progress)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediahost_api::OutputProgress;

    fn job(value: serde_json::Value) -> Job {
        let mut base = serde_json::json!({
            "id": "6f1c0f5e-3f5a-4d8e-9a51-0d1c2b3a4f5e", "state": "PROCESSING",
            "progress": 0.0, "preset": {"name": "p", "version": "1.0.0"}, "inputs": {},
            "params": {}, "outputs": [], "outcome": null, "report": null, "error": null,
            "attempts": 1, "max_attempts": 3, "priority": "normal", "next_attempt_at": null,
            "history": [], "replay_of": null, "cache": true, "cached": null, "webhook": null,
            "verbose": false, "timings": {"created_at": "2026-01-01T00:00:00Z",
            "started_at": null, "finished_at": null, "queue_s": null, "run_s": null,
            "ffmpeg_s": null}
        });
        for (k, v) in value.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_plain_line_shows_the_job_and_each_output() {
        let mut j = job(serde_json::json!({"progress": 0.425}));
        j.output_progress.insert(
            "master".into(),
            OutputProgress {
                state: OutputPhase::Running,
                progress: 0.4,
            },
        );
        j.output_progress.insert(
            "poster".into(),
            OutputProgress {
                state: OutputPhase::Completed,
                progress: 1.0,
            },
        );
        assert_eq!(
            progress_line(&j),
            "PROCESSING 42% master=RUNNING 40% poster=COMPLETED 100%"
        );
        let retried = job(serde_json::json!({"state": "PENDING", "attempts": 2}));
        assert_eq!(progress_line(&retried), "PENDING 0% (attempt 2)");
    }

    #[test]
    fn the_bars_follow_a_job_to_its_end() {
        // Drawn to stderr, which is no terminal under `cargo test`: indicatif draws nothing,
        // but the templates are parsed and the bars kept.
        let mut display = Display::new(true);
        let mut j = job(serde_json::json!({"progress": 0.5}));
        j.output_progress.insert(
            "master".into(),
            OutputProgress {
                state: OutputPhase::Running,
                progress: 0.25,
            },
        );
        display.show(&j);
        let Display::Bars(bars) = &display else {
            panic!("bars on a terminal")
        };
        assert_eq!(bars.overall.position(), 500);
        assert_eq!(bars.outputs["master"].position(), 250);
        assert_eq!(bars.outputs["master"].message(), "RUNNING");
        display.finish(Some(&job(serde_json::json!({"state": "FAILED"}))));
    }

    #[test]
    fn almost_done_is_not_shown_as_done() {
        assert_eq!(percent(0.999), 99);
        assert_eq!(percent(1.0), 100);
        assert_eq!(percent(-1.0), 0);
        assert_eq!(thousandths(2.0), BAR_LEN);
    }
}
