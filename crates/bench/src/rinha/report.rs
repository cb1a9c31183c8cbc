//! The result of a run: the official script's JSON, field for field
//! (`total_liquido`, `p99`, `multa`, `caixa_dois`, `lag`, ...), plus one
//! `reroute` section with what the script does not keep (every audit, the
//! processors' own teardown books, timeouts, warnings). Its `Display` is the
//! readable summary printed on stderr.

use std::collections::BTreeMap;
use std::fmt;

use reroute_core::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use super::api::{BackendSummary, ProcessorSummary};
use super::auditor::Audit;
use crate::json_number;
use crate::score::{Score, round2};

/// The result JSON. Rust names say what a field is; the serialised names are
/// the official script's.
#[derive(Debug, Clone, Serialize)]
pub struct RinhaReport {
    #[serde(rename = "participante")]
    pub participant: String,
    /// The score: net + net x bonus - net x fine.
    #[serde(rename = "total_liquido", with = "json_number")]
    pub score: Decimal,
    /// The backend's totalAmount, default + fallback.
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
    /// Payments the backend reports (default + fallback).
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

/// What the backend reports for one processor.
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
    /// Calls that failed where the script carries on (counted as zeros).
    pub warnings: Vec<String>,
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
const REQUESTED_DESCRIPTION: &str = "'qtd_sucesso': POST /payments answered 200, 201, 202 or \
    204; 'qtd_falha': every other outcome, timeouts included.";
const DEFAULT_DESCRIPTION: &str =
    "What the backend reports it sent to the default payment processor.";
const FALLBACK_DESCRIPTION: &str =
    "What the backend reports it sent to the fallback payment processor.";

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
        RinhaReport {
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
                description: LAG_DESCRIPTION,
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
                description: DEFAULT_DESCRIPTION,
            },
            processed_fallback: ProcessedSection {
                amount: parts.fallback_amount,
                payments: parts.fallback_payments,
                fees: score.fees_fallback,
                description: FALLBACK_DESCRIPTION,
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
        writeln!(
            f,
            "rinha: {:?}, up to {} users, backend {}",
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
        let books = &d.teardown;
        if books.default.total_requests != self.processed_default.payments
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
        write!(f, "  score         {}", Amount(self.score))?;
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
    }
}
