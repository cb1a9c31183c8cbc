//! The result of a run: the official script's JSON, field for field
//! (`total_liquido`, `p99`, `multa`, `caixa_dois`, `lag`, ...; the final's
//! adds a `timestamp`), plus one `reroute` section with what the script does
//! not keep (the scenario, every audit, both sides' teardown books, timeouts,
//! warnings, and for the final the stage timeline). Its `Display`, the
//! readable summary printed on stderr, is in `summary.rs`.

use std::collections::BTreeMap;

use reroute_core::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::api::BackendSummary;
use super::auditor::Audit;
use super::scenario::{ProcessorSetting, Scenario};
use super::timeline::Timeline;
use super::users::StageTally;
use crate::duration::millis;
use crate::json_number;
use crate::processors::ProcessorSummary;
use crate::score::{self, Score, ScoreInputs};

/// The result JSON. Rust names say what a field is; the serialised names are
/// the official script's.
#[derive(Debug, Clone, Serialize)]
pub struct RinhaReport {
    /// When the result was written; only the final's script has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "participante")]
    pub participant: String,
    /// The score: net + net x bonus - net x fine.
    #[serde(rename = "total_liquido", with = "json_number")]
    pub score: Decimal,
    /// totalAmount, default + fallback: the backend's (preview) or the
    /// processors' (final).
    #[serde(rename = "total_bruto", with = "json_number")]
    pub gross: Decimal,
    #[serde(rename = "total_taxas", with = "json_number")]
    pub fees: Decimal,
    #[serde(rename = "descricao")]
    pub description: &'static str,
    pub p99: P99Section,
    #[serde(rename = "multa")]
    pub fine: FineSection,
    #[serde(rename = "caixa_dois")]
    pub slush_fund: SlushFundSection,
    pub lag: LagSection,
    #[serde(rename = "pagamentos_solicitados")]
    pub requested: RequestedSection,
    #[serde(rename = "pagamentos_realizados_default")]
    pub processed_default: ProcessedSection,
    #[serde(rename = "pagamentos_realizados_fallback")]
    pub processed_fallback: ProcessedSection,
    /// Not in the official result: details of this run.
    pub reroute: RunDetails,
}

