//! The result of a run: the official script's JSON, field for field
//! (`total_liquido`, `p99`, `multa`, `caixa_dois`, `lag`, ...; the final's
//! adds a `timestamp`), plus one `reroute` section with what the script does
//! not keep (the scenario, every audit, both sides' teardown books, timeouts,
//! warnings, and for the final the stage timeline). Its `Display` is the
//! readable summary printed on stderr.

use std::collections::BTreeMap;
use std::fmt;

use reroute_core::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::api::{BackendSummary, ProcessorSummary};
use super::auditor::Audit;
use super::scenario::{ProcessorSetting, Scenario};
use super::timeline::Timeline;
use super::users::StageTally;
use crate::duration::millis;
use crate::json_number;
use crate::score::{self, Score, round2};

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
    /// The final only: each stage, its settings and what happened under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageRow>>,
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

/// Everything a report is made of.
pub struct Parts {
    pub participant: String,
    pub max_users: u32,
    pub score: Score,
    pub inconsistencies: u64,
    pub accepted: u64,
    pub failed: u64,
    pub default_amount: Decimal,
    pub default_payments: u64,
    pub fallback_amount: Decimal,
    pub fallback_payments: u64,
    pub details: RunDetails,
}

impl RinhaReport {
    pub fn new(parts: Parts) -> Self {
        let score = &parts.score;
        let final_test = parts.details.scenario == Scenario::Final;
        let pick = |preview: &'static str, final_text: &'static str| {
            if final_test { final_text } else { preview }
        };
        RinhaReport {
            timestamp: final_test.then_some(parts.details.finished_at),
            participant: parts.participant,
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
                max_requests: parts.max_users,
                description: P99_DESCRIPTION,
            },
            fine: FineSection {
                rate: score.fine,
                total: score.fine_amount,
                breakdown: FineBreakdown {
                    inconsistencies: parts.inconsistencies,
                    description: FINE_DESCRIPTION,
                },
            },
            slush_fund: SlushFundSection {
                detected: score.disqualified,
                description: SLUSH_FUND_DESCRIPTION,
            },
            lag: LagSection {
                recorded: score.recorded,
                accepted: parts.accepted,
                lag: score.lag,
                description: pick(LAG_DESCRIPTION, FINAL_LAG_DESCRIPTION),
            },
            requested: RequestedSection {
                accepted: parts.accepted,
                failed: parts.failed,
                description: REQUESTED_DESCRIPTION,
            },
            processed_default: ProcessedSection {
                amount: parts.default_amount,
                payments: parts.default_payments,
                fees: score.fees_default,
                description: pick(DEFAULT_DESCRIPTION, FINAL_DEFAULT_DESCRIPTION),
            },
            processed_fallback: ProcessedSection {
                amount: parts.fallback_amount,
                payments: parts.fallback_payments,
                fees: score.fees_fallback,
                description: pick(FALLBACK_DESCRIPTION, FINAL_FALLBACK_DESCRIPTION),
            },
            reroute: parts.details,
        }
    }
}

/// Money with two decimals, exactly rounded (`333364.8` -> `333364.80`).
struct Amount(Decimal);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", round2(self.0))
    }
}

