//! The Rinha de Backend 2025 score, as pure functions on exact decimals.
//!
//! The official script computes with big.js (exact decimals) and so does this
//! module, with [`Decimal`]: no float ever touches money. The steps:
//!
//! - p99: k6's percentile (linear between closest ranks) over the durations of
//!   every expected response, in milliseconds, rounded to 2 decimals (half up);
//! - bonus = max(round((11 - p99) x 0.02, 2), 0);
//! - fine = 0.35 if any inconsistency was seen, else 0;
//! - gross = the totalAmount (default + fallback) of the backend's summary in
//!   the preview, of the processors' in the final; fee per processor = its
//!   own feePerTransaction x that totalAmount for it; net = gross - fees;
//! - score = net + net x bonus - net x fine;
//! - lag = payments accepted - payments recorded (by the same summaries);
//!   negative lag (more recorded than requested) disqualifies.
//!
//! The bonus formula is applied to the p99 already rounded to 2 decimals, then
//! rounded half up (big.js's default). With a 2-decimal p99, `(11 - p99) x 0.02`
//! computed in floats (as the script does before handing it to big.js) and in
//! exact decimals round to the same value for every p99 from 0 to 11 ms, so
//! exact arithmetic reproduces the official figures.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// The 99th percentile, as the score uses it.
pub const P99: Decimal = Decimal::from_parts(99, 0, 0, false, 2);

/// The fine for any inconsistency: 35%.
pub const INCONSISTENCY_FINE: Decimal = Decimal::from_parts(35, 0, 0, false, 2);

/// Bonus points per millisecond under 11 ms: 2%.
const BONUS_PER_MS: Decimal = Decimal::from_parts(2, 0, 0, false, 2);

/// The p99 at and above which the bonus is zero.
const BONUS_CEILING_MS: Decimal = Decimal::from_parts(11, 0, 0, false, 0);

const NANOS_PER_MS: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// The `p`-th percentile (`p` in 0..=1) of `sorted_nanos`, in milliseconds,
/// exactly as k6 computes a Trend's `p(N)`: with `n` values sorted ascending,
/// the rank is `r = p x (n - 1)` and the result is
/// `v[floor(r)] + (r - floor(r)) x (v[ceil(r)] - v[floor(r)])`.
/// No values give 0 and one value gives itself, as in k6.
///
/// The slice must be sorted ascending (checked in debug builds).
pub fn percentile(sorted_nanos: &[u64], p: Decimal) -> Decimal {
    debug_assert!(sorted_nanos.is_sorted(), "percentile needs sorted values");
    debug_assert!(
        (Decimal::ZERO..=Decimal::ONE).contains(&p),
        "p is a fraction in 0..=1"
    );
    let nanos = match sorted_nanos {
        [] => Decimal::ZERO,
        [only] => Decimal::from(*only),
        values => {
            let rank = p * Decimal::from(values.len() - 1);
            let below = rank.floor();
            let fraction = rank - below;
            let at = |r: Decimal| -> Decimal {
                let index = r.to_usize().expect("a rank within 0..n-1 fits usize");
                Decimal::from(values[index])
            };
            let low = at(below);
            let high = at(rank.ceil());
            low + (high - low) * fraction
        }
    };
    nanos / NANOS_PER_MS
}

/// Rounds to 2 decimals, half away from zero (big.js `round(2)`).
pub fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The p99 as the result shows it: milliseconds rounded to 2 decimals.
pub fn rounded_p99(p99_ms: Decimal) -> Decimal {
    round2(p99_ms)
}

/// The latency bonus for a p99 in milliseconds: `max(round((11 - p99) x 0.02, 2), 0)`,
/// with the p99 first rounded to 2 decimals. Not capped: 0.5 ms earns 21%.
pub fn bonus(p99_ms: Decimal) -> Decimal {
    let p99 = rounded_p99(p99_ms);
    round2((BONUS_CEILING_MS - p99) * BONUS_PER_MS).max(Decimal::ZERO)
}

/// The fine: 35% as soon as one inconsistency was counted.
pub fn fine(inconsistencies: u64) -> Decimal {
    if inconsistencies > 0 {
        INCONSISTENCY_FINE
    } else {
        Decimal::ZERO
    }
}

/// The fee a processor charges on `amount`: its `feePerTransaction` (a rate,
/// 0.05 for default and 0.15 for fallback) times the amount.
pub fn fee(fee_rate: Decimal, amount: Decimal) -> Decimal {
    fee_rate * amount
}