#[derive(Debug, Clone, Serialize)]
pub struct P99Section {
    /// `"1.25ms"`: the p99 rounded to 2 decimals.
    #[serde(rename = "valor")]
    pub value: String,
    /// `"20%"`.
    pub bonus: String,
    /// The maximum number of virtual users.
    pub max_requests: u32,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct FineSection {
    /// 0.35 or 0.
    #[serde(rename = "porcentagem", with = "json_number")]
    pub rate: Decimal,
    /// net x rate.
    #[serde(with = "json_number")]
    pub total: Decimal,
    #[serde(rename = "composicao")]
    pub breakdown: FineBreakdown,
}

#[derive(Debug, Clone, Serialize)]
pub struct FineBreakdown {
    #[serde(rename = "num_inconsistencias")]
    pub inconsistencies: u64,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlushFundSection {
    /// The lag is negative: the backend reports payments nobody requested.
    #[serde(rename = "detectado")]
    pub detected: bool,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct LagSection {
    /// Payments recorded (default + fallback): by the backend (preview) or
    /// the processors (final).
    #[serde(rename = "num_pagamentos_total")]
    pub recorded: u64,
    /// Payments the backend accepted.
    #[serde(rename = "num_pagamentos_solicitados")]
    pub accepted: u64,
    pub lag: i128,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestedSection {
    #[serde(rename = "qtd_sucesso")]
    pub accepted: u64,
    #[serde(rename = "qtd_falha")]
    pub failed: u64,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

/// What the backend reports for one processor (preview), or what the
/// processor booked (final).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessedSection {
    #[serde(rename = "total_bruto", with = "json_number")]
    pub amount: Decimal,
    #[serde(rename = "num_pagamentos")]
    pub payments: u64,
    #[serde(rename = "total_taxas", with = "json_number")]
    pub fees: Decimal,
    #[serde(rename = "descricao")]
    pub description: &'static str,
}

/// What the official result leaves out.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetails {
    /// Which script ran: `preview` or `final`.
    pub scenario: Scenario,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub backend: String,
    pub default: String,
    pub fallback: String,
    pub duration_ms: u64,
    pub max_users: u32,
    /// Virtual users that were started (the last one of the ramp starts at
    /// the very end and never sends, as in k6).
    pub users_started: u64,
    /// The p99 before rounding, in milliseconds.
    #[serde(with = "json_number")]
    pub p99_ms_exact: Decimal,
    pub http: HttpDetails,
    pub payments: PaymentDetails,
    pub audits: Vec<Audit>,
    pub teardown: TeardownDetails,
    /// Each stage, its settings and what happened under it.
    pub stages: Vec<StageRow>,
    /// Calls that failed where the script carries on (counted as zeros).
    pub warnings: Vec<String>,
}

/// One stage of the run and what happened while it was in force.
///
/// `sent`, `accepted` and `p99_ms` count the payments the users *sent* in
/// the row's span; the booked counts are the processors' books for payments
/// whose `requestedAt` (set by the backend when it called the processor)
/// falls in it, so a payment queued under one stage and paid under the next
/// is booked in the next. The first row starts with the load (before its
/// stage is applied); the last row's books run to the teardown, so they
/// include what the backend paid after the load ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageRow {
    /// When the stage was applied, ms into the load (scaled).
    pub at_ms: u64,
    /// The row's span, ms into the load.
    pub from_ms: u64,
    pub to_ms: u64,
    pub default: ProcessorSetting,
    pub fallback: ProcessorSetting,
    /// `POST /payments` sent in the span.
    pub sent: u64,
    /// ... and answered 200, 201, 202 or 204.
    pub accepted: u64,
    /// p99 of those payments with a 2xx or 3xx answer, exact ms (0 if none).
    #[serde(with = "json_number")]
    pub p99_ms: Decimal,
    /// What `default` booked with a `requestedAt` in the span.
    pub booked_default: u64,
    /// What `fallback` booked with a `requestedAt` in the span.
    pub booked_fallback: u64,
}

impl StageRow {
    /// The rows of a run: the timeline's stages with the users' tallies (by
    /// stage index) and the processors' books per span (`(default, fallback)`
    /// requests, in the same order). Missing tallies or books count as zero.
    pub fn build(
        timeline: &Timeline,
        tallies: Vec<StageTally>,
        books: &[(u64, u64)],
    ) -> Vec<StageRow> {
        let mut tallies = tallies.into_iter();
        timeline
            .stages()
            .iter()
            .zip(timeline.stage_spans())
            .enumerate()
            .map(|(i, (stage, (from, to)))| {
                let mut tally = tallies.next().unwrap_or_default();
                tally.durations.sort_unstable();
                let (booked_default, booked_fallback) = books.get(i).copied().unwrap_or((0, 0));
                StageRow {
                    at_ms: millis(stage.at),
                    from_ms: millis(from),
                    to_ms: millis(to),
                    default: stage.default,
                    fallback: stage.fallback,
                    sent: tally.sent,
                    accepted: tally.accepted,
                    p99_ms: score::percentile(&tally.durations, score::P99),
                    booked_default,
                    booked_fallback,
                }
            })
            .collect()
    }

