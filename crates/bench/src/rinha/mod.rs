//! `reroute bench rinha`: the Rinha de Backend 2025 test, reproduced.
//!
//! The same steps as the official k6 script, in the same order:
//!
//! 1. setup: token set on both processors, both purged, the backend purged
//!    (optional for a backend: any failure there is ignored);
//! 2. for `--duration` (60 s), at once:
//!    [`users`] ramp from 1 to `--max-users` paying 19.90 and sleeping 1 s,
//!    the [`auditor`] compares summaries every ~10 s, and the [`stages`] put
//!    delays and failures on the processors on schedule ([`timeline`]);
//! 3. teardown: the backend's and processors' summaries over the last 70 s;
//! 4. the [`crate::score`], written as the official result JSON ([`report`]).

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
pub mod stages;
pub mod timeline;
pub mod users;

pub use report::RinhaReport;
pub use timeline::{OFFICIAL_STAGES, ProcessorSetting, Stage};

use crate::duration::parse_duration;
use crate::http::{Endpoint, HttpStats};
use crate::score::{self, ProcessorShare, Score, ScoreInputs};
use api::{Backend, BackendSummary, Processor, ProcessorSummary, before};
use auditor::Sources;
use progress::{Live, Progress};
use report::{HttpDetails, Parts, PaymentDetails, RunDetails, TeardownDetails};
use timeline::Timeline;

/// `reroute bench rinha`: the official test's flags, with its defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct RinhaArgs {
    /// Base URL of the backend under test (the load balancer in front of it).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9999")]
    pub backend: Endpoint,

    /// Base URL of the `default` payment processor (fee 5%).
    #[arg(
        long = "default",
        value_name = "URL",
        default_value = "http://127.0.0.1:8001"
    )]
    pub default_processor: Endpoint,

    /// Base URL of the `fallback` payment processor (fee 15%).
    #[arg(
        long = "fallback",
        value_name = "URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub fallback_processor: Endpoint,

    /// Admin token put on both processors at setup and sent as
    /// X-Rinha-Token on every admin call.
    #[arg(long, value_name = "TOKEN", default_value = api::INITIAL_TOKEN)]
    pub token: String,

    /// Virtual users reached at the end of the linear ramp (which starts at 1).
    #[arg(long, value_name = "N", default_value_t = 550,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_users: u32,

    /// Length of the load (60s, 5s, 2m, 1500ms). Stage times, the ramp and
    /// the audit interval scale with it; settings and timeouts do not.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

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
        RinhaOptions {
            token: self.token,
            max_users: self.max_users,
            duration: self.duration,
            participant: self.participant,
            progress: !self.no_progress,
            ..RinhaOptions::new(
                self.backend,
                self.default_processor,
                self.fallback_processor,
            )
        }
    }
}

