//! What `reroute bench crash` reports: each kill and PostgreSQL restart
//! with the recovery that followed, the instances that exited by
//! themselves, the load's counts and the audit; as JSON and as a readable
//! summary.

use std::fmt;
use std::path::PathBuf;

use reroute_core::Timestamp;
use serde::Serialize;

use crate::audit::Audit;
use crate::balancer::BalancerKind;
use crate::pg_cluster::StopMode;
use crate::traffic::RequestCounts;
use reroute_bench::report::{self, Latency, row};

/// One kill and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct Kill {
    /// Since the load started.
    pub at_ms: u64,
    pub instance: String,
    /// How long the killed process had been running.
    pub uptime_ms: u64,
    /// Whether it had answered a 2xx since it started (no: killed during
    /// start-up or before it took a payment); `None` through a balancer.
    pub had_answered: Option<bool>,
    /// From the restart to the restarted process's first 2xx; `None` when
    /// it was killed again first, or through a balancer.
    pub recovery_ms: Option<u64>,
}

/// One PostgreSQL restart and what followed.
#[derive(Debug, Clone, Serialize)]
pub struct PgRestart {
    pub at_ms: u64,
    pub mode: StopMode,
    /// `pg_ctl restart`, stop to accepting connections again.
    pub down_ms: u64,
    /// From PostgreSQL accepting again to the next 2xx of any instance.
    pub recovery_ms: Option<u64>,
}

/// An instance that exited without being killed.
#[derive(Debug, Clone, Serialize)]
pub struct Exit {
    pub at_ms: u64,
    pub instance: String,
    pub status: String,
}

/// The result of `reroute bench crash`.
#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    pub bench: &'static str,
    pub started_at: Timestamp,
    pub seed: u64,
    pub duration_s: f64,
    pub rate: f64,
    pub users: usize,
    pub instances: u32,
    pub store: String,
    pub balancer: BalancerKind,
    pub kills_requested: u32,
    pub kills: Vec<Kill>,
    /// Over the restarts that reached a 2xx.
    pub recovery: Option<Latency>,
    pub pg_restarts: Vec<PgRestart>,
    /// Instances that exited by themselves (and were started again).
    pub exits: Vec<Exit>,
    pub requests: RequestCounts,
    /// The largest `reroute_queue_oldest_age_seconds` seen on any instance
    /// (sampled every 250 ms during the load), in ms.
    pub max_queue_age_ms: u64,
    pub drain_settled: bool,
    pub drain_ms: u64,
    pub audit: Audit,
    /// Every kill made, and the audit passed.
    pub passed: bool,
    /// Where the logs are, when kept.
    pub work_dir: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.audit;
        let through = match self.balancer {
            BalancerKind::None => "",
            BalancerKind::Nginx => " behind nginx",
        };
        writeln!(
            f,
            "crash: {:.0}s at {} payments/s, {} instance(s){through} on {}, seed {}",
            self.duration_s, self.rate, self.instances, self.store, self.seed
        )?;
        let startup = self
            .kills
            .iter()
            .filter(|k| k.had_answered == Some(false))
            .count();
        let kills = format!("{} of {} (SIGKILL", self.kills.len(), self.kills_requested);
        match (self.balancer, &self.recovery) {
            (BalancerKind::None, recovery) => {
                let before = "before the process had answered a 2xx";
                row(f, "kills", format_args!("{kills}; {startup} {before})"))?;
                match recovery {
                    Some(r) => row(f, "recovery", format_args!("restart -> first 2xx: {r}"))?,
                    None => row(f, "recovery", "no restart reached a 2xx")?,
                }
            }
            (BalancerKind::Nginx, _) => {
                row(f, "kills", format_args!("{kills})"))?;
                let why = "through nginx a 2xx cannot be told apart by instance";
                row(f, "recovery", format_args!("not measured: {why}"))?;
            }
        }
        for r in &self.pg_restarts {
            let first = r
                .recovery_ms
                .map_or("never".to_owned(), |ms| format!("{ms} ms"));
            let text = format!(
                "restarted ({:?}) at {:.1}s, down {} ms, first 2xx {first} after",
                r.mode,
                r.at_ms as f64 / 1000.0,
                r.down_ms
            );
            row(f, "postgres", text)?;
        }
        let r = &self.requests;
        let more = format!(
            "; {} answered 5xx/429, {} unanswered, {} connections refused",
            r.server_errors, r.unanswered, r.refused_connections
        );
        a.write_payments(f, &more)?;
        a.write_lines(f)?;
        let age = self.max_queue_age_ms;
        let sampled = "(the routers' oldest waiting payment, sampled every 250 ms)";
        row(f, "max queue age", format_args!("{age} ms {sampled}"))?;
        let settled = if self.drain_settled {
            "settled"
        } else {
            "NOT settled"
        };
        row(f, "drain", format!("{settled} in {} ms", self.drain_ms))?;
        if let (Some(first), Some(last)) = (self.exits.first(), self.exits.last()) {
            let why = "instances that exited by themselves and were started again";
            let text = format!(
                "{} ({why}, from {:.1}s to {:.1}s; first: {} {})",
                self.exits.len(),
                first.at_ms as f64 / 1000.0,
                last.at_ms as f64 / 1000.0,
                first.instance,
                first.status
            );
            row(f, "self-exits", text)?;
        }
        report::write_end(f, &self.warnings, self.work_dir.as_deref(), self.passed)
    }
}
