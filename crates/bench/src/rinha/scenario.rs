//! The two official scripts `reroute bench rinha` reproduces, side by side:
//! the 60 s preview (`rinha.js`) and the 300 s final (`rinha-final.js`).
//!
//! Each script is one table ([`Script`]): its length, users, amount, stages,
//! audit margin, teardown window, how an audit counts and whose books the
//! score reads. The users, auditor, stage hand and score take their rules from
//! it; none of them asks which script runs. The rules both scripts share
//! (client timeout, think time, audit interval and lookback) are here too:
//! this module is the rulebook, and imports nothing of the bench.
//!
//! | | preview (`rinha.js`) | final (`rinha-final.js`) |
//! | --- | --- | --- |
//! | length, users | 60 s, 1 -> 550 | 300 s, 1 -> 603 |
//! | amount | 19.90 | 20.05 |
//! | stages | 6 ([`PREVIEW_STAGES`]) | 10 ([`FINAL_STAGES`]) |
//! | audit window | `[now - 15 s, now - 1.5 s]` | `[now - 15 s, now - 2 s]` |
//! | audit count | `\|(bd - d) + (bf - f)\|` | `\|bd - d\| + \|bf - f\|` |
//! | teardown window | 70 s | 360 s |
//! | gross, fees, lag from | the backend's summary | the processors' summaries |
//! | fees (set on the processors) | 5% / 15% | 7% / 10% |
//!
//! The fees are not in the table: the score always uses the
//! `feePerTransaction` the processors report, so it follows whatever the
//! processors were started with (`reroute sim --default-fee 0.07
//! --fallback-fee 0.10` for the final).

use std::time::Duration;

use serde::Serialize;

/// Which official script a run reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// The 60 s preview (rinha.js): 1 to 550 users paying 19.90, six stages,
    /// scored from the backend's summary (processor fees 5% / 15%).
    #[default]
    Preview,
    /// The 300 s final (rinha-final.js): 1 to 603 users paying 20.05, ten
    /// stages, scored from the processors' books (processor fees 7% / 10%:
    /// start `reroute sim --default-fee 0.07 --fallback-fee 0.10`).
    Final,
}

impl Scenario {
    /// The script's rules.
    pub fn script(self) -> &'static Script {
        match self {
            Scenario::Preview => &PREVIEW,
            Scenario::Final => &FINAL,
        }
    }
}

/// Whose summaries the score is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreSource {
    /// The backend's `GET /payments-summary` (the preview): what the backend
    /// says it processed.
    Backend,
    /// The processors' `GET /admin/payments-summary` (the final): what was
    /// actually charged. The backend's summary is only audited.
    Processors,
}

/// One official script, as a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub scenario: Scenario,
    /// The script's length; stage instants are on this timeline.
    pub duration: Duration,
    /// Virtual users at the end of the ramp (`MAX_REQUESTS`).
    pub max_users: u32,
    /// The amount of every payment, as k6 writes it in the body (`19.9`,
    /// `20.05`): sent byte for byte the same.
    pub amount_json: &'static str,
    pub stages: &'static [Stage],
    /// An audit's window ends this long before "now".
    pub audit_margin: Duration,
    /// The teardown reads the summaries over this last stretch.
    pub teardown_window: Duration,
    pub counting: Counting,
    pub score_source: ScoreSource,
}

/// `rinha.js`, the preview whose figures PROTOCOL.md quotes.
pub const PREVIEW: Script = Script {
    scenario: Scenario::Preview,
    duration: Duration::from_secs(60),
    max_users: 550,
    amount_json: "19.9",
    stages: &PREVIEW_STAGES,
    audit_margin: Duration::from_millis(1500),
    teardown_window: Duration::from_secs(70),
    counting: Counting::Netted,
    score_source: ScoreSource::Backend,
};

/// `rinha-final.js`, the contest's final run.
pub const FINAL: Script = Script {
    scenario: Scenario::Final,
    duration: Duration::from_secs(300),
    max_users: 603,
    amount_json: "20.05",
    stages: &FINAL_STAGES,
    audit_margin: Duration::from_secs(2),
    teardown_window: Duration::from_secs(360),
    counting: Counting::PerProcessor,
    score_source: ScoreSource::Processors,
};

/// How a check turns the differences into inconsistencies (`bd`, `bf`: the
/// backend's `totalRequests` for default and fallback; `d`, `f`: the
/// processors').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// `|(bd - d) + (bf - f)|` (rinha.js): a payment booked under the wrong
    /// processor nets out.
    Netted,
    /// `|bd - d| + |bf - f|` (rinha-final.js): it counts twice.
    PerProcessor,
}

impl Counting {
    /// The inconsistencies of one check.
    pub fn count(self, default_difference: i64, fallback_difference: i64) -> u64 {
        match self {
            Counting::Netted => default_difference
                .saturating_add(fallback_difference)
                .unsigned_abs(),
            Counting::PerProcessor => default_difference
                .unsigned_abs()
                .saturating_add(fallback_difference.unsigned_abs()),
        }
    }
}

/// The client timeout of every request the official scripts send.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// A virtual user sleeps this long after each payment.
pub const THINK_TIME: Duration = Duration::from_secs(1);

