//! Plays the story: starts everything, sends the traffic, changes the failing
//! processor's behaviour on schedule, prints the timeline as it happens, then
//! waits for every payment to conclude and prints the summary.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::client::Http;
use crate::clock::{Compression, StoryClock, clock_text, duration_text};
use crate::stack::{self, Stack};
use crate::story::{self, MIX, PHASES};
use crate::summary::{Findings, ProcessorTotals, Report, Totals};
use crate::timeline::{Entry, Event};
use crate::traffic::{self, Sent};
use crate::watch::Observer;

/// How the story ended.
enum Ending {
    Finished,
    Interrupted,
}

/// Longest wait, after the last payment is sent, for every accepted payment
/// to reach a known outcome.
const DRAIN: Duration = Duration::from_secs(30);

pub async fn play(port: Option<u16>, compression: Compression) -> anyhow::Result<()> {
    let stack = stack::launch(port, compression).await?;
    let http = Http::new(Duration::from_secs(5));
    header(&stack, &http, compression).await;

    let clock = StoryClock::start(compression);
    let sent = Arc::new(Sent::default());
    let stop = CancellationToken::new();
    let traffic = tokio::spawn(traffic::run(
        http.clone(),
        stack.router_url.clone(),
        clock,
        sent.clone(),
        stop.clone(),
    ));
    let mut observer = Observer::new(
        http.clone(),
        stack.router_url.clone(),
        clock,
        &stack.registry,
    );
    let mut printer = Printer::default();
    let ending = run_story(&stack, &mut observer, &sent, clock, &mut printer).await;
    stop.cancel();
    let _ = traffic.await;
    let totals = match ending {
        Ending::Finished => drain(&stack, &http, &mut observer, &sent, clock, &mut printer).await,
        Ending::Interrupted => totals(&stack, &http, &sent).await,
    };
    let last = observer.traffic(&stack.sim, &sent);
    if let Event::Traffic(t) = &last.event
        && t.processors.iter().any(|(_, a, d, e)| a + d + e > 0)
    {
        printer.push(vec![last], clock.now_ms());
    }
    printer.flush();

    let ids: Vec<String> = stack
        .registry
        .by_fee()
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    let findings = Findings::find(&observer.history, &ids);
    println!();
    print!(
        "{}",
        Report {
            findings: &findings,
            totals: &totals,
            compression,
            wall_ms: i64::try_from(clock.wall_elapsed().as_millis()).unwrap_or(i64::MAX),
            story_ms: clock.now_ms(),
            interrupted: matches!(ending, Ending::Interrupted),
        }
    );
    let _ = std::io::stdout().flush();
    stack.shutdown().await?;
    match ending {
        Ending::Interrupted => {
            anyhow::bail!("interrupted at {} of the story", clock_text(clock.now_ms()))
        }
        Ending::Finished => {
            let problems = findings.problems(&totals);
            anyhow::ensure!(
                problems.is_empty(),
                "the story did not happen as expected: {}",
                problems.join("; ")
            );
            Ok(())
        }
    }
}

fn print(mut entries: Vec<Entry>) {
    entries.sort_by_key(|e| e.at_ms);
    let mut out = std::io::stdout().lock();
    for e in entries {
        let _ = writeln!(out, "{e}");
    }
    let _ = out.flush();
}

/// Holds entries a few story seconds before printing them, so that lines
/// print in story order although some events are found late (a route
/// change is known only once a few payments have gone the new way).
#[derive(Default)]
struct Printer {
    held: Vec<Entry>,
}

impl Printer {
    /// Story time an entry is held.
    const HOLD_MS: i64 = 10_000;

    fn push(&mut self, entries: Vec<Entry>, now_ms: i64) {
        self.held.extend(entries);
        let (ready, held) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|e| e.at_ms <= now_ms - Self::HOLD_MS);
        self.held = held;
        print(ready);
    }

    fn flush(&mut self) {
        print(std::mem::take(&mut self.held));
    }
}

/// How often the observer looks: about once a story second, between 20 and
/// 200 ms of wall time.
fn tick(compression: Compression) -> Duration {
    Duration::from_millis(compression.wall_ms(1_000).clamp(20, 200) as u64)
}

