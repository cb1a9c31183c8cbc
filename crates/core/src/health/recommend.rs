//! Ranking processors for a payment method and country: the seed's scoring,
//! one recommendation (the best processor that is not DOWN), and a reason on
//! every line.
//!
//! ```text
//! score = authorization_rate * 100
//! DOWN      -> score = 0
//! DEGRADED  -> score *= 0.5
//! more than 30 transactions -> score += 5   (confidence bonus; not for DOWN)
//! ```
//!
//! Ranked by score, highest first. On equal scores a processor that is not
//! DOWN comes first, then the cheaper one (the candidates arrive in the
//! registry's fee order and the sort is stable).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::status::Status;

/// The scoring weights; the defaults are the seed's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scoring {
    /// Multiplier of a DEGRADED processor's score (0.5).
    pub degraded_factor: f64,
    /// Added to the score of a processor with enough history (5).
    pub confidence_bonus: f64,
    /// The bonus needs strictly more transactions than this (30).
    pub confidence_above: u32,
}

impl Default for Scoring {
    fn default() -> Self {
        Self {
            degraded_factor: 0.5,
            confidence_bonus: 5.0,
            confidence_above: 30,
        }
    }
}

impl Scoring {
    /// A processor's score. No authorization rate yet (nothing approved or
    /// declined) counts as 0.
    pub fn score(&self, status: Status, authorization_rate: Option<f64>, transactions: u32) -> f64 {
        if status == Status::Down {
            return 0.0;
        }
        let mut score = authorization_rate.unwrap_or(0.0) * 100.0;
        if status == Status::Degraded {
            score *= self.degraded_factor;
        }
        if transactions > self.confidence_above {
            score += self.confidence_bonus;
        }
        score
    }
}

/// Whose health a line is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The (processor, method, country) segment: it has enough data.
    Segment,
    /// The processor as a whole: the segment has too little data.
    Processor,
}

/// One processor able to take the payment, with the health that applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index in the fee-ordered registry.
    pub processor: usize,
    pub status: Status,
    pub authorization_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub transactions: u32,
    pub scope: Scope,
}

/// Why a line is where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Best,
    BestDegraded,
    BestWithoutData,
    Down,
    Degraded,
    Alternative,
    NoData,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Best => "Best option - highest authorization rate",
            Reason::BestDegraded => "Best available option - processor is DEGRADED",
            Reason::BestWithoutData => "Best available option - no transactions yet",
            Reason::Down => "Processor is DOWN - not recommended",
            Reason::Degraded => "Processor is DEGRADED - score reduced",
            Reason::Alternative => "Healthy alternative - lower score",
            Reason::NoData => "No transactions yet - health unknown",
        })
    }
}

/// One line of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub candidate: Candidate,
    /// 1 for the best.
    pub rank: u32,
    pub score: f64,
    pub recommended: bool,
    pub reason: Reason,
}

/// The ranked processors for one method and country.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recommendation {
    pub ranked: Vec<Ranked>,
}

impl Recommendation {
    /// The one recommended line, if any processor is not DOWN.
    pub fn recommended(&self) -> Option<&Ranked> {
        self.ranked.iter().find(|r| r.recommended)
    }

    /// Some processor supports the pair and every one of them is DOWN.
    pub fn all_down(&self) -> bool {
        !self.ranked.is_empty()
            && self
                .ranked
                .iter()
                .all(|r| r.candidate.status == Status::Down)
    }
}