/// Everything a run needs. [`RinhaOptions::new`] gives the official test.
#[derive(Debug, Clone)]
pub struct RinhaOptions {
    pub backend: Endpoint,
    pub default: Endpoint,
    pub fallback: Endpoint,
    pub token: String,
    pub max_users: u32,
    pub duration: Duration,
    /// On the official 60 s timeline; scaled to `duration`.
    pub stages: Vec<Stage>,
    pub participant: String,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl RinhaOptions {
    /// The official test (550 users, 60 s, the six stages, token `123`)
    /// against these three services, without a progress bar.
    pub fn new(backend: Endpoint, default: Endpoint, fallback: Endpoint) -> Self {
        Self {
            backend,
            default,
            fallback,
            token: api::INITIAL_TOKEN.to_owned(),
            max_users: 550,
            duration: timeline::OFFICIAL_DURATION,
            stages: OFFICIAL_STAGES.to_vec(),
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
    let backend_endpoint = Arc::new(options.backend);
    let default_endpoint = Arc::new(options.default);
    let fallback_endpoint = Arc::new(options.fallback);
    let timeline = Timeline::new(options.duration, options.max_users, &options.stages);
    let live = Arc::new(Live::default());
    let mut warnings = Vec::new();
    let started_at = Timestamp::now();

    // Setup. The admin user's connections serve the teardown too.
    let mut default = Processor::new("default", default_endpoint.clone(), &token);
    let mut fallback = Processor::new("fallback", fallback_endpoint.clone(), &token);
    let mut backend = Backend::new(backend_endpoint.clone());
    default.set_token().await.context("setup")?;
    fallback.set_token().await.context("setup")?;
    default.purge().await.context("setup")?;
    fallback.purge().await.context("setup")?;
    if let Err(e) = backend.purge().await {
        warnings.push(format!(
            "setup: {e} (ignored: the backend purge is optional)"
        ));
    }

    // The load, the audits and the stages, side by side.
    let progress = Progress::new(
        options.progress,
        timeline.duration(),
        timeline.stages().len(),
    );
    let started = Instant::now();
    let sources = Sources {
        backend: backend_endpoint.clone(),
        default: default_endpoint.clone(),
        fallback: fallback_endpoint.clone(),
        token: token.clone(),
    };
    let load = async {
        tokio::try_join!(
            users::run(backend_endpoint.clone(), &timeline, started, live.clone()),
            async {
                Ok::<_, anyhow::Error>(auditor::run(&sources, &timeline, started, &live).await)
            },
            async {
                stages::run(
                    default_endpoint.clone(),
                    fallback_endpoint.clone(),
                    &token,
                    &timeline,
                    started,
                    &live,
                )
                .await
                .context("applying a stage")
            },
        )
    };
    let outcome = tokio::select! {
        outcome = load => outcome,
        never = progress.follow(&live, started) => match never {},
    };
    let (crowd, mut audits, stage_http) = match outcome {
        Ok(parts) => parts,
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    };

    warnings.append(&mut audits.warnings);

    // Teardown: the summaries the score is computed from.
    progress.note("teardown: reading summaries");
    let to = Timestamp::now();
    let window = Window {
        from: before(to, timeline.teardown_window()),
        to,
    };
    let default_books = default.summary(window).await.unwrap_or_else(|e| {
        warnings.push(format!("teardown: {e}; counted as zeros"));
        ProcessorSummary::default()
    });
    let fallback_books = fallback.summary(window).await.unwrap_or_else(|e| {
        warnings.push(format!("teardown: {e}; counted as zeros"));
        ProcessorSummary::default()
    });
    let reported = backend.summary(window).await.unwrap_or_else(|e| {
        warnings.push(format!("teardown: {e}; counted as zeros"));
        BackendSummary::default()
    });
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

    let score = Score::compute(&ScoreInputs {
        p99_ms,
        inconsistencies,
        accepted: crowd.accepted,
        default: ProcessorShare {
            requests: reported.default.total_requests,
            amount: reported.default.total_amount,
            fee_rate: default_books.fee_per_transaction,
        },
        fallback: ProcessorShare {
            requests: reported.fallback.total_requests,
            amount: reported.fallback.total_amount,
            fee_rate: fallback_books.fee_per_transaction,
        },
    });

    let details = RunDetails {
        started_at,
        finished_at: Timestamp::now(),
        backend: backend_endpoint.to_string(),
        default: default_endpoint.to_string(),
        fallback: fallback_endpoint.to_string(),
        duration_ms: u64::try_from(timeline.duration().as_millis()).unwrap_or(u64::MAX),
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
        warnings,
    };
    Ok(RinhaReport::new(Parts {
        participant: options.participant,
        max_users: timeline.max_users(),
        score,
        inconsistencies,
        accepted: crowd.accepted,
        failed: crowd.failed,
        default_amount: reported.default.total_amount,
        default_payments: reported.default.total_requests,
        fallback_amount: reported.fallback.total_amount,
        fallback_payments: reported.fallback.total_requests,
        details,
    }))
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
        assert_eq!(options.stages, OFFICIAL_STAGES.to_vec());
        assert!(options.progress);
    }

    #[test]
    fn the_flags_take_other_values() {
        let cli = Cli::parse_from([
            "rinha",
            "--backend",
            "http://localhost:9998",
            "--max-users",
            "20",
            "--duration",
            "5s",
            "--out",
            "result.json",
            "--token",
            "secret",
        ]);
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
    }
}