async fn run_story(
    stack: &Stack,
    observer: &mut Observer,
    sent: &Sent,
    clock: StoryClock,
    printer: &mut Printer,
) -> Ending {
    let compression = clock.compression();
    let mut ticks = tokio::time::interval(tick(compression));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut next_phase = 0;
    let mut next_traffic = story::TRAFFIC_EVERY_MS;
    let mut failed_polls = 0u32;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                printer.flush();
                println!("{}  Ctrl-C: stopping", clock_text(clock.now_ms()));
                return Ending::Interrupted;
            }
            _ = ticks.tick() => {}
        }
        let now = clock.now_ms();
        let mut entries = Vec::new();
        if now >= next_traffic {
            entries.push(observer.traffic(&stack.sim, sent));
            next_traffic += story::TRAFFIC_EVERY_MS;
        }
        while let Some(phase) = PHASES.get(next_phase).filter(|p| p.at_ms <= now) {
            entries.push(begin_phase(stack, observer, clock, next_phase, phase));
            next_phase += 1;
        }
        match observer.poll(&stack.sim, sent).await {
            Ok(polled) => {
                failed_polls = 0;
                entries.extend(polled);
            }
            Err(e) => {
                failed_polls += 1;
                if failed_polls == 10 {
                    eprintln!("reroute demo: cannot read the router's API: {e:#}");
                }
            }
        }
        printer.push(entries, now);
        if now >= story::STORY_MS && sent.done.load(std::sync::atomic::Ordering::Relaxed) {
            return Ending::Finished;
        }
    }
}

/// Puts the phase's behaviour on its processor and says so.
fn begin_phase(
    stack: &Stack,
    observer: &mut Observer,
    clock: StoryClock,
    index: usize,
    phase: &story::Phase,
) -> Entry {
    let speed = clock.compression().speed();
    match phase.change {
        story::Change::Failing {
            error_rate,
            decline_rate,
        } => {
            let profile =
                story::profile(story::FAILING).expect("the failing processor has a profile");
            stack
                .sim
                .processor(story::FAILING)
                .set_faults(profile.faults(error_rate, decline_rate, speed))
                .expect("the story's faults are valid");
        }
        story::Change::Rush => {}
        story::Change::Delay { delay_ms } => {
            // Compressed like every latency of the story; 0 stays 0.
            let wall_ms = if delay_ms == 0 {
                0
            } else {
                clock.compression().wall_ms(delay_ms)
            };
            stack.sim.processor(story::SLOW).set_delay(wall_ms);
        }
    }
    let at_ms = clock.now_ms();
    observer.history.phases.push(at_ms);
    Entry {
        at_ms,
        event: Event::Phase {
            number: index + 1,
            title: phase.title.to_owned(),
        },
    }
}

/// Waits until every accepted payment has a known outcome at a processor
/// and the router's ledger has recorded it (the ledger learns an outcome a
/// moment after the processor gives it), printing what still happens
/// meanwhile. Returns the totals then, or at the deadline.
async fn drain(
    stack: &Stack,
    http: &Http,
    observer: &mut Observer,
    sent: &Sent,
    clock: StoryClock,
    printer: &mut Printer,
) -> Totals {
    let deadline = Instant::now() + DRAIN;
    let pause = tick(clock.compression());
    loop {
        if let Ok(entries) = observer.poll(&stack.sim, sent).await {
            printer.push(entries, clock.now_ms());
        }
        let totals = totals(stack, http, sent).await;
        let settled = totals.pending() == 0 && totals.ledger_matches() == Some(true);
        if settled || Instant::now() >= deadline {
            return totals;
        }
        tokio::time::sleep(pause).await;
    }
}

/// Counters at the end: the checkout's, each processor's, the ledger's.
async fn totals(stack: &Stack, http: &Http, sent: &Sent) -> Totals {
    use std::sync::atomic::Ordering::Relaxed;
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(rename = "totalRequests")]
        total_requests: u64,
    }
    let ledger: Option<HashMap<String, Line>> = http
        .get_json(&format!("{}/payments-summary", stack.router_url))
        .await
        .ok();
    let processors = stack
        .registry
        .by_fee()
        .iter()
        .map(|p| {
            let s = stack.sim.processor(p.id.as_str()).stats();
            ProcessorTotals {
                id: p.id.to_string(),
                attempts: s.payments_received,
                approved: s.payments_stored,
                declined: s.payments_declined,
                errors: s.payments_failed,
                ledger: ledger
                    .as_ref()
                    .and_then(|l| l.get(p.id.as_str()))
                    .map(|l| l.total_requests),
            }
        })
        .collect();
    Totals {
        sent: sent.sent.load(Relaxed),
        accepted: sent.accepted.load(Relaxed),
        refused: sent.refused.load(Relaxed),
        unanswered: sent.unanswered.load(Relaxed),
        processors,
    }
}