impl fmt::Display for RinhaReport {
    /// The readable summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.reroute;
        let final_test = d.scenario == Scenario::Final;
        writeln!(
            f,
            "rinha{}: {:?}, up to {} users, backend {}",
            if final_test { " final" } else { "" },
            std::time::Duration::from_millis(d.duration_ms),
            d.max_users,
            d.backend
        )?;
        let timeouts = d.payments.statuses.get(&0).copied().unwrap_or(0);
        writeln!(
            f,
            "  payments      {} accepted, {} failed ({} without an answer)",
            self.requested.accepted, self.requested.failed, timeouts
        )?;
        writeln!(
            f,
            "  processed     default {} ({}), fallback {} ({})",
            self.processed_default.payments,
            Amount(self.processed_default.amount),
            self.processed_fallback.payments,
            Amount(self.processed_fallback.amount),
        )?;
        // The other side of the teardown, when it disagrees with the scored one.
        let books = &d.teardown;
        if final_test {
            let backend = &books.backend;
            if backend.default.total_requests != self.processed_default.payments
                || backend.fallback.total_requests != self.processed_fallback.payments
            {
                writeln!(
                    f,
                    "  backend       reports default {}, fallback {} (not scored)",
                    backend.default.total_requests, backend.fallback.total_requests
                )?;
            }
        } else if books.default.total_requests != self.processed_default.payments
            || books.fallback.total_requests != self.processed_fallback.payments
        {
            writeln!(
                f,
                "  books         the processors count default {}, fallback {}",
                books.default.total_requests, books.fallback.total_requests
            )?;
        }
        let lag_note = if self.slush_fund.detected {
            "  DISQUALIFIED (negative lag)"
        } else {
            ""
        };
        writeln!(f, "  lag           {}{lag_note}", self.lag.lag)?;
        let netted = d
            .audits
            .iter()
            .filter(|a| a.disagrees() && a.inconsistencies == 0)
            .count();
        write!(
            f,
            "  consistency   {} checks, {} inconsistencies",
            d.audits.len(),
            self.fine.breakdown.inconsistencies
        )?;
        if netted > 0 {
            write!(
                f,
                " ({netted} checks with payments under the wrong processor)"
            )?;
        }
        writeln!(f)?;
        for a in d.audits.iter().filter(|a| a.disagrees()) {
            write!(
                f,
                "    window to {}: backend - books = default {:+}, fallback {:+}",
                a.to, a.default_difference, a.fallback_difference
            )?;
            match a.later {
                Some(later) => writeln!(
                    f,
                    "; {} s later: default {:+}, fallback {:+}",
                    later.after_ms / 1_000,
                    later.default_difference,
                    later.fallback_difference
                )?,
                None => writeln!(f)?,
            }
        }
        writeln!(
            f,
            "  p99           {} over {} requests -> bonus {}",
            self.p99.value, d.http.expected_responses, self.p99.bonus
        )?;
        writeln!(
            f,
            "  fine          {}%",
            json_number::to_text(self.fine.rate * Decimal::ONE_HUNDRED)
        )?;
        writeln!(
            f,
            "  gross {}  fees {}  net {}",
            Amount(self.gross),
            Amount(self.fees),
            Amount(self.gross - self.fees)
        )?;
        if final_test {
            writeln!(
                f,
                "  fee rates     default {}%, fallback {}% (the processors' feePerTransaction)",
                json_number::to_text(books.default.fee_per_transaction * Decimal::ONE_HUNDRED),
                json_number::to_text(books.fallback.fee_per_transaction * Decimal::ONE_HUNDRED),
            )?;
        }
        write!(f, "  score         {}", Amount(self.score))?;
        if let Some(rows) = &d.stages {
            write_stages(f, rows)?;
        }
        // The same failure repeated (a backend down for every audit) is said once.
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for warning in &d.warnings {
            match seen.iter_mut().find(|(text, _)| *text == warning.as_str()) {
                Some((_, count)) => *count += 1,
                None => seen.push((warning, 1)),
            }
        }
        for (warning, count) in seen {
            write!(f, "\n  warning: {warning}")?;
            if count > 1 {
                write!(f, " (x{count})")?;
            }
        }
        Ok(())
    }
}

