//! Health alerts on their way out: a status change, an anomaly or a
//! flapping episode that the health engine raised from an outcome (a
//! worker's send, a probe, a recorded transaction) is logged here and
//! counted in the metrics ([`crate::state::Shared::raise`] does both); the
//! intelligence API serves the same alerts as JSON.

use reroute_core::health::{Alert, AlertKind};

/// The `type` of an alert on the wire and in the metrics.
pub fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Transition => "transition",
        AlertKind::Anomaly => "anomaly",
        AlertKind::Flapping => "flapping",
    }
}

/// Writes alerts to the log, wherever they were raised.
pub fn log(alerts: &[Alert]) {
    for a in alerts {
        let segment = a.segment.as_ref().map(ToString::to_string);
        match a.kind {
            AlertKind::Transition => tracing::warn!(
                processor = %a.processor, segment, from = %a.from, to = %a.to,
                reason = %a.reason, "health transition"
            ),
            AlertKind::Anomaly => tracing::warn!(
                processor = %a.processor, status = %a.to, reason = %a.reason, "health anomaly"
            ),
            AlertKind::Flapping => tracing::warn!(
                processor = %a.processor, segment, from = %a.from, to = %a.to,
                reason = %a.reason, "health flapping"
            ),
        }
    }
}