/// What runs where, and how to look at it.
async fn header(stack: &Stack, http: &Http, compression: Compression) {
    let speed = compression.speed();
    let url = &stack.router_url;
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line("reroute demo: TechCart's processor outage, replayed on this machine".to_owned());
    if speed == 1 {
        line(format!(
            "  {} of story in real time; times below are story time",
            duration_text(story::STORY_MS)
        ));
    } else {
        line(format!(
            "  {} of story played {speed}x faster, in about {} (--realtime for real time); times below are story time",
            duration_text(story::STORY_MS),
            duration_text(compression.wall_ms(story::STORY_MS))
        ));
    }
    line(String::new());
    line("processors   simulated here, from the registry config/techcart.toml".to_owned());
    for p in stack.registry.by_fee() {
        let approves = story::profile(p.id.as_str())
            .map_or(String::new(), |pr| format!("{:.0}%", pr.approval() * 100.0));
        line(format!(
            "  {:<12} {:<13} {:<11} {:<11} fee {:.2}%  approves {approves:>4}  {}",
            p.id.as_str(),
            p.name,
            p.payment_methods.join(", "),
            p.countries.join(", "),
            p.fee.as_fraction() * 100.0,
            p.url.as_deref().unwrap_or("-")
        ));
    }
    let note = stack
        .port_note
        .as_ref()
        .map_or(String::new(), |n| format!(" ({n})"));
    line(format!(
        "router       {url}{note}  embedded store {}",
        stack.db.display()
    ));
    line(format!(
        "  routing    cheapest processor not DOWN for the payment's segment; patience {}",
        duration_text(compression.story_ms(Duration::from_millis(
            u64::try_from(stack.patience_ms).unwrap_or(0)
        )))
    ));
    line(format!(
        "  lanes      {} to {} sends in flight per processor, as it carries (the demo's scale); \
         spill to the next by fee past an expected wait of {}",
        story::LANES.initial,
        story::LANES.max,
        duration_text(compression.story_ms(Duration::from_millis(stack.spill_wait_ms)))
    ));
    line(format!("  health     {url}/api/v1/health"));
    line(format!("  alerts     {url}/api/v1/alerts"));
    line(format!(
        "  recommend  {url}/api/v1/routing/recommend?payment_method={}&country={}",
        story::WATCHED_METHOD,
        story::WATCHED_COUNTRY
    ));
    let dashboard = format!("{url}/dashboard");
    let live = match http.call(Method::GET, &dashboard, None).await {
        Ok((status, _)) if status.is_success() => "live while the demo runs".to_owned(),
        Ok((StatusCode::NOT_FOUND, _)) => {
            "not in this build yet: it arrives with the operations work".to_owned()
        }
        Ok((status, _)) => format!("answers {status}"),
        Err(e) => format!("unreachable: {e}"),
    };
    line(format!("  dashboard  {dashboard}  ({live})"));
    let mix: Vec<String> = MIX
        .iter()
        .map(|s| format!("{} {}%", s.label(), s.weight))
        .collect();
    line(format!(
        "traffic      {} payments through POST /payments, one every {}: {}",
        story::PAYMENTS,
        duration_text(story::send_at_ms(1)),
        mix.join(", ")
    ));
    line(format!(
        "  rush       {} more {} payments from {}, one every {}",
        story::RUSH.payments(),
        MIX[story::RUSH_SEGMENT].label(),
        clock_text(story::RUSH.from_ms),
        duration_text(story::RUSH.every_ms)
    ));
    line("Ctrl-C stops the demo.".to_owned());
    line(String::new());
    print!("{out}");
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_observer_looks_about_once_a_story_second_within_bounds() {
        let at = |speed| tick(Compression::new(speed).unwrap());
        assert_eq!(at(1), Duration::from_millis(200));
        assert_eq!(at(10), Duration::from_millis(100));
        assert_eq!(at(100), Duration::from_millis(20));
    }
}