/// Scores, sorts and explains `candidates` (given in fee order).
pub fn rank(candidates: Vec<Candidate>, scoring: &Scoring) -> Recommendation {
    let mut scored: Vec<(f64, Candidate)> = candidates
        .into_iter()
        .map(|c| {
            (
                scoring.score(c.status, c.authorization_rate, c.transactions),
                c,
            )
        })
        .collect();
    scored.sort_by(|(sa, a), (sb, b)| {
        (a.status == Status::Down)
            .cmp(&(b.status == Status::Down))
            .then(sb.total_cmp(sa))
    });
    let mut recommended_taken = false;
    let ranked = scored
        .into_iter()
        .enumerate()
        .map(|(i, (score, candidate))| {
            let recommended = !recommended_taken && candidate.status != Status::Down;
            recommended_taken |= recommended;
            let no_data = candidate.transactions == 0;
            let reason = match (recommended, candidate.status) {
                (_, Status::Down) => Reason::Down,
                (true, Status::Degraded) => Reason::BestDegraded,
                (true, _) if no_data => Reason::BestWithoutData,
                (true, _) => Reason::Best,
                (false, Status::Degraded) => Reason::Degraded,
                (false, _) if no_data => Reason::NoData,
                (false, _) => Reason::Alternative,
            };
            Ranked {
                candidate,
                rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
                score,
                recommended,
                reason,
            }
        })
        .collect();
    Recommendation { ranked }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(processor: usize, status: Status, auth: f64, transactions: u32) -> Candidate {
        Candidate {
            processor,
            status,
            authorization_rate: Some(auth),
            error_rate: Some(0.0),
            transactions,
            scope: Scope::Processor,
        }
    }

    #[test]
    fn scores_follow_the_seed_formula() {
        let s = Scoring::default();
        assert_eq!(s.score(Status::Healthy, Some(0.82), 30), 82.0);
        assert_eq!(s.score(Status::Healthy, Some(0.82), 31), 87.0);
        assert_eq!(s.score(Status::Degraded, Some(0.5), 10), 25.0);
        assert_eq!(s.score(Status::Degraded, Some(0.5), 50), 30.0);
        assert_eq!(s.score(Status::Down, Some(0.9), 50), 0.0);
        assert_eq!(s.score(Status::Healthy, None, 0), 0.0);
    }

    #[test]
    fn ranking_is_by_score_and_only_the_best_is_recommended() {
        let r = rank(
            vec![
                candidate(0, Status::Down, 0.10, 50),
                candidate(1, Status::Healthy, 0.70, 50),
                candidate(2, Status::Healthy, 0.82, 50),
                candidate(3, Status::Degraded, 0.60, 50),
            ],
            &Scoring::default(),
        );
        let order: Vec<_> = r.ranked.iter().map(|l| l.candidate.processor).collect();
        assert_eq!(order, [2, 1, 3, 0]);
        assert_eq!(
            r.ranked.iter().map(|l| l.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(r.ranked.iter().filter(|l| l.recommended).count(), 1);
        assert_eq!(r.recommended().unwrap().candidate.processor, 2);
        assert_eq!(
            r.ranked.iter().map(|l| l.reason).collect::<Vec<_>>(),
            [
                Reason::Best,
                Reason::Alternative,
                Reason::Degraded,
                Reason::Down
            ]
        );
        assert_eq!(
            r.ranked[0].reason.to_string(),
            "Best option - highest authorization rate"
        );
        assert_eq!(
            r.ranked[3].reason.to_string(),
            "Processor is DOWN - not recommended"
        );
        assert!(!r.all_down());
    }

    #[test]
    fn when_all_are_down_nothing_is_recommended() {
        let r = rank(
            vec![
                candidate(0, Status::Down, 0.1, 50),
                candidate(1, Status::Down, 0.2, 50),
            ],
            &Scoring::default(),
        );
        assert!(r.all_down());
        assert!(r.recommended().is_none());
        assert!(r.ranked.iter().all(|l| l.reason == Reason::Down));
        assert!(!Recommendation::default().all_down());
    }

    #[test]
    fn a_degraded_processor_is_recommended_when_nothing_better_is_up() {
        let r = rank(
            vec![
                candidate(0, Status::Down, 0.1, 50),
                candidate(1, Status::Degraded, 0.5, 50),
            ],
            &Scoring::default(),
        );
        assert_eq!(r.recommended().unwrap().candidate.processor, 1);
        assert_eq!(r.ranked[0].reason, Reason::BestDegraded);
    }

    #[test]
    fn ties_prefer_up_then_cheaper() {
        let mut fresh = candidate(1, Status::Healthy, 0.0, 0);
        fresh.authorization_rate = None;
        let r = rank(
            vec![
                candidate(0, Status::Down, 0.9, 50),
                fresh,
                candidate(2, Status::Healthy, 0.0, 0),
            ],
            &Scoring::default(),
        );
        let order: Vec<_> = r.ranked.iter().map(|l| l.candidate.processor).collect();
        assert_eq!(order, [1, 2, 0]);
        assert_eq!(r.ranked[0].reason, Reason::BestWithoutData);
        assert_eq!(r.ranked[1].reason, Reason::NoData);
    }
}