    /// The share of this stage's booked payments that went to fallback, in
    /// percent (`None` when nothing was booked).
    pub fn fallback_percent(&self) -> Option<u64> {
        let total = self.booked_default + self.booked_fallback;
        (total > 0).then(|| (self.booked_fallback * 100 + total / 2) / total)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpDetails {
    /// Every request the test sent, admin calls included.
    pub requests: u64,
    /// Responses with a 2xx or 3xx status: the population of the p99.
    pub expected_responses: u64,
    pub timeouts: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentDetails {
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    /// Answers to `POST /payments` by status; `0` is no answer (timeout or
    /// connection error), as k6 reports it.
    pub statuses: BTreeMap<u16, u64>,
}

/// The window and the three summaries the score was computed from.
#[derive(Debug, Clone, Serialize)]
pub struct TeardownDetails {
    pub from: Timestamp,
    pub to: Timestamp,
    pub backend: BackendSummary,
    /// The processors' own books for the same window.
    pub default: ProcessorSummary,
    pub fallback: ProcessorSummary,
}

const DESCRIPTION: &str = "'total_liquido' is the final score, the profit: \
    net + net x p99.bonus - net x multa.porcentagem, where net = total_bruto - total_taxas.";
const P99_DESCRIPTION: &str =
    "Bonus: max(round((11 - p99 in ms) x 0.02, 2), 0), p99 of every successful request.";
const FINE_DESCRIPTION: &str = "Any inconsistency (num_inconsistencias > 0) costs 35%.";
const SLUSH_FUND_DESCRIPTION: &str = "A negative lag means the backend recorded more payments \
    than were requested: disqualified.";
const LAG_DESCRIPTION: &str = "Payments accepted minus payments the backend reports as \
    processed: what was still queued (lost) at the end of the test.";
const FINAL_LAG_DESCRIPTION: &str = "Payments accepted minus payments the processors booked: \
    what was still queued (lost) at the end of the test.";
const REQUESTED_DESCRIPTION: &str = "'qtd_sucesso': POST /payments answered 200, 201, 202 or \
    204; 'qtd_falha': every other outcome, timeouts included.";
const DEFAULT_DESCRIPTION: &str =
    "What the backend reports it sent to the default payment processor.";
const FALLBACK_DESCRIPTION: &str =
    "What the backend reports it sent to the fallback payment processor.";
const FINAL_DEFAULT_DESCRIPTION: &str = "What the default payment processor booked over the \
    teardown window (its admin summary): the final scores from the processors' books.";
const FINAL_FALLBACK_DESCRIPTION: &str = "What the fallback payment processor booked over the \
    teardown window (its admin summary): the final scores from the processors' books.";

impl RinhaReport {
    /// The report of a run scored from `inputs`, with its `details`.
    pub fn new(participant: String, inputs: &ScoreInputs, details: RunDetails) -> Self {
        let score = Score::compute(inputs);
        let final_test = details.scenario == Scenario::Final;
        let pick = |preview: &'static str, final_text: &'static str| {
            if final_test { final_text } else { preview }
        };
        RinhaReport {
            timestamp: final_test.then_some(details.finished_at),
            participant,
            score: score.total,
            gross: score.gross,
            fees: score.fees,
            description: DESCRIPTION,
            p99: P99Section {
                value: format!("{}ms", json_number::to_text(score.p99_ms)),
                bonus: format!(
                    "{}%",
                    json_number::to_text(score.bonus * Decimal::ONE_HUNDRED)
                ),
                max_requests: details.max_users,
                description: P99_DESCRIPTION,
            },
            fine: FineSection {
                rate: score.fine,
                total: score.fine_amount,
                breakdown: FineBreakdown {
                    inconsistencies: inputs.inconsistencies,
                    description: FINE_DESCRIPTION,
                },
            },
            slush_fund: SlushFundSection {
                detected: score.disqualified,
                description: SLUSH_FUND_DESCRIPTION,
            },
            lag: LagSection {
                recorded: score.recorded,
                accepted: inputs.accepted,
                lag: score.lag,
                description: pick(LAG_DESCRIPTION, FINAL_LAG_DESCRIPTION),
            },
            requested: RequestedSection {
                accepted: inputs.accepted,
                failed: details.payments.failed,
                description: REQUESTED_DESCRIPTION,
            },
            processed_default: ProcessedSection {
                amount: inputs.default.amount,
                payments: inputs.default.requests,
                fees: score.fees_default,
                description: pick(DEFAULT_DESCRIPTION, FINAL_DEFAULT_DESCRIPTION),
            },
            processed_fallback: ProcessedSection {
                amount: inputs.fallback.amount,
                payments: inputs.fallback.requests,
                fees: score.fees_fallback,
                description: pick(FALLBACK_DESCRIPTION, FINAL_FALLBACK_DESCRIPTION),
            },
            reroute: details,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