/// Profit before bonus and fine.
pub fn net(gross: Decimal, fees: Decimal) -> Decimal {
    gross - fees
}

/// The final score (`total_liquido`): `net + net x bonus - net x fine`.
pub fn total(net: Decimal, bonus: Decimal, fine: Decimal) -> Decimal {
    net + net * bonus - net * fine
}

/// Payments accepted by the backend minus payments it reports as processed.
/// Positive: still queued (lost revenue). Negative: recorded more than was
/// requested, which disqualifies.
pub fn lag(accepted: u64, recorded: u64) -> i128 {
    i128::from(accepted) - i128::from(recorded)
}

/// One processor's share of the result: what the backend reports it sent
/// there (preview) or what the processor booked (final), and the
/// processor's fee rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessorShare {
    /// `totalRequests` for this processor.
    pub requests: u64,
    /// `totalAmount` for this processor.
    pub amount: Decimal,
    /// The processor's own `feePerTransaction`.
    pub fee_rate: Decimal,
}

/// Everything the score is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScoreInputs {
    /// The exact p99 of expected responses, in milliseconds.
    pub p99_ms: Decimal,
    /// Inconsistencies summed over every audit.
    pub inconsistencies: u64,
    /// `POST /payments` answered 200, 201, 202 or 204.
    pub accepted: u64,
    pub default: ProcessorShare,
    pub fallback: ProcessorShare,
}

/// The score and each figure on the way to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// p99 in milliseconds, rounded to 2 decimals.
    pub p99_ms: Decimal,
    pub bonus: Decimal,
    pub fine: Decimal,
    pub gross: Decimal,
    pub fees_default: Decimal,
    pub fees_fallback: Decimal,
    pub fees: Decimal,
    pub net: Decimal,
    pub fine_amount: Decimal,
    /// The final score, `total_liquido`.
    pub total: Decimal,
    /// Payments the backend reports (default + fallback).
    pub recorded: u64,
    pub lag: i128,
    /// Negative lag: the backend reports payments nobody requested.
    pub disqualified: bool,
}

impl Score {
    pub fn compute(inputs: &ScoreInputs) -> Score {
        let gross = inputs.default.amount + inputs.fallback.amount;
        let fees_default = fee(inputs.default.fee_rate, inputs.default.amount);
        let fees_fallback = fee(inputs.fallback.fee_rate, inputs.fallback.amount);
        let fees = fees_default + fees_fallback;
        let net = net(gross, fees);
        let bonus = bonus(inputs.p99_ms);
        let fine = fine(inputs.inconsistencies);
        let recorded = inputs.default.requests + inputs.fallback.requests;
        let lag = lag(inputs.accepted, recorded);
        Score {
            p99_ms: rounded_p99(inputs.p99_ms),
            bonus,
            fine,
            gross,
            fees_default,
            fees_fallback,
            fees,
            net,
            fine_amount: net * fine,
            total: total(net, bonus, fine),
            recorded,
            lag,
            disqualified: lag < 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// `requests` payments totalling `amount` at fee `rate`.
    pub(crate) fn share(requests: u64, amount: Decimal, rate: &str) -> ProcessorShare {
        ProcessorShare {
            requests,
            amount,
            fee_rate: d(rate),
        }
    }

    fn ms(values: &[u64]) -> Vec<u64> {
        values.iter().map(|v| v * 1_000_000).collect()
    }

    #[test]
    fn percentile_interpolates_between_closest_ranks_like_k6() {
        // r = 0.99 x 3 = 2.97 -> 3 + 0.97 x (4 - 3)
        assert_eq!(percentile(&ms(&[1, 2, 3, 4]), P99), d("3.97"));
        // r = 0.5 x 4 = 2 falls on a value
        assert_eq!(percentile(&ms(&[1, 2, 3, 4, 5]), d("0.5")), d("3"));
        // r = 0.99 x 99 = 98.01 -> 99 + 0.01 x (100 - 99)
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&ms(&hundred), P99), d("99.01"));
        assert_eq!(percentile(&ms(&hundred), Decimal::ZERO), d("1"));
        assert_eq!(percentile(&ms(&hundred), Decimal::ONE), d("100"));
    }

    #[test]
    fn percentile_of_nothing_is_zero_and_of_one_value_is_that_value() {
        assert_eq!(percentile(&[], P99), Decimal::ZERO);
        assert_eq!(percentile(&[1_250_000], P99), d("1.25"));
    }