/// The auditor sleeps this long after each check (official timeline, both
/// scripts).
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(10);

/// An audit compares the window `[now - 15 s, now - margin]` (the margin is
/// the script's: 1.5 s in the preview, 2 s in the final). Not scaled: the
/// window is about how long a payment may be in flight, not about test length.
pub const AUDIT_LOOKBACK: Duration = Duration::from_secs(15);

/// What one processor is told to do: answer after `delay_ms`, and fail (500)
/// or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProcessorSetting {
    pub delay_ms: u64,
    pub failing: bool,
}

impl ProcessorSetting {
    pub const fn new(delay_ms: u64, failing: bool) -> Self {
        Self { delay_ms, failing }
    }
}

/// A stage: at `at` (on the official script's timeline), both processors
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub at: Duration,
    pub default: ProcessorSetting,
    pub fallback: ProcessorSetting,
}

/// The six stages of the preview (rinha.js), on its 60 s timeline
/// (default | fallback): 1 s all well; 10 s default slow (100 ms); 20 s
/// default failing; 30 s both failing and slow (2000 | 1000 ms); 40 s both
/// well again at 20 ms; 50 s default instant, fallback 5 s slow.
pub const PREVIEW_STAGES: [Stage; 6] = [
    stage(1, (0, false), (0, false)),
    stage(10, (100, false), (0, false)),
    stage(20, (100, true), (0, false)),
    stage(30, (2000, true), (1000, true)),
    stage(40, (20, false), (20, false)),
    stage(50, (0, false), (5000, false)),
];

/// The ten stages of the final (rinha-final.js), on its 300 s timeline,
/// one every 30 s (default | fallback): all well; default slow (1 s), then
/// less so (500 ms); default failing and slow with fallback slow (1 s);
/// default failing and very slow (5 s) with fallback quick; default well and
/// fallback failing; both quick (100 | 5, 50 | 0, 103 | 10 ms); and to the
/// end default slow (2 s) while fallback answers at once.
///
/// The script starts its first stage at 1 s, not 0 s (`startTime: "1s"`), as
/// the preview's: until then the processors keep whatever they were left with.
pub const FINAL_STAGES: [Stage; 10] = [
    stage(1, (0, false), (0, false)),
    stage(30, (1000, false), (0, false)),
    stage(60, (500, false), (0, false)),
    stage(90, (2000, true), (1000, false)),
    stage(120, (5000, true), (5, false)),
    stage(150, (0, false), (5, true)),
    stage(180, (100, false), (5, false)),
    stage(210, (50, false), (0, false)),
    stage(240, (103, false), (10, false)),
    stage(270, (2000, false), (0, false)),
];

const fn stage(at_secs: u64, default: (u64, bool), fallback: (u64, bool)) -> Stage {
    Stage {
        at: Duration::from_secs(at_secs),
        default: ProcessorSetting::new(default.0, default.1),
        fallback: ProcessorSetting::new(fallback.0, fallback.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reroute_core::Money;

    #[test]
    fn each_scenario_has_its_own_script() {
        assert_eq!(Scenario::Preview.script().scenario, Scenario::Preview);
        assert_eq!(Scenario::Final.script().scenario, Scenario::Final);
        assert_eq!(Scenario::default(), Scenario::Preview);
    }

    #[test]
    fn the_final_pays_20_05_from_603_users_over_300_s() {
        assert_eq!(
            Money::parse_exact(FINAL.amount_json),
            Ok(Money::from_minor(2005))
        );
        assert_eq!(FINAL.max_users, 603);
        assert_eq!(FINAL.duration, Duration::from_secs(300));
        assert_eq!(FINAL.stages.len(), 10);
        assert_eq!(FINAL.audit_margin, Duration::from_secs(2));
        assert_eq!(FINAL.teardown_window, Duration::from_secs(360));
        assert_eq!(FINAL.counting, Counting::PerProcessor);
        assert_eq!(FINAL.score_source, ScoreSource::Processors);
    }

    #[test]
    fn the_preview_keeps_its_rules() {
        assert_eq!(
            Money::parse_exact(PREVIEW.amount_json),
            Ok(Money::from_minor(1990))
        );
        assert_eq!(PREVIEW.max_users, 550);
        assert_eq!(PREVIEW.duration, Duration::from_secs(60));
        assert_eq!(PREVIEW.stages, &PREVIEW_STAGES);
        assert_eq!(PREVIEW.audit_margin, Duration::from_millis(1500));
        assert_eq!(PREVIEW.teardown_window, Duration::from_secs(70));
        assert_eq!(PREVIEW.counting, Counting::Netted);
        assert_eq!(PREVIEW.score_source, ScoreSource::Backend);
    }

    #[test]
    fn the_scenario_is_named_as_on_the_command_line() {
        use clap::ValueEnum;
        for (scenario, name) in [(Scenario::Preview, "preview"), (Scenario::Final, "final")] {
            assert_eq!(Scenario::from_str(name, false), Ok(scenario));
            assert_eq!(serde_json::to_value(scenario).unwrap(), name);
        }
    }
}
