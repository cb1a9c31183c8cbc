//! `reroute bench rinha`: the Rinha de Backend 2025 test, reproduced.
//!
//! Two official k6 scripts ([`scenario`]): the 60 s preview (`rinha.js`, the
//! default) and the 300 s final (`rinha-final.js`, `--scenario final`). The
//! same steps as the script, in the same order:
//!
//! 1. setup: token set on both processors, both purged, the backend purged
//!    (optional for a backend: any failure there is ignored);
//! 2. for `--duration` (the script's 60 s or 300 s), at once:
//!    [`users`] ramp from 1 to `--max-users` paying the script's amount and
//!    sleeping 1 s, the [`auditor`] compares summaries every ~10 s, and the
//!    [`stages`] put delays and failures on the processors on schedule
//!    ([`timeline`]);
//! 3. teardown: the summaries over the script's last 70 s or 360 s;
//! 4. the [`crate::score`], from the backend's summary (preview) or the
//!    processors' (final), written as the official result JSON ([`report`]),
//!    with the final's stage timeline, and printed as a readable
//!    [`summary`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::header::HeaderValue;
use reroute_core::{Timestamp, Window};
use tokio::time::Instant;

pub mod api;
pub mod auditor;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod stages;
pub mod summary;
pub mod timeline;
pub mod users;

pub use report::RinhaReport;
pub use scenario::{FINAL_STAGES, PREVIEW_STAGES, ProcessorSetting, Stage};
pub use scenario::{Scenario, Script};

use crate::duration::{millis, parse_duration};
use crate::http::{Endpoint, HttpStats};
use crate::processors::{INITIAL_TOKEN, ProcessorSummary};
use crate::score::{self, ProcessorShare, ScoreInputs};
use api::{Backend, Services, before, zeros_on_error};
use progress::{Live, Progress};
use report::{HttpDetails, PaymentDetails, RunDetails, StageRow, TeardownDetails};
use scenario::ScoreSource;
use timeline::Timeline;

/// `reroute bench rinha`: the official test's flags, with its defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct RinhaArgs {
    /// Which official script to reproduce. Its length, users, amount,
    /// stages, audit margin, teardown window and score rules come with it;
    /// the fees are the processors' own (start the simulator with the
    /// final's).
    #[arg(long, value_enum, value_name = "SCENARIO", default_value_t = Scenario::Preview)]
    pub scenario: Scenario,

    /// Base URL of the backend under test (the load balancer in front of it).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9999")]
    pub backend: Endpoint,

    /// Base URL of the `default` payment processor (fee 5%; 7% in the final).
    #[arg(
        long = "default",
        value_name = "URL",
        default_value = "http://127.0.0.1:8001"
    )]
    pub default_processor: Endpoint,

    /// Base URL of the `fallback` payment processor (fee 15%; 10% in the final).
    #[arg(
        long = "fallback",
        value_name = "URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub fallback_processor: Endpoint,

    /// Admin token put on both processors at setup and sent as
    /// X-Rinha-Token on every admin call.
    #[arg(long, value_name = "TOKEN", default_value = INITIAL_TOKEN)]
    pub token: String,

    /// Virtual users reached at the end of the linear ramp (which starts at 1)
    /// [default: 550 for the preview, 603 for the final].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_users: Option<u32>,

    /// Length of the load (60s, 5s, 2m, 1500ms) [default: 60s for the
    /// preview, 300s for the final]. Stage times, the ramp and the audit
    /// interval scale with it; settings, timeouts and windows do not.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Write the result JSON to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Name written in the result's `participante` field.
    #[arg(long, value_name = "NAME", default_value = "anonymous")]
    pub participant: String,

    /// Do not draw the progress bar (it is hidden anyway when stderr is not
    /// a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl RinhaArgs {
    pub fn into_options(self) -> RinhaOptions {
        let script = self.scenario.script();
        RinhaOptions {
            token: self.token,
            max_users: self.max_users.unwrap_or(script.max_users),
            duration: self.duration.unwrap_or(script.duration),
            participant: self.participant,
            progress: !self.no_progress,
            ..RinhaOptions::of(
                self.scenario,
                self.backend,
                self.default_processor,
                self.fallback_processor,
            )
        }
    }
}

