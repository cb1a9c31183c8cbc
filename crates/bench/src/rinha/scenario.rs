//! The two official scripts `reroute bench rinha` reproduces, side by side:
//! the 60 s preview (`rinha.js`) and the 300 s final (`rinha-final.js`).
//!
//! Each script is one table ([`Script`]): its length, users, amount, stages,
//! audit margin, teardown window, how an audit counts and whose books the
//! score reads. The users, auditor, stage hand and score take their rules from
//! it; none of them asks which script runs.
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

use reroute_core::Money;
use serde::Serialize;

use super::auditor::Counting;
use super::timeline::{FINAL_STAGES, PREVIEW_STAGES, Stage};

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

    /// `preview` or `final`, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Preview => "preview",
            Scenario::Final => "final",
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
    /// The script's file in the contest's repository (`rinha-test/`).
    pub file: &'static str,
    /// The script's length; stage instants are on this timeline.
    pub duration: Duration,
    /// Virtual users at the end of the ramp (`MAX_REQUESTS`).
    pub max_users: u32,
    /// The amount of every payment.
    pub amount: Money,
    /// The amount as k6 writes it in the body (`19.9`, `20.05`): sent byte
    /// for byte the same.
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
    file: "rinha.js",
    duration: Duration::from_secs(60),
    max_users: 550,
    amount: Money::from_minor(1990),
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
    file: "rinha-final.js",
    duration: Duration::from_secs(300),
    max_users: 603,
    amount: Money::from_minor(2005),
    amount_json: "20.05",
    stages: &FINAL_STAGES,
    audit_margin: Duration::from_secs(2),
    teardown_window: Duration::from_secs(360),
    counting: Counting::PerProcessor,
    score_source: ScoreSource::Processors,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scenario_has_its_own_script() {
        assert_eq!(Scenario::Preview.script().scenario, Scenario::Preview);
        assert_eq!(Scenario::Final.script().scenario, Scenario::Final);
        assert_eq!(Scenario::default(), Scenario::Preview);
    }

    #[test]
    fn the_final_pays_20_05_from_603_users_over_300_s() {
        assert_eq!(FINAL.amount, Money::from_minor(2005));
        assert_eq!(Money::parse_exact(FINAL.amount_json), Ok(FINAL.amount));
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
        assert_eq!(PREVIEW.amount, Money::from_minor(1990));
        assert_eq!(Money::parse_exact(PREVIEW.amount_json), Ok(PREVIEW.amount));
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
        for scenario in [Scenario::Preview, Scenario::Final] {
            assert_eq!(Scenario::from_str(scenario.name(), false), Ok(scenario));
            assert_eq!(
                serde_json::to_value(scenario).unwrap(),
                serde_json::Value::from(scenario.name())
            );
        }
    }
}
