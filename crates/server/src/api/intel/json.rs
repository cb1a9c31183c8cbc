//! The intelligence API's answers on the wire: a processor's health, its
//! segments and its alerts as the seed's JSON names them, built from the
//! health engine's reports. The handlers and the dashboard send the same
//! shapes.

use reroute_core::health::{Alert, Counts, HealthReport, Latency};
use reroute_core::{Status, Timestamp};
use serde::Serialize;

use crate::alerts;
use crate::api::openapi::wire;
use crate::state::Shared;

/// A rate for the wire: 4 decimals; no data is 0 (see `total_transactions`).
pub(crate) fn rate(value: Option<f64>) -> f64 {
    (value.unwrap_or(0.0) * 10_000.0).round() / 10_000.0
}

/// Latency percentiles in milliseconds.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Latency)]
pub(crate) struct LatencyJson {
    p50: u32,
    p95: u32,
    p99: u32,
}

impl From<Latency> for LatencyJson {
    fn from(l: Latency) -> Self {
        Self {
            p50: l.p50,
            p95: l.p95,
            p99: l.p99,
        }
    }
}

/// The seed's health fields plus error rate, timeouts, latency and the time
/// of the last transition. `error_count` is errors + timeouts (the seed's
/// technical failures); `timeout_count` says how many of them were timeouts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Health)]
pub(crate) struct HealthJson {
    #[schema(value_type = wire::Status)]
    status: Status,
    authorization_rate: f64,
    error_rate: f64,
    total_transactions: u32,
    success_count: u32,
    failure_count: u32,
    error_count: u32,
    timeout_count: u32,
    latency_ms: Option<LatencyJson>,
    /// When the status last changed; `null` if it never has.
    #[schema(value_type = Option<wire::Timestamp>)]
    status_since: Option<Timestamp>,
}

impl From<&HealthReport> for HealthJson {
    fn from(h: &HealthReport) -> Self {
        let c: &Counts = &h.counts;
        Self {
            status: h.status,
            authorization_rate: rate(c.authorization_rate()),
            error_rate: rate(c.error_rate()),
            total_transactions: c.total(),
            success_count: c.approved,
            failure_count: c.declined,
            error_count: c.failures(),
            timeout_count: c.timeouts,
            latency_ms: h.latency.map(Into::into),
            status_since: h.since,
        }
    }
}

/// The health of one (method, country) segment of a processor.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SegmentHealth)]
pub(crate) struct SegmentJson {
    payment_method: Option<String>,
    country: Option<String>,
    #[serde(flatten)]
    health: HealthJson,
}

/// A processor's health as a whole, and per segment.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProcessorHealth)]
pub(crate) struct ProcessorHealthJson<'a> {
    processor_id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    health: HealthJson,
    segments: Vec<SegmentJson>,
}

pub(crate) fn processor_health<'a>(
    shared: &'a Shared,
    index: usize,
    now: Timestamp,
) -> ProcessorHealthJson<'a> {
    let processor = &shared.registry.by_fee()[index];
    let report = shared.health.report(index, now);
    ProcessorHealthJson {
        processor_id: processor.id.as_str(),
        name: &processor.name,
        health: (&report.health).into(),
        segments: report
            .segments
            .iter()
            .map(|s| SegmentJson {
                payment_method: s.key.payment_method.clone(),
                country: s.key.country.clone(),
                health: (&s.health).into(),
            })
            .collect(),
    }
}

/// A health transition or anomaly.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Alert)]
pub(crate) struct AlertJson<'a> {
    id: u64,
    processor_id: &'a str,
    #[schema(value_type = wire::Status)]
    from_status: Status,
    #[schema(value_type = wire::Status)]
    to_status: Status,
    #[schema(value_type = wire::Timestamp)]
    timestamp: Timestamp,
    reason: &'a str,
    /// `transition`, `anomaly` (a rate or the latency left the processor's
    /// own baseline, or the latency returned to it) or `flapping`.
    #[serde(rename = "type")]
    #[schema(example = "transition")]
    kind: &'static str,
    /// `processor` or `segment`; a segment alert names its method and country.
    #[schema(example = "processor")]
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    authorization_rate: f64,
    error_rate: f64,
    total_transactions: u32,
}

impl<'a> From<&'a Alert> for AlertJson<'a> {
    fn from(a: &'a Alert) -> Self {
        let segment = a.segment.as_ref();
        Self {
            id: a.id,
            processor_id: a.processor.as_str(),
            from_status: a.from,
            to_status: a.to,
            timestamp: a.at,
            reason: &a.reason,
            kind: alerts::kind_name(a.kind),
            scope: if segment.is_some() {
                "segment"
            } else {
                "processor"
            },
            payment_method: segment.and_then(|s| s.payment_method.as_deref()),
            country: segment.and_then(|s| s.country.as_deref()),
            authorization_rate: rate(a.authorization_rate),
            error_rate: rate(a.error_rate),
            total_transactions: a.transactions,
        }
    }
}