/// Everything a run needs. [`RinhaOptions::new`] gives the official preview,
/// [`RinhaOptions::of`] either script.
#[derive(Debug, Clone)]
pub struct RinhaOptions {
    /// The script whose rules the run follows (amount, audit margin and
    /// counting, teardown window, score source).
    pub scenario: Scenario,
    pub backend: Endpoint,
    pub default: Endpoint,
    pub fallback: Endpoint,
    pub token: String,
    pub max_users: u32,
    pub duration: Duration,
    /// On the script's timeline (60 s or 300 s); scaled to `duration`.
    pub stages: Vec<Stage>,
    pub participant: String,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl RinhaOptions {
    /// The official preview (550 users, 60 s, the six stages, token `123`)
    /// against these three services, without a progress bar.
    pub fn new(backend: Endpoint, default: Endpoint, fallback: Endpoint) -> Self {
        Self::of(Scenario::Preview, backend, default, fallback)
    }

    /// `scenario`'s script as it is (its users, length and stages, token
    /// `123`) against these three services, without a progress bar.
    pub fn of(
        scenario: Scenario,
        backend: Endpoint,
        default: Endpoint,
        fallback: Endpoint,
    ) -> Self {
        let script = scenario.script();
        Self {
            scenario,
            backend,
            default,
            fallback,
            token: INITIAL_TOKEN.to_owned(),
            max_users: script.max_users,
            duration: script.duration,
            stages: script.stages.to_vec(),
            participant: "anonymous".to_owned(),
            progress: false,
        }
    }
}

/// Runs the test and scores it. Fails only where the official script aborts
/// (a processor refusing setup or a stage); everything else is measured.
pub async fn run(options: RinhaOptions) -> anyhow::Result<RinhaReport> {
    let token = HeaderValue::from_str(&options.token)
        .ok()
        .filter(|t| !t.is_empty())
        .context("the token must be non-empty printable ASCII")?;
    let script = options.scenario.script();
    let services = Services {
        backend: Arc::new(options.backend),
        default: Arc::new(options.default),
        fallback: Arc::new(options.fallback),
        token,
    };
    let timeline = Timeline::new(script, options.duration, options.max_users, &options.stages);
    let live = Arc::new(Live::default());
    let mut warnings = Vec::new();
    let started_at = Timestamp::now();

    // Setup. The admin user's connections serve the teardown too.
    let (mut default, mut fallback) = services.processors();
    let mut backend = Backend::new(services.backend.clone());
    default.set_token().await.context("setup")?;
    fallback.set_token().await.context("setup")?;
    default.purge().await.context("setup")?;
    fallback.purge().await.context("setup")?;
    if let Err(e) = backend.purge().await {
        warnings.push(format!(
            "setup: {e:#} (ignored: the backend purge is optional)"
        ));
    }

    // The load, the audits and the stages, side by side.
    let progress = Progress::new(
        options.progress,
        progress_prefix(options.scenario),
        timeline.duration(),
        timeline.stages().len(),
    );
    let started = Instant::now();
    let load_started_at = Timestamp::now();
    let load = async {
        tokio::try_join!(
            users::run(
                services.backend.clone(),
                script.amount_json,
                &timeline,
                started,
                live.clone()
            ),
            async {
                let audits = auditor::run(&services, &timeline, script.counting, started, &live);
                Ok::<_, anyhow::Error>(audits.await)
            },
            async {
                let stages = stages::run(&services, &timeline, started, &live);
                stages.await.context("applying a stage")
            },
        )
    };
    let outcome = tokio::select! {
        outcome = load => outcome,
        never = progress.follow(&live, started) => match never {},
    };
    let (mut crowd, mut audits, stage_http) = match outcome {
        Ok(parts) => parts,
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    };

    warnings.append(&mut audits.warnings);

    // Teardown: the summaries the score is computed from. The final's script
    // reads only the processors'; the backend's is then read on a connection
    // of its own, kept out of the p99 as a request the script does not make.
    progress.note("teardown: reading summaries");
    let to = Timestamp::now();
    let window = Window {
        from: before(to, timeline.teardown_window()),
        to,
    };
    let default_books = zeros_on_error(default.summary(window).await, "teardown", &mut warnings);
    let fallback_books = zeros_on_error(fallback.summary(window).await, "teardown", &mut warnings);
    let reported = match script.score_source {
        ScoreSource::Backend => backend.summary(window).await,
        ScoreSource::Processors => Backend::new(services.backend.clone()).summary(window).await,
    };
    let reported = zeros_on_error(reported, "teardown", &mut warnings);

    // The stage timeline: the processors' books per stage span, also
    // outside the script's requests.
    progress.note("teardown: reading the books per stage");
    let windows = stage_windows(&timeline, load_started_at, to);
    let books = stage_books(&services, windows, &mut warnings).await;
    let stage_rows = StageRow::build(&timeline, std::mem::take(&mut crowd.stages), &books);
    progress.finish();

    let inconsistencies = audits.inconsistencies();

    // Every request of the test, admin calls included, as k6 counts them.
    let mut http = HttpStats::default();
    http.merge(default.into_stats());
    http.merge(fallback.into_stats());
    http.merge(backend.into_stats());
    http.merge(stage_http);
    http.merge(audits.http);
    http.merge(crowd.http);
    http.durations.sort_unstable();
    let p99_ms = score::percentile(&http.durations, score::P99);

    // Whose books are scored; the fee rates are always the processors' own.
    let share = |reported: api::Totals, books: &ProcessorSummary| ProcessorShare {
        requests: reported.total_requests,
        amount: reported.total_amount,
        fee_rate: books.fee_per_transaction,
    };
    let booked = |books: &ProcessorSummary| api::Totals {
        total_requests: books.total_requests,
        total_amount: books.total_amount,
    };
    let (default_share, fallback_share) = match script.score_source {
        ScoreSource::Backend => (
            share(reported.default, &default_books),
            share(reported.fallback, &fallback_books),
        ),
        ScoreSource::Processors => (
            share(booked(&default_books), &default_books),
            share(booked(&fallback_books), &fallback_books),
        ),
    };
    let inputs = ScoreInputs {
        p99_ms,
        inconsistencies,
        accepted: crowd.accepted,
        default: default_share,
        fallback: fallback_share,
    };

    let details = RunDetails {
        scenario: options.scenario,
        started_at,
        finished_at: Timestamp::now(),
        backend: services.backend.to_string(),
        default: services.default.to_string(),
        fallback: services.fallback.to_string(),
        duration_ms: millis(timeline.duration()),
        max_users: timeline.max_users(),
        users_started: crowd.users,
        p99_ms_exact: p99_ms,
        http: HttpDetails {
            requests: http.requests,
            expected_responses: http.durations.len() as u64,
            timeouts: http.timeouts,
            errors: http.errors,
        },
        payments: PaymentDetails {
            sent: crowd.accepted + crowd.failed,
            accepted: crowd.accepted,
            failed: crowd.failed,
            statuses: crowd.statuses,
        },
        audits: audits.audits,
        teardown: TeardownDetails {
            from: window.from,
            to: window.to,
            backend: reported,
            default: default_books,
            fallback: fallback_books,
        },
        stages: stage_rows,
        warnings,
    };
    Ok(RinhaReport::new(options.participant, &inputs, details))
}

/// The bar's label: `rinha` for the preview, as before; `rinha final`.
fn progress_prefix(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Preview => "rinha",
        Scenario::Final => "rinha final",
    }
}