    #[test]
    fn percentile_keeps_nanosecond_precision() {
        // 1.2 ms and 1.3 ms; r = 0.99 -> 1.2 + 0.99 x 0.1 = 1.299 ms
        assert_eq!(percentile(&[1_200_000, 1_300_000], P99), d("1.299"));
        // 1 ns apart
        assert_eq!(percentile(&[1, 2], P99), d("0.00000199"));
    }

    #[test]
    fn bonus_follows_the_official_rounding() {
        // (11 - 1.25) x 0.02 = 0.195 -> 0.20: the published best earns 20%.
        assert_eq!(bonus(d("1.25")), d("0.20"));
        // p99 is rounded first: 1.254 -> 1.25 -> 20%; 1.255 -> 1.26 -> 0.1948 -> 19%.
        assert_eq!(bonus(d("1.254")), d("0.20"));
        assert_eq!(bonus(d("1.255")), d("0.19"));
        // Not capped at 20%.
        assert_eq!(bonus(d("0.5")), d("0.21"));
        assert_eq!(bonus(Decimal::ZERO), d("0.22"));
        assert_eq!(bonus(d("2")), d("0.18"));
        assert_eq!(bonus(d("10.75")), d("0.01"));
        // (11 - 10.76) x 0.02 = 0.0048 -> 0.00
        assert_eq!(bonus(d("10.76")), Decimal::ZERO);
        assert_eq!(bonus(d("11")), Decimal::ZERO);
        assert_eq!(bonus(d("1500")), Decimal::ZERO);
    }

    #[test]
    fn p99_is_shown_rounded_half_up() {
        assert_eq!(rounded_p99(d("1.245")), d("1.25"));
        assert_eq!(rounded_p99(d("1.2449")), d("1.24"));
        assert_eq!(rounded_p99(d("3.97")), d("3.97"));
    }

    #[test]
    fn any_inconsistency_costs_35_percent() {
        assert_eq!(fine(0), Decimal::ZERO);
        assert_eq!(fine(1), d("0.35"));
        assert_eq!(fine(10_000), d("0.35"));
    }

    #[test]
    fn net_is_gross_minus_fees() {
        assert_eq!(fee(d("0.05"), d("19.90")), d("0.995"));
        assert_eq!(net(d("100"), d("5.5")), d("94.5"));
    }

    #[test]
    fn the_published_best_run_scores_380035_87() {
        // 16,752 payments of 19.90, all on default (5%), p99 1.25 ms, no fine.
        let inputs = ScoreInputs {
            p99_ms: d("1.25"),
            inconsistencies: 0,
            accepted: 16_752,
            default: share(16_752, d("19.90") * Decimal::from(16_752), "0.05"),
            fallback: share(0, Decimal::ZERO, "0.15"),
        };
        let score = Score::compute(&inputs);
        assert_eq!(score.gross, d("333364.80"));
        assert_eq!(score.fees, d("16668.24"));
        assert_eq!(score.net, d("316696.56"));
        assert_eq!(score.bonus, d("0.2"));
        assert_eq!(score.fine_amount, Decimal::ZERO);
        assert_eq!(score.total, d("380035.872"));
        assert_eq!(round2(score.total), d("380035.87"));
        assert_eq!(score.lag, 0);
        assert!(!score.disqualified);
    }

    #[test]
    fn an_inconsistent_run_with_fallback_pays_fees_and_the_fine() {
        let inputs = ScoreInputs {
            p99_ms: d("20"),
            inconsistencies: 3,
            accepted: 10,
            default: share(6, d("119.40"), "0.05"),
            fallback: share(4, d("79.60"), "0.15"),
        };
        let score = Score::compute(&inputs);
        assert_eq!(score.gross, d("199.00"));
        assert_eq!(score.fees_default, d("5.97"));
        assert_eq!(score.fees_fallback, d("11.94"));
        assert_eq!(score.net, d("181.09"));
        assert_eq!(score.bonus, Decimal::ZERO);
        assert_eq!(score.fine_amount, d("63.3815"));
        assert_eq!(score.total, d("117.7085"));
    }

    #[test]
    fn recording_more_than_was_requested_disqualifies() {
        let inputs = ScoreInputs {
            accepted: 9,
            default: share(10, d("199"), "0.05"),
            ..ScoreInputs::default()
        };
        let score = Score::compute(&inputs);
        assert_eq!(score.lag, -1);
        assert!(score.disqualified);
        assert_eq!(lag(10, 7), 3);
    }
}