/// The stage timeline as a table, one row per stage.
fn write_stages(f: &mut fmt::Formatter<'_>, rows: &[StageRow]) -> fmt::Result {
    let setting = |s: ProcessorSetting| {
        if s.failing {
            format!("{} fail", s.delay_ms)
        } else {
            s.delay_ms.to_string()
        }
    };
    write!(
        f,
        "\n  stages        delay ms (fail: failing); sent, 2xx, p99 by send time; \
         booked by requestedAt"
    )?;
    write!(
        f,
        "\n  {:>8} {:>10} {:>10} {:>7} {:>7} {:>9} {:>8} {:>8} {:>6}",
        "at", "default", "fallback", "sent", "2xx", "p99 ms", "default", "fallback", "fb %"
    )?;
    for row in rows {
        let fallback_share = row
            .fallback_percent()
            .map_or_else(|| "-".to_owned(), |p| p.to_string());
        write!(
            f,
            "\n  {:>8} {:>10} {:>10} {:>7} {:>7} {:>9} {:>8} {:>8} {:>6}",
            format!("{:?}", std::time::Duration::from_millis(row.at_ms)),
            setting(row.default),
            setting(row.fallback),
            row.sent,
            row.accepted,
            Amount(row.p99_ms).to_string(),
            row.booked_default,
            row.booked_fallback,
            fallback_share,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{ProcessorShare, ScoreInputs};

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// The published best run: 16,752 payments on default, p99 1.25 ms.
    fn best_run(warnings: Vec<String>) -> RinhaReport {
        let amount = d("19.90") * Decimal::from(16_752);
        let score = Score::compute(&ScoreInputs {
            p99_ms: d("1.2471"),
            inconsistencies: 0,
            accepted: 16_752,
            default: ProcessorShare {
                requests: 16_752,
                amount,
                fee_rate: d("0.05"),
            },
            fallback: ProcessorShare {
                requests: 0,
                amount: Decimal::ZERO,
                fee_rate: d("0.15"),
            },
        });
        let at = Timestamp::from_millis(1_752_150_896_789);
        let books = |requests: u64, amount: Decimal, rate: &str| ProcessorSummary {
            total_requests: requests,
            total_amount: amount,
            total_fee: amount * d(rate),
            fee_per_transaction: d(rate),
        };
        RinhaReport::new(Parts {
            participant: "best".to_owned(),
            max_users: 550,
            score,
            inconsistencies: 0,
            accepted: 16_752,
            failed: 0,
            default_amount: amount,
            default_payments: 16_752,
            fallback_amount: Decimal::ZERO,
            fallback_payments: 0,
            details: RunDetails {
                scenario: Scenario::Preview,
                started_at: at,
                finished_at: at,
                backend: "http://127.0.0.1:9999".to_owned(),
                default: "http://127.0.0.1:8001".to_owned(),
                fallback: "http://127.0.0.1:8002".to_owned(),
                duration_ms: 60_000,
                max_users: 550,
                users_started: 549,
                p99_ms_exact: d("1.2471"),
                http: HttpDetails {
                    requests: 16_790,
                    expected_responses: 16_790,
                    timeouts: 0,
                    errors: 0,
                },
                payments: PaymentDetails {
                    sent: 16_752,
                    accepted: 16_752,
                    failed: 0,
                    statuses: BTreeMap::from([(202, 16_752)]),
                },
                audits: Vec::new(),
                teardown: TeardownDetails {
                    from: at,
                    to: at,
                    backend: BackendSummary::default(),
                    default: books(16_752, amount, "0.05"),
                    fallback: books(0, Decimal::ZERO, "0.15"),
                },
                stages: None,
                warnings,
            },
        })
    }

    #[test]
    fn the_json_has_the_official_fields_and_values() {
        let json = serde_json::to_value(best_run(Vec::new())).unwrap();
        let text = serde_json::to_string(&json).unwrap();
        assert!(text.contains(r#""total_liquido":380035.872"#), "{text}");
        assert!(text.contains(r#""total_bruto":333364.8"#), "{text}");
        assert!(text.contains(r#""total_taxas":16668.24"#), "{text}");
        assert_eq!(json["participante"], "best");
        assert_eq!(json["p99"]["valor"], "1.25ms");
        assert_eq!(json["p99"]["bonus"], "20%");
        assert_eq!(json["p99"]["max_requests"], 550);
        assert_eq!(json["multa"]["porcentagem"], 0);
        assert_eq!(json["multa"]["total"], 0);
        assert_eq!(json["multa"]["composicao"]["num_inconsistencias"], 0);
        assert_eq!(json["caixa_dois"]["detectado"], false);
        assert_eq!(json["lag"]["num_pagamentos_total"], 16_752);
        assert_eq!(json["lag"]["num_pagamentos_solicitados"], 16_752);
        assert_eq!(json["lag"]["lag"], 0);
        assert_eq!(json["pagamentos_solicitados"]["qtd_sucesso"], 16_752);
        assert_eq!(json["pagamentos_solicitados"]["qtd_falha"], 0);
        assert_eq!(
            json["pagamentos_realizados_default"]["num_pagamentos"],
            16_752
        );
        assert_eq!(json["pagamentos_realizados_fallback"]["total_bruto"], 0);
        assert_eq!(json["reroute"]["payments"]["statuses"]["202"], 16_752);
        // The preview's result says so, and has neither a timestamp nor stages.
        assert_eq!(json["reroute"]["scenario"], "preview");
        assert!(json.get("timestamp").is_none());
        assert!(json["reroute"].get("stages").is_none());
        // Fields come in the official order, the extra section last.
        let direct = serde_json::to_string(&best_run(Vec::new())).unwrap();
        assert!(
            direct.starts_with(r#"{"participante":"best","total_liquido":"#),
            "{direct}"
        );
        assert!(direct.find(r#""pagamentos_realizados_fallback""#) < direct.find(r#""reroute""#));
    }

    #[test]
    fn the_summary_reads_well_and_says_repeated_warnings_once() {
        let warning = "audit: backend down; counted as zeros".to_owned();
        let text = best_run(vec![warning.clone(), warning]).to_string();
        assert!(text.contains("16752 accepted, 0 failed"), "{text}");
        assert!(text.contains("default 16752 (333364.80)"), "{text}");
        assert!(
            text.contains("1.25ms over 16790 requests -> bonus 20%"),
            "{text}"
        );
        assert!(text.contains("score         380035.87"), "{text}");
        assert!(
            text.contains("warning: audit: backend down; counted as zeros (x2)"),
            "{text}"
        );
        assert_eq!(text.matches("warning:").count(), 1);
        assert!(text.starts_with("rinha: 60s, up to 550 users"), "{text}");
        assert!(!text.contains("stages"), "{text}");
        assert!(!text.contains("fee rates"), "{text}");
    }

    /// A final run squeezed into 30 s: 1000 payments accepted, 800 booked by
    /// default at 7%, 150 by fallback at 10%, 50 still queued; the backend
    /// claims 10 more on fallback than fallback booked.
    fn final_run() -> RinhaReport {
        let (default_amount, fallback_amount) = (
            d("20.05") * Decimal::from(800),
            d("20.05") * Decimal::from(150),
        );
        let score = Score::compute(&ScoreInputs {
            p99_ms: d("3.07"),
            inconsistencies: 0,
            accepted: 1000,
            default: ProcessorShare {
                requests: 800,
                amount: default_amount,
                fee_rate: d("0.07"),
            },
            fallback: ProcessorShare {
                requests: 150,
                amount: fallback_amount,
                fee_rate: d("0.10"),
            },
        });
        let at = Timestamp::from_millis(1_752_150_896_789);
        let books = |requests: u64, amount: Decimal, rate: &str| ProcessorSummary {
            total_requests: requests,
            total_amount: amount,
            total_fee: amount * d(rate),
            fee_per_transaction: d(rate),
        };
        let timeline = Timeline::new(
            &crate::rinha::scenario::FINAL,
            std::time::Duration::from_secs(30),
            60,
            crate::rinha::scenario::FINAL.stages,
        );
        let tallies = (0..10)
            .map(|i| StageTally {
                sent: 100,
                accepted: 100,
                durations: vec![1_000_000 * (i + 1); 100],
            })
            .collect();
        let mut booked = vec![(80, 0); 10];
        booked[3] = (0, 80);
        booked[4] = (10, 70);
        let stages = StageRow::build(&timeline, tallies, &booked);
        RinhaReport::new(Parts {
            participant: "final".to_owned(),
            max_users: 60,
            score,
            inconsistencies: 0,
            accepted: 1000,
            failed: 0,
            default_amount,
            default_payments: 800,
            fallback_amount,
            fallback_payments: 150,
            details: RunDetails {
                scenario: Scenario::Final,
                started_at: at,
                finished_at: at,
                backend: "http://127.0.0.1:9999".to_owned(),
                default: "http://127.0.0.1:8001".to_owned(),
                fallback: "http://127.0.0.1:8002".to_owned(),
                duration_ms: 30_000,
                max_users: 60,
                users_started: 59,
                p99_ms_exact: d("3.07"),
                http: HttpDetails {
                    requests: 1100,
                    expected_responses: 1100,
                    timeouts: 0,
                    errors: 0,
                },
                payments: PaymentDetails {
                    sent: 1000,
                    accepted: 1000,
                    failed: 0,
                    statuses: BTreeMap::from([(202, 1000)]),
                },
                audits: Vec::new(),
                teardown: TeardownDetails {
                    from: at,
                    to: at,
                    backend: BackendSummary {
                        default: crate::rinha::api::Totals {
                            total_requests: 800,
                            total_amount: default_amount,
                        },
                        fallback: crate::rinha::api::Totals {
                            total_requests: 160,
                            total_amount: d("20.05") * Decimal::from(160),
                        },
                    },
                    default: books(800, default_amount, "0.07"),
                    fallback: books(150, fallback_amount, "0.10"),
                },
                stages: Some(stages),
                warnings: Vec::new(),
            },
        })
    }

    #[test]
    fn a_final_result_has_its_timestamp_scenario_fees_and_stages() {
        let report = final_run();
        // gross 19,047.50; fees 1,122.80 + 300.75; bonus 16%.
        assert_eq!(report.gross, d("19047.50"));
        assert_eq!(report.fees, d("1423.55"));
        assert_eq!(report.lag.lag, 50);
        let json = serde_json::to_value(&report).unwrap();
        let direct = serde_json::to_string(&report).unwrap();
        assert!(
            direct.starts_with(r#"{"timestamp":"2025-07-10T12:34:56.789Z","participante":"final""#),
            "{direct}"
        );
        assert_eq!(json["reroute"]["scenario"], "final");
        assert_eq!(json["p99"]["bonus"], "16%");
        assert_eq!(json["pagamentos_realizados_default"]["num_pagamentos"], 800);
        assert!(
            json["pagamentos_realizados_fallback"]["descricao"]
                .as_str()
                .unwrap()
                .contains("processor booked")
        );
        let stages = json["reroute"]["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 10);
        assert_eq!(stages[3]["at_ms"], 9000);
        assert_eq!(stages[3]["default"]["delay_ms"], 2000);
        assert_eq!(stages[3]["default"]["failing"], true);
        assert_eq!(stages[3]["booked_fallback"], 80);
    }

    #[test]
    fn a_final_summary_names_the_scenario_the_fee_rates_and_each_stage() {
        let text = final_run().to_string();
        assert!(
            text.starts_with("rinha final: 30s, up to 60 users"),
            "{text}"
        );
        assert!(
            text.contains("default 800 (16040.00), fallback 150 (3007.50)"),
            "{text}"
        );
        assert!(
            text.contains("backend       reports default 800, fallback 160 (not scored)"),
            "{text}"
        );
        assert!(
            text.contains("fee rates     default 7%, fallback 10%"),
            "{text}"
        );
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("stages"))
            .skip(2)
            .collect();
        assert_eq!(rows.len(), 10, "{text}");
        let cells: Vec<&str> = rows[4].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "12s", "5000", "fail", "5", "100", "100", "5.00", "10", "70", "88"
            ],
            "{text}"
        );
        let first: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(first[0], "100ms");
    }

    #[test]
    fn stage_rows_pair_each_stage_with_its_tally_and_books() {
        let timeline = Timeline::new(
            &crate::rinha::scenario::FINAL,
            std::time::Duration::from_secs(30),
            60,
            crate::rinha::scenario::FINAL.stages,
        );
        let tally = StageTally {
            sent: 3,
            accepted: 2,
            durations: vec![3_000_000, 1_000_000],
        };
        let rows = StageRow::build(&timeline, vec![tally], &[(2, 1)]);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[0].at_ms, 100);
        assert_eq!((rows[0].from_ms, rows[0].to_ms), (0, 3000));
        assert_eq!((rows[0].sent, rows[0].accepted), (3, 2));
        assert_eq!(rows[0].p99_ms, d("2.98"));
        assert_eq!((rows[0].booked_default, rows[0].booked_fallback), (2, 1));
        assert_eq!(rows[0].fallback_percent(), Some(33));
        // Nothing tallied or booked: zeros, and no share.
        assert_eq!((rows[9].sent, rows[9].p99_ms), (0, Decimal::ZERO));
        assert_eq!((rows[9].from_ms, rows[9].to_ms), (27_000, 30_000));
        assert_eq!(rows[9].fallback_percent(), None);
    }
}
