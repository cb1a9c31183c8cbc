//! The readable summary of a Rinha run, printed on stderr beside the
//! official JSON ([`RinhaReport`]): payments, consistency, p99, fine, score
//! and the stage table, in the bench's summary rows ([`crate::report`]).

use std::fmt;

use rust_decimal::Decimal;

use super::report::{RinhaReport, StageRow};
use super::scenario::{ProcessorSetting, Scenario};
use crate::json_number;
use crate::report::row;
use crate::score::round2;

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
        let text = format!(
            "{} accepted, {} failed ({} without an answer)",
            self.requested.accepted, self.requested.failed, timeouts
        );
        row(f, "payments", text)?;
        let text = format!(
            "default {} ({}), fallback {} ({})",
            self.processed_default.payments,
            Amount(self.processed_default.amount),
            self.processed_fallback.payments,
            Amount(self.processed_fallback.amount)
        );
        row(f, "processed", text)?;
        // The other side of the teardown, when it disagrees with the scored one.
        let books = &d.teardown;
        let (label, says, counts, note) = if final_test {
            let backend = &books.backend;
            let counts = (
                backend.default.total_requests,
                backend.fallback.total_requests,
            );
            ("backend", "reports", counts, " (not scored)")
        } else {
            let counts = (books.default.total_requests, books.fallback.total_requests);
            ("books", "the processors count", counts, "")
        };
        if counts
            != (
                self.processed_default.payments,
                self.processed_fallback.payments,
            )
        {
            let text = format!("{says} default {}, fallback {}{note}", counts.0, counts.1);
            row(f, label, text)?;
        }
        let lag_note = if self.slush_fund.detected {
            "  DISQUALIFIED (negative lag)"
        } else {
            ""
        };
        row(f, "lag", format_args!("{}{lag_note}", self.lag.lag))?;
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
        let text = format!(
            "{} over {} requests -> bonus {}",
            self.p99.value, d.http.expected_responses, self.p99.bonus
        );
        row(f, "p99", text)?;
        let fine = json_number::to_text(self.fine.rate * Decimal::ONE_HUNDRED);
        row(f, "fine", format_args!("{fine}%"))?;
        writeln!(
            f,
            "  gross {}  fees {}  net {}",
            Amount(self.gross),
            Amount(self.fees),
            Amount(self.gross - self.fees)
        )?;
        if final_test {
            let text = format!(
                "default {}%, fallback {}% (the processors' feePerTransaction)",
                json_number::to_text(books.default.fee_per_transaction * Decimal::ONE_HUNDRED),
                json_number::to_text(books.fallback.fee_per_transaction * Decimal::ONE_HUNDRED)
            );
            row(f, "fee rates", text)?;
        }
        write!(f, "  score         {}", Amount(self.score))?;
        if !d.stages.is_empty() {
            write_stages(f, &d.stages)?;
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
    use crate::rinha::report::tests::{best_run, final_run};

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
}