/// What each processor booked in each of `windows`, `(default, fallback)`
/// requests, read by `requestedAt` on connections of their own (not the
/// script's requests, so not in the p99). A failed read counts as zeros.
async fn stage_books(
    services: &Services,
    windows: Vec<Window>,
    warnings: &mut Vec<String>,
) -> Vec<(u64, u64)> {
    let (mut default, mut fallback) = services.processors();
    let mut books = Vec::new();
    for window in windows {
        let (d, f) = tokio::join!(default.summary(window), fallback.summary(window));
        let [d, f] = [d, f].map(|r| zeros_on_error(r, "stage books", warnings).total_requests);
        books.push((d, f));
    }
    books
}

/// Each stage span as a window of wall-clock time, for the processors'
/// summaries (inclusive at both ends, so each ends 1 ms before the next
/// begins). The last one runs to the teardown, to book what the backend paid
/// after the load ended.
fn stage_windows(
    timeline: &Timeline,
    load_started_at: Timestamp,
    teardown_at: Timestamp,
) -> Vec<Window> {
    let at =
        |d: Duration| load_started_at.plus_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let spans = timeline.stage_spans();
    let last = spans.len().saturating_sub(1);
    spans
        .into_iter()
        .enumerate()
        .map(|(i, (from, to))| Window {
            from: at(from),
            to: if i == last {
                teardown_at
            } else {
                at(to).plus_millis(-1)
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RinhaArgs,
    }

    #[test]
    fn the_flags_default_to_the_official_test() {
        let options = Cli::parse_from(["rinha"]).args.into_options();
        assert_eq!(options.backend.to_string(), "http://127.0.0.1:9999");
        assert_eq!(options.default.to_string(), "http://127.0.0.1:8001");
        assert_eq!(options.fallback.to_string(), "http://127.0.0.1:8002");
        assert_eq!(options.token, "123");
        assert_eq!(options.max_users, 550);
        assert_eq!(options.duration, Duration::from_secs(60));
        assert_eq!(options.stages, PREVIEW_STAGES.to_vec());
        assert_eq!(options.scenario, Scenario::Preview);
        assert!(options.progress);
    }

    #[test]
    fn the_final_scenario_brings_its_users_length_and_stages() {
        let options = Cli::parse_from(["rinha", "--scenario", "final"])
            .args
            .into_options();
        assert_eq!(options.scenario, Scenario::Final);
        assert_eq!(options.max_users, 603);
        assert_eq!(options.duration, Duration::from_secs(300));
        assert_eq!(options.stages, FINAL_STAGES.to_vec());
        // --max-users and --duration still override them.
        let argv = "rinha --scenario final --max-users 60 --duration 30s";
        let options = Cli::parse_from(argv.split(' ')).args.into_options();
        assert_eq!(
            (options.max_users, options.duration),
            (60, Duration::from_secs(30))
        );
        assert_eq!(options.stages, FINAL_STAGES.to_vec());
    }

    #[test]
    fn the_help_lists_both_scenarios() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--scenario <SCENARIO>"), "{help}");
        assert!(help.contains("preview"), "{help}");
        assert!(help.contains("rinha-final.js"), "{help}");
        assert!(help.contains("[default: preview]"), "{help}");
    }

    #[test]
    fn stage_windows_tile_the_run_up_to_the_teardown() {
        let timeline = Timeline::new(&scenario::FINAL, Duration::from_secs(30), 60, &FINAL_STAGES);
        let start = Timestamp::from_millis(1_000_000);
        let teardown = Timestamp::from_millis(1_040_000);
        let windows = stage_windows(&timeline, start, teardown);
        assert_eq!(windows.len(), 10);
        assert_eq!(windows[0].from, start);
        assert_eq!(windows[0].to, Timestamp::from_millis(1_002_999));
        assert_eq!(windows[1].from, Timestamp::from_millis(1_003_000));
        assert_eq!(windows[9].from, Timestamp::from_millis(1_027_000));
        assert_eq!(windows[9].to, teardown);
        assert!(
            windows
                .windows(2)
                .all(|w| w[0].to.plus_millis(1) == w[1].from)
        );
    }

    #[test]
    fn the_flags_take_other_values() {
        let cli = Cli::parse_from(
            "rinha --backend http://localhost:9998 --max-users 20 --duration 5s \
             --out result.json --token secret"
                .split_whitespace(),
        );
        assert_eq!(cli.args.out, Some(PathBuf::from("result.json")));
        let options = cli.args.into_options();
        assert_eq!(options.backend.to_string(), "http://localhost:9998");
        assert_eq!(options.max_users, 20);
        assert_eq!(options.duration, Duration::from_secs(5));
        assert_eq!(options.token, "secret");
    }

    #[test]
    fn the_flags_refuse_nonsense() {
        assert!(Cli::try_parse_from(["rinha", "--max-users", "0"]).is_err());
        assert!(Cli::try_parse_from(["rinha", "--duration", "0s"]).is_err());
        assert!(Cli::try_parse_from(["rinha", "--backend", "https://x"]).is_err());
        assert!(Cli::try_parse_from(["rinha", "--scenario", "semifinal"]).is_err());
    }
}
